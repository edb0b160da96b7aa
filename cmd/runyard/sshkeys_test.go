package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sshKeysScopes are the scopes of the users' keys in the SSH keys test.
var sshKeysScopes = []string{"environments:read", "environments:write", "runners:read"}

// TestEnvironmentsAccess_UserSSHKeys: users register their own SSH keys
// (runyard ssh-keys) and log in with OpenSSH as the environments they may
// enter: a member their own, an admin every environment of the
// organization; a deleted key logs in nowhere.
func TestEnvironmentsAccess_UserSSHKeys(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testUserSSHKeys(t, b.databaseURL(t))
		})
	}
}

func testUserSSHKeys(t *testing.T, dbURL string) {
	a := startAccessEnv(t, dbURL, "--ssh-listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(sshAddr(t, a.s))
	const pw = "a long passphrase for ssh keys"
	for _, u := range []struct{ email, role string }{{"ada@example.com", "member"}, {"bob@example.com", "admin"}} {
		if r := a.s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", u.email, "--password-stdin", "--org", "default", "--role", u.role); r.Code != 0 {
			t.Fatalf("users create: %+v", r)
		}
	}
	ada, bob := userKey(t, a.s, "ada@example.com", pw, sshKeysScopes...), userKey(t, a.s, "bob@example.com", pw, sshKeysScopes...)
	repo := makeGitRepo(t, map[string]string{"own.txt": "ada's own\n"})
	out := a.s.mustRun(t, ada, "environments", "create", "--git", repo, "--name", "ada-env", "--wait")
	adaEnv := uuidRe.FindString(out)
	if adaEnv == "" {
		t.Fatalf("environments create printed no ID:\n%s", out)
	}
	adaSSH, bobSSH := newSSHClient(t), newSSHClient(t)

	t.Run("Add", func(t *testing.T) {
		out := a.s.mustRun(t, ada, "ssh-keys", "add", adaSSH.key+".pub", "--name", "ada-laptop")
		if !strings.Contains(out, "Added SSH key") || !strings.Contains(out, "SHA256:") {
			t.Fatalf("ssh-keys add printed %q", out)
		}
		r := a.s.runWithStdin(t, bob, bobSSH.publicKey(t)+"\n", "ssh-keys", "add", "-")
		if r.Code != 0 {
			t.Fatalf("ssh-keys add -: %+v", r)
		}
		var list struct {
			SSHKeys []struct{ ID, Name, Fingerprint, PublicKey string } `json:"ssh_keys"`
		}
		a.s.mustJSON(t, ada, &list, "ssh-keys", "list")
		if len(list.SSHKeys) != 1 || list.SSHKeys[0].Name != "ada-laptop" || !strings.HasPrefix(list.SSHKeys[0].PublicKey, "ssh-ed25519 ") {
			t.Fatalf("ada's keys: %+v", list.SSHKeys)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		requireOneLineError(t, a.s.run(t, ada, "ssh-keys", "add", adaSSH.key), 2, "private key")
		requireOneLineError(t, a.s.run(t, ada, "ssh-keys", "add", adaSSH.key+".pub"), 4, "already")
		requireOneLineError(t, a.s.run(t, ada, "ssh-keys", "add", filepath.Join(t.TempDir(), "missing.pub")), 2, "missing.pub")
		// The bootstrap key is no user's.
		requireOneLineError(t, a.s.run(t, adminToken, "ssh-keys", "list"), 6, "users")
	})
	t.Run("MemberOwnEnvironment", func(t *testing.T) {
		r := adaSSH.run(t, "", "ssh", port, false, adaEnv+"@127.0.0.1", "cat own.txt; exit 3")
		if r.Code != 3 || r.Stdout != "ada's own\n" {
			t.Fatalf("ssh with ada's key into her environment: %+v", r)
		}
		r = adaSSH.run(t, "", "ssh", port, true, a.envID+"@127.0.0.1", "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Fatalf("ssh with a member's key into another's environment: %+v", r)
		}
	})
	t.Run("AdminEveryEnvironment", func(t *testing.T) {
		for _, env := range []string{adaEnv, a.envID} {
			r := bobSSH.run(t, "", "ssh", port, false, env+"@127.0.0.1", "cat hello.txt own.txt 2>/dev/null; echo admin-in")
			if r.Code != 0 || !strings.Contains(r.Stdout, "admin-in") {
				t.Fatalf("ssh with an admin's key into %s: %+v", env, r)
			}
		}
	})
	t.Run("Deleted", func(t *testing.T) {
		out := a.s.mustRun(t, ada, "ssh-keys", "delete", "ada-laptop", "--yes")
		if !strings.Contains(out, "deleted") {
			t.Fatalf("ssh-keys delete printed %q", out)
		}
		r := adaSSH.run(t, "", "ssh", port, true, adaEnv+"@127.0.0.1", "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Fatalf("ssh with a deleted key: %+v", r)
		}
		requireOneLineError(t, a.s.run(t, ada, "ssh-keys", "delete", "ada-laptop", "--yes"), 3, "`runyard ssh-keys list`")
	})
	t.Run("Audited", func(t *testing.T) {
		out := a.s.mustRun(t, adminToken, "audit", "list", "-o", "json")
		for _, want := range []string{`"runyard.v1.SSHKeyService/AddSSHKey"`, `"runyard.v1.SSHKeyService/DeleteSSHKey"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the audit log has no %s entry", want)
			}
		}
		if b, _ := os.ReadFile(adaSSH.key + ".pub"); strings.Contains(out, strings.Fields(string(b))[1]) {
			t.Error("the audit log holds a public key")
		}
	})
}
