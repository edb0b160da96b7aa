package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ini is a unit file parsed back: section -> key -> values in order (a key
// may repeat).
type ini map[string]map[string][]string

// parseINI reads a unit file the way systemd does for the simple lines the
// renderer writes: comments start with # or ;, sections are [Name], and
// every other non-empty line is Key=Value.
func parseINI(t *testing.T, b []byte) ini {
	t.Helper()
	out := ini{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if _, dup := out[section]; dup {
				t.Fatalf("line %d: section [%s] twice", n, section)
			}
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || k != strings.TrimSpace(k) || k == "" {
				t.Fatalf("line %d: %q is not Key=Value inside a section", n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// get returns the one value of key, failing when it is missing or repeated.
func (u ini) get(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Fatalf("[%s] %s has %d values %q, want exactly 1", section, key, len(vs), vs)
	}
	return vs[0]
}

func TestRunnerUnit_Render(t *testing.T) {
	for _, tt := range []struct {
		name      string
		unit      RunnerUnit
		user      string
		execStart string
		rwPaths   string
	}{
		{
			name:      "OK",
			unit:      RunnerUnit{Binary: "/usr/local/bin/runyard", StateDir: "/var/lib/runyard-runner"},
			user:      "root",
			execStart: "/usr/local/bin/runyard runner --state-dir /var/lib/runyard-runner",
			rwPaths:   "/var/lib/runyard-runner",
		},
		{
			name: "ServerUserAndFlags",
			unit: RunnerUnit{Binary: "/opt/runyard/runyard", StateDir: "/srv/runner", Server: "https://cp.example.com:8443",
				User: "runyard", Args: []string{"--labels", "gpu,high-memory", "--max-pods", "3"}},
			user:      "runyard",
			execStart: "/opt/runyard/runyard runner --state-dir /srv/runner --server https://cp.example.com:8443 --labels gpu,high-memory --max-pods 3",
			rwPaths:   "/srv/runner",
		},
		{
			name:      "QuotesSpacesAndEscapesSpecifiers",
			unit:      RunnerUnit{Binary: "/opt/my tools/runyard", StateDir: `/var/lib/100% "odd" $dir`, Args: []string{"--name", `a\b`}},
			user:      "root",
			execStart: `"/opt/my tools/runyard" runner --state-dir "/var/lib/100%% \"odd\" $$dir" --name "a\\b"`,
			rwPaths:   `"/var/lib/100%% \"odd\" $dir"`,
		},
		{
			name:      "NumericUser",
			unit:      RunnerUnit{Binary: "/bin/runyard", StateDir: "/state", User: "1001"},
			user:      "1001",
			execStart: "/bin/runyard runner --state-dir /state",
			rwPaths:   "/state",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.unit.Render()
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			u := parseINI(t, b)
			if got, want := len(u), 3; got != want {
				t.Errorf("sections %v, want Unit, Service and Install", u)
			}
			for _, c := range []struct{ section, key, want string }{
				{"Unit", "Description", "runyard runner"},
				{"Unit", "After", "network-online.target"},
				{"Unit", "Wants", "network-online.target"},
				{"Service", "Type", "notify"},
				{"Service", "NotifyAccess", "main"},
				{"Service", "User", tt.user},
				{"Service", "ExecStart", tt.execStart},
				{"Service", "Restart", "on-failure"},
				{"Service", "RestartSec", RestartSec},
				{"Service", "RestartPreventExitStatus", "1 5 6 10"},
				{"Service", "KillMode", "process"},
				{"Service", "NoNewPrivileges", "true"},
				{"Service", "ProtectSystem", "full"},
				{"Service", "PrivateTmp", "true"},
				{"Service", "ReadWritePaths", tt.rwPaths},
				{"Install", "WantedBy", "multi-user.target"},
			} {
				if got := u.get(t, c.section, c.key); got != c.want {
					t.Errorf("[%s] %s = %q, want %q", c.section, c.key, got, c.want)
				}
			}
			if got, want := unquoteExec(t, u.get(t, "Service", "ExecStart")), tt.unit.Command(); !slices.Equal(got, want) {
				t.Errorf("ExecStart reads back as %q, want %q", got, want)
			}
		})
	}
}

// TestRunnerUnit_SystemdAnalyzeVerify checks rendered units with systemd's
// own parser (`systemd-analyze verify`, which needs no running systemd):
// every directive is known and its value parses, ExecStart's binary is
// found. It skips only where the tool is not installed (.ci/run installs
// it).
func TestRunnerUnit_SystemdAnalyzeVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	// A binary that exists and runs: verify checks ExecStart's.
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(t.TempDir(), "my tools")
	if err := os.Mkdir(spaced, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(spaced, "runyard")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		unit RunnerUnit
	}{
		{"Plain", RunnerUnit{Binary: bin, StateDir: "/var/lib/runyard-runner"}},
		{"ServerUserAndFlags", RunnerUnit{Binary: bin, StateDir: "/srv/runner", Server: "https://cp.example.com:8443",
			User: "runyard", Args: []string{"--labels", "gpu,high-memory", "--max-pods", "3"}}},
		{"Quoted", RunnerUnit{Binary: filepath.Join(spaced, "runyard"), StateDir: `/var/lib/100% "odd" $dir`, Args: []string{"--name", `a\b c`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text, err := tt.unit.Render()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), DefaultUnitName+".service")
			if err := os.WriteFile(path, text, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool, "verify", "--man=no", path)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			// verify exits 0 after some complaints (an unknown key is
			// "ignoring"): any word about the unit fails the test.
			if err != nil || strings.Contains(string(out), filepath.Base(path)) {
				t.Fatalf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, text)
			}
		})
	}
}

func TestRunnerUnit_Validate(t *testing.T) {
	ok := RunnerUnit{Binary: "/usr/local/bin/runyard", StateDir: "/var/lib/runyard-runner"}
	for _, tt := range []struct {
		name   string
		change func(*RunnerUnit)
		want   string
	}{
		{"ErrRelativeBinary", func(u *RunnerUnit) { u.Binary = "runyard" }, "not absolute"},
		{"ErrRelativeStateDir", func(u *RunnerUnit) { u.StateDir = "state" }, "not absolute"},
		{"ErrServerNotURL", func(u *RunnerUnit) { u.Server = "cp:8080" }, "http:// or https://"},
		{"ErrNewlineInServer", func(u *RunnerUnit) { u.Server = "http://cp\nExecStartPre=/bin/sh" }, "http"},
		{"ErrNewlineInStateDir", func(u *RunnerUnit) { u.StateDir = "/state\nUser=root" }, "control character"},
		{"ErrNewlineInArgs", func(u *RunnerUnit) { u.Args = []string{"--name", "x\ny"} }, "control character"},
		{"ErrBadUser", func(u *RunnerUnit) { u.User = "root; rm" }, "not a valid user name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := ok
			tt.change(&u)
			_, err := u.Render()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		if err := ok.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"runyard-runner":         "runyard-runner.service",
		"runyard-runner.service": "runyard-runner.service",
		"runner_2.gpu":           "runner_2.gpu.service",
	} {
		if got, err := FileName(in); err != nil || got != want {
			t.Errorf("FileName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".service", "a/b", "../x", "runner@1", "has space", "x\n"} {
		if got, err := FileName(bad); err == nil {
			t.Errorf("FileName(%q) = %q, want an error", bad, got)
		}
	}
}

// unquoteExec splits an ExecStart= value the way systemd does for what the
// renderer writes: words split on spaces, double quotes group, backslash
// escapes inside quotes, and $$ and %% stand for $ and %.
func unquoteExec(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
		case c == '"':
			inQuote, inWord = !inQuote, true
		case c == ' ' && !inQuote:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	for i, w := range words {
		words[i] = strings.NewReplacer("$$", "$", "%%", "%").Replace(w)
	}
	return words
}
