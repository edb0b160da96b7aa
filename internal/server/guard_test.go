package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/server"
)

const adminToken = "guard-test-admin-token-0123456789"

// waitFor bounds every wait; nothing here asserts how long anything took.
const waitFor = 20 * time.Second

// startServer starts a control plane on loopback with cfg's limits.
func startServer(t *testing.T, cfg server.Config) (url, addr string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BootstrapToken = adminToken
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("open server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server shutdown: %v", err)
		}
	})
	healthy(t, s.URL())
	return s.URL(), strings.TrimPrefix(s.URL(), "http://")
}

// healthy fails the test unless GET /healthz answers 200 on a new
// connection within waitFor.
func healthy(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(waitFor)
	var last string
	for time.Now().Before(deadline) {
		res, err := c.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/healthz did not answer 200 within %s: %s", waitFor, last)
}

// trickler is a raw connection that sends a request's headers, then its
// body one byte at a time, and records what the server answers.
type trickler struct {
	conn   net.Conn
	answer string // what the server sent, once ended is closed
	ended  chan struct{}
}

func trickle(t *testing.T, addr, head string) *trickler {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatalf("write headers: %v", err)
	}
	tr := &trickler{conn: c, ended: make(chan struct{})}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	go func() {
		defer close(tr.ended)
		b, _ := io.ReadAll(c)
		tr.answer = string(b)
	}()
	return tr
}

// wait returns what the server answered once it closed the connection.
func (tr *trickler) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-tr.ended:
		return tr.answer
	case <-time.After(waitFor):
		t.Fatalf("the server still holds a trickling connection after %s", waitFor)
	}
	return ""
}

func head(method, path, contentType, auth string, length int) string {
	h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n", method, path, contentType, length)
	if auth != "" {
		h += "Authorization: " + auth + "\r\n"
	}
	return h + "\r\n{"
}

// TestGuard_TricklersWithoutToken checks that clients without a token that
// trickle a body hold nothing: each is refused 401 before its body is read,
// on every surface, its connection is cut, and /healthz answers meanwhile.
func TestGuard_TricklersWithoutToken(t *testing.T) {
	url, addr := startServer(t, server.Config{})
	surfaces := []struct{ name, method, path, contentType, want string }{
		{"Connect", "POST", "/gitpod.v1.RunnerService/CreateRunner", "application/json", `"code":"unauthenticated"`},
		{"ConnectProto", "POST", "/gitpod.v1.RunnerService/ListRunners", "application/proto", `"code":"unauthenticated"`},
		{"ConnectAPIPrefix", "POST", "/api/gitpod.v1.RunnerService/CreateRunner", "application/json", `"code":"unauthenticated"`},
		{"ConnectUnimplemented", "POST", "/api/gitpod.v1.OrganizationService/CreateOrganization", "application/json", `"code":"unauthenticated"`},
		{"REST", "POST", "/api/v1/orgs/default/pods", "application/json", `"code":"unauthenticated"`},
		{"Kubiya", "POST", "/api/v3/runners/trickle-runner", "application/json", `"code":"unauthenticated"`},
		{"WrongToken", "POST", "/api/v1/orgs/default/pods", "application/json", "invalid token"},
	}
	const perSurface = 60 // 300 in all, as in the report
	var all []*trickler
	for _, s := range surfaces {
		auth := ""
		if s.name == "WrongToken" {
			auth = "Bearer ryd_ak_not-a-token"
		}
		for range perSurface {
			all = append(all, trickle(t, addr, head(s.method, s.path, s.contentType, auth, 100_000)))
		}
	}
	healthy(t, url)
	for i, tr := range all {
		s := surfaces[i/perSurface]
		got := tr.wait(t)
		if !strings.Contains(got, s.want) {
			t.Fatalf("%s: a trickling client without a valid token got %q, want %s", s.name, got, s.want)
		}
		if !strings.HasPrefix(got, "HTTP/1.1 401 ") {
			t.Fatalf("%s: answer %q, want 401", s.name, got)
		}
	}
	healthy(t, url)
}

// TestGuard_PublicTricklers checks the one request with a body that needs
// no token, ExchangeToken: per address only so many may be in flight (429
// beyond, saying why), and ReadTimeout cuts the others off.
func TestGuard_PublicTricklers(t *testing.T) {
	const limit = 4
	url, addr := startServer(t, server.Config{MaxUnauthenticatedPerIP: limit, ReadTimeout: time.Second})
	var all []*trickler
	for i := range 3 * limit {
		// Under /api too, counted against the same limit.
		path := "/gitpod.v1.IdentityService/ExchangeToken"
		if i%2 == 1 {
			path = "/api" + path
		}
		all = append(all, trickle(t, addr, head("POST", path, "application/json", "", 1000)))
	}
	healthy(t, url)
	refused := 0
	for _, tr := range all {
		got := tr.wait(t) // also the admitted ones: ReadTimeout ends them
		if strings.HasPrefix(got, "HTTP/1.1 429 ") {
			refused++
			if !strings.Contains(got, "too many requests without a valid token") || !strings.Contains(got, "resource_exhausted") {
				t.Errorf("429 answer %q does not say why", got)
			}
		}
	}
	if refused < 2*limit {
		t.Errorf("%d of %d trickling ExchangeToken requests were refused 429, want at least %d (limit %d per address)", refused, len(all), 2*limit, limit)
	}
	healthy(t, url)
}

// TestGuard_SilentConnections checks that connections which send nothing
// cannot pile up from one address: past the limit, a new connection closes
// the oldest of those that waited over a second, long before
// ReadHeaderTimeout would.
func TestGuard_SilentConnections(t *testing.T) {
	const limit = 4
	url, addr := startServer(t, server.Config{MaxUnauthenticatedPerIP: limit, ReadHeaderTimeout: 10 * time.Minute})
	var silent []*trickler
	for range 3 * limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		tr := &trickler{conn: c, ended: make(chan struct{})}
		go func() { defer close(tr.ended); io.Copy(io.Discard, c) }()
		silent = append(silent, tr)
	}
	time.Sleep(1500 * time.Millisecond) // past the grace of a new connection
	healthy(t, url)
	closed := 0
	for deadline := time.Now().Add(waitFor); closed < 2*limit && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		closed = 0
		for _, tr := range silent {
			select {
			case <-tr.ended:
				closed++
			default:
			}
		}
	}
	if closed < 2*limit {
		t.Fatalf("%d of %d silent connections closed, want at least %d (limit %d per address)", closed, len(silent), 2*limit, limit)
	}
}

// TestGuard_Oversized checks that a body over the limit is 413 on every
// surface, whether its length is declared or not, and never 429.
func TestGuard_Oversized(t *testing.T) {
	url, _ := startServer(t, server.Config{})
	big := strings.Repeat("x", 5<<20)
	for _, tc := range []struct {
		name, path, contentType string
		chunked                 bool
	}{
		{"Connect", "/gitpod.v1.RunnerService/CreateRunner", "application/json", false},
		{"ConnectChunked", "/gitpod.v1.RunnerService/CreateRunner", "application/json", true},
		{"ConnectProto", "/gitpod.v1.RunnerService/CreateRunner", "application/proto", false},
		{"ExchangeToken", "/gitpod.v1.IdentityService/ExchangeToken", "application/json", false},
		{"ConnectAPIPrefix", "/api/gitpod.v1.RunnerService/CreateRunner", "application/json", false},
		{"ConnectAPIPrefixChunked", "/api/gitpod.v1.RunnerService/CreateRunner", "application/json", true},
		{"ExchangeTokenAPIPrefix", "/api/gitpod.v1.IdentityService/ExchangeToken", "application/json", false},
		{"REST", "/api/v1/orgs/default/pods", "application/json", false},
		{"RESTChunked", "/api/v1/orgs/default/pods", "application/json", true},
		{"Kubiya", "/api/v3/runners/huge-runner", "application/json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(`{"name":"` + big + `"}`)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: chunked
			}
			req, err := http.NewRequest(http.MethodPost, url+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", tc.path, err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("POST %s with a 5 MiB body: %s %s, want 413", tc.path, res.Status, b)
			}
			var e map[string]string
			if err := json.Unmarshal(b, &e); err != nil || e["code"] != "resource_exhausted" {
				t.Errorf("413 body %s, want code resource_exhausted", b)
			}
		})
	}
	healthy(t, url)
}

// TestGuard_BusyConnectionsStay checks that only connections that never
// sent a request count as silent: many open HTTP/1.1 and h2c connections
// from one address (runners, say) survive new connections past the limit.
func TestGuard_BusyConnectionsStay(t *testing.T) {
	const limit = 2
	url, _ := startServer(t, server.Config{MaxUnauthenticatedPerIP: limit})
	type client struct {
		name  string
		c     *http.Client
		dials *atomic.Int32
	}
	var clients []client
	for i := range 4 * limit {
		var p http.Protocols
		name := "http1"
		if i%2 == 0 {
			p.SetUnencryptedHTTP2(true)
			name = "h2c"
		} else {
			p.SetHTTP1(true)
		}
		dials := new(atomic.Int32)
		d := &net.Dialer{}
		tr := &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		clients = append(clients, client{name: name, c: &http.Client{Transport: tr}, dials: dials})
	}
	get := func(c client) {
		t.Helper()
		res, err := c.c.Get(url + "/healthz")
		if err != nil {
			t.Fatalf("%s: GET /healthz: %v", c.name, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for _, c := range clients {
		get(c)
	}
	time.Sleep(1500 * time.Millisecond) // past the grace of a new connection
	for range 2 * limit {
		healthy(t, url) // new connections, over the limit
	}
	for _, c := range clients {
		get(c)
		if n := c.dials.Load(); n != 1 {
			t.Errorf("%s client dialed %d times, want once: the guard closed a connection that had sent requests", c.name, n)
		}
	}
}

// TestAPIPrefix_BesideREST checks that the Connect API under /api/ and the
// REST API under /api/v1/ both answer on one server, and that /metrics labels
// the prefixed calls by their service's pattern.
func TestAPIPrefix_BesideREST(t *testing.T) {
	url, _ := startServer(t, server.Config{})
	do := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := do("POST", "/api/gitpod.v1.RunnerService/ListRunners", "application/json", "{}"); code != http.StatusOK || !strings.Contains(body, `"runners":[]`) {
		t.Errorf("Connect under /api: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/orgs/default/runners", "", ""); code != http.StatusOK {
		t.Errorf("REST under /api/v1: %d %s", code, body)
	}
	if code, body := do("POST", "/api/gitpod.v1.RunnerService/NoSuchMethod", "application/json", "{}"); code != http.StatusNotFound {
		t.Errorf("an undeclared method under /api: %d %s, want 404", code, body)
	}
	_, metrics := do("GET", "/metrics", "", "")
	if want := `route="/api/gitpod.v1.RunnerService/"`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics has no %s", want)
	}
}

// TestShutdown_SilentConnection: a connection that never sent a request
// (a client's spare, dialed for a request another connection served) does
// not hold a shutdown up. net/http counts such a connection as busy for its
// first five seconds, longer than this server's shutdown timeout, so the
// shutdown failed with its deadline whenever one was open (TestPods_Concurrent
// saw it about once in a hundred runs).
func TestShutdown_SilentConnection(t *testing.T) {
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), BootstrapToken: adminToken,
		ShutdownTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	healthy(t, s.URL())
	silent, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A request on another connection: the silent one is surely accepted
	// (and announced as new) by the time it is answered.
	healthy(t, s.URL())
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("shutdown with a silent connection open: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the server did not stop")
	}
	// The server closed the silent connection.
	_ = silent.SetReadDeadline(time.Now().Add(waitFor))
	if n, err := silent.Read(make([]byte, 1)); err == nil {
		t.Errorf("the silent connection read %d bytes after the shutdown, want it closed", n)
	}
}
