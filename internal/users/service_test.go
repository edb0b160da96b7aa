package users_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/users"
)

type fixture struct {
	svc   *users.Service
	now   time.Time
	org   *identity.Organization
	admin context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	f.svc = users.NewService(st)
	f.svc.Now = func() time.Time { return f.now }
	f.org = &identity.Organization{ID: uuid.NewString(), Name: "acme", CreatedAt: f.now, UpdatedAt: f.now}
	if err := st.CreateOrganization(context.Background(), f.org); err != nil {
		t.Fatal(err)
	}
	f.admin = identity.NewContext(context.Background(), &identity.Caller{OrgID: f.org.ID, Scopes: []identity.Scope{identity.ScopeAdmin},
		Subject: identity.Subject{ID: "sa", Principal: identity.PrincipalServiceAccount}})
	return f
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if !apperr.Is(err, code) {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestInvites_Expiry: an invite works until its expiry and not after; a
// lifetime out of bounds names ttl.
func TestInvites_Expiry(t *testing.T) {
	f := newFixture(t)
	_, token, err := f.svc.CreateInvite(f.admin, "", "member", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.CreateInvite(f.admin, "", "member", 31*24*time.Hour)
	if wantCode(t, err, apperr.CodeInvalid); !strings.HasPrefix(err.Error(), "ttl") {
		t.Fatalf("error %v does not name ttl", err)
	}
	f.now = f.now.Add(time.Hour)
	_, err = f.svc.SignUp(context.Background(), token, "late@example.com", "", "a long enough password")
	wantCode(t, err, apperr.CodeNotFound)
	_, token, err = f.svc.CreateInvite(f.admin, "", "audit-reader", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(59 * time.Minute)
	m, err := f.svc.SignUp(context.Background(), token, "ok@example.com", "Ok", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if m.Membership.Role != identity.RoleAuditReader || m.User.PasswordHash == "" || !users.CheckPassword(m.User.PasswordHash, "a long enough password") {
		t.Fatalf("signed up %+v %+v", m.User, m.Membership)
	}
}

// TestProvision: the first call creates the user (no password) and the
// membership, a second finds both and moves the role, a disabled user is
// refused; no caller is needed.
func TestProvision(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, m, err := f.svc.Provision(ctx, "Sso@Example.com", "Sso User", f.org.ID, identity.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "sso@example.com" || u.PasswordHash != "" || m.Role != identity.RoleAdmin {
		t.Fatalf("provisioned %+v %+v", u, m)
	}
	// The only admin cannot be moved to member, even by provisioning.
	_, _, err = f.svc.Provision(ctx, "sso@example.com", "", f.org.ID, identity.RoleMember)
	wantCode(t, err, apperr.CodeFailedPrecondition)
	v, _, err := f.svc.Provision(ctx, "second@example.com", "", f.org.ID, identity.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	u2, m2, err := f.svc.Provision(ctx, "sso@example.com", "", f.org.ID, identity.RoleMember)
	if err != nil || u2.ID != u.ID || m2.Role != identity.RoleMember {
		t.Fatalf("second provision: %+v %+v %v", u2, m2, err)
	}
	if _, err := f.svc.SetDisabled(f.admin, v.ID, true); err == nil {
		t.Fatal("disabled the last admin")
	}
	// Disabling revokes the user's keys and tells the hooks: each key
	// (its streams end) and the user (their sessions end).
	key := &identity.Token{ID: uuid.NewString(), OrgID: f.org.ID, Name: "k", Principal: identity.PrincipalUser, OwnerUserID: u.ID,
		Scopes: []identity.Scope{identity.ScopeRunnersRead}, Hash: "h", CreatedAt: f.now}
	if err := f.svc.Store.(interface {
		CreateToken(context.Context, *identity.Token) error
	}).CreateToken(ctx, key); err != nil {
		t.Fatal(err)
	}
	var revokedKeys, disabledUsers []string
	f.svc.TokenRevoked = func(_, id string) { revokedKeys = append(revokedKeys, id) }
	f.svc.Disabled = func(_ context.Context, id string) { disabledUsers = append(disabledUsers, id) }
	if _, err := f.svc.SetDisabled(f.admin, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if len(revokedKeys) != 1 || revokedKeys[0] != key.ID || len(disabledUsers) != 1 || disabledUsers[0] != u.ID {
		t.Fatalf("hooks: revoked %v, disabled %v", revokedKeys, disabledUsers)
	}
	_, _, err = f.svc.Provision(ctx, "sso@example.com", "", f.org.ID, identity.RoleMember)
	wantCode(t, err, apperr.CodeUnauthenticated)
	_, _, err = f.svc.Provision(ctx, "not an email", "", f.org.ID, identity.RoleMember)
	wantCode(t, err, apperr.CodeInvalid)
}

// TestChangePassword: a user changes their own password with the current
// one; a wrong current password or a service account is refused.
func TestChangePassword(t *testing.T) {
	f := newFixture(t)
	u, _, err := f.svc.Create(f.admin, users.CreateInput{Email: "me@example.com", Password: "the first password", Role: "member"})
	if err != nil {
		t.Fatal(err)
	}
	me := identity.NewContext(context.Background(), &identity.Caller{OrgID: f.org.ID, UserID: u.ID, Role: identity.RoleMember,
		Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}})
	_, err = f.svc.ChangePassword(me, "wrong password!", "the second password")
	wantCode(t, err, apperr.CodePermissionDenied)
	_, err = f.svc.ChangePassword(f.admin, "the first password", "the second password")
	wantCode(t, err, apperr.CodePermissionDenied)
	got, err := f.svc.ChangePassword(me, "the first password", "the second password")
	if err != nil || !users.CheckPassword(got.PasswordHash, "the second password") {
		t.Fatalf("change: %v", err)
	}
}
