package identity_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/users"
)

// TestAuthenticatedToken: every API key reads its own record whatever its
// scopes (a key without admin may not list the organization's keys), a
// user's key with the scopes its owner's role leaves it; a revoked key,
// whose caller another replica may still hold, is refused; a browser
// session and a runner are told they are not API keys, and a logs token is
// refused.
func TestAuthenticatedToken(t *testing.T) {
	s, db, clk := newService(t)
	admin := adminContext(t, s)
	exp := clk.t.Add(time.Hour)
	key, secret, err := s.CreateAPIKey(admin, identity.CreateAPIKeyInput{Name: "ci", Scopes: []string{"runners:read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	as := identity.NewContext(ctx, c)
	_, _, err = s.ListTokens(as, false, identityPage)
	wantCode(t, err, apperr.CodePermissionDenied)
	got, gc, err := s.AuthenticatedToken(as)
	if err != nil {
		t.Fatalf("the key's own record: %v", err)
	}
	if got.ID != key.ID || got.Name != "ci" || !slices.Equal(got.Scopes, []identity.Scope{identity.ScopeRunnersRead}) ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.Principal != identity.PrincipalServiceAccount || got.OwnerUserID != "" ||
		!slices.Equal(gc.Scopes, got.Scopes) {
		t.Fatalf("record %+v, caller %+v", got, gc)
	}
	// The bootstrap admin key reads its own too.
	if got, _, err := s.AuthenticatedToken(admin); err != nil || !got.Bootstrap {
		t.Fatalf("the admin key's record: %+v, %v", got, err)
	}

	// A user's key: its record, with the scopes its owner's role leaves it.
	org := c.OrgID
	u := &users.User{ID: uuid.NewString(), Email: "u@example.com", CreatedAt: clk.t, UpdatedAt: clk.t}
	if err := db.CreateUserWithMembership(ctx, u, &users.Membership{OrgID: org, UserID: u.ID, Role: identity.RoleRunnersAdmin, CreatedAt: clk.t}); err != nil {
		t.Fatal(err)
	}
	session := identity.NewContext(ctx, &identity.Caller{OrgID: org, UserID: u.ID, Role: identity.RoleRunnersAdmin, SessionID: uuid.NewString(),
		Scopes: identity.RoleRunnersAdmin.Scopes(), Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}})
	ukey, usecret, err := s.CreateAPIKey(session, identity.CreateAPIKeyInput{Name: "mine", Scopes: []string{"runners:read", "runners:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMembershipRole(ctx, org, u.ID, identity.RoleMember); err != nil {
		t.Fatal(err)
	}
	uc, err := s.Authenticate(ctx, usecret)
	if err != nil {
		t.Fatal(err)
	}
	got, gc, err = s.AuthenticatedToken(identity.NewContext(ctx, uc))
	if err != nil || got.ID != ukey.ID || got.OwnerUserID != u.ID || len(got.Scopes) != 2 ||
		!slices.Equal(gc.Scopes, []identity.Scope{identity.ScopeRunnersRead}) {
		t.Fatalf("a user's key: %+v (caller %+v), %v", got, gc, err)
	}
	// The user's browser session holds no key.
	_, _, err = s.AuthenticatedToken(session)
	wantCode(t, err, apperr.CodeFailedPrecondition)

	// A runner access token is not an API key.
	rs := runners.NewService(db)
	rs.Now = clk.Now
	_, exchange, err := rs.Create(admin, runners.CreateInput{Name: "host-1", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatal(err)
	}
	access, err := s.Exchange(ctx, exchange)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Authenticate(ctx, access)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.AuthenticatedToken(identity.NewContext(ctx, rc))
	wantCode(t, err, apperr.CodeFailedPrecondition)

	// A logs token reads logs and nothing else.
	lc := identity.NewContext(ctx, &identity.Caller{OrgID: org, Logs: &identity.LogsGrant{EnvironmentID: uuid.NewString(), RunnerID: uuid.NewString()},
		Subject: identity.Subject{Principal: identity.PrincipalEnvironment}})
	_, _, err = s.AuthenticatedToken(lc)
	wantCode(t, err, apperr.CodePermissionDenied)
	_, _, err = s.AuthenticatedToken(ctx)
	wantCode(t, err, apperr.CodeUnauthenticated)

	// Revoked while another replica still holds its caller: refused as its
	// next authentication would be. Expired alike.
	other, osecret, err := s.CreateAPIKey(admin, identity.CreateAPIKeyInput{Name: "other", Scopes: []string{"runners:read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	oc, err := s.Authenticate(ctx, osecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeToken(admin, key.ID, false); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.AuthenticatedToken(as)
	wantCode(t, err, apperr.CodeUnauthenticated)
	clk.t = exp
	_, _, err = s.AuthenticatedToken(identity.NewContext(ctx, oc))
	wantCode(t, err, apperr.CodeUnauthenticated)
	if got, _, err := s.AuthenticatedToken(admin); err != nil || got.ID == other.ID {
		t.Fatalf("the admin key after the others ended: %+v, %v", got, err)
	}
}

var identityPage = paging.Page{Limit: 10}
