// Package authzmatrix holds tests only: the authorization matrix. It reads
// the table of docs/authorization.md, calls every row (Connect methods,
// REST, Kubiya, /logs and WebSocket routes) as every kind of caller, in the
// caller's own organization and in another one, on a live control plane,
// and checks each answer against the row. The table is the documentation,
// so the two cannot drift; a served method or route without a row fails
// the test.
package authzmatrix
