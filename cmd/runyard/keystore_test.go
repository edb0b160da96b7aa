package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_KeyStore: where no OS keyring answers (no session bus), login
// keeps the key in the configuration file (0600) and `auth status` says so
// and why; where one does (gnome-keyring's Secret Service in a
// dbus-run-session), the file keeps no key, `auth status` says the
// keyring, the key works, and `context delete` removes it from the keyring.
func TestCLI_KeyStore(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)

	t.Run("FileFallback", func(t *testing.T) {
		cfg := t.TempDir()
		env := []string{"XDG_CONFIG_HOME=" + cfg}
		r := runCLIInput(t, "", env, adminToken+"\n", "login", s.URL, "--with-token", "--name", "file")
		if r.Code != 0 || !strings.Contains(r.Stderr, "mode 0600") || !strings.Contains(r.Stderr, "no D-Bus session bus") {
			t.Fatalf("login without a keyring: %d %q", r.Code, r.Stderr)
		}
		path := filepath.Join(cfg, "runyard", "config.yaml")
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("config file: %v %v", err, fi)
		}
		if b, _ := os.ReadFile(path); !strings.Contains(string(b), adminToken) {
			t.Errorf("the file does not hold the key:\n%s", b)
		}
		r = runCLI(t, "", env, "auth", "status", "-o", "json")
		var st struct{ KeyStore string }
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			t.Fatalf("auth status: %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(st.KeyStore, path) || !strings.Contains(st.KeyStore, "no OS keyring") {
			t.Errorf("auth status keyStore %q, want the file and why", st.KeyStore)
		}
	})

	t.Run("Keyring", func(t *testing.T) {
		for _, tool := range []string{"dbus-run-session", "dbus-send", "gnome-keyring-daemon"} {
			if _, err := exec.LookPath(tool); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is missing (.ci/run installs dbus and gnome-keyring)", tool)
				}
				t.Skipf("%s is not installed", tool)
			}
		}
		cfg, home := t.TempDir(), t.TempDir()
		// One session bus with an unlocked gnome-keyring for the whole
		// script: the keyring lives as long as the session.
		script := fmt.Sprintf(`set -e
echo -n test-keyring-password | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
# The daemon returns before its Secret Service is on the bus: wait for it
# (bounded).
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "no Secret Service on the bus"; exit 1; }; sleep 0.1
done
echo %[3]s | %[1]s login %[2]s --with-token --name kr
echo "--- config"; cat "$XDG_CONFIG_HOME/runyard/config.yaml"
echo "--- status"; %[1]s auth status -o json
echo "--- whoami"; %[1]s whoami
%[1]s context delete kr --yes
echo "--- relogin"; echo %[3]s | %[1]s login %[2]s --with-token --name kr
%[1]s context delete kr --yes
`, bin, s.URL, adminToken)
		cmd := exec.Command("dbus-run-session", "--", "sh", "-c", script)
		cmd.Dir, cmd.Env = emptyDir, processEnv("XDG_CONFIG_HOME="+cfg, "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("keyring session: %v\n%s", err, out)
		}
		text := string(out)
		config := between(text, "--- config", "--- status")
		status := between(text, "--- status", "--- whoami")
		if !strings.Contains(text, "the key is in the OS keyring") || strings.Contains(config, adminToken) || !strings.Contains(config, "token-store: keyring") {
			t.Errorf("login with a keyring: the key should be in the keyring, not the file:\n%s", text)
		}
		if !strings.Contains(status, `"keyStore": "the OS keyring"`) {
			t.Errorf("auth status with a keyring:\n%s", status)
		}
		if !strings.Contains(between(text, "--- whoami", "--- relogin"), "PRINCIPAL_SERVICE_ACCOUNT") && !strings.Contains(text, "service-account") {
			t.Errorf("whoami with the keyring's key:\n%s", text)
		}
	})
}

// between is the text of s after from and before to.
func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(rest, to)
	return before
}
