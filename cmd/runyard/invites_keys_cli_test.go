package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/sessions"
)

type inviteJSON struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	CreatorID string `json:"creatorId"`
	ExpiresAt string `json:"expiresAt"`
}

// TestInvites_CLI: an admin lists the pending invites (never their
// tokens) and revokes one by a unique ID prefix, with --yes; its token is
// refused from then on, the other still works. A short, unknown or
// missing-confirmation revoke changes nothing, and completion offers the
// pending invites' IDs.
func TestInvites_CLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			var first, second struct {
				ID       string `json:"id"`
				InviteID string `json:"inviteId"`
				Role     string `json:"role"`
			}
			s.mustJSON(t, adminToken, &first, "invites", "create", "--role", "runners-admin", "-o", "json")
			s.mustJSON(t, adminToken, &second, "invites", "create", "--role", "member", "-o", "json")
			if first.ID == "" || !strings.HasPrefix(first.InviteID, "ryd_inv_") || first.ID == first.InviteID {
				t.Fatalf("invites create -o json: %+v, want an id beside the token", first)
			}
			if out := s.mustRun(t, adminToken, "invites", "create"); !strings.Contains(out, "ryd_inv_") {
				t.Fatalf("invites create: %q", out)
			}

			var list struct{ Invites []inviteJSON }
			s.mustJSON(t, adminToken, &list, "invites", "list", "-o", "json")
			if len(list.Invites) != 3 || list.Invites[0].ID != first.ID || list.Invites[0].Role != "runners-admin" || list.Invites[1].ID != second.ID {
				t.Fatalf("invites list: %+v", list.Invites)
			}
			raw := s.mustRun(t, adminToken, "invites", "list", "-o", "json")
			if strings.Contains(raw, "ryd_inv_") {
				t.Fatalf("invites list shows a token: %s", raw)
			}
			if out := s.mustRun(t, adminToken, "invites", "list"); !strings.Contains(out, "ROLE") || !strings.Contains(out, first.ID) {
				t.Errorf("invites list table: %q", out)
			}

			// Completion lists the pending invites' IDs.
			r := runCLI(t, "", []string{"RUNYARD_SERVER=" + s.URL, "RUNYARD_TOKEN=" + adminToken}, "__complete", "invites", "revoke", "")
			if r.Code != 0 || !strings.Contains(r.Stdout, first.ID) || !strings.Contains(r.Stdout, second.ID) {
				t.Errorf("__complete invites revoke: %d %q %q", r.Code, r.Stdout, r.Stderr)
			}

			requireOneLineError(t, s.run(t, adminToken, "invites", "revoke", first.ID[:8]), 2, "--yes")
			requireOneLineError(t, s.run(t, adminToken, "invites", "revoke", first.ID[:3], "--yes"), 3, "at least 4")
			requireOneLineError(t, s.run(t, adminToken, "invites", "revoke", "00000000-0000-4000-8000-000000000000", "--yes"), 3, "not found")
			if out := s.mustRun(t, adminToken, "invites", "revoke", first.ID[:8], "--yes"); !strings.Contains(out, first.ID) || !strings.Contains(out, "revoked") {
				t.Errorf("invites revoke printed %q", out)
			}
			requireOneLineError(t, s.run(t, adminToken, "invites", "revoke", first.ID, "--yes"), 3, "not found")

			const pw = "invited person's passphrase"
			requireOneLineError(t, s.runWithStdin(t, adminToken, pw+"\n", "join", first.InviteID, "--email", "gone@example.com", "--password-stdin"), 3)
			if r := s.runWithStdin(t, adminToken, pw+"\n", "join", second.InviteID, "--email", "kept@example.com", "--password-stdin"); r.Code != 0 {
				t.Fatalf("join with the invite that was not revoked: %d %q", r.Code, r.Stderr)
			}
			s.mustJSON(t, adminToken, &list, "invites", "list", "-o", "json")
			if len(list.Invites) != 1 || list.Invites[0].ID == first.ID || list.Invites[0].ID == second.ID {
				t.Fatalf("after a revoke and a join, pending invites: %+v", list.Invites)
			}
			// A used invite cannot be revoked any more.
			requireOneLineError(t, s.run(t, adminToken, "invites", "revoke", second.ID, "--yes"), 7, "used")
		})
	}
}

// userKey signs email in with password and creates an API key of theirs
// with scopes through the session, as the console does; it returns the
// key's secret.
func userKey(t *testing.T, s *serverProc, email, password string, scopes ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := http.Post(s.URL+"/auth/password", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var signIn struct {
		CSRFToken string `json:"csrfToken"`
	}
	err = json.NewDecoder(res.Body).Decode(&signIn)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("sign in %s: %s %v", email, res.Status, err)
	}
	reqBody, _ := json.Marshal(map[string]any{"name": "session-made", "scopes": scopes})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/runyard.v1.TokenService/CreateToken", strings.NewReader(string(reqBody)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", signIn.CSRFToken)
	for _, c := range res.Cookies() {
		if c.Name == sessions.CookieName {
			req.AddCookie(c)
		}
	}
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var created struct{ Secret string }
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &created) != nil || created.Secret == "" {
		t.Fatalf("create a key as %s: %s %s", email, res.Status, b)
	}
	return created.Secret
}

// TestKeys_CLI: `runyard keys` shows, creates and revokes only the
// calling user's own keys, even for an admin, whose `tokens list` shows
// the organization's; another's key is not_found to `keys revoke`, and a
// service account's key, which owns none, is refused.
func TestKeys_CLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			const pw = "keys owner's passphrase"
			if r := s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "keys@example.com", "--password-stdin", "--org", "default", "--role", "admin"); r.Code != 0 {
				t.Fatalf("users create: %d %q", r.Code, r.Stderr)
			}
			bootstrapID := adminKeyID(t, s, adminToken)
			key := userKey(t, s, "keys@example.com", pw, "admin")

			var created struct {
				Token  tokenJSON
				Secret string
			}
			s.mustJSON(t, key, &created, "keys", "create", "--name", "laptop", "--scopes", "pods:read,pods:write", "-o", "json")
			if created.Token.Principal != "PRINCIPAL_USER" || !strings.HasPrefix(created.Secret, "ryd_") {
				t.Fatalf("keys create: %+v", created)
			}
			names := func(token string, args ...string) []string {
				t.Helper()
				var list struct{ Tokens []tokenJSON }
				s.mustJSON(t, token, &list, append(args, "-o", "json")...)
				var out []string
				for _, k := range list.Tokens {
					out = append(out, k.Name)
				}
				slices.Sort(out)
				return out
			}
			if got := names(key, "keys", "list"); !slices.Equal(got, []string{"laptop", "session-made"}) {
				t.Fatalf("keys list of an admin user: %v, want their own two", got)
			}
			if got := names(key, "tokens", "list"); !slices.Contains(got, "laptop") || len(got) < 3 {
				t.Fatalf("tokens list of an admin user: %v, want the organization's keys", got)
			}
			if out := s.mustRun(t, key, "keys", "list"); !strings.Contains(out, "laptop") || !strings.Contains(out, "user") {
				t.Errorf("keys list table: %q", out)
			}
			r := runCLI(t, "", []string{"RUNYARD_SERVER=" + s.URL, "RUNYARD_TOKEN=" + key}, "__complete", "keys", "revoke", "")
			if r.Code != 0 || !strings.Contains(r.Stdout, "laptop") || strings.Contains(r.Stdout, bootstrapID) {
				t.Errorf("__complete keys revoke: %d %q %q, want the user's keys alone", r.Code, r.Stdout, r.Stderr)
			}

			// Not the user's: not found, by ID or by name.
			requireOneLineError(t, s.run(t, key, "keys", "revoke", bootstrapID, "--yes"), 3, "not found")
			requireOneLineError(t, s.run(t, key, "keys", "revoke", "admin", "--yes"), 3, "not found")
			requireOneLineError(t, s.run(t, key, "keys", "revoke", "laptop"), 2, "--yes")
			if out := s.mustRun(t, key, "keys", "revoke", "laptop", "--yes"); !strings.Contains(out, created.Token.TokenID) {
				t.Errorf("keys revoke printed %q", out)
			}
			requireOneLineError(t, s.run(t, created.Secret, "whoami"), 5)
			if got := names(key, "keys", "list"); !slices.Equal(got, []string{"session-made"}) {
				t.Errorf("keys list after the revoke: %v", got)
			}
			if got := names(key, "keys", "list", "--all"); !slices.Equal(got, []string{"laptop", "session-made"}) {
				t.Errorf("keys list --all: %v", got)
			}

			// Beyond the role: a member's own key cannot hold admin.
			if r := s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "member@example.com", "--password-stdin", "--org", "default", "--role", "member"); r.Code != 0 {
				t.Fatalf("users create member: %d %q", r.Code, r.Stderr)
			}
			memberKey := userKey(t, s, "member@example.com", pw, "pods:read")
			requireOneLineError(t, s.run(t, memberKey, "keys", "create", "--name", "escalate", "--scopes", "admin"), 6)
			if got := names(memberKey, "keys", "list"); !slices.Equal(got, []string{"session-made"}) {
				t.Errorf("the member's keys: %v", got)
			}

			// A service account's key owns no key.
			requireOneLineError(t, s.run(t, adminToken, "keys", "list"), 6, "only a user")
		})
	}
}
