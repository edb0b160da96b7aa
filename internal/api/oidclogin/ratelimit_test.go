package oidclogin_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/testutil"
)

// TestLogin_RateLimited: a sign-in start beyond the per-address budget that
// password sign-ins share is refused with 429 and Retry-After, and recorded
// in the audit log as a failed sign-in with its reason, like a refused
// callback; the start that went to the provider is not recorded.
func TestLogin_RateLimited(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
		testutil.MustNoErr(t, err, "open")
		t.Cleanup(func() { st.Close() })
		testLoginRateLimited(t, st)
	})
	t.Run("Postgres", func(t *testing.T) {
		st, err := postgres.Open(ctx, testutil.PostgresURL(t))
		testutil.MustNoErr(t, err, "open")
		t.Cleanup(func() { st.Close() })
		testLoginRateLimited(t, st)
	})
}

func testLoginRateLimited(t *testing.T, st store.Store) {
	e := newEnv(t, st)
	limits := sessions.NewService(st, nil, nil)
	limits.Limits.PerIPBurst, limits.Limits.PerIPInterval = 1, time.Hour
	e.use(t, e.config(), func(h *oidclogin.Handler) { oidclogin.SetLimit(h, limits.AllowSignIn) })

	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.rs.URL+sso.LoginPath, nil)
		req.Header.Set("User-Agent", "rate-limit-test")
		resp, err := c.Do(req)
		testutil.MustNoErr(t, err, "login")
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusFound {
		t.Fatalf("first start: %d, want 302 to the provider", resp.StatusCode)
	}
	resp := get()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second start: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	es, err := st.FindAudit(ctx, audit.Filter{OrgID: e.org.ID, Methods: []string{oidclogin.MethodLogin}})
	testutil.MustNoErr(t, err, "audit")
	if len(es) != 1 {
		t.Fatalf("%d audit entries of the login route, want the refused start alone: %+v", len(es), es)
	}
	a := es[0]
	if a.Surface != oidclogin.SurfaceAuth || a.ClientIP != "127.0.0.1" || a.UserAgent != "rate-limit-test" || a.ActorID != "" ||
		!strings.HasPrefix(a.Outcome, "resource_exhausted: failed sign-in: ") || !strings.Contains(a.Outcome, "too many sign-in attempts") {
		t.Errorf("audit entry of the rate-limited start: %+v", a)
	}
}
