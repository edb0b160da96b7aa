// Package users will hold the installation's local user accounts and their
// memberships in organizations (issue 12, item 2). So far it has the one
// piece every later part needs: password hashing with argon2id, where only
// the hash is ever stored and no error or log carries a password.
package users
