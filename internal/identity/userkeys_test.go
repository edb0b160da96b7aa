package identity_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

// TestUserKeys: a user caller's key is theirs and within their role; its
// scopes are cut to the owner's role as the store has it when the key is
// read, which it is again after every change to the owner (KeyChanged), and
// it stops when the owner leaves the organization, unless they are an
// installation admin.
func TestUserKeys(t *testing.T) {
	s, db, c := newService(t)
	res, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	org := res.Org.ID
	u := &users.User{ID: uuid.NewString(), Email: "u@example.com", CreatedAt: c.t, UpdatedAt: c.t}
	if err := db.CreateUserWithMembership(ctx, u, &users.Membership{OrgID: org, UserID: u.ID, Role: identity.RoleRunnersAdmin, CreatedAt: c.t}); err != nil {
		t.Fatal(err)
	}
	as := identity.NewContext(ctx, &identity.Caller{OrgID: org, UserID: u.ID, Role: identity.RoleRunnersAdmin,
		Scopes: identity.RoleRunnersAdmin.Scopes(), Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}})

	_, _, err = s.CreateAPIKey(as, identity.CreateAPIKeyInput{Name: "too much", Scopes: []string{"admin"}})
	if wantCode(t, err, apperr.CodePermissionDenied); !strings.Contains(err.Error(), `"admin"`) {
		t.Fatalf("error %v does not name the scope", err)
	}
	key, secret, err := s.CreateAPIKey(as, identity.CreateAPIKeyInput{Name: "mine", Scopes: []string{"runners:read", "runners:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if key.Principal != identity.PrincipalUser || key.OwnerUserID != u.ID || key.Creator != (identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}) {
		t.Fatalf("key %+v", key)
	}
	caller, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if caller.UserID != u.ID || caller.Subject.ID != u.ID || caller.Subject.Principal != identity.PrincipalUser ||
		caller.Role != identity.RoleRunnersAdmin || caller.TokenID != key.ID || !caller.Has(identity.ScopeRunnersWrite) || caller.InstallationAdmin {
		t.Fatalf("caller %+v", caller)
	}
	// Another replica lowers the role: the next call after its notice
	// (KeyChanged, as the users service sends for each of the owner's
	// keys) sees it; until then the cached key keeps the role it had.
	if err := db.SetMembershipRole(ctx, org, u.ID, identity.RoleMember); err != nil {
		t.Fatal(err)
	}
	if caller, err = s.Authenticate(ctx, secret); err != nil || !caller.Has(identity.ScopeRunnersWrite) {
		t.Fatalf("before the notice: %+v, %v (is the key cached?)", caller, err)
	}
	s.KeyChanged(key.ID)
	caller, err = s.Authenticate(ctx, secret)
	if err != nil || caller.Has(identity.ScopeRunnersWrite) || !slices.Equal(caller.Scopes, []identity.Scope{identity.ScopeRunnersRead}) {
		t.Fatalf("after the downgrade: %+v, %v", caller, err)
	}
	if err := db.DeleteMembership(ctx, org, u.ID); err != nil {
		t.Fatal(err)
	}
	s.KeyChanged(key.ID)
	_, err = s.Authenticate(ctx, secret)
	wantCode(t, err, apperr.CodeUnauthenticated)
	// An installation admin's key works outside a membership, as an admin.
	if _, err := db.UpdateUser(ctx, u.ID, func(u *users.User) error { u.InstallationAdmin = true; return nil }); err != nil {
		t.Fatal(err)
	}
	caller, err = s.Authenticate(ctx, secret)
	if err != nil || !caller.InstallationAdmin || caller.Role != identity.RoleAdmin || !caller.Has(identity.ScopeRunnersWrite) {
		t.Fatalf("installation admin's key: %+v, %v", caller, err)
	}
	if _, _, err := db.DisableUser(ctx, u.ID, c.t, nil); err != nil {
		t.Fatal(err)
	}
	s.KeyChanged(key.ID)
	_, err = s.Authenticate(ctx, secret)
	wantCode(t, err, apperr.CodeUnauthenticated)
	// The bootstrap key still authenticates as the installation admin.
	boot, err := s.Authenticate(ctx, res.Secret)
	if err != nil || !boot.InstallationAdmin || boot.UserID != "" || boot.Subject.Principal != identity.PrincipalServiceAccount {
		t.Fatalf("bootstrap key: %+v, %v", boot, err)
	}
}
