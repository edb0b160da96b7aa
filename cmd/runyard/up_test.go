package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/runyard/runyard/internal/runners"
)

// upProc is a running `runyard up`.
type upProc struct {
	*runnerProc
	URL string
}

// startUp runs `runyard up --listen ADDR` in dir with env added to its
// environment, through wrap (e.g. an unshare command line) when it is not
// empty, and waits until its control plane answers. The process is killed
// when the test ends.
func startUp(t *testing.T, dir string, wrap []string, env ...string) *upProc {
	t.Helper()
	addr := freePort(t)
	p := &runnerProc{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	args := append(wrap, bin, "up", "--listen", addr)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Dir = dir
	// The "local" context `up` adds goes to a configuration of this test
	// (unless the test gives one), not the one the other tests share.
	p.cmd.Env = processEnv(append([]string{"XDG_CONFIG_HOME=" + t.TempDir()}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start up: %v", err)
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
			t.Logf("up stdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
		}
	})
	u := &upProc{runnerProc: p, URL: "http://" + addr}
	eventually(t, "the control plane answers", func() bool {
		select {
		case <-p.done:
			t.Fatalf("up exited with code %d before serving", p.cmd.ProcessState.ExitCode())
		default:
		}
		res, err := http.Get(u.URL + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return u
}

// upRunner is a runner as `runners list -o json` prints it.
type upRunner struct {
	RunnerID string `json:"runnerId"`
	Name     string `json:"name"`
	Status   struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

// waitLocalRunner waits until the control plane lists exactly one runner and
// it is ACTIVE, and returns it. args select the credential (e.g. --token);
// without them the CLI reads .runyard/admin-token in dir.
func (u *upProc) waitLocalRunner(t *testing.T, dir string, args ...string) upRunner {
	t.Helper()
	var list struct{ Runners []upRunner }
	eventually(t, "the local runner is ACTIVE", func() bool {
		r := runCLI(t, dir, nil, append([]string{"--server", u.URL, "runners", "list", "-o", "json"}, args...)...)
		if r.Code != 0 {
			t.Fatalf("runners list: exit %d: %s", r.Code, r.Stderr)
		}
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			t.Fatalf("decode list: %v", err)
		}
		return len(list.Runners) == 1 && list.Runners[0].Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	return list.Runners[0]
}

// stop sends Ctrl-C and checks that up stops both parts with exit 0.
func (u *upProc) stop(t *testing.T) {
	t.Helper()
	u.cmd.Process.Signal(syscall.SIGINT)
	if code := u.waitExit(t); code != 0 {
		t.Fatalf("up exit code after Ctrl-C = %d, want 0", code)
	}
}

// TestUp runs `runyard up` twice in one directory: each run serves a control
// plane with one ACTIVE local runner, Ctrl-C stops both with exit 0, and the
// second run reuses the first run's runner.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	var firstID string
	for run := 1; run <= 2; run++ {
		u := startUp(t, dir, nil)
		// The CLI finds .runyard/admin-token in the working directory.
		r := u.waitLocalRunner(t, dir)
		if run == 1 {
			firstID = r.RunnerID
		} else if r.RunnerID != firstID {
			t.Fatalf("second up runs runner %s, want the first run's %s", r.RunnerID, firstID)
		}
		u.stop(t)
	}
}

// nextStepRe finds the command `runyard up` suggests running next: an
// indented line that starts with "runyard ".
var nextStepRe = regexp.MustCompile(`(?m)^[ \t]+(runyard .+)$`)

// requireNextStep checks that out names a next command and that the command,
// run in dir with env, succeeds against the control plane.
func requireNextStep(t *testing.T, u *upProc, dir, out string, env ...string) {
	t.Helper()
	m := nextStepRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("up stdout names no next command (an indented `runyard ...` line):\n%s", out)
	}
	next := strings.Fields(m[1])
	if !strings.Contains(m[1], u.URL) {
		t.Errorf("next command %q does not name the control plane's URL %s", m[1], u.URL)
	}
	if r := runCLI(t, dir, env, next[1:]...); r.Code != 0 {
		t.Fatalf("the suggested next command %q: exit %d: %s", m[1], r.Code, r.Stderr)
	}
}

// wantLocalName is the name `runyard up` gives its runner on a host called
// host: the host name itself, or with "-runner" appended when the host name
// is no valid runner name (shorter than 3 characters, like "vm").
func wantLocalName(host string) string {
	if runners.ValidateName("name", host) == nil {
		return host
	}
	return host + "-runner"
}

// TestUp_Output checks what `runyard up` tells its user on stdout: the
// control plane's URL, the generated admin key and the file it is in, and a
// next command that works as printed; and that the local runner is named
// after the host.
func TestUp_Output(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir, nil)
	r := u.waitLocalRunner(t, dir)
	out := u.Stdout.String()

	if !strings.Contains(out, u.URL) {
		t.Errorf("up stdout does not name the URL %s:\n%s", u.URL, out)
	}
	tokenFile := filepath.Join(".runyard", "admin-token")
	if !strings.Contains(out, tokenFile) {
		t.Errorf("up stdout does not say the admin key is in %s:\n%s", tokenFile, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		t.Fatalf("read the admin key: %v", err)
	}
	key := strings.TrimSpace(string(b))
	if !apiKeyRe.MatchString(key) || !strings.Contains(out, key) {
		t.Errorf("up stdout does not show the generated admin key %q of %s:\n%s", key, tokenFile, out)
	}
	checkMode(t, filepath.Join(dir, tokenFile), 0o600)
	requireNextStep(t, u, dir, out)
	// The web console is served by the binary itself, at the URL printed.
	if want := "Web console: " + u.URL + "/"; !strings.Contains(out, want) {
		t.Errorf("up stdout does not say %q:\n%s", want, out)
	}
	res, err := http.Get(u.URL + "/signin")
	if err != nil {
		t.Fatalf("GET the console's sign-in page: %v", err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sign in to runyard") || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("console sign-in page: %d, CSP %q:\n%.300s", res.StatusCode, res.Header.Get("Content-Security-Policy"), page)
	}

	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("hostname: %v", err)
	}
	if want := wantLocalName(host); r.Name != want {
		t.Errorf("local runner name = %q, want %q (host %q)", r.Name, want, host)
	}
	u.stop(t)
}

// TestUp_HostName runs `runyard up` on a host whose name is a valid runner
// name, in a UTS namespace of its own, and checks that the local runner is
// called exactly that. It needs unshare(1) and the privilege to use it.
func TestUp_HostName(t *testing.T) {
	const host = "runyard-uts-host"
	if err := exec.Command("unshare", "--uts", "hostname", host).Run(); err != nil {
		t.Skipf("cannot set a host name in a UTS namespace of its own: %v", err)
	}
	dir := t.TempDir()
	// unshare and sh exec the next program, so SIGINT reaches runyard.
	u := startUp(t, dir, []string{"unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`, host})
	if r := u.waitLocalRunner(t, dir); r.Name != host {
		t.Errorf("local runner name = %q, want the host name %q", r.Name, host)
	}
	u.stop(t)
}

// TestUp_BootstrapToken checks that RUNYARD_BOOTSTRAP_TOKEN is the admin key
// of `runyard up`: stdout says so instead of showing a key, no admin-token
// file is written, and the value authenticates from a directory without one.
func TestUp_BootstrapToken(t *testing.T) {
	dir := t.TempDir()
	env := "RUNYARD_BOOTSTRAP_TOKEN=" + adminToken
	u := startUp(t, dir, nil, env)
	// emptyDir has no .runyard/admin-token to fall back on.
	u.waitLocalRunner(t, emptyDir, "--token", adminToken)
	out := u.Stdout.String()

	if !strings.Contains(out, u.URL) || !strings.Contains(out, "RUNYARD_BOOTSTRAP_TOKEN") {
		t.Errorf("up stdout does not name the URL and RUNYARD_BOOTSTRAP_TOKEN:\n%s", out)
	}
	if apiKeyRe.MatchString(out) || strings.Contains(out, adminToken) {
		t.Errorf("up stdout shows a key:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".runyard", "admin-token")); !os.IsNotExist(err) {
		t.Errorf("admin-token file with RUNYARD_BOOTSTRAP_TOKEN set: %v, want none", err)
	}

	var who struct {
		OrganizationID string `json:"organizationId"`
		Subject        struct {
			Principal string `json:"principal"`
		} `json:"subject"`
	}
	r := runCLI(t, emptyDir, nil, "--server", u.URL, "--token", adminToken, "whoami", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("whoami with the bootstrap token: exit %d: %s", r.Code, r.Stderr)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &who); err != nil {
		t.Fatalf("decode whoami: %v\n%s", err, r.Stdout)
	}
	if who.OrganizationID == "" || who.Subject.Principal != "PRINCIPAL_SERVICE_ACCOUNT" {
		t.Errorf("whoami with the bootstrap token = %s, want the admin key (a service account)", r.Stdout)
	}
	// Another value is refused: the key is the environment's value.
	requireOneLineError(t, runCLI(t, emptyDir, nil, "--server", u.URL, "--token", adminToken+"x", "whoami"), 5)
	// The next command works as printed once RUNYARD_TOKEN holds the value.
	requireNextStep(t, u, emptyDir, out, "RUNYARD_TOKEN="+adminToken)
	u.stop(t)
}

// TestUp_LocalContext: `runyard up` adds the context "local" with its admin
// key, and records that ./.runyard/admin-token belongs to its server; neither
// key is sent to another server.
func TestUp_LocalContext(t *testing.T) {
	dir, cfg := t.TempDir(), t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfg}
	u := startUp(t, dir, nil, env...)
	u.waitLocalRunner(t, dir)

	if b, err := os.ReadFile(filepath.Join(dir, ".runyard", "admin-token.server")); err != nil || strings.TrimSpace(string(b)) != u.URL {
		t.Errorf(".runyard/admin-token.server = %q, %v; want %s", b, err, u.URL)
	}
	// From anywhere, the current context "local" is the server and its key.
	if r := runCLI(t, emptyDir, env, "whoami"); r.Code != 0 {
		t.Errorf("whoami with the local context: exit %d, stderr %q", r.Code, r.Stderr)
	}
	var list struct {
		Contexts []struct {
			Name, Server string
			Current      bool
		}
	}
	r := runCLI(t, emptyDir, env, "context", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list.Contexts) != 1 ||
		list.Contexts[0].Name != "local" || list.Contexts[0].Server != u.URL || !list.Contexts[0].Current {
		t.Errorf("context list after up: %v %+v", err, list.Contexts)
	}

	other := startFakeServer(t, unauthenticated)
	for _, wd := range []string{emptyDir, dir} {
		before := len(other.requests())
		r := runCLI(t, wd, env, "--server", other.URL, "whoami")
		requireOneLineError(t, r, 5, "runyard login "+other.URL)
		requireNoCredential(t, "up's keys and --server elsewhere from "+wd, other, before)
	}
	u.stop(t)
}
