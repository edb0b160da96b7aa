package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
)

// cliSecret is a secret as `runyard secrets ... -o json` prints it: the
// Connect API's JSON.
type cliSecret struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	EnvironmentVariable *bool  `json:"environmentVariable"`
	FilePath            string `json:"filePath"`
	Scope               struct {
		OrganizationID string `json:"organizationId"`
		UserID         string `json:"userId"`
	} `json:"scope"`
}

// openServerStore opens a second handle on the database of a running server.
func openServerStore(t *testing.T, dataDir, databaseURL string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if databaseURL != "" {
		st, err = postgres.Open(context.Background(), databaseURL)
	} else {
		st, err = sqlite.Open(context.Background(), filepath.Join(dataDir, "runyard.db"))
	}
	if err != nil {
		t.Fatalf("open the server's database: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// deliveredValue returns the value of secret id as a runner would receive
// it: sealed with the server's key (keyEnv, or the data dir's key file) to a
// fresh runner key, and opened.
func deliveredValue(t *testing.T, st store.Store, keyEnv, dataDir, orgID, id string) (string, bool) {
	t.Helper()
	key, _, err := secrets.LoadKey(keyEnv, dataDir)
	if err != nil {
		t.Fatalf("load the server's key: %v", err)
	}
	rk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secrets.NewService(st, key).SealedForRunner(context.Background(), orgID, rk.PublicKey().Bytes(), []string{id})
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	s, ok := sealed[id]
	if !ok {
		return "", false
	}
	v, err := secrets.Open(s, rk.PublicKey().Bytes(), rk.Bytes())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return string(v), true
}

// TestSecretsCLI drives `runyard secrets` against a real server on both
// databases: create from a flag and from a file, list with filters, update,
// delete, the errors, and that no command ever prints a value.
func TestSecretsCLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dbURL := b.databaseURL(t)
			s := startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			st := openServerStore(t, s.DataDir, dbURL)
			var who struct {
				OrganizationID string `json:"organizationId"`
			}
			s.mustJSON(t, adminToken, &who, "whoami")
			value := func(id string) string {
				t.Helper()
				v, ok := deliveredValue(t, st, "", s.DataDir, who.OrganizationID, id)
				if !ok {
					t.Fatalf("secret %s has no value", id)
				}
				return v
			}
			// Every value contains this marker, which no output may show.
			const marker = "cli-s3cret-marker"
			var outputs []string
			run := func(args ...string) cliResult {
				t.Helper()
				r := s.run(t, adminToken, args...)
				outputs = append(outputs, r.Stdout, r.Stderr)
				return r
			}
			mustRun := func(args ...string) string {
				t.Helper()
				r := run(args...)
				if r.Code != 0 || r.Stderr != "" {
					t.Fatalf("runyard %s: exit code %d, stderr: %s", strings.Join(args, " "), r.Code, r.Stderr)
				}
				return r.Stdout
			}

			var envID, fileID, userID string
			t.Run("CreateFromFlag", func(t *testing.T) {
				out := mustRun("secrets", "create", "--name", "NPM_TOKEN", "--env-var", "--value", marker+"-flag")
				if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, " NPM_TOKEN ") || !strings.Contains(out, " env:NPM_TOKEN ") {
					t.Errorf("create printed %q", out)
				}
				var res struct{ Secret cliSecret }
				mustDecode(t, mustRun("secrets", "create", "--name", "GITHUB_TOKEN", "--env-var", "--value", marker+"-gh", "-o", "json"), &res)
				if res.Secret.Name != "GITHUB_TOKEN" || res.Secret.EnvironmentVariable == nil || !*res.Secret.EnvironmentVariable ||
					res.Secret.Scope.OrganizationID != who.OrganizationID {
					t.Fatalf("created secret: %+v", res.Secret)
				}
				envID = res.Secret.ID
				if got := value(envID); got != marker+"-gh" {
					t.Fatalf("value = %q", got)
				}
			})
			t.Run("CreateFromFile", func(t *testing.T) {
				dir := t.TempDir()
				// A variable loses the newline `echo` adds; a file keeps
				// every byte.
				envFile := filepath.Join(dir, "token")
				os.WriteFile(envFile, []byte(marker+"-file\n"), 0o600)
				keyFile := filepath.Join(dir, "key")
				os.WriteFile(keyFile, []byte("-----BEGIN KEY-----\n"+marker+"\n-----END KEY-----\n"), 0o600)
				var res struct{ Secret cliSecret }
				mustDecode(t, mustRun("secrets", "create", "--name", "FROM_FILE", "--env-var", "--value-file", envFile, "-o", "json"), &res)
				if got := value(res.Secret.ID); got != marker+"-file" {
					t.Fatalf("variable from a file = %q, want no trailing newline", got)
				}
				out := mustRun("secrets", "create", "--name", "deploy key", "--file-path", "/home/me/.ssh/id", "--value-file", keyFile)
				if !strings.Contains(out, " file:/home/me/.ssh/id ") {
					t.Errorf("create printed %q", out)
				}
				var list struct{ Secrets []cliSecret }
				mustDecode(t, mustRun("secrets", "list", "-o", "json"), &list)
				i := slices.IndexFunc(list.Secrets, func(c cliSecret) bool { return c.Name == "deploy key" })
				if i < 0 || list.Secrets[i].FilePath != "/home/me/.ssh/id" {
					t.Fatalf("file secret in list: %+v", list.Secrets)
				}
				fileID = list.Secrets[i].ID
				if got, want := value(fileID), "-----BEGIN KEY-----\n"+marker+"\n-----END KEY-----\n"; got != want {
					t.Fatalf("file secret = %q, want %q", got, want)
				}
			})
			t.Run("CreateUserScope", func(t *testing.T) {
				user := "0d4c5b7e-8a2f-4f55-9d1e-2b0f3c6a7e91"
				var res struct{ Secret cliSecret }
				mustDecode(t, mustRun("secrets", "create", "--name", "NPM_TOKEN", "--env-var", "--value", marker+"-user", "--user", user, "-o", "json"), &res)
				if res.Secret.Scope.UserID != user {
					t.Fatalf("user secret's scope: %+v", res.Secret.Scope)
				}
				userID = res.Secret.ID
			})
			t.Run("List", func(t *testing.T) {
				table := mustRun("secrets", "list")
				for _, id := range []string{envID, fileID, userID} {
					tableRow(t, table, id)
				}
				if row := tableRow(t, table, envID); !slices.Contains(row, "GITHUB_TOKEN") || !slices.Contains(row, "organization") || !slices.Contains(row, "env:GITHUB_TOKEN") {
					t.Errorf("list row = %q", row)
				}
				if row := tableRow(t, table, fileID); !slices.Contains(row, "file:/home/me/.ssh/id") {
					t.Errorf("list row = %q", row)
				}
				var list struct{ Secrets []cliSecret }
				mustDecode(t, mustRun("secrets", "list", "--user", "0d4c5b7e-8a2f-4f55-9d1e-2b0f3c6a7e91", "-o", "json"), &list)
				if len(list.Secrets) != 1 || list.Secrets[0].ID != userID {
					t.Errorf("list --user = %+v", list.Secrets)
				}
				mustDecode(t, mustRun("secrets", "list", "--organization", "-o", "json"), &list)
				if len(list.Secrets) != 4 || slices.ContainsFunc(list.Secrets, func(c cliSecret) bool { return c.ID == userID }) {
					t.Errorf("list --organization = %+v", list.Secrets)
				}
			})
			t.Run("Update", func(t *testing.T) {
				f := filepath.Join(t.TempDir(), "new")
				os.WriteFile(f, []byte(marker+"-rotated\n"), 0o600)
				out := mustRun("secrets", "update", envID, "--env-var", "--value-file", f)
				if !strings.Contains(out, "updated") {
					t.Errorf("update printed %q", out)
				}
				if got := value(envID); got != marker+"-rotated" {
					t.Fatalf("value after update = %q", got)
				}
			})
			t.Run("Delete", func(t *testing.T) {
				out := mustRun("secrets", "delete", "--yes", userID)
				if !strings.Contains(out, "deleted") {
					t.Errorf("delete printed %q", out)
				}
				if _, ok := deliveredValue(t, st, "", s.DataDir, who.OrganizationID, userID); ok {
					t.Fatal("a deleted secret still has a value")
				}
				requireOneLineError(t, run("secrets", "delete", "--yes", userID), 3, "not found")
			})
			t.Run("Errors", func(t *testing.T) {
				requireOneLineError(t, run("secrets", "create", "--value", marker), 2, "name")
				requireOneLineError(t, run("secrets", "create", "--name", "X"), 2, "value")
				requireOneLineError(t, run("secrets", "create", "--name", "X", "--value", marker, "--value-file", "f"), 2, "value")
				requireOneLineError(t, run("secrets", "create", "--name", "X", "--env-var", "--file-path", "/x", "--value", marker), 2, "env-var")
				requireOneLineError(t, run("secrets", "create", "--name", "X", "--value-file", "/does/not/exist"), 2, "--value-file")
				requireOneLineError(t, run("secrets", "create", "--name", "bad-name", "--env-var", "--value", marker), 2, "name:")
				requireOneLineError(t, run("secrets", "create", "--name", "GITHUB_TOKEN", "--env-var", "--value", marker), 4, "already exists")
				requireOneLineError(t, run("secrets", "create", "--name", "X", "--value", marker, "--user", "bob"), 2, "--user: must be a UUID")
				requireOneLineError(t, run("secrets", "update", "not-a-name", "--value", marker), 3, `secret "not-a-name" not found`)
				requireOneLineError(t, run("secrets", "delete", "--yes"), 2, "SECRET")
				r := s.run(t, s.readOnlySecretsKey(t), "secrets", "create", "--name", "X", "--value", marker)
				outputs = append(outputs, r.Stdout, r.Stderr)
				requireOneLineError(t, r, 6, "secrets:write")
			})
			for _, o := range outputs {
				if strings.Contains(o, marker) {
					t.Fatalf("a command printed a value:\n%s", o)
				}
			}
		})
	}
}

func mustDecode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
}

// readOnlySecretsKey creates an API key that may only read secrets.
func (s *serverProc) readOnlySecretsKey(t *testing.T) string {
	t.Helper()
	out := s.mustRun(t, adminToken, "tokens", "create", "--name", "secrets-reader", "--scopes", "secrets:read")
	key := apiKeyRe.FindString(out)
	if key == "" {
		t.Fatalf("no key in %q", out)
	}
	return key
}

// TestSecretsCLI_Key checks where the server's secrets key comes from: a
// file created on first start and kept across restarts, or
// RUNYARD_SECRETS_KEY, whose bad value stops the start with one line.
func TestSecretsCLI_Key(t *testing.T) {
	t.Run("FileKeptAcrossRestarts", func(t *testing.T) {
		cfg := serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}}
		s := startServer(t, cfg)
		cfg.DataDir = s.DataDir
		fi, err := os.Stat(filepath.Join(s.DataDir, secrets.KeyFile))
		if err != nil {
			t.Fatalf("no key file: %v", err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("key file mode = %v, want 0600", got)
		}
		var res struct{ Secret cliSecret }
		s.mustJSON(t, adminToken, &res, "secrets", "create", "--name", "KEPT", "--env-var", "--value", "kept-value")
		s.stop(t)

		s = startServer(t, cfg)
		var who struct {
			OrganizationID string `json:"organizationId"`
		}
		s.mustJSON(t, adminToken, &who, "whoami")
		st := openServerStore(t, s.DataDir, "")
		if got, _ := deliveredValue(t, st, "", s.DataDir, who.OrganizationID, res.Secret.ID); got != "kept-value" {
			t.Fatalf("value after a restart = %q", got)
		}
	})
	t.Run("FromEnvironment", func(t *testing.T) {
		key, err := secrets.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken, secrets.KeyEnv + "=" + key}})
		if _, err := os.Stat(filepath.Join(s.DataDir, secrets.KeyFile)); !os.IsNotExist(err) {
			t.Errorf("with %s set the server still wrote %s (%v)", secrets.KeyEnv, secrets.KeyFile, err)
		}
		var res struct{ Secret cliSecret }
		s.mustJSON(t, adminToken, &res, "secrets", "create", "--name", "ENV_KEYED", "--env-var", "--value", "env-value")
		var who struct {
			OrganizationID string `json:"organizationId"`
		}
		s.mustJSON(t, adminToken, &who, "whoami")
		st := openServerStore(t, s.DataDir, "")
		if got, _ := deliveredValue(t, st, key, s.DataDir, who.OrganizationID, res.Secret.ID); got != "env-value" {
			t.Fatalf("value with the environment's key = %q", got)
		}
	})
	t.Run("ErrBadEnvironmentKey", func(t *testing.T) {
		const bad = "dG9vLXNob3J0"
		code, s := runServerToExit(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken, secrets.KeyEnv + "=" + bad}})
		if code == 0 {
			t.Errorf("exit code = 0, want non-zero")
		}
		requireServerError(t, "server", s.Stderr.String(), secrets.KeyEnv, "32")
		if strings.Contains(s.Stdout.String()+s.Stderr.String(), bad) {
			t.Errorf("the server echoed the rejected key")
		}
	})
}
