package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitValue returns the one value of key in section of a unit file, parsing
// it back as INI: comments, [Section] lines and Key=Value lines.
func unitValue(t *testing.T, unit, section, key string) string {
	t.Helper()
	cur := ""
	var vals []string
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q is not Key=Value", line)
			}
			if cur == section && k == key {
				vals = append(vals, v)
			}
		}
	}
	if len(vals) != 1 {
		t.Fatalf("[%s] %s has values %q, want exactly one\n%s", section, key, vals, unit)
	}
	return vals[0]
}

// fakeStateDir is a state dir that looks registered, for the commands that
// check only that credentials exist.
func fakeStateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte(`{"server":"http://127.0.0.1:1","accessToken":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunnerInstallService(t *testing.T) {
	t.Run("Print", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state")
		unitDir := t.TempDir()
		r := runCLI(t, "", nil, "runner", "install-service", "--state-dir", state, "--server", "http://cp.example:8080",
			"--user", "runyard", "--labels", "gpu", "--unit-dir", unitDir, "--print")
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
		}
		want := strings.Join([]string{bin, "runner", "--state-dir", state, "--server", "http://cp.example:8080", "--labels", "gpu"}, " ")
		if got := unitValue(t, r.Stdout, "Service", "ExecStart"); got != want {
			t.Errorf("ExecStart = %q, want %q", got, want)
		}
		for _, c := range []struct{ section, key, want string }{
			{"Service", "User", "runyard"},
			{"Service", "Type", "notify"},
			{"Service", "NotifyAccess", "main"},
			{"Service", "Restart", "on-failure"},
			{"Service", "RestartPreventExitStatus", "1 5 6 10"},
			{"Service", "ReadWritePaths", state},
			{"Unit", "After", "network-online.target"},
			{"Install", "WantedBy", "multi-user.target"},
		} {
			if got := unitValue(t, r.Stdout, c.section, c.key); got != c.want {
				t.Errorf("[%s] %s = %q, want %q", c.section, c.key, got, c.want)
			}
		}
		if entries, _ := os.ReadDir(unitDir); len(entries) != 0 {
			t.Errorf("--print wrote %d files", len(entries))
		}
	})
	t.Run("PrintRelativeStateDirIsAbsolute", func(t *testing.T) {
		r := runCLI(t, "", nil, "runner", "install-service", "--state-dir", "rel/state", "--print")
		if got, want := unitValue(t, r.Stdout, "Service", "ReadWritePaths"), filepath.Join(emptyDir, "rel/state"); got != want {
			t.Errorf("ReadWritePaths = %q, want %q", got, want)
		}
	})
	t.Run("ErrStateDirRequired", func(t *testing.T) {
		requireOneLineError(t, runCLI(t, "", nil, "runner", "install-service", "--print"), 2, "state-dir")
	})
	t.Run("ErrPrintWithExchangeToken", func(t *testing.T) {
		r := runCLI(t, "", nil, "runner", "install-service", "--state-dir", "/s", "--print", "--exchange-token", "ryd_ex_x")
		requireOneLineError(t, r, 2, "--print", "--exchange-token")
	})
	t.Run("ErrBadUnitName", func(t *testing.T) {
		r := runCLI(t, "", nil, "runner", "install-service", "--state-dir", "/s", "--unit-name", "../evil", "--print")
		requireOneLineError(t, r, 2, "--unit-name")
	})
	t.Run("ErrNoCredentials", func(t *testing.T) {
		unitDir := t.TempDir()
		r := runCLI(t, "", nil, "runner", "install-service", "--state-dir", filepath.Join(t.TempDir(), "empty"), "--unit-dir", unitDir)
		requireOneLineError(t, r, 7, "no credentials", "--exchange-token")
		if entries, _ := os.ReadDir(unitDir); len(entries) != 0 {
			t.Errorf("a refused install left %d files in the unit dir", len(entries))
		}
	})

	t.Run("WriteRefuseOverwriteForce", func(t *testing.T) {
		state := fakeStateDir(t)
		unitDir := t.TempDir()
		path := filepath.Join(unitDir, "ci-runner.service")
		args := []string{"runner", "install-service", "--state-dir", state, "--unit-dir", unitDir, "--unit-name", "ci-runner"}

		r := runCLI(t, "", nil, args...)
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
		}
		if !strings.Contains(r.Stdout, path) || !strings.Contains(r.Stdout, "systemctl daemon-reload && systemctl enable --now ci-runner\n") {
			t.Errorf("stdout does not name the unit and the next steps:\n%s", r.Stdout)
		}
		if strings.Contains(r.Stdout, "chown") {
			t.Errorf("stdout asks for a chown although the service runs as root:\n%s", r.Stdout)
		}
		checkMode(t, path, 0o644)
		written, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		printed := runCLI(t, "", nil, append(args, "--print")...).Stdout
		if string(written) != printed {
			t.Errorf("written unit differs from --print:\n%s\n---\n%s", written, printed)
		}
		if entries, _ := os.ReadDir(unitDir); len(entries) != 1 {
			t.Errorf("unit dir holds %d files, want only the unit", len(entries))
		}

		r = runCLI(t, "", nil, append(args, "--user", "runyard")...)
		requireOneLineError(t, r, 4, path, "--force")
		if again, _ := os.ReadFile(path); string(again) != string(written) {
			t.Errorf("a refused overwrite changed the unit")
		}

		r = runCLI(t, "", nil, append(args, "--user", "runyard", "--force")...)
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("--force: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "chown -R runyard: "+state+"\n") {
			t.Errorf("stdout does not ask to give the state dir to the user:\n%s", r.Stdout)
		}
		forced, _ := os.ReadFile(path)
		if got := unitValue(t, string(forced), "Service", "User"); got != "runyard" {
			t.Errorf("after --force, User = %q, want runyard", got)
		}
		checkMode(t, path, 0o644)
	})
}

// TestRunnerInstallService_ExchangeToken installs a service with a fresh
// exchange token against a real server, then starts the runner with exactly
// the unit's ExecStart, as systemd would.
func TestRunnerInstallService_ExchangeToken(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	id, exchange := registerRunner(t, s, "service-host")
	state := filepath.Join(t.TempDir(), "state")
	unitDir := t.TempDir()

	t.Run("ErrRefusedTokenWritesNothing", func(t *testing.T) {
		dir := t.TempDir()
		r := runCLI(t, "", nil, "--server", s.URL, "runner", "install-service", "--state-dir", filepath.Join(t.TempDir(), "state"),
			"--unit-dir", dir, "--exchange-token", "ryd_ex_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		if r.Code != 1 {
			t.Errorf("exit code = %d, want 1 (stderr %q)", r.Code, r.Stderr)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a refused token left %d files in the unit dir", len(entries))
		}
	})

	r := runCLI(t, "", nil, "--server", s.URL, "runner", "install-service", "--state-dir", state, "--unit-dir", unitDir,
		"--exchange-token", exchange, "--name", "service-host")
	if r.Code != 0 {
		t.Fatalf("install-service: exit %d, stderr %q", r.Code, r.Stderr)
	}
	unit, err := os.ReadFile(filepath.Join(unitDir, "runyard-runner.service"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(unit), "ryd_ex_") || strings.Contains(string(unit), "exchange-token") {
		t.Fatalf("the unit holds the exchange token:\n%s", unit)
	}
	checkMode(t, filepath.Join(state, "credentials.json"), 0o600)

	// The paths of this test need no quoting, so splitting on spaces is how
	// systemd reads the line.
	argv := strings.Fields(unitValue(t, string(unit), "Service", "ExecStart"))
	if want := []string{bin, "runner", "--state-dir", state, "--server", s.URL, "--name", "service-host"}; !slices.Equal(argv, want) {
		t.Fatalf("ExecStart = %q, want %q", argv, want)
	}
	startRunner(t, argv[2:]...)
	eventually(t, "the runner started by the unit's command is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
}

// TestRunnerInstallService_TLS: against a control plane whose certificate
// is of its own CA, install-service --ca-file exchanges the token trusting
// it, the unit's command carries the CA file (as an absolute path), and
// the runner that command starts reaches the control plane.
func TestRunnerInstallService_TLS(t *testing.T) {
	cert := newTestCert(t)
	s := startServer(t, serverConfig{Cert: cert, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	id, exchange := registerRunner(t, s, "tls-service-host")
	state := filepath.Join(t.TempDir(), "state")
	unitDir := t.TempDir()
	r := runCLI(t, "", nil, "--server", s.URL, "--ca-file", cert.CertFile, "runner", "install-service", "--state-dir", state,
		"--unit-dir", unitDir, "--exchange-token", exchange)
	if r.Code != 0 {
		t.Fatalf("install-service --ca-file: exit %d, stderr %q", r.Code, r.Stderr)
	}
	unit, err := os.ReadFile(filepath.Join(unitDir, "runyard-runner.service"))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Fields(unitValue(t, string(unit), "Service", "ExecStart"))
	if want := []string{bin, "runner", "--state-dir", state, "--server", s.URL, "--ca-file", cert.CertFile}; !slices.Equal(argv, want) {
		t.Fatalf("ExecStart = %q, want %q", argv, want)
	}
	startRunner(t, argv[2:]...)
	eventually(t, "the runner started by the unit's command is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
}
