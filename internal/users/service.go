package users

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// Who may do what:
//
//   - The installation admin (the bootstrap admin key, or a user flagged
//     InstallationAdmin) manages every user and organization.
//   - An organization's admin (a caller of the organization holding
//     ScopeAdmin) creates users into it, lists, disables, enables and
//     resets the passwords of its members (not of installation admins),
//     adds, removes and sets the roles of members, and creates invites.
//   - Every caller of an organization lists its members; a user changes
//     their own password and leaves an organization.
//   - To anyone else another organization's members do not exist
//     (CodeNotFound).
//
// The last enabled admin of an organization cannot be removed, demoted or
// disabled (CodeFailedPrecondition): someone must be left to manage it.

// InvitePrefix starts every invite token, so that it is recognisable in a
// paste and by secret scanners.
const InvitePrefix = "ryd_inv_"

// DefaultInviteTTL and MaxInviteTTL bound how long an invite stays valid.
const (
	DefaultInviteTTL = 7 * 24 * time.Hour
	MaxInviteTTL     = 30 * 24 * time.Hour
)

// Service holds the rules for users, memberships and invites.
type Service struct {
	Store Store
	// Now is the clock, a field so expiry is testable.
	Now func() time.Time
	// Disabled, when set, is called after a user was disabled, to end
	// what authenticates the user besides API keys (browser sessions:
	// the server wires it to sessions.RevokeUser).
	Disabled func(ctx context.Context, userID string)
	// PasswordReset, when set, is called after an admin set a user's
	// password: the server ends the user's sessions (whoever knew the old
	// password is out) and lifts a sign-in lockout.
	PasswordReset func(ctx context.Context, userID string)
	// PasswordChanged, when set, is called after a user changed their own
	// password: the server ends the user's other sessions (whoever else
	// knew the old password is out) and keeps keepSessionID, the session
	// the change was made in ("" when it came with an API key).
	PasswordChanged func(ctx context.Context, userID, keepSessionID string)
	// TokenRevoked, when set, is called for every key a change revoked or
	// narrowed (a disabled owner, a removed membership, a new role), so
	// that the streams opened with it end on every replica.
	TokenRevoked func(orgID, tokenID string)
}

// NewService returns a Service on store with the real clock.
func NewService(store Store) *Service { return &Service{Store: store, Now: time.Now} }

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Member is a user with their membership in one organization.
type Member struct {
	User       *User
	Membership *Membership
}

// NormalizeEmail validates an email address and returns it lowercased;
// field names the request field or flag for errors.
func NormalizeEmail(field, email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return "", apperr.Invalid(field, "is required")
	}
	if len(email) > 254 {
		return "", apperr.Invalid(field, "must be at most 254 characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", apperr.Invalid(field, "must be an email address like name@example.com, got %q", email)
	}
	return email, nil
}

func validateName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n > 100 {
		return "", apperr.Invalid(field, "must be at most 100 characters, got %d", n)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", apperr.Invalid(field, "must not contain control characters")
	}
	return name, nil
}

// isOrgAdmin reports whether c administers orgID.
func isOrgAdmin(c *identity.Caller, orgID string) bool {
	return c.InstallationAdmin || (c.OrgID == orgID && c.Has(identity.ScopeAdmin))
}

// requireOrgAdmin returns the caller if it administers orgID ("" is the
// caller's own). Another organization is CodeNotFound to anyone but the
// installation admin; a member without ScopeAdmin gets
// CodePermissionDenied.
func (s *Service) requireOrgAdmin(ctx context.Context, orgID string) (*identity.Caller, string, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, "", err
	}
	if orgID == "" {
		orgID = c.OrgID
	} else if err := identity.ValidateUUID("organizationId", orgID); err != nil {
		return nil, "", err
	}
	if c.OrgID != orgID && !c.InstallationAdmin {
		return nil, "", apperr.NotFound("organization %s not found", orgID)
	}
	if !isOrgAdmin(c, orgID) {
		if _, err := identity.Require(ctx, identity.ScopeAdmin); err != nil {
			return nil, "", err
		}
	}
	return c, orgID, nil
}

// CreateInput describes a new user.
type CreateInput struct {
	Email    string
	Name     string
	Password string
	// OrgID and Role give the user a membership; an organization's admin
	// must give both (OrgID may be empty for their own), the installation
	// admin may create a user without one.
	OrgID string
	Role  string
	// InstallationAdmin makes the user an installation admin; only the
	// installation admin may.
	InstallationAdmin bool
}

// Create creates a local account with a password and, with a role, its
// membership, in one transaction. It fails with CodeInvalid naming the
// field, CodeConflict on a taken email, CodeNotFound for another
// organization and CodePermissionDenied for a caller who may not.
func (s *Service) Create(ctx context.Context, in CreateInput) (*User, *Membership, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, nil, err
	}
	orgID := in.OrgID
	if !c.InstallationAdmin || (orgID == "" && in.Role != "") {
		if c, orgID, err = s.requireOrgAdmin(ctx, orgID); err != nil {
			return nil, nil, err
		}
	} else if orgID != "" {
		if err := identity.ValidateUUID("organizationId", orgID); err != nil {
			return nil, nil, err
		}
	}
	if in.InstallationAdmin && !c.InstallationAdmin {
		return nil, nil, apperr.PermissionDenied("only the installation admin can create installation admins")
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return nil, nil, err
	}
	name, err := validateName("name", in.Name)
	if err != nil {
		return nil, nil, err
	}
	if err := ValidatePassword("password", in.Password); err != nil {
		return nil, nil, err
	}
	var m *Membership
	now := s.now()
	u := &User{ID: uuid.NewString(), Email: email, Name: name, CreatedAt: now, UpdatedAt: now, InstallationAdmin: in.InstallationAdmin}
	if orgID != "" {
		role, err := identity.ParseRole("role", in.Role)
		if err != nil {
			return nil, nil, err
		}
		m = &Membership{OrgID: orgID, UserID: u.ID, Role: role, CreatedAt: now}
	} else if in.Role != "" {
		return nil, nil, apperr.Invalid("organizationId", "is required with a role")
	}
	if u.PasswordHash, err = HashPassword(in.Password); err != nil {
		return nil, nil, err
	}
	if err := s.Store.CreateUserWithMembership(ctx, u, m); err != nil {
		switch {
		case apperr.Is(err, apperr.CodeConflict):
			return nil, nil, apperr.Conflict("a user with email %q already exists", email)
		case apperr.Is(err, apperr.CodeNotFound):
			return nil, nil, apperr.NotFound("organization %s not found", orgID)
		}
		return nil, nil, fmt.Errorf("create user %q: %w", email, err)
	}
	return u, m, nil
}

// Provision finds the user with email or creates one without a password,
// and makes sure they are a member of orgID with role: a new membership
// gets role, an existing one is moved to role (the last-admin rule still
// holds). It is a system action (single sign-on's first sign-in): it
// needs no caller and checks none. It fails with CodeInvalid naming
// "email" or "role", CodeNotFound for a missing organization and
// CodeUnauthenticated for a disabled user.
func (s *Service) Provision(ctx context.Context, email, name, orgID string, role identity.Role) (*User, *Membership, error) {
	email, err := NormalizeEmail("email", email)
	if err != nil {
		return nil, nil, err
	}
	if name, err = validateName("name", name); err != nil {
		return nil, nil, err
	}
	if _, err := identity.ParseRole("role", string(role)); err != nil {
		return nil, nil, err
	}
	now := s.now()
	u, err := s.Store.FindUserByEmail(ctx, email)
	if apperr.Is(err, apperr.CodeNotFound) {
		u = &User{ID: uuid.NewString(), Email: email, Name: name, CreatedAt: now, UpdatedAt: now}
		m := &Membership{OrgID: orgID, UserID: u.ID, Role: role, CreatedAt: now}
		err = s.Store.CreateUserWithMembership(ctx, u, m)
		if err == nil {
			return u, m, nil
		}
		if !apperr.Is(err, apperr.CodeConflict) {
			return nil, nil, fmt.Errorf("provision user %q: %w", email, err)
		}
		// Another sign-in created the user meanwhile.
		u, err = s.Store.FindUserByEmail(ctx, email)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("provision user %q: %w", email, err)
	}
	if u.DisabledAt != nil {
		return nil, nil, apperr.Unauthenticated("account %s is disabled", email)
	}
	m := &Membership{OrgID: orgID, UserID: u.ID, Role: role, CreatedAt: now}
	err = s.Store.CreateMembership(ctx, m)
	if err == nil {
		return u, m, nil
	}
	if !apperr.Is(err, apperr.CodeConflict) {
		return nil, nil, fmt.Errorf("provision membership of %q: %w", email, err)
	}
	m, err = s.Store.UpdateMembership(ctx, orgID, u.ID, func(m *Membership, admins int) (bool, error) {
		if m.Role == role {
			return false, nil
		}
		if err := lastAdmin(m, admins, "demote"); err != nil {
			return false, err
		}
		m.Role = role
		return false, nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.narrowed(ctx, orgID, u.ID)
	return u, m, nil
}

// FindUser resolves ref, a user id or an email address, for the caller:
// the installation admin sees every user, anyone else the users who are
// members of their organization and themselves (CodeNotFound for others).
func (s *Service) FindUser(ctx context.Context, ref string) (*User, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleUser(ctx, c, "userId", ref)
}

func (s *Service) visibleUser(ctx context.Context, c *identity.Caller, field, ref string) (*User, error) {
	ref = strings.TrimSpace(ref)
	var u *User
	var err error
	if strings.Contains(ref, "@") {
		email, verr := NormalizeEmail(field, ref)
		if verr != nil {
			return nil, verr
		}
		u, err = s.Store.FindUserByEmail(ctx, email)
	} else {
		if verr := identity.ValidateUUID(field, ref); verr != nil {
			return nil, apperr.Invalid(field, "must be a user id (UUID) or an email address, got %q", ref)
		}
		u, err = s.Store.FindUserByID(ctx, ref)
	}
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.NotFound("user %s not found", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", ref, err)
	}
	if c.InstallationAdmin || c.UserID == u.ID {
		return u, nil
	}
	ms, err := s.Store.FindMemberships(ctx, c.OrgID, u.ID)
	if err != nil {
		return nil, fmt.Errorf("find memberships of %s: %w", ref, err)
	}
	if len(ms) == 0 {
		return nil, apperr.NotFound("user %s not found", ref)
	}
	return u, nil
}

// List lists users by creation: every user to the installation admin, the
// members of their organization to an organization's admin.
func (s *Service) List(ctx context.Context, page paging.Page) ([]*User, string, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, "", err
	}
	f := UserFilter{After: page.After, Limit: page.Limit + 1}
	if !c.InstallationAdmin {
		if _, err := identity.Require(ctx, identity.ScopeAdmin); err != nil {
			return nil, "", err
		}
		f.OrgID = c.OrgID
	}
	items, err := s.Store.FindUsers(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	items, next := paging.Trim(page, items, func(u *User) int64 { return u.Seq })
	return items, next, nil
}

// manageable returns the user ref an admin may disable, enable or reset:
// any for the installation admin; for an organization's admin a member of
// their organization who is not an installation admin.
func (s *Service) manageable(ctx context.Context, ref string) (*identity.Caller, *User, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The scope first: a caller who may manage nobody learns nothing
	// about the user it named.
	if !c.InstallationAdmin {
		if _, err := identity.Require(ctx, identity.ScopeAdmin); err != nil {
			return nil, nil, err
		}
	}
	u, err := s.visibleUser(ctx, c, "userId", ref)
	if err != nil {
		return nil, nil, err
	}
	if c.InstallationAdmin {
		return c, u, nil
	}
	if u.InstallationAdmin {
		return nil, nil, apperr.PermissionDenied("user %s is an installation admin: only the installation admin can change them", u.Email)
	}
	if ms, err := s.Store.FindMemberships(ctx, c.OrgID, u.ID); err != nil || len(ms) == 0 {
		if err != nil {
			return nil, nil, fmt.Errorf("find memberships of %s: %w", ref, err)
		}
		return nil, nil, apperr.NotFound("user %s not found", ref)
	}
	return c, u, nil
}

// SetDisabled disables or enables a user. A disabled user cannot
// authenticate: every API key they own is revoked in the same transaction,
// and Disabled ends their sessions. Nobody disables themselves, nor the
// last enabled admin of an organization (CodeFailedPrecondition).
func (s *Service) SetDisabled(ctx context.Context, ref string, disabled bool) (*User, error) {
	c, u, err := s.manageable(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !disabled {
		u, err = s.Store.UpdateUser(ctx, u.ID, func(u *User) error {
			if u.DisabledAt != nil {
				u.DisabledAt, u.UpdatedAt = nil, s.now()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("enable user %s: %w", ref, err)
		}
		return u, nil
	}
	if c.UserID == u.ID {
		return nil, apperr.FailedPrecondition("you cannot disable yourself")
	}
	// The last-admin check runs inside the store's transaction, with the
	// user's organizations locked: two admins disabling (or demoting) the
	// last two admins at once cannot both pass.
	u, revoked, err := s.Store.DisableUser(ctx, u.ID, s.now(), func(u *User, admins map[string]int) error {
		for orgID, n := range admins {
			if n <= 1 {
				return apperr.FailedPrecondition("user %s is the last admin of organization %s: make another member admin first", u.Email, orgID)
			}
		}
		return nil
	})
	if err != nil {
		if apperr.Is(err, apperr.CodeFailedPrecondition) {
			return nil, err
		}
		return nil, fmt.Errorf("disable user %s: %w", ref, err)
	}
	if s.TokenRevoked != nil {
		for _, t := range revoked {
			s.TokenRevoked(t.OrgID, t.ID)
		}
	}
	if s.Disabled != nil {
		s.Disabled(ctx, u.ID)
	}
	return u, nil
}

// SetPassword sets a user's password as an admin (a reset): the
// installation admin anyone's, an organization's admin a member's.
func (s *Service) SetPassword(ctx context.Context, ref, password string) (*User, error) {
	_, u, err := s.manageable(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := ValidatePassword("password", password); err != nil {
		return nil, err
	}
	u, err = s.writePassword(ctx, u.ID, password, nil)
	if err == nil && s.PasswordReset != nil {
		s.PasswordReset(ctx, u.ID)
	}
	return u, err
}

// ChangePassword changes the calling user's own password; current must be
// their password now (CodePermissionDenied otherwise, naming no password).
func (s *Service) ChangePassword(ctx context.Context, current, password string) (*User, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, apperr.PermissionDenied("only a user can change their password (this key is a service account's)")
	}
	if err := ValidatePassword("newPassword", password); err != nil {
		return nil, err
	}
	u, err := s.writePassword(ctx, c.UserID, password, func(u *User) error {
		if u.PasswordHash == "" || !CheckPassword(u.PasswordHash, current) {
			return apperr.PermissionDenied("currentPassword is not your password")
		}
		return nil
	})
	if err == nil && s.PasswordChanged != nil {
		s.PasswordChanged(ctx, u.ID, c.SessionID)
	}
	return u, err
}

func (s *Service) writePassword(ctx context.Context, id, password string, check func(*User) error) (*User, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u, err := s.Store.UpdateUser(ctx, id, func(u *User) error {
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		u.PasswordHash, u.UpdatedAt = hash, s.now()
		return nil
	})
	if err != nil {
		if apperr.Is(err, apperr.CodePermissionDenied) {
			return nil, err
		}
		return nil, fmt.Errorf("set password of %s: %w", id, err)
	}
	return u, nil
}

// AddMember adds a user (id or email) to an organization with a role. An
// organization's admin adds to their own, the installation admin to any.
// CodeConflict when the user is a member already.
func (s *Service) AddMember(ctx context.Context, orgID, ref, role string) (*Member, error) {
	_, orgID, err := s.requireOrgAdmin(ctx, orgID)
	if err != nil {
		return nil, err
	}
	r, err := identity.ParseRole("role", role)
	if err != nil {
		return nil, err
	}
	// An organization's admin adds users by email or id even when they are
	// not members anywhere they can see: the installation's users are
	// looked up directly.
	u, err := s.lookup(ctx, "userId", ref)
	if err != nil {
		return nil, err
	}
	m := &Membership{OrgID: orgID, UserID: u.ID, Role: r, CreatedAt: s.now()}
	if err := s.Store.CreateMembership(ctx, m); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return nil, apperr.Conflict("user %s is already a member", u.Email)
		}
		return nil, fmt.Errorf("add member %s: %w", ref, err)
	}
	return &Member{User: u, Membership: m}, nil
}

// lookup finds a user by id or email with no visibility rule.
func (s *Service) lookup(ctx context.Context, field, ref string) (*User, error) {
	return s.visibleUser(ctx, &identity.Caller{InstallationAdmin: true}, field, ref)
}

// ListMembers lists an organization's members by when they joined: to its
// callers and the installation admin (CodeNotFound to others).
func (s *Service) ListMembers(ctx context.Context, orgID string) ([]*Member, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if orgID == "" {
		orgID = c.OrgID
	} else if err := identity.ValidateUUID("organizationId", orgID); err != nil {
		return nil, err
	}
	if orgID != c.OrgID && !c.InstallationAdmin {
		return nil, apperr.NotFound("organization %s not found", orgID)
	}
	if c.Subject.Principal == identity.PrincipalRunner || c.Logs != nil {
		// Runners and logs tokens act on work, not on people.
		return nil, apperr.PermissionDenied("runner and logs tokens cannot list members")
	}
	ms, err := s.Store.FindMemberships(ctx, orgID, "")
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", orgID, err)
	}
	out := make([]*Member, 0, len(ms))
	for _, m := range ms {
		u, err := s.Store.FindUserByID(ctx, m.UserID)
		if err != nil {
			return nil, fmt.Errorf("find member %s: %w", m.UserID, err)
		}
		out = append(out, &Member{User: u, Membership: m})
	}
	return out, nil
}

func lastAdmin(m *Membership, admins int, what string) error {
	if m.Role == identity.RoleAdmin && admins <= 1 {
		return apperr.FailedPrecondition("user %s is the organization's last admin: cannot %s them (make another member admin first)", m.UserID, what)
	}
	return nil
}

// SetRole changes a member's role (an organization's admin, or the
// installation admin). CodeFailedPrecondition when it would demote the
// organization's last admin.
func (s *Service) SetRole(ctx context.Context, orgID, ref, role string) (*Member, error) {
	_, orgID, err := s.requireOrgAdmin(ctx, orgID)
	if err != nil {
		return nil, err
	}
	r, err := identity.ParseRole("role", role)
	if err != nil {
		return nil, err
	}
	u, err := s.lookup(ctx, "userId", ref)
	if err != nil {
		return nil, err
	}
	m, err := s.Store.UpdateMembership(ctx, orgID, u.ID, func(m *Membership, admins int) (bool, error) {
		if r != identity.RoleAdmin {
			if err := lastAdmin(m, admins, "demote"); err != nil {
				return false, err
			}
		}
		m.Role = r
		return false, nil
	})
	if err != nil {
		return nil, s.membershipErr(err, ref)
	}
	s.narrowed(ctx, orgID, u.ID)
	return &Member{User: u, Membership: m}, nil
}

// RemoveMember removes a user from an organization: an admin removes
// anyone, a user themselves (leaving). CodeFailedPrecondition for the
// organization's last admin.
func (s *Service) RemoveMember(ctx context.Context, orgID, ref string) error {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return err
	}
	var u *User
	if c.UserID != "" && (ref == "" || ref == c.UserID) {
		// Leaving: a user may always try to leave their own organization.
		if orgID == "" {
			orgID = c.OrgID
		}
		if orgID != c.OrgID && !c.InstallationAdmin {
			return apperr.NotFound("organization %s not found", orgID)
		}
		if u, err = s.Store.FindUserByID(ctx, c.UserID); err != nil {
			return fmt.Errorf("find user %s: %w", c.UserID, err)
		}
	} else {
		if _, orgID, err = s.requireOrgAdmin(ctx, orgID); err != nil {
			return err
		}
		if u, err = s.lookup(ctx, "userId", ref); err != nil {
			return err
		}
	}
	_, err = s.Store.UpdateMembership(ctx, orgID, u.ID, func(m *Membership, admins int) (bool, error) {
		return true, lastAdmin(m, admins, "remove")
	})
	if err != nil {
		return s.membershipErr(err, ref)
	}
	s.narrowed(ctx, orgID, u.ID)
	return nil
}

func (s *Service) membershipErr(err error, ref string) error {
	switch {
	case apperr.Is(err, apperr.CodeNotFound):
		return apperr.NotFound("user %s is not a member", ref)
	case apperr.Is(err, apperr.CodeFailedPrecondition):
		return err
	}
	return fmt.Errorf("change membership of %s: %w", ref, err)
}

// narrowed ends the streams opened with the keys a user owns in orgID,
// whose scopes a membership change just narrowed or took away.
func (s *Service) narrowed(ctx context.Context, orgID, userID string) {
	if s.TokenRevoked == nil {
		return
	}
	keys, err := s.Store.FindTokens(ctx, identity.TokenFilter{OrgID: orgID, OwnerUserID: userID})
	if err != nil {
		return
	}
	for _, k := range keys {
		s.TokenRevoked(k.OrgID, k.ID)
	}
}

// CreateInvite creates a one-time invite to orgID ("" for the caller's)
// with role, valid for ttl (zero: DefaultInviteTTL). It returns the invite
// and its token, which is not stored and cannot be shown again.
func (s *Service) CreateInvite(ctx context.Context, orgID, role string, ttl time.Duration) (*Invite, string, error) {
	c, orgID, err := s.requireOrgAdmin(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	if role == "" {
		role = string(identity.RoleMember)
	}
	r, err := identity.ParseRole("role", role)
	if err != nil {
		return nil, "", err
	}
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if ttl < time.Minute || ttl > MaxInviteTTL {
		return nil, "", apperr.Invalid("ttl", "must be between 1m and %s, got %s", MaxInviteTTL, ttl)
	}
	secret := identity.NewSecret(InvitePrefix)
	now := s.now()
	inv := &Invite{ID: uuid.NewString(), Hash: identity.HashSecret(secret), OrgID: orgID, Role: r,
		CreatorID: c.Subject.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.Store.CreateInvite(ctx, inv); err != nil {
		return nil, "", fmt.Errorf("create invite: %w", err)
	}
	return inv, secret, nil
}

// OrganizationRole is one organization of a user, with their role in it.
type OrganizationRole struct {
	Org  *identity.Organization
	Role identity.Role
}

// MyOrganizations returns the organizations the calling user is a member
// of, in the order they joined them: what they may switch between. A
// caller who is not a user has none.
func (s *Service) MyOrganizations(ctx context.Context) ([]OrganizationRole, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, nil
	}
	ms, err := s.Store.FindMemberships(ctx, "", c.UserID)
	if err != nil {
		return nil, fmt.Errorf("find memberships of %s: %w", c.UserID, err)
	}
	out := make([]OrganizationRole, 0, len(ms))
	for _, m := range ms {
		org, err := s.Store.FindOrganizationByID(ctx, m.OrgID)
		if err != nil {
			return nil, fmt.Errorf("find organization %s: %w", m.OrgID, err)
		}
		out = append(out, OrganizationRole{Org: org, Role: m.Role})
	}
	return out, nil
}

// ListInvites returns the pending (unused, unexpired) invites of orgID
// ("" for the caller's), oldest first: to its admins and the installation
// admin. Their tokens are not stored, so none is shown.
func (s *Service) ListInvites(ctx context.Context, orgID string) ([]*Invite, error) {
	_, orgID, err := s.requireOrgAdmin(ctx, orgID)
	if err != nil {
		return nil, err
	}
	items, err := s.Store.FindPendingInvites(ctx, orgID, s.now())
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return items, nil
}

// RevokeInvite withdraws an unused invite of orgID ("" for the caller's)
// by its id: its token stops working at once. CodeNotFound for an unknown
// invite (or another organization's), CodeFailedPrecondition for one that
// was used.
func (s *Service) RevokeInvite(ctx context.Context, orgID, id string) (*Invite, error) {
	_, orgID, err := s.requireOrgAdmin(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("inviteId", id); err != nil {
		return nil, err
	}
	inv, err := s.Store.DeleteInvite(ctx, orgID, id)
	switch {
	case apperr.Is(err, apperr.CodeNotFound):
		return nil, apperr.NotFound("invite %s not found", id)
	case apperr.Is(err, apperr.CodeFailedPrecondition):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("revoke invite %s: %w", id, err)
	}
	return inv, nil
}

// usable refuses an invite that is used or expired: both look like an
// unknown one (CodeNotFound), so a token tells nothing once it is spent.
func (s *Service) usable(inv *Invite) error {
	if inv.UsedAt != nil || !s.now().Before(inv.ExpiresAt) {
		return apperr.NotFound("invite not found, used or expired: ask an admin for a new one")
	}
	return nil
}

func validateInviteToken(token string) error {
	if strings.TrimSpace(token) == "" {
		return apperr.Invalid("inviteId", "is required")
	}
	if !strings.HasPrefix(strings.TrimSpace(token), InvitePrefix) {
		return apperr.Invalid("inviteId", "must be an invite token (%s...)", InvitePrefix)
	}
	return nil
}

// InviteSummary returns the invite's unused, unexpired invite and how many
// members its organization has, for the page that asks whether to join.
// Any authenticated caller may ask; the token is the permission.
func (s *Service) InviteSummary(ctx context.Context, token string) (*Invite, int, error) {
	if _, err := identity.RequireAuthenticated(ctx); err != nil {
		return nil, 0, err
	}
	if err := validateInviteToken(token); err != nil {
		return nil, 0, err
	}
	inv, err := s.Store.FindInviteByHash(ctx, identity.HashSecret(strings.TrimSpace(token)))
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, 0, apperr.NotFound("invite not found, used or expired: ask an admin for a new one")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("find invite: %w", err)
	}
	if err := s.usable(inv); err != nil {
		return nil, 0, err
	}
	ms, err := s.Store.FindMemberships(ctx, inv.OrgID, "")
	if err != nil {
		return nil, 0, fmt.Errorf("count members: %w", err)
	}
	return inv, len(ms), nil
}

// Join makes the calling user a member of the invite's organization with
// its role and uses the invite up. Only a user can join (a signed-in
// person, or their key): CodePermissionDenied for a service account.
// orgID, when set, must be the invite's organization.
func (s *Service) Join(ctx context.Context, token, orgID string) (*Member, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, apperr.PermissionDenied("only a user can join an organization (this key is a service account's)")
	}
	if err := validateInviteToken(token); err != nil {
		return nil, err
	}
	if orgID != "" {
		if err := identity.ValidateUUID("organizationId", orgID); err != nil {
			return nil, err
		}
	}
	u, err := s.Store.FindUserByID(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", c.UserID, err)
	}
	return s.redeem(ctx, token, orgID, u, nil)
}

// CheckInviteAdmin returns nil when the caller may create invites to
// orgID ("" for their own), and the error it would get otherwise.
func (s *Service) CheckInviteAdmin(ctx context.Context, orgID string) error {
	_, _, err := s.requireOrgAdmin(ctx, orgID)
	return err
}

// SignUp creates an account with email and password and makes it a member
// of the invite's organization with its role, in one transaction: how a
// person without an account accepts an invite. It needs no caller (the
// invite is the credential) and fails with CodeInvalid naming the field,
// CodeNotFound for an unknown, used or expired invite and CodeConflict for
// a taken email (sign in and join instead).
func (s *Service) SignUp(ctx context.Context, token, email, name, password string) (*Member, error) {
	if err := validateInviteToken(token); err != nil {
		return nil, err
	}
	email, err := NormalizeEmail("email", email)
	if err != nil {
		return nil, err
	}
	if name, err = validateName("name", name); err != nil {
		return nil, err
	}
	if err := ValidatePassword("password", password); err != nil {
		return nil, err
	}
	// Anyone may call this: an unknown invite is refused before the
	// password is hashed, so guessing invites costs the server no argon2.
	inv, err := s.Store.FindInviteByHash(ctx, identity.HashSecret(strings.TrimSpace(token)))
	if err == nil {
		err = s.usable(inv)
	}
	if err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			return nil, apperr.NotFound("invite not found, used or expired: ask an admin for a new one")
		}
		return nil, fmt.Errorf("find invite: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &User{ID: uuid.NewString(), Email: email, Name: name, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	return s.redeem(ctx, token, "", u, u)
}

func (s *Service) redeem(ctx context.Context, token, orgID string, u, create *User) (*Member, error) {
	var m *Membership
	now := s.now()
	_, err := s.Store.RedeemInvite(ctx, identity.HashSecret(strings.TrimSpace(token)), now, func(inv *Invite) (*User, *Membership, error) {
		if err := s.usable(inv); err != nil {
			return nil, nil, err
		}
		if orgID != "" && orgID != inv.OrgID {
			return nil, nil, apperr.Invalid("organizationId", "is not the invite's organization")
		}
		m = &Membership{OrgID: inv.OrgID, UserID: u.ID, Role: inv.Role, CreatedAt: now}
		return create, m, nil
	})
	switch {
	case err == nil:
		return &Member{User: u, Membership: m}, nil
	case apperr.Is(err, apperr.CodeInvalid):
		return nil, err
	case apperr.Is(err, apperr.CodeNotFound), apperr.Is(err, apperr.CodeFailedPrecondition):
		return nil, apperr.NotFound("invite not found, used or expired: ask an admin for a new one")
	case apperr.Is(err, apperr.CodeConflict) && create != nil:
		return nil, apperr.Conflict("a user with email %q already exists: sign in and join with the invite", u.Email)
	case apperr.Is(err, apperr.CodeConflict):
		return nil, apperr.Conflict("you are already a member of this organization")
	}
	return nil, fmt.Errorf("redeem invite: %w", err)
}
