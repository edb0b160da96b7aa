package kubiya_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/api/kubiya"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/testutil"
)

func mustOK(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// forEachBackend runs fn against a fresh control plane on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, ts *testutil.TestServer)) {
	t.Helper()
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) { fn(t, testutil.StartServerWith(t, b, testutil.Options{PublicURL: publicURL})) })
	}
}

// userKey is the Authorization header value Kubiya's clients send.
func userKey(secret string) string { return "UserKey " + secret }

// client speaks plain HTTP to the Kubiya endpoints with one Authorization
// header (none when empty).
type client struct {
	base, auth string
	hc         *http.Client
	header     http.Header
}

// publicURL is the test servers' --public-url: a name a cluster could
// reach, which the tests' clients (newClient) resolve to the server they
// talk to.
const publicURL = "http://runyard.test"

func newClient(tb testing.TB, base, auth string) *client {
	tb.Helper()
	addr := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == "runyard.test:80" {
			a = addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &client{base: base, auth: auth, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request to path (relative to the base URL) or to an absolute
// URL.
func (c *client) do(tb testing.TB, method, path string) *response {
	tb.Helper()
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, nil)
	mustOK(tb, err, "new request")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header[k] = v
	}
	res, err := c.hc.Do(req)
	mustOK(tb, err, method+" "+path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	mustOK(tb, err, "read body")
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (r *response) wantStatus(tb testing.TB, status int) *response {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// wantOK checks a 200 JSON answer and decodes it into v.
func (r *response) wantOK(tb testing.TB, v any) {
	tb.Helper()
	r.wantStatus(tb, http.StatusOK)
	if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
		tb.Fatalf("Content-Type %q, want %q", got, want)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			tb.Fatalf("decode %s: %v", r.Body, err)
		}
	}
}

// wantError checks a JSON error answer: its status, code, and that its
// message contains each of contains.
func (r *response) wantError(tb testing.TB, status int, code string, contains ...string) {
	tb.Helper()
	r.wantStatus(tb, status)
	if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
		tb.Fatalf("Content-Type %q, want %q; body: %s", got, want, r.Body)
	}
	var e map[string]any
	if err := json.Unmarshal(r.Body, &e); err != nil {
		tb.Fatalf("decode error body %s: %v", r.Body, err)
	}
	if len(e) != 2 {
		tb.Errorf("error body %s: want exactly the keys error and code", r.Body)
	}
	msg, _ := e["error"].(string)
	if got, _ := e["code"].(string); got != code || msg == "" {
		tb.Fatalf("error body %s: want code %q and a message", r.Body, code)
	}
	for _, s := range contains {
		if !strings.Contains(msg, s) {
			tb.Errorf("error %q does not mention %q", msg, s)
		}
	}
}

// name returns a unique runner name with prefix.
func name(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

// Response shapes of the endpoints.
type health struct {
	Status  string `json:"status"`
	Health  string `json:"health"`
	Version string `json:"version"`
}

type listedRunner struct {
	Name                string  `json:"name"`
	Version             string  `json:"version"`
	Namespace           string  `json:"namespace"`
	KubernetesNamespace string  `json:"kubernetes_namespace"`
	RunnerHealth        *health `json:"runner_health"`
	ToolManagerHealth   *health `json:"tool_manager_health"`
	AgentManagerHealth  *health `json:"agent_manager_health"`
}

type runnerHealth struct {
	Health  string `json:"health"`
	Status  string `json:"status"`
	Time    string `json:"time"`
	Version string `json:"version"`
	Checks  []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Version  string `json:"version"`
		Metadata struct {
			GitSHA  string `json:"git_sha"`
			Release string `json:"release"`
		} `json:"metadata"`
	} `json:"checks"`
}

type manifestResponse struct {
	Name            string `json:"name"`
	ManifestURL     string `json:"manifest_url"`
	ManifestContent string `json:"manifest_content"`
}

func (c *client) create(tb testing.TB, runnerName string) manifestResponse {
	tb.Helper()
	var m manifestResponse
	c.do(tb, http.MethodPost, "/api/v3/runners/"+url.PathEscape(runnerName)).wantOK(tb, &m)
	return m
}

func (c *client) manifest(tb testing.TB, runnerName string) manifestResponse {
	tb.Helper()
	var m manifestResponse
	c.do(tb, http.MethodGet, "/v1/runners/"+url.PathEscape(runnerName)+"/manifest").wantOK(tb, &m)
	return m
}

func (c *client) health(tb testing.TB, runnerName string) runnerHealth {
	tb.Helper()
	var h runnerHealth
	c.do(tb, http.MethodGet, "/api/v3/runners/"+url.PathEscape(runnerName)+"/health").wantOK(tb, &h)
	return h
}

func (c *client) list(tb testing.TB) []listedRunner {
	tb.Helper()
	var l []listedRunner
	c.do(tb, http.MethodGet, "/api/v3/runners").wantOK(tb, &l)
	return l
}

// createAPIKey makes an API key with scopes through the Connect API.
func createAPIKey(tb testing.TB, baseURL string, scopes ...string) string {
	tb.Helper()
	tokens := runyardv1connect.NewTokenServiceClient(http.DefaultClient, baseURL)
	req := connect.NewRequest(&runyardv1.CreateTokenRequest{Name: name("kubiya-key"), Scopes: scopes})
	req.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	res, err := tokens.CreateToken(context.Background(), req)
	mustOK(tb, err, "create API key")
	return res.Msg.GetSecret()
}

// Seed examples.

func readTestdata(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	mustOK(tb, err, "read testdata")
	return b
}

func decodeJSON(tb testing.TB, what string, b []byte) any {
	tb.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decode %s: %v\n%s", what, err, b)
	}
	return v
}

// checkShape fails unless got has exactly the keys and JSON types of the
// seed's example.
func checkShape(tb testing.TB, got []byte, seedFile string) {
	tb.Helper()
	testutil.CheckShape(tb, seedFile, decodeJSON(tb, "response", got), decodeJSON(tb, seedFile, readTestdata(tb, seedFile)), testutil.Shape{Exact: true})
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness serves only the Kubiya endpoints, on services whose clock the test
// controls, for what the full server cannot show without waiting: expiry
// and liveness.
type harness struct {
	URL     string
	Clock   *fakeClock
	Runners *runners.Service
	Store   store.Store
	// Admin is the bootstrap admin's caller, for direct service calls.
	Admin context.Context
}

func startHarness(t *testing.T, backend testutil.Backend, opts kubiya.Services) *harness {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	if backend == testutil.Postgres {
		st, err = postgres.Open(ctx, testutil.PostgresURL(t))
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	}
	mustOK(t, err, "open store")
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	idSvc := identity.NewService(st)
	_, err = idSvc.Bootstrap(ctx, testutil.AdminToken)
	mustOK(t, err, "bootstrap")
	admin, err := idSvc.Authenticate(ctx, testutil.AdminToken)
	mustOK(t, err, "authenticate admin")
	runnerSvc := runners.NewService(st)
	runnerSvc.Now = clock.Now
	opts.Identity, opts.Runners, opts.Keys, opts.Now = idSvc, runnerSvc, st, clock.Now
	mux := http.NewServeMux()
	kubiya.Mount(mux, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &harness{URL: srv.URL, Clock: clock, Runners: runnerSvc, Store: st, Admin: identity.NewContext(ctx, admin)}
}

// report records a daemon's report for the runner called runnerName, as the
// fleet does when the runner's stream delivers one.
func (h *harness) report(t *testing.T, runnerName string, rep runners.Report) {
	t.Helper()
	r, err := h.Runners.GetByName(h.Admin, "name", runnerName)
	mustOK(t, err, "get runner")
	ctx := identity.NewContext(context.Background(), &identity.Caller{
		OrgID: r.OrgID, RunnerID: r.ID, Subject: identity.Subject{ID: r.ID, Principal: identity.PrincipalRunner},
	})
	_, err = h.Runners.Report(ctx, rep)
	mustOK(t, err, "report")
}

// httptestMux serves the Kubiya endpoints a second time on h's database, as
// another replica would, and returns its URL.
func httptestMux(t *testing.T, h *harness) string {
	t.Helper()
	mux := http.NewServeMux()
	kubiya.Mount(mux, kubiya.Services{
		Identity: identity.NewService(h.Store), Runners: runners.NewService(h.Store), Keys: h.Store, Now: h.Clock.Now, ServerURL: publicURL,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
