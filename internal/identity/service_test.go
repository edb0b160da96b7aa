package identity_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

var ctx = context.Background()

// clock is a settable time source for expiry tests.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newService(t testing.TB) (*identity.Service, *sqlstore.DB, *clock) {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	s := identity.NewService(db)
	s.Now = c.Now
	return s, db, c
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code || err == nil {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

func TestBootstrap(t *testing.T) {
	t.Run("Generated", func(t *testing.T) {
		s, db, _ := newService(t)
		res, err := s.Bootstrap(ctx, "")
		if err != nil || !res.Created || res.Secret == "" {
			t.Fatalf("first bootstrap = %+v, %v", res, err)
		}
		again, err := s.Bootstrap(ctx, "")
		if err != nil || again.Created || again.Secret != "" || again.Org.ID != res.Org.ID {
			t.Fatalf("second bootstrap = %+v, %v; want nothing new", again, err)
		}
		c, err := s.Authenticate(ctx, res.Secret)
		if err != nil || !c.Has(identity.ScopeRunnersWrite) || !c.Has(identity.ScopeAdmin) {
			t.Fatalf("admin key authenticates as %+v, %v", c, err)
		}
		all, err := db.FindTokens(ctx, identity.TokenFilter{OrgID: res.Org.ID, IncludeRevoked: true})
		if err != nil || len(all) != 1 {
			t.Fatalf("tokens after two bootstraps: %d, %v; want 1", len(all), err)
		}
	})
	t.Run("SuppliedAndRotated", func(t *testing.T) {
		s, _, _ := newService(t)
		first, second := "first-value-0123456789", "second-value-0123456789"
		if res, err := s.Bootstrap(ctx, first); err != nil || !res.Created || res.Secret != "" {
			t.Fatalf("bootstrap with value = %+v, %v", res, err)
		}
		if _, err := s.Authenticate(ctx, first); err != nil {
			t.Fatalf("supplied value does not authenticate: %v", err)
		}
		res, err := s.Bootstrap(ctx, second)
		if err != nil || !res.Rotated || res.Created {
			t.Fatalf("bootstrap with new value = %+v, %v; want rotated", res, err)
		}
		_, err = s.Authenticate(ctx, first)
		wantCode(t, err, apperr.CodeUnauthenticated)
		if _, err := s.Authenticate(ctx, second); err != nil {
			t.Fatalf("rotated value does not authenticate: %v", err)
		}
	})
	t.Run("ErrTooShort", func(t *testing.T) {
		s, _, _ := newService(t)
		_, err := s.Bootstrap(ctx, "short")
		wantCode(t, err, apperr.CodeInvalid)
	})
}

func adminContext(t testing.TB, s *identity.Service) context.Context {
	t.Helper()
	res, err := s.Bootstrap(ctx, "admin-value-0123456789")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c, err := s.Authenticate(ctx, "admin-value-0123456789")
	if err != nil {
		t.Fatalf("authenticate admin: %v (org %s)", err, res.Org.ID)
	}
	return identity.NewContext(ctx, c)
}

func TestAPIKeys(t *testing.T) {
	s, _, clk := newService(t)
	admin := adminContext(t, s)
	exp := clk.t.Add(time.Hour)
	tok, secret, err := s.CreateAPIKey(admin, identity.CreateAPIKeyInput{Name: "ci", Scopes: []string{"runners:read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	c, err := s.Authenticate(ctx, secret)
	if err != nil || c.Has(identity.ScopeRunnersWrite) || !c.Has(identity.ScopeRunnersRead) || c.Subject.ID != tok.ID {
		t.Fatalf("key authenticates as %+v, %v", c, err)
	}
	// A key without admin cannot manage keys.
	_, _, err = s.CreateAPIKey(identity.NewContext(ctx, c), identity.CreateAPIKeyInput{Name: "x", Scopes: []string{"admin"}})
	wantCode(t, err, apperr.CodePermissionDenied)

	clk.t = exp
	_, err = s.Authenticate(ctx, secret)
	wantCode(t, err, apperr.CodeUnauthenticated)

	tests := []struct {
		name string
		in   identity.CreateAPIKeyInput
	}{
		{"ErrNoName", identity.CreateAPIKeyInput{Scopes: []string{"admin"}}},
		{"ErrNoScopes", identity.CreateAPIKeyInput{Name: "x"}},
		{"ErrUnknownScope", identity.CreateAPIKeyInput{Name: "x", Scopes: []string{"runners:delete"}}},
		{"ErrPastExpiry", identity.CreateAPIKeyInput{Name: "x", Scopes: []string{"admin"}, ExpiresAt: &time.Time{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.CreateAPIKey(admin, tt.in)
			wantCode(t, err, apperr.CodeInvalid)
		})
	}
}

func TestRevoke(t *testing.T) {
	s, _, _ := newService(t)
	admin := adminContext(t, s)
	tok, secret, err := s.CreateAPIKey(admin, identity.CreateAPIKeyInput{Name: "ci", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	if _, err := s.RevokeToken(admin, tok.ID, false); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err = s.Authenticate(ctx, secret)
	wantCode(t, err, apperr.CodeUnauthenticated)
	_, err = s.RevokeToken(admin, "not-a-uuid", false)
	wantCode(t, err, apperr.CodeInvalid)
	_, err = s.RevokeToken(admin, "00000000-0000-4000-8000-000000000000", false)
	wantCode(t, err, apperr.CodeNotFound)
}

// TestRevoke_LockOut checks that no one revokes their own key or the last
// admin key by mistake: both are failed_precondition unless forced, and a
// restart with RUNYARD_BOOTSTRAP_TOKEN brings the admin key back.
func TestRevoke_LockOut(t *testing.T) {
	const value = "admin-value-0123456789"
	s, db, _ := newService(t)
	bootstrap := adminContext(t, s)
	bc, _ := identity.FromContext(bootstrap)
	second, secondSecret, err := s.CreateAPIKey(bootstrap, identity.CreateAPIKeyInput{Name: "second admin", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	sc, err := s.Authenticate(ctx, secondSecret)
	if err != nil {
		t.Fatalf("authenticate second admin: %v", err)
	}
	other := identity.NewContext(ctx, sc)
	reader, _, err := s.CreateAPIKey(bootstrap, identity.CreateAPIKeyInput{Name: "reader", Scopes: []string{"runners:read"}})
	if err != nil {
		t.Fatalf("create reader: %v", err)
	}

	wantRefused := func(t *testing.T, err error, mention ...string) {
		t.Helper()
		wantCode(t, err, apperr.CodeFailedPrecondition)
		for _, m := range append(mention, "--force") {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error %q does not mention %q", err, m)
			}
		}
	}
	// The caller's own key, while another admin key remains.
	_, err = s.RevokeToken(bootstrap, bc.TokenID, false)
	wantRefused(t, err, "the key making this call")
	if _, err := s.Authenticate(ctx, value); err != nil {
		t.Fatalf("a refused revocation revoked the key: %v", err)
	}
	// A non-admin key is fine to revoke; then the second admin revokes the
	// bootstrap key, which leaves itself the last one.
	if _, err := s.RevokeToken(other, reader.ID, false); err != nil {
		t.Fatalf("revoke a reader key: %v", err)
	}
	if _, err := s.RevokeToken(other, bc.TokenID, false); err != nil {
		t.Fatalf("revoke another admin key while one remains: %v", err)
	}
	_, err = s.Authenticate(ctx, value)
	wantCode(t, err, apperr.CodeUnauthenticated)
	// The last admin key, revoked by itself: refused for being the caller's
	// own; the same by another caller (a context without its token) would be
	// refused as the last one.
	_, err = s.RevokeToken(other, second.ID, false)
	wantRefused(t, err, "the key making this call")
	elsewhere := identity.NewContext(ctx, &identity.Caller{OrgID: sc.OrgID, Subject: sc.Subject, Scopes: sc.Scopes})
	_, err = s.RevokeToken(elsewhere, second.ID, false)
	wantRefused(t, err, "last active admin key", "RUNYARD_BOOTSTRAP_TOKEN")
	// Forced, it goes: the organization has no admin key left.
	if _, err := s.RevokeToken(other, second.ID, true); err != nil {
		t.Fatalf("forced revocation of the last admin key: %v", err)
	}
	_, err = s.Authenticate(ctx, secondSecret)
	wantCode(t, err, apperr.CodeUnauthenticated)

	// A restart without a value cannot help, and says so.
	res, err := s.Bootstrap(ctx, "")
	if err != nil || !res.Revoked || res.Secret != "" {
		t.Fatalf("bootstrap without a value = %+v, %v; want the key reported revoked", res, err)
	}
	// A restart with the same value restores the revoked key, and a later
	// one with a new value rotates it as before.
	res, err = s.Bootstrap(ctx, value)
	if err != nil || !res.Restored || res.Rotated || res.Created {
		t.Fatalf("bootstrap with the value = %+v, %v; want restored", res, err)
	}
	c, err := s.Authenticate(ctx, value)
	if err != nil || !c.Has(identity.ScopeAdmin) {
		t.Fatalf("restored admin key authenticates as %+v, %v", c, err)
	}
	all, err := db.FindTokens(ctx, identity.TokenFilter{OrgID: c.OrgID})
	if err != nil || len(all) != 1 || all[0].ID != bc.TokenID {
		t.Fatalf("active keys after the restore: %d, %v; want the one bootstrap key", len(all), err)
	}
}

func TestExchange(t *testing.T) {
	s, db, clk := newService(t)
	admin := adminContext(t, s)
	rs := runners.NewService(db)
	rs.Now = clk.Now
	r, exchange, err := rs.Create(admin, runners.CreateInput{Name: "host-1", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create runner: %v", err)
	}
	access, err := s.Exchange(ctx, exchange)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	c, err := s.Authenticate(ctx, access)
	if err != nil || c.Subject.Principal != identity.PrincipalRunner || c.RunnerID != r.ID || c.Subject.ID != r.ID {
		t.Fatalf("runner token authenticates as %+v, %v", c, err)
	}
	if c.Has(identity.ScopeRunnersRead) {
		t.Fatal("a runner token holds user scopes")
	}
	_, err = s.Exchange(ctx, exchange)
	wantCode(t, err, apperr.CodeUnauthenticated)

	// An exchange token expires after 24 hours.
	fresh, err := rs.CreateToken(admin, r.ID)
	if err != nil {
		t.Fatalf("create exchange token: %v", err)
	}
	clk.t = clk.t.Add(identity.ExchangeTokenTTL)
	_, err = s.Exchange(ctx, fresh)
	wantCode(t, err, apperr.CodeUnauthenticated)
	_, err = s.Exchange(ctx, "ryd_ex_unknown")
	wantCode(t, err, apperr.CodeUnauthenticated)
	_, err = s.Exchange(ctx, "")
	wantCode(t, err, apperr.CodeInvalid)
}

// TestKeyCache: a cached API key never outlives its revocation in this
// process; on another replica it ends when the change notice reaches it
// (KeyChanged), and without one after the cache's lifetime: a minute while
// that replica receives the notices, five seconds while it may not.
func TestKeyCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		// notice says whether the other replica is told of the revocation.
		notice bool
		// listening is what the other replica's ChangesReach answers.
		listening bool
		// stale is how long the other replica accepts the revoked key
		// without a notice.
		stale time.Duration
	}{
		{name: "Notice", notice: true, listening: true},
		{name: "NoNotice", listening: true, stale: time.Minute},
		{name: "NotListening", listening: false, stale: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, clk := newService(t)
			admin := adminContext(t, s)
			key, secret, err := s.CreateAPIKey(admin, identity.CreateAPIKeyInput{Name: "ci", Scopes: []string{"runners:read"}})
			if err != nil {
				t.Fatalf("create key: %v", err)
			}
			replica := identity.NewService(db)
			replica.Now = clk.Now
			replica.ChangesReach = func() bool { return tc.listening }
			for _, svc := range []*identity.Service{s, replica} {
				if _, err := svc.Authenticate(ctx, secret); err != nil {
					t.Fatalf("authenticate: %v", err)
				}
			}
			if _, err := s.RevokeToken(admin, key.ID, false); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			_, err = s.Authenticate(ctx, secret)
			wantCode(t, err, apperr.CodeUnauthenticated)
			if tc.notice {
				replica.KeyChanged(key.ID)
			} else {
				clk.t = clk.t.Add(tc.stale - time.Millisecond)
				if _, err := replica.Authenticate(ctx, secret); err != nil {
					t.Fatalf("the other replica refuses the key before its cache entry expires: %v (is the key cached?)", err)
				}
				clk.t = clk.t.Add(time.Millisecond)
			}
			_, err = replica.Authenticate(ctx, secret)
			wantCode(t, err, apperr.CodeUnauthenticated)
		})
	}
}

// TestExchange_ExpiryBoundary checks the 24-hour lifetime of an exchange
// token to the second on the service's clock: one second before 24 hours it
// still works, at 24 hours it is refused as expired.
func TestExchange_ExpiryBoundary(t *testing.T) {
	s, db, clk := newService(t)
	admin := adminContext(t, s)
	rs := runners.NewService(db)
	rs.Now = clk.Now
	r, _, err := rs.Create(admin, runners.CreateInput{Name: "host-expiry", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create runner: %v", err)
	}
	issued := clk.t
	newToken := func() string {
		t.Helper()
		clk.t = issued
		x, err := rs.CreateToken(admin, r.ID)
		if err != nil {
			t.Fatalf("create exchange token: %v", err)
		}
		return x
	}

	valid, expired := newToken(), newToken()

	clk.t = issued.Add(24*time.Hour - time.Second)
	access, err := s.Exchange(ctx, valid)
	if err != nil {
		t.Fatalf("exchange at 24h-1s: %v, want a runner access token", err)
	}
	if c, err := s.Authenticate(ctx, access); err != nil || c.RunnerID != r.ID {
		t.Fatalf("the token exchanged at 24h-1s authenticates as %+v, %v", c, err)
	}

	clk.t = issued.Add(24 * time.Hour)
	_, err = s.Exchange(ctx, expired)
	wantCode(t, err, apperr.CodeUnauthenticated)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("exchange at 24h: %v, want it to say the token expired", err)
	}
}
