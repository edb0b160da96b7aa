package authhttp_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// TestAuth_ChangePasswordEndsOtherSessions: a user who changes their own
// password stays signed in in the browser they did it in, and every other
// session of theirs ends (whoever else knew the old one is out); another
// user's session is untouched, and the new password signs in.
func TestAuth_ChangePasswordEndsOtherSessions(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		org := defaultOrg(t, st)
		mustUser(t, st, "ada@example.com", org, "member")
		mustUser(t, st, "bob@example.com", org, "member")
		here, laptop, phone, bob := &browser{t: t, url: ts.URL}, &browser{t: t, url: ts.URL}, &browser{t: t, url: ts.URL}, &browser{t: t, url: ts.URL}
		for _, b := range []*browser{here, laptop, phone} {
			b.password("ada@example.com", password).want(t, http.StatusOK)
		}
		bob.password("bob@example.com", password).want(t, http.StatusOK)

		const fresh = "a-new-password-4b1d"
		here.do(http.MethodPost, "/runyard.v1.UserAdminService/ChangePassword",
			fmt.Sprintf(`{"currentPassword":%q,"newPassword":%q}`, password, fresh), true).want(t, http.StatusOK)
		here.identity().want(t, http.StatusOK)
		laptop.identity().want(t, http.StatusUnauthorized)
		phone.identity().want(t, http.StatusUnauthorized)
		bob.identity().want(t, http.StatusOK)
		(&browser{t: t, url: ts.URL}).password("ada@example.com", password).want(t, http.StatusUnauthorized)
		laptop.password("ada@example.com", fresh).want(t, http.StatusOK)
		laptop.identity().want(t, http.StatusOK)
		here.identity().want(t, http.StatusOK)
	})
}

// TestAuth_OIDCLoginRateLimit: starting single sign-on spends the same
// per-IP budget as password sign-in: once it is spent, GET
// /auth/oidc/login answers 429 with Retry-After (storing no state), and a
// password sign-in from that address is refused too.
func TestAuth_OIDCLoginRateLimit(t *testing.T) {
	op := testutil.StartOP(t, []testutil.OPClient{{ID: "runyard", Secret: "s3cret-of-the-client"}}, nil)
	opts := testutil.Options{
		SignInLimits: sessions.Limits{PerIPBurst: 3, PerIPInterval: time.Hour},
		SSO:          sso.Config{Issuer: op.Issuer, ClientID: "runyard", ClientSecret: "s3cret-of-the-client", DefaultRole: identity.RoleMember},
	}
	forEachBackend(t, opts, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		b := &browser{t: t, url: ts.URL}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		login := func() *http.Response {
			t.Helper()
			req, err := http.NewRequest(http.MethodGet, ts.URL+sso.LoginPath, nil)
			testutil.MustNoErr(t, err, "request")
			req.Header.Set("Accept", "application/json")
			res, err := client.Do(req)
			testutil.MustNoErr(t, err, "GET %s", sso.LoginPath)
			res.Body.Close()
			return res
		}
		for i := range 2 {
			// Discovery may take a moment after the server starts: a 503
			// is not a refusal of the rate, and spends an attempt too.
			if res := login(); res.StatusCode != http.StatusFound && res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("login %d: status %d, want a redirect to the provider", i, res.StatusCode)
			}
		}
		b.password("nobody@example.com", "whatever it is").want(t, http.StatusUnauthorized)
		res := login()
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
			t.Fatalf("login over the budget: status %d, Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
		}
		b.password("nobody@example.com", "whatever it is").want(t, http.StatusTooManyRequests, "too many sign-in attempts")
	})
}
