package authzmatrix_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/users"
)

// userPassword is every matrix user's password.
const userPassword = "authz-password-0123456789"

// usersServed reports whether the server has browser sessions: people
// join the matrix when it does; userKeysServed whether users may own API
// keys (the users' API).
func usersServed() bool { return slices.Contains(server.Routes(), "POST /auth/password") }

func userKeysServed() bool { return methodOf("/runyard.v1.UserAdminService/CreateUser") != nil }

// createUser stores a user with userPassword, a member of the first
// organization with role.
func (e *env) createUser(email string, role identity.Role) string {
	t := e.t
	t.Helper()
	hash, err := users.HashPassword(userPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &users.User{ID: uuid.NewString(), Email: email, Name: "Authz " + string(role), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	ctx := context.Background()
	if err := e.st.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	if err := e.st.CreateMembership(ctx, &users.Membership{OrgID: e.vars["{orgid}"], UserID: u.ID, Role: role, CreatedAt: now}); err != nil {
		t.Fatalf("membership of %s: %v", email, err)
	}
	return u.ID
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
		e.createUser(email, role)
		session, csrf := e.signIn(email)
		p := principal{name: "session:" + string(role), kind: kindSession, session: session, csrf: csrf, scopes: scopes, email: email}
		ps = append(ps, p)
		if !userKeysServed() {
			continue
		}
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
	v["{user}"] = e.createUser("authz-victim@example.com", identity.RoleMember)
	if userKeysServed() {
		v["{invite}"] = e.invite()
	}
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
