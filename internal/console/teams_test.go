package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/testutil"
)

// session is a browser's sign-in for HTTP tests: its cookie and CSRF token.
type session struct {
	e            *env
	cookie, csrf string
}

// signIn signs email in with the test password.
func (e *env) signIn(t *testing.T, email string) *session {
	t.Helper()
	res, err := http.Post(e.ts.URL+"/auth/password", "application/json",
		strings.NewReader(`{"email":"`+email+`","password":"`+userPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		CSRFToken string `json:"csrfToken"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
		t.Fatalf("sign in %s: %d", email, res.StatusCode)
	}
	s := &session{e: e, csrf: body.CSRFToken}
	for _, ck := range res.Cookies() {
		if ck.Name == sessions.CookieName {
			s.cookie = ck.Value
		}
	}
	return s
}

// do sends a console request with the session's cookie (and CSRF token on
// a post) and returns the answer, following no redirect.
func (s *session) do(t *testing.T, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: sessions.CookieName, Value: s.cookie})
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(sessions.CSRFHeader, s.csrf)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (s *session) want(t *testing.T, method, path string, form url.Values, status int, mention ...string) string {
	t.Helper()
	res, body := s.do(t, method, path, form)
	if res.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %.1500s", method, path, res.StatusCode, status, body)
	}
	for _, m := range mention {
		if !strings.Contains(body, m) {
			t.Errorf("%s %s: the page does not say %q: %.3000s", method, path, m, body)
		}
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		checkHeaders(t, method+" "+path, res)
		checkNoInline(t, method+" "+path, body)
	}
	return body
}

// TestConsole_Teams runs the team pages over HTTP on both databases as an
// organization's admin, a member and an audit reader: members (add, role,
// the last-admin refusal in words, remove, disable, reset), invites
// (shown once, listed, revoked), API keys (the role caps the offered
// scopes, shown once, revoked; another's key is not found), the audit
// log with filters, and the installation admin's organizations (delete
// refused with the count of runners). What each sees follows their role;
// the server refuses the rest.
func TestConsole_Teams(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			st := e.ts.OpenStore(t)
			org, err := st.FindOrganizationByName(context.Background(), identity.DefaultOrganization)
			if err != nil {
				t.Fatal(err)
			}
			mustUser(t, st, "ada@example.com", org.ID, identity.RoleAdmin)
			mustUser(t, st, "bob@example.com", org.ID, identity.RoleMember)
			mustUser(t, st, "cy@example.com", org.ID, identity.RoleAuditReader)
			mustUser(t, st, "dee@example.com", org.ID, identity.RoleMember)
			mustUser(t, st, "eve@example.com", org.ID, identity.RoleMember)
			if err := st.DeleteMembership(context.Background(), org.ID, userID(t, e, "eve@example.com")); err != nil {
				t.Fatal(err)
			}
			ada, bob, cy := e.signIn(t, "ada@example.com"), e.signIn(t, "bob@example.com"), e.signIn(t, "cy@example.com")

			// What each sees in the navigation follows their role.
			page := ada.want(t, http.MethodGet, "/members", nil, 200, "bob@example.com", `action="/members/add"`, `action="/invites/new"`)
			for _, link := range []string{`href="/keys"`, `href="/audit"`} {
				if !strings.Contains(page, link) {
					t.Errorf("the admin's navigation lacks %s", link)
				}
			}
			if strings.Contains(page, `href="/orgs"`) {
				t.Error("an organization's admin is offered the installation's organizations")
			}
			page = bob.want(t, http.MethodGet, "/members", nil, 200, "ada@example.com")
			for _, ctl := range []string{`href="/audit"`, `action="/members/add"`, `action="/invites/new"`, `/remove"`} {
				if strings.Contains(page, ctl) {
					t.Errorf("a member sees %s", ctl)
				}
			}
			// And the server refuses it regardless.
			bob.want(t, http.MethodGet, "/audit", nil, http.StatusForbidden, "audit:read")
			bob.want(t, http.MethodGet, "/orgs", nil, http.StatusForbidden)
			bob.want(t, http.MethodPost, "/members/add", url.Values{"email": {"eve@example.com"}, "role": {"member"}}, http.StatusForbidden)
			bob.want(t, http.MethodPost, "/invites/new", url.Values{"role": {"admin"}}, http.StatusForbidden)

			// Members: add, a bad email in words with what was typed, a role.
			ada.want(t, http.MethodPost, "/members/add", url.Values{"email": {"nobody@"}, "role": {"member"}}, http.StatusBadRequest, "email", `value="nobody@"`)
			ada.want(t, http.MethodPost, "/members/add", url.Values{"email": {"eve@example.com"}, "role": {"runners-admin"}}, http.StatusSeeOther)
			page = ada.want(t, http.MethodGet, "/members", nil, 200, "eve@example.com")
			eve := userID(t, e, "eve@example.com")
			if !regexp.MustCompile(`id="role-` + eve + `"[^>]*>(<option[^>]*>[^<]*</option>)*<option value="runners-admin" selected>`).MatchString(page) {
				t.Errorf("eve's role is not shown as runners-admin")
			}
			// The last admin: demoting or removing ada is refused in words.
			adaID := userID(t, e, "ada@example.com")
			ada.want(t, http.MethodPost, "/members/"+adaID+"/role", url.Values{"role": {"member"}}, http.StatusPreconditionFailed, "last admin")
			ada.want(t, http.MethodPost, "/members/"+adaID+"/remove", url.Values{}, http.StatusPreconditionFailed, "last admin")
			// And the organization's last admin key (the bootstrap key):
			// revoking it from the keys page is refused in words.
			who, err := e.tokens.GetAuthenticatedToken(context.Background(), admin(&runyardv1.GetAuthenticatedTokenRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			ada.want(t, http.MethodPost, "/keys/"+who.Msg.GetToken().GetTokenId()+"/revoke", url.Values{}, http.StatusPreconditionFailed, "last active admin key")
			// Disable, enable, reset a password, remove.
			dee := userID(t, e, "dee@example.com")
			dees := e.signIn(t, "dee@example.com")
			ada.want(t, http.MethodPost, "/members/"+dee+"/disable", url.Values{}, http.StatusSeeOther)
			if res, _ := dees.do(t, http.MethodGet, "/members", nil); res.StatusCode != http.StatusSeeOther {
				t.Errorf("a disabled member's session still opens pages: %d", res.StatusCode)
			}
			ada.want(t, http.MethodGet, "/members", nil, 200, "disabled")
			ada.want(t, http.MethodPost, "/members/"+dee+"/enable", url.Values{}, http.StatusSeeOther)
			ada.want(t, http.MethodPost, "/members/"+dee+"/password", url.Values{"password": {"short"}}, http.StatusBadRequest, "password")
			ada.want(t, http.MethodPost, "/members/"+dee+"/password", url.Values{"password": {"a brand new passphrase"}}, 200, "password was set")
			ada.want(t, http.MethodPost, "/members/"+dee+"/remove", url.Values{}, http.StatusSeeOther)
			if strings.Contains(ada.want(t, http.MethodGet, "/members", nil, 200), "dee@example.com") {
				t.Error("a removed member is still listed")
			}

			// Invites: the token once, then only its id; revoke.
			page = ada.want(t, http.MethodPost, "/invites/new", url.Values{"role": {"audit-reader"}, "ttl": {"48h"}}, 200, "runyard join ryd_inv_", "audit-reader")
			token := regexp.MustCompile(`ryd_inv_[A-Za-z0-9_-]+`).FindString(page)
			page = ada.want(t, http.MethodGet, "/members", nil, 200, "Pending invites")
			if strings.Contains(page, token) {
				t.Error("the invite's token is shown again")
			}
			inv := regexp.MustCompile(`data-invite="([0-9a-f-]{36})"`).FindStringSubmatch(page)
			if inv == nil {
				t.Fatalf("the invite is not listed: %.3000s", page)
			}
			ada.want(t, http.MethodPost, "/invites/new", url.Values{"role": {"member"}, "ttl": {"soon"}}, http.StatusBadRequest, "ttl")
			ada.want(t, http.MethodPost, "/invites/"+inv[1]+"/revoke", url.Values{}, http.StatusSeeOther)
			if strings.Contains(ada.want(t, http.MethodGet, "/members", nil, 200), inv[1]) {
				t.Error("a revoked invite is still listed")
			}

			// API keys: a member is offered their role's scopes only, sees
			// the key once, and revokes it; the admin's key is not theirs.
			page = bob.want(t, http.MethodGet, "/keys", nil, 200, `value="pods:write"`)
			for _, s := range []string{`value="admin"`, `value="runners:write"`, `value="audit:read"`} {
				if strings.Contains(page, s) {
					t.Errorf("a member is offered scope %s", s)
				}
			}
			bob.want(t, http.MethodPost, "/keys/new", url.Values{"name": {"ci"}, "scopes": {"runners:write"}}, http.StatusForbidden, "runners:write")
			page = bob.want(t, http.MethodPost, "/keys/new", url.Values{"name": {"laptop"}, "scopes": {"pods:read", "pods:write"}}, 200, "ryd_ak_", "shown only on this page")
			secret := regexp.MustCompile(`ryd_ak_[A-Za-z0-9_-]+`).FindString(page)
			page = bob.want(t, http.MethodGet, "/keys", nil, 200, `data-key="laptop"`)
			if strings.Contains(page, secret) {
				t.Error("the key's secret is shown again")
			}
			ada.want(t, http.MethodPost, "/keys/new", url.Values{"name": {"ada-key"}, "scopes": {"admin"}}, 200, "ryd_ak_")
			if strings.Contains(bob.want(t, http.MethodGet, "/keys", nil, 200), "ada-key") {
				t.Error("a member sees another's key")
			}
			adaKeyID := keyID(t, ada, "ada-key")
			bob.want(t, http.MethodPost, "/keys/"+adaKeyID+"/revoke", url.Values{}, http.StatusNotFound)
			bob.want(t, http.MethodPost, "/keys/"+keyID(t, bob, "laptop")+"/revoke", url.Values{}, http.StatusSeeOther)
			if res, _ := e.request(t, http.MethodGet, "/pods", secret, nil, nil); res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusSeeOther {
				t.Errorf("a revoked key still opens pages: %d", res.StatusCode)
			}
			bob.want(t, http.MethodGet, "/keys?all=1", nil, 200, "revoked")

			// The audit log: the reader filters by actor (an email), action
			// and resource; each entry's details name who and what.
			page = cy.want(t, http.MethodGet, "/audit", nil, 200, act("POST /members/add"), act("POST /keys/new"))
			if strings.Contains(page, `action="/members/add"`) {
				t.Error("the audit reader is offered to add members")
			}
			page = cy.want(t, http.MethodGet, "/audit?actor=bob@example.com", nil, 200, act("POST /keys/new"))
			if strings.Contains(page, act("POST /members/{id}/disable")) {
				t.Error("the actor filter kept another's entries")
			}
			page = cy.want(t, http.MethodGet, "/audit?action="+url.QueryEscape("POST /members/{id}/role"), nil, 200, "failed_precondition", adaID)
			if strings.Contains(page, act("POST /keys/new")) {
				t.Error("the action filter kept other actions")
			}
			page = cy.want(t, http.MethodGet, "/audit?resource="+dee, nil, 200, act("POST /members/{id}/disable"), act("POST /members/{id}/remove"))
			if strings.Contains(page, act("POST /keys/new")) {
				t.Error("the resource filter kept other objects")
			}
			cy.want(t, http.MethodGet, "/audit?since=2020-01-01T00:00&until=2020-01-02T00:00", nil, 200, "No entry matches")
			cy.want(t, http.MethodGet, "/audit?since=yesterday", nil, http.StatusBadRequest, "since")
			if got := strings.Count(cy.want(t, http.MethodGet, "/audit?action="+url.QueryEscape("POST /auth/password"), nil, 200), "data-audit="); got < 4 {
				t.Errorf("the sign-ins listed: %d, want at least 4", got)
			}

			// The installation admin's organizations: create, rename, and a
			// delete refused while a runner is left, with the count.
			install := func(method, path string, form url.Values, status int, mention ...string) string {
				t.Helper()
				var body io.Reader
				if form != nil {
					body = strings.NewReader(form.Encode())
				}
				res, page := e.request(t, method, path, testutil.AdminToken, body, nil)
				if res.StatusCode != status {
					t.Fatalf("%s %s: %d, want %d: %.1500s", method, path, res.StatusCode, status, page)
				}
				for _, m := range mention {
					if !strings.Contains(page, m) {
						t.Errorf("%s %s does not say %q", method, path, m)
					}
				}
				return page
			}
			install(http.MethodPost, "/orgs/new", url.Values{"name": {"acme"}}, http.StatusSeeOther)
			install(http.MethodPost, "/orgs/new", url.Values{"name": {"acme"}}, http.StatusConflict, "already exists", `value="acme"`)
			page = install(http.MethodGet, "/orgs", nil, 200, `data-org="acme"`, `data-org="default"`)
			acme := regexp.MustCompile(`action="/orgs/([0-9a-f-]{36})/rename"[^<]*<label for="rename-[0-9a-f-]+" class="sr-only">New name of acme`).FindStringSubmatch(page)
			if acme == nil {
				t.Fatalf("no rename form of acme: %.3000s", page)
			}
			install(http.MethodPost, "/orgs/"+acme[1]+"/rename", url.Values{"name": {"acme-2"}}, http.StatusSeeOther)
			createRunnerIn(t, e, acme[1])
			install(http.MethodPost, "/orgs/"+acme[1]+"/delete", url.Values{}, http.StatusPreconditionFailed, "1 runner")
			ada.want(t, http.MethodPost, "/orgs/"+acme[1]+"/delete", url.Values{}, http.StatusForbidden)
		})
	}
}

func userID(t *testing.T, e *env, email string) string {
	t.Helper()
	st := e.ts.OpenStore(t)
	u, err := st.FindUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// keyID finds the id of the caller's key named name on the keys page.
func keyID(t *testing.T, s *session, name string) string {
	t.Helper()
	_, page := s.do(t, http.MethodGet, "/keys", nil)
	m := regexp.MustCompile(`data-key="` + regexp.QuoteMeta(name) + `"[\s\S]*?action="/keys/([0-9a-f-]{36})/revoke"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no key %s on the keys page: %.3000s", name, page)
	}
	return m[1]
}

// createRunnerIn creates a runner in organization orgID with a key the
// installation admin makes there.
func createRunnerIn(t *testing.T, e *env, orgID string) {
	t.Helper()
	res, err := e.tokens.CreateToken(context.Background(), admin(&runyardv1.CreateTokenRequest{Name: "org-admin", Scopes: []string{"admin"}, OrganizationId: orgID}))
	if err != nil {
		t.Fatalf("key in %s: %v", orgID, err)
	}
	req := connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: "left-behind", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
	req.Header().Set("Authorization", "Bearer "+res.Msg.GetSecret())
	if _, err := e.runners.CreateRunner(context.Background(), req); err != nil {
		t.Fatalf("runner in %s: %v", orgID, err)
	}
}

// act is how the audit page shows an entry's action.
func act(method string) string { return `<summary class="mono">` + method + `</summary>` }
