// Package users holds the installation's local user accounts, their
// memberships in organizations and the invitations to join one (issue 12,
// item 2): the types, the storage they need, password hashing with
// argon2id (only the hash is ever stored; no error or log carries a
// password) and Service, which holds the rules: who may create, list,
// disable and add whom, the last admin of an organization, single-use
// invitations.
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
	// InstallationAdmin marks a user who manages the installation (every
	// organization and user), as the bootstrap admin key does.
	InstallationAdmin bool
}

// Invite is a one-time invitation to join an organization with a role.
// Only the SHA-256 hash of its token is stored.
type Invite struct {
	ID        string
	Hash      string
	OrgID     string
	Role      identity.Role
	CreatorID string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt and UsedBy record the one redemption.
	UsedAt *time.Time
	UsedBy string
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

	// CreateUserWithMembership creates u and, when m is not nil, its
	// membership m in one transaction. It fails with CodeConflict on a
	// taken email and CodeNotFound for a missing organization.
	CreateUserWithMembership(ctx context.Context, u *User, m *Membership) error
	// DisableUser sets the user's DisabledAt to at (unless already set)
	// and revokes every unrevoked API key the user owns, in one
	// transaction; it returns the user and the keys it revoked. Before it
	// disables an enabled user it locks every organization the user is an
	// admin of (the lock UpdateMembership takes), counts each one's
	// enabled admins (the user included) and lets check, when not nil,
	// refuse; an error from check changes nothing. It fails with
	// CodeNotFound or check's error.
	DisableUser(ctx context.Context, id string, at time.Time, check func(u *User, admins map[string]int) error) (*User, []*identity.Token, error)
	// UpdateMembership locks the organization, loads the membership and
	// counts the organization's admins, lets fn change the membership's
	// role or ask for its removal (an error from fn changes nothing), and
	// writes it, in one transaction; concurrent calls on one organization
	// see each other. It fails with CodeNotFound or fn's error.
	UpdateMembership(ctx context.Context, orgID, userID string, fn func(m *Membership, admins int) (remove bool, err error)) (*Membership, error)

	// CreateInvite fails with CodeNotFound for a missing organization.
	CreateInvite(ctx context.Context, inv *Invite) error
	// FindPendingInvites returns the organization's invites that are
	// unused and expire after at, oldest first.
	FindPendingInvites(ctx context.Context, orgID string, at time.Time) ([]*Invite, error)
	// DeleteInvite deletes an unused invite of orgID and returns it. It
	// fails with CodeNotFound, and CodeFailedPrecondition for an invite
	// that was used.
	DeleteInvite(ctx context.Context, orgID, id string) (*Invite, error)
	// FindInviteByHash fails with CodeNotFound.
	FindInviteByHash(ctx context.Context, hash string) (*Invite, error)
	// RedeemInvite locks the invite with hash, lets fn refuse it (used,
	// expired) or name the membership to create (and a user to create
	// first, when not nil), and marks the invite used by the membership's
	// user, all in one transaction. It fails with CodeNotFound for an
	// unknown hash, CodeConflict when the user is already a member or the
	// email is taken, or fn's error.
	RedeemInvite(ctx context.Context, hash string, at time.Time, fn func(inv *Invite) (*User, *Membership, error)) (*Invite, error)

	// FindOrganizationByID is identity.Store's; it fails with
	// CodeNotFound.
	FindOrganizationByID(ctx context.Context, id string) (*identity.Organization, error)

	// FindTokens is identity.Store's: the keys a user owns.
	FindTokens(ctx context.Context, filter identity.TokenFilter) ([]*identity.Token, error)
}
