package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// waitFor bounds every poll: generous, because a loaded CI machine may take
// long to connect a runner, and a passing test never waits for it.
const waitFor = 60 * time.Second

func mustOK(tb testing.TB, err error, what string, args ...any) {
	tb.Helper()
	testutil.MustNoErr(tb, err, what, args...)
}

func bearer(secret string) string { return "Bearer " + secret }

var nameSeq atomic.Int64

// name returns a unique runner or key name with prefix.
func name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

// forEachBackend runs fn against a fresh server of every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, ts *testutil.TestServer)) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) { fn(t, testutil.StartServer(t, b)) })
	}
}

// startServerWithStore starts a control plane like testutil.StartServer and
// also opens its database, so a test can store what no API creates yet: pods
// and a second organization. testutil.TestServer does not expose the
// PostgreSQL schema, so this starts the server itself. runnerTimeout zero is
// the server's default.
func startServerWithStore(t *testing.T, backend testutil.Backend, runnerTimeout time.Duration) (*testutil.TestServer, store.Store) {
	t.Helper()
	ts := testutil.StartServerWith(t, backend, testutil.Options{RunnerTimeout: runnerTimeout})
	return ts, ts.OpenStore(t)
}

// response is one REST answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// get sends GET base+path with the Authorization header auth (none if
// empty).
func get(tb testing.TB, base, auth, path string) *response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	mustOK(tb, err, "new request")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	mustOK(tb, err, "GET %s", path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	mustOK(tb, err, "read %s", path)
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// wantOK fails unless the response is a 200 with a JSON body, and decodes it
// into v.
func (r *response) wantOK(tb testing.TB, v any) {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("status %d, want 200: %s", r.Status, r.Body)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", got)
	}
	if v == nil {
		return
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %T: %v\n%s", v, err, r.Body)
	}
}

// wantError fails unless the response is the JSON error {"error", "code"}
// with status and code, and its message contains every string of mention.
func (r *response) wantError(tb testing.TB, status int, code string, mention ...string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", got)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("decode error body: %v\n%s", err, r.Body)
	}
	if len(body) != 2 {
		tb.Errorf("error body has keys %v, want exactly error and code", body)
	}
	if got, ok := body["code"].(string); !ok || got != code {
		tb.Errorf("code = %v, want %q", body["code"], code)
	}
	msg, ok := body["error"].(string)
	if !ok || msg == "" {
		tb.Fatalf("error = %v, want a message", body["error"])
	}
	for _, m := range mention {
		if !strings.Contains(msg, m) {
			tb.Errorf("error %q does not mention %q", msg, m)
		}
	}
}

// The REST API's JSON, decoded strictly: a key we do not expect fails the
// decoding.
type runnerJSON struct {
	ID              int64    `json:"id"`
	Name            string   `json:"name"`
	Status          string   `json:"status"`
	Version         string   `json:"version"`
	OS              string   `json:"os"`
	Arch            string   `json:"arch"`
	Labels          []string `json:"labels"`
	PodCount        int      `json:"pod_count"`
	MaxPods         int      `json:"max_pods"`
	LastHeartbeatAt *string  `json:"last_heartbeat_at"`
	CreatedAt       string   `json:"created_at"`
}

type runnersBody struct {
	Runners []runnerJSON `json:"runners"`
}

type runnerBody struct {
	Runner runnerJSON `json:"runner"`
}

type podJSON struct {
	Key           string `json:"key"`
	Status        string `json:"status"`
	AgentTypeID   string `json:"agent_type_id"`
	InitialPrompt string `json:"initial_prompt"`
	CreatedAt     string `json:"created_at"`
}

type podsBody struct {
	Pods   []podJSON `json:"pods"`
	Total  int       `json:"total"`
	Limit  int       `json:"limit"`
	Offset int       `json:"offset"`
}

// api is a REST client of one organization's paths with one credential.
type api struct {
	base, auth string
}

func newAPI(ts *testutil.TestServer, org, auth string) *api {
	return &api{base: ts.URL + "/api/v1/orgs/" + org, auth: auth}
}

func (a *api) get(tb testing.TB, path string) *response {
	tb.Helper()
	return get(tb, a.base, a.auth, path)
}

func (a *api) runners(tb testing.TB, path string) []runnerJSON {
	tb.Helper()
	var b runnersBody
	a.get(tb, path).wantOK(tb, &b)
	if b.Runners == nil {
		tb.Fatalf("GET %s: runners is null, want an array", path)
	}
	return b.Runners
}

func (a *api) runner(tb testing.TB, id int64) runnerJSON {
	tb.Helper()
	var b runnerBody
	a.get(tb, fmt.Sprintf("/runners/%d", id)).wantOK(tb, &b)
	return b.Runner
}

func (a *api) pods(tb testing.TB, id int64, query string) podsBody {
	tb.Helper()
	var b podsBody
	a.get(tb, fmt.Sprintf("/runners/%d/pods%s", id, query)).wantOK(tb, &b)
	if b.Pods == nil {
		tb.Fatalf("pods is null, want an array")
	}
	return b
}

// byName finds the runner called n in a list.
func byName(tb testing.TB, list []runnerJSON, n string) (runnerJSON, bool) {
	tb.Helper()
	for _, r := range list {
		if r.Name == n {
			return r, true
		}
	}
	return runnerJSON{}, false
}

// seqOf returns the REST id of the runner called n.
func (a *api) seqOf(tb testing.TB, n string) int64 {
	tb.Helper()
	r, ok := byName(tb, a.runners(tb, "/runners"), n)
	if !ok {
		tb.Fatalf("runner %q is not in GET /runners", n)
	}
	return r.ID
}

// admin drives the Connect API for what the REST API cannot do: create and
// change runners and keys.
type admin struct {
	auth    string
	runners gitpodv1connect.RunnerServiceClient
	ident   gitpodv1connect.IdentityServiceClient
	tokens  runyardv1connect.TokenServiceClient
}

func newAdmin(ts *testutil.TestServer, secret string) *admin {
	return &admin{
		auth:    bearer(secret),
		runners: gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL),
		ident:   gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, ts.URL),
		tokens:  runyardv1connect.NewTokenServiceClient(http.DefaultClient, ts.URL),
	}
}

func authed[T any](a *admin, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", a.auth)
	return req
}

// createRunner creates a Linux-host runner and returns its UUID and
// exchange token.
func (a *admin) createRunner(tb testing.TB, n string) (id, exchange string) {
	tb.Helper()
	res, err := a.runners.CreateRunner(context.Background(), authed(a, &gitpodv1.CreateRunnerRequest{
		Name: n, Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
	mustOK(tb, err, "create runner %s", n)
	return res.Msg.GetRunner().GetRunnerId(), res.Msg.GetExchangeToken()
}

func (a *admin) setDesiredPhase(tb testing.TB, id string, p gitpodv1.RunnerPhase) {
	tb.Helper()
	_, err := a.runners.UpdateRunner(context.Background(), authed(a, &gitpodv1.UpdateRunnerRequest{
		RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: &p}}))
	mustOK(tb, err, "set desired phase of %s to %s", id, p)
}

// createKey creates an API key and returns its ID and secret.
func (a *admin) createKey(tb testing.TB, scopes ...string) (id, secret string) {
	tb.Helper()
	res, err := a.tokens.CreateToken(context.Background(), authed(a, &runyardv1.CreateTokenRequest{Name: name("key"), Scopes: scopes}))
	mustOK(tb, err, "create key with %v", scopes)
	return res.Msg.GetToken().GetTokenId(), res.Msg.GetSecret()
}

func (a *admin) revokeKey(tb testing.TB, id string) {
	tb.Helper()
	_, err := a.tokens.RevokeToken(context.Background(), authed(a, &runyardv1.RevokeTokenRequest{TokenId: id}))
	mustOK(tb, err, "revoke key %s", id)
}

// exchange trades an exchange token for a runner access token.
func (a *admin) exchange(tb testing.TB, x string) string {
	tb.Helper()
	res, err := a.ident.ExchangeToken(context.Background(), connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: x}))
	mustOK(tb, err, "exchange token")
	return res.Msg.GetAccessToken()
}

// connectRunner runs a runner daemon in-process with the seed's labels,
// room for two pods and version 1.2.0, until stop is called or the test
// ends.
func connectRunner(t *testing.T, ts *testutil.TestServer, exchange string) (stop func()) {
	t.Helper()
	return testutil.StartRunner(t, runner.Config{
		Server: ts.URL, ExchangeToken: exchange, Name: "test-host",
		Labels: []string{"gpu", "high-memory"}, MaxPods: 2, Version: "1.2.0",
	})
}

// eventually polls check until it returns "" (met) or the deadline passes;
// check returns what is still wrong.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var last string
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: still %s after %s", what, last, waitFor)
}

// orgID returns the ID of the default organization.
func orgID(t *testing.T, st store.Store) string {
	t.Helper()
	org, err := st.FindOrganizationByName(context.Background(), identity.DefaultOrganization)
	mustOK(t, err, "find the default organization")
	return org.ID
}

// podClock gives stored pods distinct, increasing creation times.
var podClock atomic.Int64

// mustCreatePod stores a pod on a runner (by UUID; empty for none).
func mustCreatePod(t *testing.T, st store.Store, org, runnerID string, status pods.Status) *pods.Pod {
	t.Helper()
	p := &pods.Pod{
		Key:           "pod-" + uuid.NewString()[:8],
		OrgID:         org,
		RunnerID:      runnerID,
		Status:        status,
		AgentTypeID:   "claude-code",
		InitialPrompt: "Fix the login bug " + string(status),
		Labels:        []string{"gpu"},
		CreatedAt:     time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC).Add(time.Duration(podClock.Add(1)) * time.Second),
	}
	mustOK(t, st.CreatePod(context.Background(), p), "store pod")
	return p
}
