// Package users holds the installation's local user accounts and their
// memberships in organizations (issue 12, item 2): the types, the storage
// they need and password hashing with argon2id, where only the hash is ever
// stored and no error or log carries a password. The service with the rules
// (who may create, disable, add members) is still to come.
package users

import (
	"context"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// User is a local account.
type User struct {
	ID  string
	Seq int64
	// Email is lowercased; it is unique in the installation.
	Email string
	Name  string
	// PasswordHash is HashPassword's result, empty when the account has no
	// password. Converters never copy it into a response.
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// DisabledAt is set once the account is disabled.
	DisabledAt *time.Time
}

// Membership is a user's role in one organization.
type Membership struct {
	OrgID     string
	UserID    string
	Role      identity.Role
	CreatedAt time.Time
}

// UserFilter selects users for FindUsers.
type UserFilter struct {
	// OrgID, when set, selects the organization's members.
	OrgID string
	// After and Limit select a page by Seq; Limit zero means no limit.
	After int64
	Limit int
}

// Store is the storage users need; internal/store implements it.
type Store interface {
	// CreateUser fails with CodeConflict on a taken email.
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID and FindUserByEmail fail with CodeNotFound.
	FindUserByID(ctx context.Context, id string) (*User, error)
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// FindUsers returns users by ascending Seq.
	FindUsers(ctx context.Context, filter UserFilter) ([]*User, error)
	// UpdateUser loads the user in a transaction, lets fn change it (an
	// error from fn changes nothing) and writes it back. It fails with
	// CodeNotFound, CodeConflict on a taken email, or fn's error.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (*User, error)

	// CreateMembership fails with CodeConflict when the user is already a
	// member and CodeNotFound when the organization or user is missing.
	CreateMembership(ctx context.Context, m *Membership) error
	// FindMemberships returns the memberships of a user (userID set), of
	// an organization (orgID set), or the one of both, by creation.
	FindMemberships(ctx context.Context, orgID, userID string) ([]*Membership, error)
	// SetMembershipRole fails with CodeNotFound.
	SetMembershipRole(ctx context.Context, orgID, userID string, role identity.Role) error
	// DeleteMembership fails with CodeNotFound.
	DeleteMembership(ctx context.Context, orgID, userID string) error
}
