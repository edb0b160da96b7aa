package main

import (
	"debug/buildinfo"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runnerProc is a running `runyard runner`.
type runnerProc struct {
	Stdout, Stderr *syncBuffer
	cmd            *exec.Cmd
	done           chan struct{}
}

func startRunner(t *testing.T, args ...string) *runnerProc {
	t.Helper()
	return startRunnerBin(t, bin, args...)
}

// startRunnerBin is startRunner with another build of runyard.
func startRunnerBin(t *testing.T, binary string, args ...string) *runnerProc {
	t.Helper()
	return startRunnerEnv(t, binary, nil, args...)
}

// startRunnerEnv is startRunnerBin with more environment.
func startRunnerEnv(t *testing.T, binary string, env []string, args ...string) *runnerProc {
	t.Helper()
	p := &runnerProc{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"runner"}, args...)...)
	p.cmd.Dir = emptyDir
	p.cmd.Env = processEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start runner: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("runner stdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
		}
	})
	return p
}

func (p *runnerProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(exitTimeout):
		t.Fatalf("runner did not exit within %v; stderr:\n%s", exitTimeout, p.Stderr)
		return -1
	}
}

// eventually polls cond until it holds, failing the test after a generous
// deadline. It asserts that something happens, not how fast.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type runnerStatusJSON struct {
	Runner struct {
		RunnerID string `json:"runnerId"`
		Status   struct {
			Phase         string `json:"phase"`
			Message       string `json:"message"`
			SystemDetails string `json:"systemDetails"`
			Region        string `json:"region"`
			Version       string `json:"version"`
			UpdatedAt     string `json:"updatedAt"`
			PublicKey     string `json:"publicKey"`
		} `json:"status"`
	} `json:"runner"`
}

// phaseOf reads a runner's phase through the CLI; "" when it is gone.
func phaseOf(t *testing.T, s *serverProc, id string) (runnerStatusJSON, bool) {
	t.Helper()
	var r runnerStatusJSON
	res := s.run(t, adminToken, "runners", "get", id, "-o", "json")
	if res.Code == 3 {
		return r, false
	}
	if res.Code != 0 {
		t.Fatalf("runners get: exit %d: %s", res.Code, res.Stderr)
	}
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("decode runner: %v", err)
	}
	return r, true
}

func registerRunner(t *testing.T, s *serverProc, name string) (id, exchange string) {
	t.Helper()
	var out struct {
		Runner struct {
			RunnerID string `json:"runnerId"`
		} `json:"runner"`
		ExchangeToken string `json:"exchangeToken"`
	}
	s.mustJSON(t, adminToken, &out, "runners", "create", "--name", name, "--provider", "linux-host")
	return out.Runner.RunnerID, out.ExchangeToken
}

// TestRunner_Lifecycle drives one runner through registration, a kill -9, a
// restart, a control-plane restart, spec changes and deletion, with real
// processes over loopback.
func TestRunner_Lifecycle(t *testing.T) {
	cfg := serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: []string{"--runner-timeout", "1500ms"}}
	s := startServer(t, cfg)
	id, exchange := registerRunner(t, s, "lifecycle-host")
	state := filepath.Join(t.TempDir(), "state")

	r1 := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state, "--labels", "gpu", "--max-pods", "3", "--region", "eu-test-1")
	var got runnerStatusJSON
	eventually(t, "the runner is ACTIVE", func() bool {
		got, _ = phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	if !strings.HasPrefix(got.Runner.Status.SystemDetails, "linux/") || got.Runner.Status.PublicKey == "" || got.Runner.Status.UpdatedAt == "" {
		t.Fatalf("status after registration: %+v", got.Runner.Status)
	}
	if got.Runner.Status.Region != "eu-test-1" {
		t.Fatalf("status.region = %q, want the daemon's --region eu-test-1", got.Runner.Status.Region)
	}
	t.Run("StateDirModes", func(t *testing.T) {
		checkMode(t, state, 0o700)
		checkMode(t, filepath.Join(state, "credentials.json"), 0o600)
		checkMode(t, filepath.Join(state, "runner.key"), 0o600)
	})
	t.Run("SecondProcessRefused", func(t *testing.T) {
		r := runCLI(t, "", nil, "runner", "--server", s.URL, "--state-dir", state)
		requireOneLineError(t, r, 1, "another runyard runner", state)
	})

	// kill -9: no goodbye, so only the timeout can tell.
	r1.cmd.Process.Signal(syscall.SIGKILL)
	r1.waitExit(t)
	eventually(t, "the killed runner is INACTIVE", func() bool {
		got, _ = phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_INACTIVE"
	})
	if !strings.Contains(got.Runner.Status.Message, "no renewal") {
		t.Fatalf("inactive message = %q", got.Runner.Status.Message)
	}

	// A restart needs only --server and --state-dir and keeps the runner ID.
	r2 := startRunner(t, "--server", s.URL, "--state-dir", state)
	eventually(t, "the restarted runner is ACTIVE again", func() bool {
		got, _ = phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	if got.Runner.RunnerID != id {
		t.Fatalf("runner ID changed to %s", got.Runner.RunnerID)
	}

	// A control-plane restart needs no action on the runner.
	s.stop(t)
	before := strings.Count(r2.Stderr.String(), "connected to the control plane")
	cfg.DataDir = s.DataDir
	s2 := spawnServer(t, cfg, s.Addr)
	if err := s2.waitHealthy(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	eventually(t, "the runner reconnects by itself", func() bool {
		return strings.Count(r2.Stderr.String(), "connected to the control plane") > before
	})
	eventually(t, "the runner is ACTIVE on the restarted control plane", func() bool {
		got, _ = phaseOf(t, s2, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})

	// Spec changes reach the runner over its stream.
	s2.mustRun(t, adminToken, "runners", "update", id, "--log-level", "debug")
	eventually(t, "the runner logs at debug level", func() bool {
		return strings.Contains(r2.Stderr.String(), "received desired state")
	})
	s2.mustRun(t, adminToken, "runners", "update", id, "--desired-phase", "inactive")
	eventually(t, "the runner drains", func() bool { return strings.Contains(r2.Stderr.String(), "draining: taking no new work") })
	s2.mustRun(t, adminToken, "runners", "update", id, "--desired-phase", "active")
	eventually(t, "the runner takes work again", func() bool { return strings.Contains(r2.Stderr.String(), "active: taking work again") })

	// The daemon's access token, which the deletion must kill. With it the
	// CLI authenticates as the runner, which may not read runners.
	var creds struct {
		AccessToken string `json:"accessToken"`
	}
	b, err := os.ReadFile(filepath.Join(state, "credentials.json"))
	if err != nil {
		t.Fatalf("read the runner's credentials: %v", err)
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.AccessToken == "" {
		t.Fatalf("decode the runner's credentials: %v", err)
	}
	requireOneLineError(t, s2.run(t, creds.AccessToken, "runners", "get", id), 6, "runner tokens cannot")

	// Delete without force: the runner stops, confirms and exits 0.
	s2.mustRun(t, adminToken, "runners", "delete", "--yes", id)
	if code := r2.waitExit(t); code != 0 {
		t.Fatalf("runner exit code after deletion = %d, want 0", code)
	}
	if !strings.Contains(r2.Stdout.String(), "was deleted") {
		t.Fatalf("runner stdout after deletion: %q", r2.Stdout)
	}
	// It reads as DELETED, saying when and how, while its retention lasts.
	got, ok := phaseOf(t, s2, id)
	if !ok || got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" ||
		!strings.HasPrefix(got.Runner.Status.Message, "deleted at ") || !strings.Contains(got.Runner.Status.Message, "confirmed by its runner") {
		t.Fatalf("the deleted runner reads as %+v (found %v)", got.Runner.Status, ok)
	}
	requireOneLineError(t, s2.run(t, creds.AccessToken, "runners", "get", id), 5)
	if names := listRunnerNames(t, s2, adminToken); slices.Contains(names, "lifecycle-host") {
		t.Fatalf("runners list shows the deleted runner: %v", names)
	}
	// Deleting it again is fine; its name is free at once.
	s2.mustRun(t, adminToken, "runners", "delete", "--yes", id)
	if newID, _ := registerRunner(t, s2, "lifecycle-host"); newID == id {
		t.Fatal("the runner registered under the deleted runner's name got its ID")
	}
	if got, _ := phaseOf(t, s2, id); got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" {
		t.Fatalf("after its name was reused the deleted runner reads as %+v", got.Runner.Status)
	}
	if _, err := os.Stat(filepath.Join(state, "credentials.json")); !os.IsNotExist(err) {
		t.Fatalf("credentials of the deleted runner remain: %v", err)
	}
	// Its state dir can no longer start a runner.
	r := runCLI(t, "", nil, "runner", "--server", s2.URL, "--state-dir", state)
	requireOneLineError(t, r, 1, "no credentials", "--exchange-token")
}

// TestRunner_Revoked checks that revoking a runner's token ends its stream
// and the daemon exits with a clear message instead of retrying forever.
func TestRunner_Revoked(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	id, exchange := registerRunner(t, s, "revoked-host")
	state := filepath.Join(t.TempDir(), "state")
	p := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state)
	eventually(t, "the runner is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	var tokens struct {
		Tokens []struct {
			TokenID  string `json:"tokenId"`
			RunnerID string `json:"runnerId"`
		} `json:"tokens"`
	}
	s.mustJSON(t, adminToken, &tokens, "tokens", "list")
	revoked := 0
	for _, tk := range tokens.Tokens {
		if tk.RunnerID == id {
			s.mustRun(t, adminToken, "tokens", "revoke", "--yes", tk.TokenID)
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("found %d tokens of the runner, want 1", revoked)
	}
	if code := p.waitExit(t); code != 5 {
		t.Fatalf("runner exit code after revocation = %d, want 5 (unauthenticated)", code)
	}
	requireOneLine(t, "runner stderr", lastLine(p.Stderr.String()), "revoked")

	// A new exchange token brings the same runner back.
	fresh := strings.TrimSpace(s.mustRun(t, adminToken, "runners", "token", id))
	startRunner(t, "--server", s.URL, "--exchange-token", fresh, "--state-dir", state)
	eventually(t, "the runner is back with a new token", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1] + "\n"
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %o, want %o", path, got, want)
	}
}

// TestRunner_HealthEndpoints checks --health-addr: /healthz stays 200 while
// the control plane is away (restarting the runner would not help), /readyz
// follows the connection.
func TestRunner_HealthEndpoints(t *testing.T) {
	cfg := serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}}
	s := startServer(t, cfg)
	_, exchange := registerRunner(t, s, "health-host")
	addr := freePort(t)
	startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--health-addr", addr)
	status := func(path string) int {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	eventually(t, "the runner is ready", func() bool { return status("/readyz") == http.StatusOK })
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz = %d while connected", got)
	}
	s.stop(t)
	eventually(t, "the runner is not ready without a control plane", func() bool { return status("/readyz") == http.StatusServiceUnavailable })
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz = %d while the control plane is away, want 200", got)
	}
	cfg.DataDir = s.DataDir
	s2 := spawnServer(t, cfg, s.Addr)
	if err := s2.waitHealthy(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	eventually(t, "the runner is ready again", func() bool { return status("/readyz") == http.StatusOK })
}

// binRevision is the vcs.revision the go command stamped into binary;
// empty when it has none.
func binRevision(t *testing.T, binary string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatalf("read the build info of %s: %v", binary, err)
	}
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.revision" {
			return kv.Value
		}
	}
	return ""
}

// kubiyaHealth is GET /api/v3/runners/{name}/health (seed 004).
type kubiyaHealth struct {
	Health string `json:"health"`
	Status string `json:"status"`
	Checks []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Metadata struct {
			GitSHA string `json:"git_sha"`
		} `json:"metadata"`
	} `json:"checks"`
}

func kubiyaRunnerHealth(t *testing.T, s *serverProc, name string) kubiyaHealth {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/v3/runners/"+name+"/health", nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "UserKey "+adminToken)
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("kubiya health: %v", err)
	}
	defer res.Body.Close()
	var h kubiyaHealth
	if res.StatusCode != http.StatusOK {
		t.Fatalf("kubiya health: HTTP %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatalf("decode kubiya health: %v", err)
	}
	return h
}

// TestRunner_GitSHA checks that the commit a runner binary was built from
// reaches the control plane: every component's git_sha in Kubiya's health
// checks. The binary under test may be built without VCS stamping (GOFLAGS
// -buildvcs=false), so this test builds one with it.
func TestRunner_GitSHA(t *testing.T) {
	stamped := filepath.Join(t.TempDir(), "runyard-vcs")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", stamped, ".")
	if out, err := build.CombinedOutput(); err != nil {
		// Not a git checkout, or no git: there is no commit to report.
		t.Skipf("cannot build with VCS stamping here: %v\n%s", err, out)
	}
	want := binRevision(t, stamped)
	if want == "" {
		t.Fatalf("%s was built with -buildvcs=true but has no vcs.revision", stamped)
	}
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	id, exchange := registerRunner(t, s, "gitsha-host")
	startRunnerBin(t, stamped, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
	eventually(t, "the runner is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	h := kubiyaRunnerHealth(t, s, "gitsha-host")
	if len(h.Checks) == 0 {
		t.Fatalf("kubiya health has no checks: %+v", h)
	}
	for _, c := range h.Checks {
		if c.Metadata.GitSHA != want {
			t.Errorf("check %s: git_sha = %q, want the binary's vcs.revision %q", c.Name, c.Metadata.GitSHA, want)
		}
	}
}

// copyDir copies the regular files and directories under src to dst, with
// their modes: a second state directory with the same credentials and key.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// TestRunner_Replaced starts a second daemon with a copy of a connected
// runner's state directory, so with the same identity: the control plane
// keeps the newer stream, the older daemon exits 10 (aborted) saying why
// instead of reconnecting (two daemons would take each other's place
// forever), and the newer one stays connected and receives the runner's
// desired state.
func TestRunner_Replaced(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: []string{"--runner-timeout", "1500ms"}})
	id, exchange := registerRunner(t, s, "replaced-host")
	state := filepath.Join(t.TempDir(), "state")
	older := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state)
	eventually(t, "the first daemon is connected", func() bool {
		return strings.Contains(older.Stderr.String(), "connected to the control plane")
	})

	// The copy has the same credentials and key; its own lock file lets a
	// second process start on it.
	copyState := filepath.Join(t.TempDir(), "copy")
	copyDir(t, state, copyState)
	newer := startRunner(t, "--server", s.URL, "--state-dir", copyState)
	if code := older.waitExit(t); code != 10 {
		t.Fatalf("the older daemon's exit code = %d, want 10 (aborted); stderr:\n%s", code, older.Stderr)
	}
	requireOneLine(t, "older daemon's last line", lastLine(older.Stderr.String()),
		"another process connected with this runner's identity", "the newer connection wins")
	if strings.Contains(older.Stderr.String(), "reconnecting") {
		t.Fatalf("the replaced daemon tried to reconnect:\n%s", older.Stderr)
	}

	// The newer daemon's stream is the live one: a spec change reaches it.
	s.mustRun(t, adminToken, "runners", "update", id, "--log-level", "debug")
	eventually(t, "the newer daemon receives the desired state", func() bool {
		return strings.Contains(newer.Stderr.String(), "received desired state")
	})
	got, _ := phaseOf(t, s, id)
	if got.Runner.Status.Phase != "RUNNER_PHASE_ACTIVE" {
		t.Fatalf("phase with the newer daemon connected = %s (%s)", got.Runner.Status.Phase, got.Runner.Status.Message)
	}
	select {
	case <-newer.done:
		t.Fatalf("the newer daemon exited; stderr:\n%s", newer.Stderr)
	default:
	}
	errs := newer.Stderr.String()
	if n := strings.Count(errs, "connected to the control plane"); n != 1 || strings.Contains(errs, "lost the control plane") {
		t.Fatalf("the newer daemon connected %d times or lost its stream:\n%s", n, errs)
	}
}
