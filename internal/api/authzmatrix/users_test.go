package authzmatrix_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/server"
)

// userPassword is every matrix user's password.
const userPassword = "authz-password-0123456789"

// usersServed reports whether the server has users and browser sessions:
// the principals of people join the matrix when it does.
func usersServed() bool {
	return methodOf("/runyard.v1.UserAdminService/CreateUser") != nil && slices.Contains(server.Routes(), "POST /auth/password")
}

// users are the people of the matrix: for each role, a user of the first
// organization signed in with a password (a browser session), and an API
// key the same user created for themselves.
func (e *env) users() []principal {
	t := e.t
	var ps []principal
	for _, role := range identity.KnownRoles {
		scopes := identity.RoleScopes[role]
		email := fmt.Sprintf("authz-%s@example.com", role)
		e.rpc("runyard.v1.UserAdminService/CreateUser", fmt.Sprintf(`{"email":%q,"name":"Authz %s","password":%q,"organizationId":%q,"role":%q}`,
			email, role, userPassword, e.vars["{orgid}"], role))
		session, csrf := e.signIn(email)
		p := principal{name: "session:" + string(role), kind: kindSession, session: session, csrf: csrf, scopes: scopes, email: email}
		ps = append(ps, p)
		names, _ := json.Marshal(scopes)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/runyard.v1.TokenService/CreateToken",
			strings.NewReader(fmt.Sprintf(`{"name":"authz-user-%s","scopes":%s}`, role, names)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", sessionCookie+"="+session)
		req.Header.Set("X-CSRF-Token", csrf)
		out := e.decode(req)
		ps = append(ps, principal{name: "user-key:" + string(role), kind: kindUserKey, authorization: "Bearer " + get(t, out, "secret"), scopes: scopes})
	}
	return ps
}

// setUpUsers adds the fixtures of users: a member of the first
// organization, an invite to it and an API key to sign in with.
func (e *env) setUpUsers() {
	t := e.t
	v := e.vars
	v["{user}"] = get(t, e.rpc("runyard.v1.UserAdminService/CreateUser", fmt.Sprintf(`{"email":"authz-victim@example.com","name":"Victim","password":%q,"organizationId":%q,"role":"member"}`,
		userPassword, v["{orgid}"])), "user", "id")
	v["{invite}"] = e.invite()
	v["{authkey}"] = get(t, e.rpc("runyard.v1.TokenService/CreateToken", `{"name":"authz-sign-in","scopes":["runners:read"]}`), "secret")
}

// invite creates an invite to the first organization as a member.
func (e *env) invite() string {
	return get(e.t, e.rpc("runyard.v1.UserAdminService/CreateInvite", fmt.Sprintf(`{"organizationId":%q,"role":"member"}`, e.vars["{orgid}"])), "inviteId")
}

// signIn signs in with a password and returns the session's cookie and
// CSRF token.
func (e *env) signIn(email string) (session, csrf string) {
	t := e.t
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": userPassword})
	res, err := e.clients.h1.Post(e.url+"/auth/password", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("sign in as %s: %v", email, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign in as %s: %s: %s", email, res.Status, b)
	}
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			session = c.Value
		}
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil || session == "" {
		t.Fatalf("sign in as %s: no session in %s (%v)", email, b, err)
	}
	return session, get(t, out, "csrfToken")
}

// decode sends req and decodes its JSON answer; anything but success fails
// the test.
func (e *env) decode(req *http.Request) map[string]any {
	t := e.t
	t.Helper()
	res, err := e.clients.h1.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", req.Method, req.URL.Path, res.Status, b)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", req.Method, req.URL.Path, err, b)
	}
	return out
}
