package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// runWithStdin is serverProc.run with stdin, for --password-stdin.
func (s *serverProc) runWithStdin(t *testing.T, token, stdin string, args ...string) cliResult {
	t.Helper()
	args = append([]string{"--server", s.URL, "--token", token}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = emptyDir, processEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	r := cliResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("runyard %s: %v", strings.Join(args, " "), err)
	}
	return r
}

type memberJSON struct {
	User struct {
		ID     string `json:"id"`
		Email  string `json:"email"`
		Status string `json:"status"`
	} `json:"user"`
	Role string `json:"role"`
}

// TestUsers_CLI: the installation admin creates a user with a password
// from stdin (never printed), creates a one-time invite that a new person
// signs up with once, lists and changes members and roles (the last admin
// stays), resets a password and disables a user; bad flags are named.
func TestUsers_CLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			const pw, pw2, pw3 = "ada's long passphrase", "bob's long passphrase", "bob's new passphrase"
			noSecret := func(r cliResult) {
				t.Helper()
				for _, p := range []string{pw, pw2, pw3} {
					if strings.Contains(r.Stdout+r.Stderr, p) {
						t.Fatalf("runyard %v printed a password: %s%s", r.Args, r.Stdout, r.Stderr)
					}
				}
			}

			r := s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "Ada@example.com", "--password-stdin", "--org", "default", "--role", "admin")
			noSecret(r)
			if r.Code != 0 || !strings.Contains(r.Stdout, "Created user ada@example.com") || !strings.Contains(r.Stdout, "admin of organization") {
				t.Fatalf("users create: %d %q %q", r.Code, r.Stdout, r.Stderr)
			}
			requireOneLineError(t, s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "x@example.com", "--password", pw, "--password-stdin"), 2, "--password-stdin")
			requireOneLineError(t, s.run(t, adminToken, "users", "create", "--email", "x@example.com"), 2, "--password-stdin")
			requireOneLineError(t, s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "not-an-email", "--password-stdin"), 2, "email")
			requireOneLineError(t, s.runWithStdin(t, adminToken, "short\n", "users", "create", "--email", "x@example.com", "--password-stdin"), 2, "password")
			requireOneLineError(t, s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "ada@example.com", "--password-stdin"), 4, "already exists")

			out := s.mustRun(t, adminToken, "invites", "create", "--role", "runners-admin")
			token := regexp.MustCompile(`ryd_inv_[A-Za-z0-9_-]+`).FindString(out)
			if token == "" {
				t.Fatalf("invites create printed no token: %q", out)
			}
			r = s.runWithStdin(t, adminToken, pw2+"\n", "join", token, "--email", "bob@example.com", "--password-stdin")
			noSecret(r)
			if r.Code != 0 || !strings.Contains(r.Stdout, "runners-admin") {
				t.Fatalf("join: %d %q %q", r.Code, r.Stdout, r.Stderr)
			}
			requireOneLineError(t, s.runWithStdin(t, adminToken, pw2+"\n", "join", token, "--email", "carl@example.com", "--password-stdin"), 3, "used")
			requireOneLineError(t, s.run(t, adminToken, "join", token), 6, "only a user")

			var members struct{ Members []memberJSON }
			s.mustJSON(t, adminToken, &members, "members", "list")
			if len(members.Members) != 2 || members.Members[0].User.Email != "ada@example.com" || members.Members[1].Role != "runners-admin" {
				t.Fatalf("members = %+v", members.Members)
			}
			if out := s.mustRun(t, adminToken, "members", "list"); !strings.Contains(out, "ROLE") || !strings.Contains(out, "bob@example.com") {
				t.Errorf("members list table: %q", out)
			}
			requireOneLineError(t, s.run(t, adminToken, "members", "remove", "ada@example.com"), 7, "last admin")
			requireOneLineError(t, s.run(t, adminToken, "members", "set-role", "ada@example.com", "member"), 7, "last admin")
			requireOneLineError(t, s.run(t, adminToken, "members", "set-role", "bob@example.com", "boss"), 2, "role")
			if out := s.mustRun(t, adminToken, "members", "set-role", "bob@example.com", "audit-reader"); !strings.Contains(out, "audit-reader") {
				t.Errorf("set-role printed %q", out)
			}

			r = s.runWithStdin(t, adminToken, pw3+"\n", "users", "set-password", "bob@example.com", "--password-stdin")
			noSecret(r)
			if r.Code != 0 || !strings.Contains(r.Stdout, "Password set") {
				t.Fatalf("set-password: %d %q %q", r.Code, r.Stdout, r.Stderr)
			}
			if out := s.mustRun(t, adminToken, "users", "disable", "bob@example.com"); !strings.Contains(out, "disabled") {
				t.Errorf("disable printed %q", out)
			}
			var users struct {
				Users []struct{ Email, Status string }
			}
			s.mustJSON(t, adminToken, &users, "users", "list")
			if len(users.Users) != 2 || users.Users[1].Status != "USER_STATUS_SUSPENDED" || users.Users[0].Status != "USER_STATUS_ACTIVE" {
				t.Fatalf("users = %+v", users.Users)
			}
			if out := s.mustRun(t, adminToken, "users", "list"); !strings.Contains(out, "disabled") {
				t.Errorf("users list table: %q", out)
			}
			s.mustRun(t, adminToken, "users", "enable", "bob@example.com")
			s.mustRun(t, adminToken, "members", "remove", "bob@example.com")
			requireOneLineError(t, s.run(t, adminToken, "members", "remove", "bob@example.com"), 3, "not a member")
			if out := s.mustRun(t, adminToken, "members", "add", "bob@example.com", "--role", "member"); !strings.Contains(out, "as member") {
				t.Errorf("members add printed %q", out)
			}
			requireOneLineError(t, s.run(t, adminToken, "members", "add", "bob@example.com", "--role", "member"), 4, "already a member")
			requireOneLineError(t, s.run(t, adminToken, "members", "add", "nobody@example.com", "--role", "member"), 3, "not found")
			requireOneLineError(t, s.run(t, adminToken, "users", "disable", "nobody@example.com"), 3, "not found")

			var raw json.RawMessage
			s.mustJSON(t, adminToken, &raw, "users", "list")
			if strings.Contains(string(raw), "argon2") || strings.Contains(strings.ToLower(string(raw)), "password") {
				t.Fatalf("users list shows password material: %s", raw)
			}
		})
	}
}
