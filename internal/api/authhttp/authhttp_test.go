package authhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/api/authhttp"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
	"github.com/runyard/runyard/internal/users"
)

const password = "correct horse battery staple"

// forEachBackend runs fn against a server on SQLite and on PostgreSQL.
func forEachBackend(t *testing.T, opts testutil.Options, fn func(t *testing.T, ts *testutil.TestServer, st store.Store)) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			ts := testutil.StartServerWith(t, b, opts)
			fn(t, ts, ts.OpenStore(t))
		})
	}
}

// mustUser creates a user with password and the memberships given as
// orgID, role pairs, through the store (the users service is not ours).
func mustUser(t *testing.T, st store.Store, email string, roles ...string) *users.User {
	t.Helper()
	h, err := users.HashPassword(password)
	testutil.MustNoErr(t, err, "hash password")
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &users.User{ID: uuid.NewString(), Email: email, PasswordHash: h, CreatedAt: now, UpdatedAt: now}
	testutil.MustNoErr(t, st.CreateUser(context.Background(), u), "create user")
	for i := 0; i+1 < len(roles); i += 2 {
		m := &users.Membership{OrgID: roles[i], UserID: u.ID, Role: identity.Role(roles[i+1]), CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
		testutil.MustNoErr(t, st.CreateMembership(context.Background(), m), "create membership")
	}
	return u
}

func defaultOrg(t *testing.T, st store.Store) string {
	t.Helper()
	org, err := st.FindOrganizationByName(context.Background(), identity.DefaultOrganization)
	testutil.MustNoErr(t, err, "find default organization")
	return org.ID
}

// browser is a client holding one session cookie and its CSRF token.
type browser struct {
	t      *testing.T
	url    string
	cookie string
	csrf   string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
	return m
}

func (a answer) want(t *testing.T, status int, mention ...string) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	for _, m := range mention {
		if !strings.Contains(string(a.body), m) {
			t.Errorf("answer %s does not mention %q", a.body, m)
		}
	}
	return a
}

// do sends a request with the browser's cookie; csrf sends its token.
func (b *browser) do(method, path, body string, csrf bool, header ...string) answer {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	testutil.MustNoErr(b.t, err, "request")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessions.CookieName, Value: b.cookie})
	}
	if csrf {
		req.Header.Set(sessions.CSRFHeader, b.csrf)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	testutil.MustNoErr(b.t, err, "%s %s", method, path)
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: out}
}

// signIn posts body to path and keeps the cookie and CSRF token it gets.
func (b *browser) signIn(path, body string) answer {
	b.t.Helper()
	a := b.do(http.MethodPost, path, body, false)
	if a.status != http.StatusOK {
		return a
	}
	res := http.Response{Header: a.header}
	for _, ck := range res.Cookies() {
		if ck.Name == sessions.CookieName {
			b.cookie = ck.Value
		}
	}
	b.csrf, _ = a.json(b.t)["csrfToken"].(string)
	return a
}

func (b *browser) password(email, pw string) answer {
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return b.signIn(authhttp.PathPassword, string(body))
}

// identity calls GetAuthenticatedIdentity over Connect with the cookie.
func (b *browser) identity() answer {
	return b.do(http.MethodPost, "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", "{}", true)
}

func TestAuth_PasswordSignIn(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		org := defaultOrg(t, st)
		u := mustUser(t, st, "ada@example.com", org, string(identity.RoleAdmin))
		mustUser(t, st, "loner@example.com")
		b := &browser{t: t, url: ts.URL}

		// Bad requests name the field; wrong credentials say one thing.
		for _, tc := range []struct {
			name, body string
			status     int
			mention    string
		}{
			{"NotJSON", `{"email":`, 400, "body"},
			{"NoEmail", `{"password":"x"}`, 400, "email"},
			{"NoPassword", `{"email":"ada@example.com"}`, 400, "password"},
			{"UnknownField", `{"email":"a","password":"b","otp":"1"}`, 400, "otp"},
			{"WrongPassword", `{"email":"ada@example.com","password":"wrong password!"}`, 401, "wrong email or password"},
			{"UnknownEmail", `{"email":"nobody@example.com","password":"wrong password!"}`, 401, "wrong email or password"},
			{"NoOrganization", `{"email":"loner@example.com","password":"` + password + `"}`, 412, "no organization"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b.do(http.MethodPost, authhttp.PathPassword, tc.body, false).want(t, tc.status, tc.mention)
			})
		}

		a := b.password("ADA@example.com", password).want(t, 200)
		res := http.Response{Header: a.header}
		var ck *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == sessions.CookieName {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/, not Secure on plain HTTP", ck)
		}
		got := a.json(t)
		if got["userId"] != u.ID || got["organizationId"] != org || got["role"] != "admin" || got["csrfToken"] == "" || got["expiresAt"] == "" {
			t.Fatalf("sign-in answer %v", got)
		}

		// Connect and REST through the cookie.
		id := b.identity().want(t, 200).json(t)
		if sub, _ := id["subject"].(map[string]any); sub["principal"] != "PRINCIPAL_USER" || sub["id"] != u.ID || id["organizationId"] != org {
			t.Fatalf("GetAuthenticatedIdentity = %v", id)
		}
		b.do(http.MethodGet, "/api/v1/orgs/default/runners", "", false).want(t, 200)
		sess := b.do(http.MethodGet, authhttp.PathSession, "", false).want(t, 200).json(t)
		if sess["csrfToken"] != b.csrf || sess["userId"] != u.ID {
			t.Fatalf("GET /auth/session = %v", sess)
		}
		(&browser{t: t, url: ts.URL}).do(http.MethodGet, authhttp.PathSession, "", false).want(t, 401)

		// An Authorization header wins over the cookie.
		admin := b.do(http.MethodPost, "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", "{}", false,
			"Authorization", "Bearer "+testutil.AdminToken).want(t, 200).json(t)
		if sub, _ := admin["subject"].(map[string]any); sub["principal"] != "PRINCIPAL_SERVICE_ACCOUNT" {
			t.Fatalf("with a header and a cookie: %v", admin)
		}

		// Writes need the CSRF token: refused without or with a wrong
		// one, and nothing changes.
		create := `{"name":"csrf-runner","provider":"RUNNER_PROVIDER_LINUX_HOST"}`
		b.do(http.MethodPost, "/gitpod.v1.RunnerService/CreateRunner", create, false).want(t, 403, "CSRF")
		b.do(http.MethodPost, "/gitpod.v1.RunnerService/CreateRunner", create, false, sessions.CSRFHeader, "forged").want(t, 403, "CSRF")
		b.do(http.MethodPost, "/api/v1/orgs/default/pods", `{}`, false).want(t, 403, "CSRF")
		list := b.do(http.MethodPost, "/gitpod.v1.RunnerService/ListRunners", "{}", true).want(t, 200).json(t)
		if runners, _ := list["runners"].([]any); len(runners) != 0 {
			t.Fatalf("a refused write created %v", runners)
		}
		created := b.do(http.MethodPost, "/gitpod.v1.RunnerService/CreateRunner", create, true).want(t, 200).json(t)
		if r, _ := created["runner"].(map[string]any); r["creator"].(map[string]any)["id"] != u.ID {
			t.Errorf("runner created through the cookie: creator %v, want the user", r["creator"])
		}

		// A new sign-in from the same browser rotates: the old cookie ends.
		old := *b
		b.password("ada@example.com", password).want(t, 200)
		if b.cookie == old.cookie || b.csrf == old.csrf {
			t.Fatal("sign-in did not issue a new secret")
		}
		old.identity().want(t, 401)
		b.identity().want(t, 200)

		// Sign-out needs the CSRF token, then the cookie is dead.
		b.do(http.MethodPost, authhttp.PathSignout, "", false).want(t, 403, "CSRF")
		b.identity().want(t, 200)
		out := b.do(http.MethodPost, authhttp.PathSignout, "", true).want(t, 204)
		if !strings.Contains(out.header.Get("Set-Cookie"), sessions.CookieName+"=;") {
			t.Errorf("sign-out did not clear the cookie: %q", out.header.Get("Set-Cookie"))
		}
		b.identity().want(t, 401)
		b.do(http.MethodGet, "/api/v1/orgs/default/runners", "", false).want(t, 401)

		// The audit log has each sign-in, the failures (with the email
		// typed), the sign-out, and no password anywhere.
		entries, err := st.FindAudit(context.Background(), audit.Filter{OrgID: org, Methods: []string{
			"POST " + authhttp.PathPassword, "POST " + authhttp.PathSignout}})
		testutil.MustNoErr(t, err, "find audit")
		var okIn, failed, signouts int
		for _, e := range entries {
			if strings.Contains(strings.ToLower(e.ObjectID+e.Method+e.UserAgent+e.Outcome+e.ActorID), strings.ToLower(password)) {
				t.Errorf("audit entry holds the password: %+v", e)
			}
			if e.ClientIP != "127.0.0.1" || e.UserAgent == "" || e.Surface != audit.SurfaceAuth {
				t.Errorf("entry without where from: %+v", e)
			}
			switch {
			case e.Method == "POST "+authhttp.PathPassword && e.Outcome == audit.OutcomeOK:
				okIn++
				if e.UserID != u.ID || e.ActorPrincipal != identity.PrincipalUser || e.ObjectType != sessions.ObjectTypeSession {
					t.Errorf("sign-in entry %+v", e)
				}
			case e.Method == "POST "+authhttp.PathPassword && e.Outcome == "unauthenticated":
				failed++
				if e.ObjectType != sessions.ObjectTypeEmail || e.ObjectID != "ada@example.com" {
					t.Errorf("failed sign-in entry %+v", e)
				}
			case e.Method == "POST "+authhttp.PathSignout && e.Outcome == audit.OutcomeOK:
				signouts++
			}
		}
		if okIn != 2 || failed != 1 || signouts != 1 {
			t.Errorf("audit: %d sign-ins, %d failed, %d sign-outs; want 2, 1, 1: %+v", okIn, failed, signouts, entries)
		}
	})
}

func TestAuth_LockoutSurvivesRestart(t *testing.T) {
	limits := sessions.Limits{MaxFailures: 3, LockoutDuration: time.Hour}
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServerWith(t, backend, testutil.Options{SignInLimits: limits})
			st := ts.OpenStore(t)
			u := mustUser(t, st, "eve@example.com", defaultOrg(t, st), "member")
			b := &browser{t: t, url: ts.URL}
			for range limits.MaxFailures {
				b.password("eve@example.com", "not the password").want(t, 401)
			}
			a := b.password("eve@example.com", password).want(t, 429, "locked", "try again after")
			if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s <= 0 {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}

			// Another server on the same database (a restart) sees it.
			ts.Stop()
			again := testutil.StartServerWith(t, backend, testutil.Options{SignInLimits: limits, DataDir: ts.DataDir, DatabaseURL: ts.DatabaseURL()})
			b.url = again.URL
			b.password("eve@example.com", password).want(t, 429, "locked")
			// An admin's password reset clears it.
			testutil.MustNoErr(t, again.Server.Sessions().ClearLockout(context.Background(), u.ID), "clear lockout")
			b.password("eve@example.com", password).want(t, 200)
		})
	}
}

func TestAuth_RateLimitPerIP(t *testing.T) {
	opts := testutil.Options{SignInLimits: sessions.Limits{PerIPBurst: 3, PerIPInterval: time.Hour}}
	forEachBackend(t, opts, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		b := &browser{t: t, url: ts.URL}
		for i := range 3 {
			b.password("nobody"+strconv.Itoa(i)+"@example.com", "whatever it is").want(t, 401)
		}
		a := b.password("nobody@example.com", "whatever it is").want(t, 429, "too many sign-in attempts", "try again in")
		if a.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		b.signIn(authhttp.PathKey, `{"key":"`+testutil.AdminToken+`"}`).want(t, 429)
	})
}

func TestAuth_Expiry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		idle, max  time.Duration
		keepUsing  bool
		wantReason string
	}{
		{"Idle", time.Second, time.Hour, false, "without use"},
		{"Absolute", 2 * time.Second, 2 * time.Second, true, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testutil.Options{SessionIdleTimeout: tc.idle, SessionMaxAge: tc.max}
			forEachBackend(t, opts, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
				mustUser(t, st, "kim@example.com", defaultOrg(t, st), "member")
				b := &browser{t: t, url: ts.URL}
				b.password("kim@example.com", password).want(t, 200)
				b.identity().want(t, 200)
				if !tc.keepUsing {
					// Unused for longer than the idle timeout.
					time.Sleep(tc.idle + 200*time.Millisecond)
					b.identity().want(t, 401, tc.wantReason)
					return
				}
				deadline := time.Now().Add(30 * time.Second)
				for {
					a := b.identity()
					if a.status == 401 {
						a.want(t, 401, tc.wantReason)
						return
					}
					a.want(t, 200)
					if time.Now().After(deadline) {
						t.Fatal("session still valid long after its max age")
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		})
	}
}

// TestAuth_IdleKeptAlive: a session in use outlives its idle timeout.
func TestAuth_IdleKeptAlive(t *testing.T) {
	// Generous against a stalled machine: a gap of 4 s between two
	// requests would fail it.
	forEachBackend(t, testutil.Options{SessionIdleTimeout: 4 * time.Second}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		mustUser(t, st, "pat@example.com", defaultOrg(t, st), "member")
		b := &browser{t: t, url: ts.URL}
		b.password("pat@example.com", password).want(t, 200)
		end := time.Now().Add(6 * time.Second)
		for time.Now().Before(end) {
			b.identity().want(t, 200)
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestAuth_KeySignIn(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		admin := &browser{t: t, url: ts.URL}
		key := admin.do(http.MethodPost, "/runyard.v1.TokenService/CreateToken", `{"name":"console","scopes":["runners:read"]}`, false,
			"Authorization", "Bearer "+testutil.AdminToken).want(t, 200).json(t)
		secret, _ := key["secret"].(string)
		tokenID, _ := key["token"].(map[string]any)["tokenId"].(string)

		b := &browser{t: t, url: ts.URL}
		b.signIn(authhttp.PathKey, `{"key":"not-a-key"}`).want(t, 401)
		b.signIn(authhttp.PathKey, `{}`).want(t, 400, "key")
		got := b.signIn(authhttp.PathKey, `{"key":"`+secret+`"}`).want(t, 200).json(t)
		if got["principal"] != "PRINCIPAL_SERVICE_ACCOUNT" || got["subjectId"] != tokenID {
			t.Fatalf("key sign-in %v", got)
		}
		id := b.identity().want(t, 200).json(t)
		if sub, _ := id["subject"].(map[string]any); sub["principal"] != "PRINCIPAL_SERVICE_ACCOUNT" || sub["id"] != tokenID {
			t.Fatalf("as the key: %v", id)
		}
		// Exactly the key's scopes: it reads, it cannot write.
		b.do(http.MethodGet, "/api/v1/orgs/default/runners", "", false).want(t, 200)
		b.do(http.MethodPost, "/gitpod.v1.RunnerService/CreateRunner", `{"name":"nope-runner"}`, true).want(t, 403, "runners:write")
		b.do(http.MethodPost, authhttp.PathSwitch, `{"organizationId":"x"}`, true).want(t, 412)

		entries, err := st.FindAudit(context.Background(), audit.Filter{OrgID: defaultOrg(t, st), Methods: []string{"POST " + authhttp.PathKey}})
		testutil.MustNoErr(t, err, "find audit")
		if len(entries) != 1 || entries[0].KeyID != tokenID || entries[0].Outcome != audit.OutcomeOK || entries[0].ObjectType != sessions.ObjectTypeSession {
			t.Errorf("key sign-in audit entries %+v", entries)
		}
		for _, e := range entries {
			if strings.Contains(e.ObjectID+e.ActorID+e.KeyID, secret) {
				t.Errorf("audit entry holds the key: %+v", e)
			}
		}

		admin.do(http.MethodPost, "/runyard.v1.TokenService/RevokeToken", `{"tokenId":"`+tokenID+`"}`, false,
			"Authorization", "Bearer "+testutil.AdminToken).want(t, 200)
		b.identity().want(t, 401, "API key")
	})
}

func TestAuth_SwitchOrganization(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		other := &identity.Organization{ID: uuid.NewString(), Name: "other", CreatedAt: now, UpdatedAt: now}
		testutil.MustNoErr(t, st.CreateOrganization(context.Background(), other), "create organization")
		third := &identity.Organization{ID: uuid.NewString(), Name: "third", CreatedAt: now, UpdatedAt: now}
		testutil.MustNoErr(t, st.CreateOrganization(context.Background(), third), "create organization")
		org := defaultOrg(t, st)
		u := mustUser(t, st, "sam@example.com", org, "member", other.ID, "admin")

		b := &browser{t: t, url: ts.URL}
		b.password("sam@example.com", password).want(t, 200)
		b.do(http.MethodPost, authhttp.PathSwitch, `{"organizationId":"`+other.ID+`"}`, false).want(t, 403, "CSRF")
		b.do(http.MethodPost, authhttp.PathSwitch, `{}`, true).want(t, 400, "organizationId")
		b.do(http.MethodPost, authhttp.PathSwitch, `{"organizationId":"`+third.ID+`"}`, true).want(t, 404)
		old := *b
		a := b.do(http.MethodPost, authhttp.PathSwitch, `{"organizationId":"`+other.ID+`"}`, true).want(t, 200)
		res := http.Response{Header: a.header}
		for _, ck := range res.Cookies() {
			if ck.Name == sessions.CookieName {
				b.cookie = ck.Value
			}
		}
		b.csrf, _ = a.json(t)["csrfToken"].(string)
		if a.json(t)["role"] != "admin" || b.cookie == old.cookie {
			t.Fatalf("switch answer %s", a.body)
		}
		id := b.identity().want(t, 200).json(t)
		if id["organizationId"] != other.ID {
			t.Fatalf("after the switch: %v", id)
		}
		old.identity().want(t, 401)

		entries, err := st.FindAudit(context.Background(), audit.Filter{OrgID: other.ID, Methods: []string{"POST " + authhttp.PathSwitch}})
		testutil.MustNoErr(t, err, "find audit")
		if len(entries) != 1 || entries[0].UserID != u.ID || entries[0].Outcome != audit.OutcomeOK {
			t.Errorf("switch audit entries %+v", entries)
		}
	})
}

func TestAuth_UserRevoked(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		org := defaultOrg(t, st)
		u := mustUser(t, st, "lee@example.com", org, "member")
		b1, b2 := &browser{t: t, url: ts.URL}, &browser{t: t, url: ts.URL}
		b1.password("lee@example.com", password).want(t, 200)
		b2.password("lee@example.com", password).want(t, 200)
		n, err := ts.Server.Sessions().RevokeUser(context.Background(), u.ID)
		testutil.MustNoErr(t, err, "revoke user")
		if n != 2 {
			t.Errorf("revoked %d sessions, want 2", n)
		}
		b1.identity().want(t, 401)
		b2.identity().want(t, 401)

		// A disabled user cannot sign in; a removed member's session ends.
		b1.password("lee@example.com", password).want(t, 200)
		testutil.MustNoErr(t, st.DeleteMembership(context.Background(), org, u.ID), "remove membership")
		pollStatus(t, b1, 401, "no longer a member")
		_, err = st.UpdateUser(context.Background(), u.ID, func(x *users.User) error {
			now := time.Now().UTC().Truncate(time.Microsecond)
			x.DisabledAt = &now
			return nil
		})
		testutil.MustNoErr(t, err, "disable user")
		b1.password("lee@example.com", password).want(t, 401, "disabled")
	})
}

// pollStatus calls GetAuthenticatedIdentity until it answers status (a
// change made behind the server's back shows within its cache's lifetime).
func pollStatus(t *testing.T, b *browser, status int, mention string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := b.identity()
		if a.status == status {
			a.want(t, status, mention)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d: %s", a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAuth_WebSocketOrigin(t *testing.T) {
	forEachBackend(t, testutil.Options{}, func(t *testing.T, ts *testutil.TestServer, st store.Store) {
		mustUser(t, st, "wes@example.com", defaultOrg(t, st), "member")
		b := &browser{t: t, url: ts.URL}
		b.password("wes@example.com", password).want(t, 200)
		host := strings.TrimPrefix(ts.URL, "http://")
		path := "/api/v1/orgs/default/pods/nope/terminal"
		ws := []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
		for _, tc := range []struct {
			name, origin string
			forbidden    bool
		}{
			{"OtherSite", "https://evil.example", true},
			{"NoOrigin", "", true},
			{"SameHost", "http://" + host, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := ws
				if tc.origin != "" {
					h = append(append([]string{}, ws...), "Origin", tc.origin)
				}
				a := b.do(http.MethodGet, path, "", false, h...)
				if got := a.status == http.StatusForbidden; got != tc.forbidden {
					t.Fatalf("Origin %q: status %d: %s", tc.origin, a.status, a.body)
				}
				if tc.forbidden && !bytes.Contains(a.body, []byte("Origin")) {
					t.Errorf("refusal does not say why: %s", a.body)
				}
			})
		}
	})
}

// TestAuth_AdminEndsSessions: an admin disabling a user ends the user's
// browser sessions at once, and an admin's password reset ends them too
// and lifts a lockout, so the new password works straight away.
func TestAuth_AdminEndsSessions(t *testing.T) {
	limits := sessions.Limits{MaxFailures: 3, LockoutDuration: time.Hour}
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServerWith(t, backend, testutil.Options{SignInLimits: limits})
			st := ts.OpenStore(t)
			u := mustUser(t, st, "ada@example.com", defaultOrg(t, st), "member")
			admin := &browser{t: t, url: ts.URL}
			bearer := []string{"Authorization", "Bearer " + testutil.AdminToken}
			call := func(path, body string) {
				t.Helper()
				admin.do(http.MethodPost, path, body, false, bearer...).want(t, http.StatusOK)
			}

			b := &browser{t: t, url: ts.URL}
			b.password("ada@example.com", password).want(t, http.StatusOK)
			call("/gitpod.v1.UserService/SetSuspended", fmt.Sprintf(`{"userId":%q,"suspended":true}`, u.ID))
			b.identity().want(t, http.StatusUnauthorized)
			call("/gitpod.v1.UserService/SetSuspended", fmt.Sprintf(`{"userId":%q,"suspended":false}`, u.ID))

			b.password("ada@example.com", password).want(t, http.StatusOK)
			locked := &browser{t: t, url: ts.URL}
			for range limits.MaxFailures {
				locked.password("ada@example.com", "not-the-password").want(t, http.StatusUnauthorized)
			}
			locked.password("ada@example.com", password).want(t, http.StatusTooManyRequests)
			const fresh = "a-new-password-9f2c"
			call("/runyard.v1.UserAdminService/SetPassword", fmt.Sprintf(`{"userId":%q,"password":%q}`, u.ID, fresh))
			b.identity().want(t, http.StatusUnauthorized)
			locked.password("ada@example.com", fresh).want(t, http.StatusOK)
			locked.identity().want(t, http.StatusOK)
		})
	}
}
