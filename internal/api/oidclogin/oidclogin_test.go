package oidclogin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/testutil"
	"github.com/runyard/runyard/internal/users"
)

var ctx = context.Background()

const clientSecret = "s3cret-of-the-runyard-client"

// storeUsers provisions with users.Service over the real store.
type storeUsers struct{ st store.Store }

func (u storeUsers) Provision(ctx context.Context, email, name, orgID string, role identity.Role) (*users.User, error) {
	nu, _, err := (&users.Service{Store: u.st, Now: time.Now}).Provision(ctx, email, name, orgID, role)
	return nu, err
}

// fakeSessions records the sessions issued and sets a cookie.
type fakeSessions struct {
	mu    sync.Mutex
	calls []string
}

func (s *fakeSessions) SignIn(w http.ResponseWriter, r *http.Request, userID, orgID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, userID+"@"+orgID)
	http.SetCookie(w, &http.Cookie{Name: "runyard_session", Value: "session-of-" + userID, Path: "/", HttpOnly: true})
	return nil
}

func (s *fakeSessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// env is one run: a store, the default organization, a provider, and
// runyard's sign-in routes on loopback.
type env struct {
	st       store.Store
	org      *identity.Organization
	op       *testutil.OP
	rs       *httptest.Server
	sessions *fakeSessions
	handler  atomic.Pointer[oidclogin.Handler]
	logs     *bytes.Buffer
	logMu    sync.Mutex
}

var opUsers = []testutil.OPUser{
	{ID: "u-ann", Username: "ann", Password: "pw-ann", Email: "Ann@Example.com", EmailVerified: true, Name: "Ann A"},
	{ID: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob B",
		Claims: map[string]any{"groups": []string{"eng", "runyard-admins"}}},
	{ID: "u-dan", Username: "dan", Password: "pw-dan", Email: "dan@example.com", EmailVerified: true},
	{ID: "u-eve", Username: "eve", Password: "pw-eve", Email: "eve@elsewhere.org", EmailVerified: true},
	// The provider leaves out email_verified when false; this one says it.
	{ID: "u-una", Username: "una", Password: "pw-una", Email: "una@example.com", Claims: map[string]any{"email_verified": false}},
}

func userNamed(name string) testutil.OPUser {
	for _, u := range opUsers {
		if u.Username == name {
			return u
		}
	}
	panic(name)
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	e := &env{st: st, sessions: &fakeSessions{}, logs: &bytes.Buffer{}}
	res, err := identity.NewService(st).Bootstrap(ctx, "")
	testutil.MustNoErr(t, err, "bootstrap")
	e.org = res.Org
	e.rs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux := http.NewServeMux()
		e.handler.Load().Mount(mux)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(e.rs.Close)
	cb := []string{e.rs.URL + sso.CallbackPath}
	e.op = testutil.StartOP(t, []testutil.OPClient{
		{ID: "runyard", Secret: clientSecret, RedirectURIs: cb},
		{ID: "runyard-expired", Secret: clientSecret, RedirectURIs: cb, IDTokenLifetime: -time.Minute},
		{ID: "another-app", Secret: "secret-of-another-app", RedirectURIs: cb},
	}, opUsers)
	return e
}

// config is the provider configuration the cases start from.
func (e *env) config() sso.Config {
	return sso.Config{Issuer: e.op.Issuer, ClientID: "runyard", ClientSecret: clientSecret,
		DefaultRole: identity.RoleMember, Organization: identity.DefaultOrganization}
}

func (e *env) use(t *testing.T, cfg sso.Config, opts ...func(*oidclogin.Handler)) *oidclogin.Handler {
	t.Helper()
	testutil.MustNoErr(t, cfg.Validate(), "config")
	h := oidclogin.New(cfg, oidclogin.Deps{
		States: e.st, Users: storeUsers{e.st}, Sessions: e.sessions, Orgs: e.st, Members: e.st, Audit: audit.NewService(e.st),
		PublicURL: func() string { return e.rs.URL },
		Log:       slog.New(slog.NewTextHandler(lockedWriter{&e.logMu, e.logs}, nil)),
	})
	h.RetryEvery = 10 * time.Millisecond
	for _, o := range opts {
		o(h)
	}
	e.handler.Store(h)
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// browser is an HTTP client with a cookie jar that follows redirects
// until runyard sends it past the sign-in routes.
type browser struct {
	c        *http.Client
	rs       *url.URL
	callback *url.URL
	// binding are the cookies the browser had when it went to the callback.
	binding        []*http.Cookie
	stopAtCallback bool
	accept         string
}

func newBrowser(t *testing.T, e *env) *browser { return newBrowserOf(t, e.rs.URL) }

// newBrowserOf is a browser of the runyard server at serverURL.
func newBrowserOf(t *testing.T, serverURL string) *browser {
	jar, err := cookiejar.New(nil)
	testutil.MustNoErr(t, err, "jar")
	rs, _ := url.Parse(serverURL)
	b := &browser{rs: rs}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return http.ErrUseLastResponse
		}
		if req.URL.Host == rs.Host && req.URL.Path == sso.CallbackPath {
			b.callback = req.URL
			b.binding = jar.Cookies(req.URL)
			if b.stopAtCallback {
				return http.ErrUseLastResponse
			}
		}
		if req.URL.Host == rs.Host && !strings.HasPrefix(req.URL.Path, "/auth/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *browser) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if b.accept != "" {
		req.Header.Set("Accept", b.accept)
	}
	resp, err := b.c.Do(req)
	testutil.MustNoErr(t, err, "GET %s", u)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signIn starts at runyard's login route, signs in at the provider's
// login page as user, and returns runyard's last answer.
func (b *browser) signIn(t *testing.T, e *env, user testutil.OPUser, returnTo string) (*http.Response, string) {
	t.Helper()
	return b.signInAt(t, e.op, user, returnTo)
}

// signInAt signs in at the provider op.
func (b *browser) signInAt(t *testing.T, op *testutil.OP, user testutil.OPUser, returnTo string) (*http.Response, string) {
	t.Helper()
	u := b.rs.String() + sso.LoginPath
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	resp, body := b.get(t, u)
	if resp.Request.URL.Path != "/login" || resp.StatusCode != http.StatusOK {
		return resp, body
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, err := b.c.PostForm(op.Issuer+"/login", url.Values{"id": {id}, "username": {user.Username}, "password": {user.Password}})
	testutil.MustNoErr(t, err, "submit the provider's login")
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// tamperIDToken changes the email in the ID token of the provider's token
// answers, leaving its signature as it was.
func tamperIDToken(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.URL.Path != "/oauth/token" {
		next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
		if tok, ok := body["id_token"].(string); ok {
			parts := strings.Split(tok, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = bytes.Replace(payload, []byte("Ann@Example.com"), []byte("Adm@Example.com"), 1)
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			body["id_token"] = strings.Join(parts, ".")
		}
	}
	out, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Code)
	w.Write(out)
}

// asClient makes runyard's requests to the provider those of another client
// registered there (a code and tokens for another application: the ID token
// is for that audience).
func asClient(id, secret string) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		switch r.URL.Path {
		case "/authorize":
			q := r.URL.Query()
			q.Set("client_id", id)
			r.URL.RawQuery = q.Encode()
		case "/oauth/token":
			r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		next.ServeHTTP(w, r)
	}
}

// setNonce changes (or, with "", removes) the nonce runyard sends to the
// provider's authorization endpoint.
func setNonce(nonce string) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/authorize" {
			q := r.URL.Query()
			if nonce == "" {
				q.Del("nonce")
			} else {
				q.Set("nonce", nonce)
			}
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	}
}

// requirePKCE checks at the provider that runyard asks with an S256 code
// challenge, state and nonce.
func requirePKCE(t *testing.T) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/authorize" {
			q := r.URL.Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("response_type") != "code" {
				t.Errorf("authorization request %v lacks PKCE S256, state or nonce", q)
			}
		}
		if r.URL.Path == "/oauth/token" {
			r.ParseForm()
			if r.PostForm.Get("code_verifier") == "" {
				t.Errorf("token request without code_verifier")
			}
		}
		next.ServeHTTP(w, r)
	}
}

func TestSignIn_SQLite(t *testing.T) {
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	testutil.MustNoErr(t, err, "open")
	t.Cleanup(func() { st.Close() })
	testSignIn(t, st)
}

func TestSignIn_Postgres(t *testing.T) {
	st, err := postgres.Open(ctx, testutil.PostgresURL(t))
	testutil.MustNoErr(t, err, "open")
	t.Cleanup(func() { st.Close() })
	testSignIn(t, st)
}

func testSignIn(t *testing.T, st store.Store) {
	e := newEnv(t, st)
	type outcome struct {
		status   int
		location string
		role     identity.Role
		reason   string // in the answer and the audit entry of a refusal
	}
	ok := func(location string, role identity.Role) outcome {
		return outcome{status: http.StatusSeeOther, location: location, role: role}
	}
	refused := func(status int, reason string) outcome { return outcome{status: status, reason: reason} }
	tests := []struct {
		name     string
		user     string
		returnTo string
		cfg      func(*sso.Config)
		hook     func(http.ResponseWriter, *http.Request, http.Handler)
		// setup runs before the sign-in.
		setup func(t *testing.T, e *env)
		// action: "replay" sends the provider's answer to the callback a
		// second time after a sign-in, with the browser's cookie put back;
		// "otherBrowser" stops at the provider's answer and lets a fresh
		// browser bring it to the callback; "late" brings it after the
		// login state's lifetime.
		action string
		want   outcome
	}{
		{name: "FirstSignInProvisions", user: "ann", hook: requirePKCE(t), want: ok("/", identity.RoleMember)},
		{name: "SecondSignInReusesUser", user: "ann", want: ok("/", identity.RoleMember)},
		{name: "RoleGivenLaterKept", user: "ann", setup: func(t *testing.T, e *env) {
			u, err := e.st.FindUserByEmail(ctx, "ann@example.com")
			testutil.MustNoErr(t, err, "find ann")
			testutil.MustNoErr(t, e.st.SetMembershipRole(ctx, e.org.ID, u.ID, identity.RoleRunnersAdmin), "promote ann")
		}, want: ok("/", identity.RoleRunnersAdmin)},
		{name: "ReturnPath", user: "ann", returnTo: "/environments?id=1", want: ok("/environments?id=1", identity.RoleRunnersAdmin)},
		{name: "ReturnPathElsewhereIgnored", user: "ann", returnTo: "//evil.example/x", want: ok("/", identity.RoleRunnersAdmin)},
		{name: "RoleClaimMapped", user: "bob", cfg: func(c *sso.Config) {
			c.RoleClaim = "groups"
			c.RoleMap = []sso.RoleMapping{{Value: "runyard-auditors", Role: identity.RoleAuditReader}, {Value: "runyard-admins", Role: identity.RoleAdmin}}
		}, want: ok("/", identity.RoleAdmin)},
		{name: "RoleFollowsClaim", user: "bob", setup: func(t *testing.T, e *env) {
			// Another admin, so that bob may be moved off admin.
			u, err := e.st.FindUserByEmail(ctx, "ann@example.com")
			testutil.MustNoErr(t, err, "find ann")
			testutil.MustNoErr(t, e.st.SetMembershipRole(ctx, e.org.ID, u.ID, identity.RoleAdmin), "promote ann")
		}, cfg: func(c *sso.Config) {
			c.RoleClaim = "groups"
			c.RoleMap = []sso.RoleMapping{{Value: "runyard-admins", Role: identity.RoleRunnersAdmin}}
		}, want: ok("/", identity.RoleRunnersAdmin)},
		{name: "RoleClaimUnmappedNoDefault", user: "ann", cfg: func(c *sso.Config) {
			c.RoleClaim, c.DefaultRole = "groups", ""
			c.RoleMap = []sso.RoleMapping{{Value: "runyard-admins", Role: identity.RoleAdmin}}
		}, want: refused(http.StatusForbidden, `no role: claim "groups"`)},
		{name: "DomainNotAllowed", user: "eve", cfg: func(c *sso.Config) { c.AllowedDomains = []string{"example.com"} },
			want: refused(http.StatusForbidden, `email domain "elsewhere.org" may not sign in here`)},
		{name: "EmailNotVerified", user: "una", want: refused(http.StatusForbidden, "not verified")},
		{name: "TamperedIDToken", user: "ann", hook: tamperIDToken,
			want: refused(http.StatusUnauthorized, "signature does not verify")},
		{name: "WrongAudience", user: "ann", hook: asClient("another-app", "secret-of-another-app"),
			want: refused(http.StatusUnauthorized, "issued for another client")},
		{name: "ExpiredIDToken", user: "ann", cfg: func(c *sso.Config) { c.ClientID = "runyard-expired" },
			want: refused(http.StatusUnauthorized, "has expired")},
		{name: "NonceMismatch", user: "ann", hook: setNonce("not-the-nonce-runyard-sent"),
			want: refused(http.StatusUnauthorized, "nonce")},
		{name: "NonceMissing", user: "ann", hook: setNonce(""),
			want: refused(http.StatusUnauthorized, "nonce")},
		{name: "ReplayedState", user: "ann", action: "replay", want: refused(http.StatusUnauthorized, "already used")},
		{name: "StateFromAnotherBrowser", user: "ann", action: "otherBrowser", want: refused(http.StatusUnauthorized, "started in another browser")},
		{name: "StateExpired", user: "ann", action: "late", want: refused(http.StatusUnauthorized, "took longer than")},
		{name: "DisabledAccount", user: "dan", setup: func(t *testing.T, e *env) {
			u, err := storeUsers{e.st}.Provision(ctx, "dan@example.com", "Dan", e.org.ID, identity.RoleMember)
			testutil.MustNoErr(t, err, "create dan")
			_, err = e.st.UpdateUser(ctx, u.ID, func(u *users.User) error {
				now := time.Now().UTC().Truncate(time.Microsecond)
				u.DisabledAt = &now
				return nil
			})
			testutil.MustNoErr(t, err, "disable dan")
		}, want: refused(http.StatusUnauthorized, "disabled")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.config()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e.use(t, cfg)
			e.op.SetHook(tt.hook)
			defer e.op.SetHook(nil)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			usersBefore := countUsers(t, e.st)
			sessionsBefore := e.sessions.count()
			auditBefore := auditEntries(t, e)

			b := newBrowser(t, e)
			b.stopAtCallback = tt.action == "otherBrowser" || tt.action == "late"
			resp, body := b.signIn(t, e, userNamed(tt.user), tt.returnTo)
			switch tt.action {
			case "replay":
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("first sign-in: %d %s", resp.StatusCode, body)
				}
				sessionsBefore = e.sessions.count()
				auditBefore = auditEntries(t, e)
				b.c.Jar.SetCookies(b.callback, b.binding)
				resp, body = b.replay(t, true)
			case "late":
				e.use(t, cfg, func(h *oidclogin.Handler) {
					h.Now = func() time.Time { return time.Now().Add(sso.StateLifetime + time.Minute) }
				})
				resp, body = b.replay(t, false)
			case "otherBrowser":
				other := newBrowser(t, e)
				other.callback = b.callback
				resp, body = other.replay(t, false)
			}
			newAudit := auditEntries(t, e)[len(auditBefore):]
			if resp.StatusCode != tt.want.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.want.status, body)
			}
			for _, a := range newAudit {
				for _, secret := range []string{clientSecret, "eyJ"} {
					if strings.Contains(a.Outcome+a.ObjectID+a.Method+a.UserAgent, secret) {
						t.Errorf("audit entry %+v carries a secret or token", a)
					}
				}
			}
			if len(newAudit) != 1 {
				t.Fatalf("%d audit entries, want 1: %+v", len(newAudit), newAudit)
			}
			a := newAudit[0]
			if a.Surface != oidclogin.SurfaceAuth || a.Method != oidclogin.MethodCallback || a.OrgID != e.org.ID {
				t.Errorf("audit entry %+v", a)
			}
			if tt.want.reason != "" {
				if !strings.Contains(html.UnescapeString(body), tt.want.reason) {
					t.Errorf("answer %q does not say %q", body, tt.want.reason)
				}
				if !strings.Contains(a.Outcome, "failed sign-in: ") || !strings.Contains(a.Outcome, tt.want.reason) {
					t.Errorf("audit outcome %q, want a failed sign-in saying %q", a.Outcome, tt.want.reason)
				}
				if got := countUsers(t, e.st); got != usersBefore {
					t.Errorf("%d users after a refusal, want %d", got, usersBefore)
				}
				if got := e.sessions.count(); got != sessionsBefore {
					t.Errorf("%d sessions after a refusal, want %d", got, sessionsBefore)
				}
				return
			}
			if got := resp.Header.Get("Location"); got != tt.want.location {
				t.Errorf("redirect to %q, want %q", got, tt.want.location)
			}
			if e.sessions.count() != sessionsBefore+1 {
				t.Fatalf("no session issued")
			}
			email := strings.ToLower(userNamed(tt.user).Email)
			u, err := e.st.FindUserByEmail(ctx, email)
			testutil.MustNoErr(t, err, "find the signed-in user")
			if a.Outcome != audit.OutcomeOK || a.ActorPrincipal != identity.PrincipalUser || a.ActorID != u.ID || a.ObjectID != u.ID {
				t.Errorf("audit entry of the sign-in %+v", a)
			}
			ms, err := e.st.FindMemberships(ctx, e.org.ID, u.ID)
			testutil.MustNoErr(t, err, "memberships")
			if len(ms) != 1 || ms[0].Role != tt.want.role {
				t.Errorf("memberships %+v, want one with role %s", ms, tt.want.role)
			}
			var cookie bool
			for _, c := range resp.Cookies() {
				cookie = cookie || (c.Name == "runyard_session" && c.HttpOnly)
			}
			if !cookie {
				t.Errorf("no session cookie in %v", resp.Header["Set-Cookie"])
			}
		})
	}
	// One account per person however often they sign in.
	ann, err := e.st.FindUsers(ctx, users.UserFilter{})
	testutil.MustNoErr(t, err, "users")
	n := 0
	for _, u := range ann {
		if u.Email == "ann@example.com" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d accounts of ann@example.com, want 1", n)
	}
}

// replay sends the provider's last answer to runyard's callback again.
func (b *browser) replay(t *testing.T, json bool) (*http.Response, string) {
	t.Helper()
	if b.callback == nil {
		t.Fatal("the browser never reached the callback")
	}
	b.accept = ""
	if json {
		b.accept = "application/json"
	}
	return b.get(t, b.callback.String())
}

func countUsers(t *testing.T, st store.Store) int {
	t.Helper()
	us, err := st.FindUsers(ctx, users.UserFilter{})
	testutil.MustNoErr(t, err, "users")
	return len(us)
}

func auditEntries(t *testing.T, e *env) []*audit.Entry {
	t.Helper()
	es, err := e.st.FindAudit(ctx, audit.Filter{OrgID: e.org.ID, Methods: []string{oidclogin.MethodCallback}})
	testutil.MustNoErr(t, err, "audit")
	return es
}

// TestSignIn_ProviderDown: the routes answer while the provider is down
// (discovery is retried, and the log says so), and sign-in works once it is
// up, without a restart. No secret reaches the log.
func TestSignIn_ProviderDown(t *testing.T) {
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	testutil.MustNoErr(t, err, "open")
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, st)
	var down atomic.Bool
	down.Store(true)
	e.op.SetHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
	h := e.use(t, e.config())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.Start(runCtx)

	b := newBrowser(t, e)
	b.accept = "application/json"
	resp, body := b.get(t, e.rs.URL+sso.LoginPath)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be reached") || !strings.Contains(body, `"code":"unavailable"`) {
		t.Fatalf("sign-in while the provider is down: %d %s", resp.StatusCode, body)
	}
	waitLog(t, e, "OpenID provider unreachable")

	down.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := newBrowser(t, e)
		resp, body = b.signIn(t, e, userNamed("ann"), "")
		if resp.StatusCode == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in after the provider came back: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitLog(t, e, "single sign-on is available")
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if strings.Contains(e.logs.String(), clientSecret) {
		t.Errorf("the log shows the client secret:\n%s", e.logs)
	}
}

func waitLog(t *testing.T, e *env, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.logMu.Lock()
		logs := e.logs.String()
		e.logMu.Unlock()
		if strings.Contains(logs, text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", text, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogin_Redirect: the login route sends the browser to the provider's
// authorization endpoint with the code flow, PKCE S256, a fresh state and
// nonce and the registered callback, and binds the state with a short
// HttpOnly cookie.
func TestLogin_Redirect(t *testing.T) {
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	testutil.MustNoErr(t, err, "open")
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, st)
	e.use(t, e.config())
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	seen := map[string]bool{}
	for range 2 {
		resp, err := c.Get(e.rs.URL + sso.LoginPath + "?return_to=/x")
		testutil.MustNoErr(t, err, "login")
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		testutil.MustNoErr(t, err, "location")
		q := loc.Query()
		if got, want := loc.Scheme+"://"+loc.Host+loc.Path, e.op.Issuer+"/authorize"; got != want {
			t.Errorf("redirect to %s, want %s", got, want)
		}
		for k, want := range map[string]string{
			"client_id": "runyard", "response_type": "code", "code_challenge_method": "S256",
			"redirect_uri": e.rs.URL + sso.CallbackPath, "scope": "openid email profile",
		} {
			if q.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, q.Get(k), want)
			}
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if v := q.Get(k); len(v) < 40 || seen[v] {
				t.Errorf("%s %q is short or repeated", k, v)
			} else {
				seen[v] = true
			}
		}
		cookies := resp.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("cookies %v", resp.Header["Set-Cookie"])
		}
		ck := cookies[0]
		if !strings.HasPrefix(ck.Name, "runyard_oidc_") || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/auth/oidc/" || ck.MaxAge != 600 {
			t.Errorf("binding cookie %+v", ck)
		}
		if strings.Contains(resp.Header.Get("Location"), ck.Value) {
			t.Errorf("the cookie's value travels to the provider")
		}
	}
}
