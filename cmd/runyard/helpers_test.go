package main

// The end-to-end tests build the real binary once (TestMain) and run it as
// real processes on loopback: `runyard server` in the background and the CLI
// commands against it. This file holds the process plumbing; the tests live in
// server_test.go and cli_test.go.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/runyard/runyard/internal/testutil"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	// bin is the runyard binary under test.
	bin string
	// emptyDir is the working directory of CLI processes that must not find a
	// .runyard/admin-token to fall back on.
	emptyDir string
	// configHome is the XDG_CONFIG_HOME of every process: the CLI's contexts
	// of the tests, never those of whoever runs them.
	configHome string
)

// Generous bounds: they only turn a hang into a failure, they never time
// behaviour.
const (
	startTimeout = 30 * time.Second
	exitTimeout  = 30 * time.Second
	cliTimeout   = 60 * time.Second
)

// adminToken is the RUNYARD_BOOTSTRAP_TOKEN of the servers of tests that do not
// test bootstrapping itself.
const adminToken = "ryd_e2e_admin_token_0123456789abcdef"

// apiKeyRe matches a generated API key (identity.NewSecret: prefix and 32
// random bytes, base64url without padding).
var apiKeyRe = regexp.MustCompile(`ryd_ak_[A-Za-z0-9_-]{43}`)

// exchangeTokenRe matches a runner exchange token.
var exchangeTokenRe = regexp.MustCompile(`ryd_ex_[A-Za-z0-9_-]{43}`)

// linkMain keeps main, and with it all the code of the built binary, in the
// test binary. go test caches results by the test binary's content; without
// this reference the linker drops main as dead code, and a change under
// internal/ would leave a stale cached PASS.
var linkMain = main

// Services and pods outlive the runner processes the tests start: their
// leftovers are killed when the tests end.
func TestMain(m *testing.M) { os.Exit(testutil.RunIsolated(func() int { return runTests(m) })) }

func runTests(m *testing.M) int {
	if linkMain == nil {
		return 1
	}
	dir, err := os.MkdirTemp("", "runyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "runyard")
	emptyDir = filepath.Join(dir, "empty")
	configHome = filepath.Join(dir, "config")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// Stamped like a release, so that the tests see the version a release
	// reports (see version_test.go).
	build := exec.Command("go", "build", "-ldflags", e2eLDFlags, "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build runyard:", err)
		return 1
	}
	return m.Run()
}

// processEnv is the environment of every process the tests start: the test's
// own without the RUNYARD_* variables, TLS trust overrides and CLI
// configuration of whoever runs the tests, plus extra. Only what a test sets
// takes effect (a later entry wins over an earlier one of the same name).
func processEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RUNYARD_") || strings.HasPrefix(kv, "SSL_CERT_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	// No session bus: the CLI keeps keys in its file, never in the OS
	// keyring of whoever runs the tests (TestCLI_KeyStore starts its own).
	env = append(env, "XDG_CONFIG_HOME="+configHome, "DBUS_SESSION_BUS_ADDRESS=")
	return append(env, extra...)
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// backend is a database the server can run on.
type backend struct {
	name string
	// databaseURL returns the --database value: empty for SQLite, a fresh
	// schema for PostgreSQL (skipping the test when none is configured).
	databaseURL func(t *testing.T) string
}

// serverConfig describes one `runyard server` process.
type serverConfig struct {
	// DataDir is --data-dir; empty means a fresh temporary directory.
	DataDir string
	// DatabaseURL is --database; empty means SQLite in DataDir.
	DatabaseURL string
	// Env is added to the process environment, e.g. RUNYARD_BOOTSTRAP_TOKEN.
	Env []string
	// Args are added after the server's own flags.
	Args []string
	// Cert makes the server speak TLS with this certificate, and the test's
	// HTTP client trust it.
	Cert *testCert
}

// serverProc is a running (or exited) `runyard server`.
type serverProc struct {
	URL     string
	Addr    string
	DataDir string
	Stdout  *syncBuffer
	Stderr  *syncBuffer
	// client trusts the server's certificate when it speaks TLS, and
	// CAFile is that certificate, which run passes as --ca-file.
	client *http.Client
	CAFile string
	cmd    *exec.Cmd
	done   chan struct{}
}

// startServer starts a server on a free loopback port and waits until its
// /healthz answers 200. The process is killed when the test ends.
func startServer(t *testing.T, cfg serverConfig) *serverProc {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	// The port is free when freePort returns but another process may take it
	// before the server listens; try again with another port then.
	for attempt := 0; ; attempt++ {
		s := spawnServer(t, cfg, freePort(t))
		err := s.waitHealthy()
		if err == nil {
			return s
		}
		if s.exited() && strings.Contains(s.Stderr.String(), "address already in use") && attempt < 3 {
			continue
		}
		t.Fatalf("server did not become healthy: %v\nstdout:\n%s\nstderr:\n%s", err, s.Stdout, s.Stderr)
	}
}

// spawnServer starts a server listening on addr without waiting for it.
func spawnServer(t *testing.T, cfg serverConfig, addr string) *serverProc {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	args := []string{"server", "--listen", addr, "--data-dir", cfg.DataDir}
	if cfg.DatabaseURL != "" {
		args = append(args, "--database", cfg.DatabaseURL)
	}
	scheme := "http"
	tr := &http.Transport{}
	if cfg.Cert != nil {
		args = append(args, "--tls-cert", cfg.Cert.CertFile, "--tls-key", cfg.Cert.KeyFile)
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.Cert.Pool}
	}
	caFile := ""
	if cfg.Cert != nil {
		caFile = cfg.Cert.CertFile
	}
	args = append(args, cfg.Args...)
	s := &serverProc{
		URL:     scheme + "://" + addr,
		Addr:    addr,
		DataDir: cfg.DataDir,
		Stdout:  &syncBuffer{},
		Stderr:  &syncBuffer{},
		client:  &http.Client{Transport: tr, Timeout: 5 * time.Second},
		CAFile:  caFile,
		cmd:     exec.Command(bin, args...),
		done:    make(chan struct{}),
	}
	s.cmd.Dir = emptyDir
	s.cmd.Env = processEnv(cfg.Env...)
	s.cmd.Stdout, s.cmd.Stderr = s.Stdout, s.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			s.cmd.Process.Kill()
			<-s.done
		}
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server %s stdout:\n%s\nstderr:\n%s", s.URL, s.Stdout, s.Stderr)
		}
	})
	return s
}

// runServerToExit runs a server that is expected to refuse to start and
// returns its exit code.
func runServerToExit(t *testing.T, cfg serverConfig) (code int, s *serverProc) {
	t.Helper()
	s = spawnServer(t, cfg, freePort(t))
	return s.waitExit(t), s
}

// freePort returns a loopback address whose port was free a moment ago: the
// server cannot report the port it picked for --listen 127.0.0.1:0.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *serverProc) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// healthz returns the status of GET /healthz, or an error when the server does
// not answer.
func (s *serverProc) healthz() (int, error) {
	res, err := s.client.Get(s.URL + "/healthz")
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// waitHealthy polls /healthz until it answers 200, the process exits or
// startTimeout passes.
func (s *serverProc) waitHealthy() error {
	deadline := time.Now().Add(startTimeout)
	for {
		if s.exited() {
			return fmt.Errorf("server exited with code %d", s.cmd.ProcessState.ExitCode())
		}
		code, err := s.healthz()
		if err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no healthy answer within %v (last: %d, %v)", startTimeout, code, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitExit waits for the process to exit and returns its exit code.
func (s *serverProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(exitTimeout):
		t.Fatalf("server did not exit within %v", exitTimeout)
		return -1
	}
}

func (s *serverProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
}

// stop shuts the server down with SIGTERM and checks the clean exit.
func (s *serverProc) stop(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGTERM)
	if got, want := s.waitExit(t), 0; got != want {
		t.Fatalf("exit code after SIGTERM = %d, want %d; stderr:\n%s", got, want, s.Stderr)
	}
}

// cliResult is what one CLI process did.
type cliResult struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
}

// runCLI runs the binary with args in dir (an empty directory when dir is
// empty) with env added to its environment.
func runCLI(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	return runCLIInput(t, dir, env, "", args...)
}

// runCLIInput is runCLI with stdin (a pipe, not a terminal) reading input.
func runCLIInput(t *testing.T, dir string, env []string, input string, args ...string) cliResult {
	t.Helper()
	if dir == "" {
		dir = emptyDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = processEnv(env...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("runyard %s: did not finish within %v", strings.Join(args, " "), cliTimeout)
	}
	r := cliResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("runyard %s: %v", strings.Join(args, " "), err)
		}
		r.Code = ee.ExitCode()
	}
	return r
}

// run runs a CLI command against s with token.
func (s *serverProc) run(t *testing.T, token string, args ...string) cliResult {
	t.Helper()
	flags := []string{"--server", s.URL, "--token", token}
	if s.CAFile != "" {
		flags = append(flags, "--ca-file", s.CAFile)
	}
	return runCLI(t, "", nil, append(flags, args...)...)
}

// mustRun runs a CLI command against s and fails the test unless it succeeds.
func (s *serverProc) mustRun(t *testing.T, token string, args ...string) string {
	t.Helper()
	r := s.run(t, token, args...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("runyard %s: exit code %d, stderr: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return r.Stdout
}

// mustJSON runs a CLI command with -o json and decodes its output into v.
func (s *serverProc) mustJSON(t *testing.T, token string, v any, args ...string) {
	t.Helper()
	out := s.mustRun(t, token, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("runyard %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// requireOneLineError checks that a command failed with wantCode and said why
// in exactly one `runyard: ...` line on stderr, containing each of want.
func requireOneLineError(t *testing.T, r cliResult, wantCode int, want ...string) {
	t.Helper()
	cmd := "runyard " + strings.Join(r.Args, " ")
	if got := r.Code; got != wantCode {
		t.Errorf("%s: exit code = %d, want %d (stderr: %q)", cmd, got, wantCode, r.Stderr)
	}
	requireOneLine(t, cmd, r.Stderr, want...)
	if r.Stdout != "" {
		t.Errorf("%s: stdout = %q, want nothing on failure", cmd, r.Stdout)
	}
}

// requireOneLine checks that stderr is exactly one `runyard: ...` line.
func requireOneLine(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "runyard: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("%s: stderr = %q, want exactly one line `runyard: ...`", what, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr = %q, want it to contain %q", what, stderr, w)
		}
	}
}

// requireServerError checks that a server that refused to start said why in
// one `runyard: ...` line, its last. Log lines may come before it: some
// checks run after the store is open.
func requireServerError(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var errLines []string
	for _, l := range lines {
		if strings.HasPrefix(l, "runyard: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || lines[len(lines)-1] != errLines[0] {
		t.Errorf("%s: stderr = %q, want it to end in the one line `runyard: ...`", what, stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(errLines[0], w) {
			t.Errorf("%s: error %q, want it to contain %q", what, errLines[0], w)
		}
	}
}

// tokenJSON is a token as `runyard tokens ... -o json` prints it.
type tokenJSON struct {
	TokenID   string   `json:"tokenId"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Principal string   `json:"principal"`
	RevokedAt string   `json:"revokedAt"`
}

// adminKeyID lists the tokens with token and returns the ID of the only key
// with the admin scope, failing when there is not exactly one.
func adminKeyID(t *testing.T, s *serverProc, token string) string {
	t.Helper()
	var list struct{ Tokens []tokenJSON }
	s.mustJSON(t, token, &list, "tokens", "list", "--all")
	var ids []string
	for _, tk := range list.Tokens {
		if slices.Contains(tk.Scopes, "admin") {
			ids = append(ids, tk.TokenID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("tokens list shows %d admin keys, want exactly 1: %+v", len(ids), list.Tokens)
	}
	return ids[0]
}

// testCert is a self-signed certificate for 127.0.0.1, written to files.
type testCert struct {
	CertFile, KeyFile string
	Pool              *x509.CertPool
}

// newTestCert generates a certificate that is its own CA, so that it can be
// both the server's certificate and the client's trusted root.
func newTestCert(t *testing.T) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "runyard e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	dir := t.TempDir()
	c := &testCert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatalf("write certificate: %v", err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatalf("write key: %v", err)
	}
	c.Pool.AppendCertsFromPEM(certPEM)
	return c
}

// skipIfKnownBug fails the test when a fixed bug's behaviour shows again. (It
// skipped while the bug was open, hence the name.)
func skipIfKnownBug(t *testing.T, buggy bool, format string, args ...any) {
	t.Helper()
	if buggy {
		t.Fatalf("regression: "+format, args...)
	}
}
