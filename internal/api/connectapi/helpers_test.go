package connectapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// Paths of the procedures for raw HTTP requests.
const (
	pathCreateRunner = gitpodv1connect.RunnerServiceCreateRunnerProcedure
	pathGetRunner    = gitpodv1connect.RunnerServiceGetRunnerProcedure
	pathListRunners  = gitpodv1connect.RunnerServiceListRunnersProcedure
	pathUpdateRunner = gitpodv1connect.RunnerServiceUpdateRunnerProcedure
)

// protocol is one way a client speaks to the API. Every protocol reaches the
// same handlers, so behaviour tests run once per protocol.
type protocol struct {
	name string
	opts []connect.ClientOption
	// h2c selects an HTTP/2-only transport without TLS, which gRPC needs.
	h2c bool
}

var protocols = []protocol{
	{name: "ConnectJSON", opts: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "ConnectProto"},
	{name: "GRPC", opts: []connect.ClientOption{connect.WithGRPC()}, h2c: true},
}

// client holds the generated clients of every service for one protocol and
// one credential.
type client struct {
	Runners  gitpodv1connect.RunnerServiceClient
	Identity gitpodv1connect.IdentityServiceClient
	Tokens   runyardv1connect.TokenServiceClient
}

// newHTTPClient returns a client with its own connection pool, closed when the
// test ends. With h2c it speaks only unencrypted HTTP/2.
func newHTTPClient(tb testing.TB, h2c bool) *http.Client {
	tb.Helper()
	tr := &http.Transport{}
	if h2c {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// withAuthorization sets the Authorization header of every request to v; an
// empty v sends none.
func withAuthorization(v string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if v != "" {
				req.Header().Set("Authorization", v)
			}
			return next(ctx, req)
		}
	})
}

// newClient returns clients that send authorization (a whole header value,
// e.g. "Bearer x"; empty for none) over protocol p.
func newClient(tb testing.TB, baseURL string, p protocol, authorization string) *client {
	tb.Helper()
	hc := newHTTPClient(tb, p.h2c)
	opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(authorization))}, p.opts...)
	return &client{
		Runners:  gitpodv1connect.NewRunnerServiceClient(hc, baseURL, opts...),
		Identity: gitpodv1connect.NewIdentityServiceClient(hc, baseURL, opts...),
		Tokens:   runyardv1connect.NewTokenServiceClient(hc, baseURL, opts...),
	}
}

func bearer(secret string) string { return "Bearer " + secret }

// forEachBackend runs fn against a fresh test server on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, ts *testutil.TestServer)) {
	t.Helper()
	forEachBackendWith(t, testutil.Options{}, fn)
}

// forEachBackendWith is forEachBackend with server options.
func forEachBackendWith(t *testing.T, opts testutil.Options, fn func(t *testing.T, ts *testutil.TestServer)) {
	t.Helper()
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) {
			fn(t, testutil.StartServerWith(t, b, opts))
		})
	}
}

// forEachProtocol runs fn with admin clients of every protocol.
func forEachProtocol(t *testing.T, ts *testutil.TestServer, fn func(t *testing.T, p protocol, admin *client)) {
	t.Helper()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			fn(t, p, newClient(t, ts.URL, p, bearer(testutil.AdminToken)))
		})
	}
}

var nameSeq atomic.Int64

// uniqueName returns a runner name of exactly n characters (n >= 1) that no
// other call in this process returned, as far as n allows.
func uniqueName(n int) string {
	s := strconv.FormatInt(nameSeq.Add(1), 36)
	if len(s) >= n {
		return s[len(s)-n:]
	}
	return "r" + strings.Repeat("x", n-len(s)-1) + s
}

// name returns a readable unique runner name.
func name(prefix string) string {
	return prefix + "-" + strconv.FormatInt(nameSeq.Add(1), 36)
}

func i32(v int32) *int32 { return &v }

func ptr[T any](v T) *T { return &v }

// wantCode fails unless err is a Connect error with code and a message
// containing every string of contains (e.g. the name of the offending field).
func wantCode(tb testing.TB, err error, code connect.Code, contains ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		tb.Fatalf("got code %v (%v), want %v", got, err, code)
	}
	var ce *connect.Error
	msg := err.Error()
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	for _, s := range contains {
		if !strings.Contains(msg, s) {
			tb.Fatalf("error message %q does not contain %q", msg, s)
		}
	}
}

func mustOK(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// mustCreateRunner creates a runner and returns it with its exchange token.
func mustCreateRunner(tb testing.TB, c *client, req *gitpodv1.CreateRunnerRequest) (*gitpodv1.Runner, string) {
	tb.Helper()
	res, err := c.Runners.CreateRunner(context.Background(), connect.NewRequest(req))
	mustOK(tb, err, "create runner "+req.GetName())
	return res.Msg.GetRunner(), res.Msg.GetExchangeToken()
}

// mustCreateLinuxRunner creates a runner with a unique name and the defaults.
func mustCreateLinuxRunner(tb testing.TB, c *client) *gitpodv1.Runner {
	tb.Helper()
	r, _ := mustCreateRunner(tb, c, &gitpodv1.CreateRunnerRequest{
		Name: name("linux"), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
	})
	return r
}

// mustCreateKey creates an API key with scopes and returns it with its secret.
func mustCreateKey(tb testing.TB, admin *client, keyName string, scopes ...string) (*runyardv1.Token, string) {
	tb.Helper()
	res, err := admin.Tokens.CreateToken(context.Background(), connect.NewRequest(&runyardv1.CreateTokenRequest{Name: keyName, Scopes: scopes}))
	mustOK(tb, err, "create key "+keyName)
	if res.Msg.GetSecret() == "" {
		tb.Fatalf("create key %s: empty secret", keyName)
	}
	return res.Msg.GetToken(), res.Msg.GetSecret()
}

// mustExchange trades an exchange token for a runner access token.
func mustExchange(tb testing.TB, c *client, exchange string) string {
	tb.Helper()
	res, err := c.Identity.ExchangeToken(context.Background(), connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: exchange}))
	mustOK(tb, err, "exchange token")
	if res.Msg.GetAccessToken() == "" {
		tb.Fatal("exchange token: empty access token")
	}
	return res.Msg.GetAccessToken()
}

// listAll walks every page of ListRunners with filter.
func listAll(tb testing.TB, c *client, filter *gitpodv1.ListRunnersRequest_Filter, pageSize int32) []*gitpodv1.Runner {
	tb.Helper()
	var out []*gitpodv1.Runner
	token := ""
	for range 1000 {
		res, err := c.Runners.ListRunners(context.Background(), connect.NewRequest(&gitpodv1.ListRunnersRequest{
			Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: pageSize},
		}))
		mustOK(tb, err, "list runners")
		out = append(out, res.Msg.GetRunners()...)
		token = res.Msg.GetPagination().GetNextToken()
		if token == "" {
			return out
		}
	}
	tb.Fatal("list runners: more than 1000 pages")
	return nil
}

func ids(rs []*gitpodv1.Runner) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.GetRunnerId()
	}
	return out
}

// rawResponse is an HTTP response read whole.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// connectError is the JSON body of a Connect protocol error.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (r rawResponse) err(tb testing.TB) connectError {
	tb.Helper()
	var e connectError
	if err := json.Unmarshal(r.Body, &e); err != nil {
		tb.Fatalf("error body %q: %v", r.Body, err)
	}
	return e
}

// wantError fails unless r is a Connect error with HTTP status, code and a
// message containing every string of contains.
func (r rawResponse) wantError(tb testing.TB, status int, code string, contains ...string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("got HTTP %d (%s), want %d", r.Status, r.Body, status)
	}
	e := r.err(tb)
	if e.Code != code {
		tb.Fatalf("got code %q (%s), want %q", e.Code, e.Message, code)
	}
	for _, s := range contains {
		if !strings.Contains(e.Message, s) {
			tb.Fatalf("error message %q does not contain %q", e.Message, s)
		}
	}
}

// wantOK fails unless r is a 200 and decodes its JSON body into v (if not nil).
func (r rawResponse) wantOK(tb testing.TB, v any) {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("got HTTP %d (%s), want 200", r.Status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			tb.Fatalf("decode %s: %v", r.Body, err)
		}
	}
}

// post sends body to path (which may carry a query string) with contentType
// and the Authorization header authorization (none if empty).
func post(tb testing.TB, hc *http.Client, baseURL, path, contentType, authorization string, body []byte) rawResponse {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+path, bytes.NewReader(body))
	mustOK(tb, err, "new request")
	req.Header.Set("Content-Type", contentType)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := hc.Do(req)
	mustOK(tb, err, "POST "+path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	mustOK(tb, err, "read body of "+path)
	return rawResponse{Status: res.StatusCode, Header: res.Header, Body: b}
}

// rawJSON sends Connect JSON requests by hand, as the vendor's SDKs do, with
// one Authorization header.
type rawJSON struct {
	hc   *http.Client
	url  string
	auth string
}

func newRawJSON(tb testing.TB, ts *testutil.TestServer, authorization string) *rawJSON {
	return &rawJSON{hc: newHTTPClient(tb, false), url: ts.URL, auth: authorization}
}

func (c *rawJSON) post(tb testing.TB, path, body string) rawResponse {
	tb.Helper()
	return post(tb, c.hc, c.url, path, "application/json", c.auth, []byte(body))
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// startServerWithStore starts a control plane like testutil.StartServer and
// also opens its database directly, so a test can create what the API cannot
// yet (a second organization, an expired key). testutil.TestServer does not
// expose the PostgreSQL schema, so this starts the server itself.
func startServerWithStore(t *testing.T, backend testutil.Backend) (*testutil.TestServer, store.Store) {
	t.Helper()
	ts := testutil.StartServerWith(t, backend, testutil.Options{})
	return ts, ts.OpenStore(t)
}

// skipIfCrashed fails the test when err is what a handler panic looks like
// from a client: net/http drops the connection (Connect: unavailable,
// unexpected EOF) or resets the stream (gRPC: internal, INTERNAL_ERROR). The
// name is historical: it skipped until the nil-spec panic was fixed.
func skipIfCrashed(tb testing.TB, err error, bug string) {
	tb.Helper()
	if err == nil {
		return
	}
	code, msg := connect.CodeOf(err), err.Error()
	if (code == connect.CodeUnavailable && strings.Contains(msg, "EOF")) ||
		(code == connect.CodeInternal && strings.Contains(msg, "INTERNAL_ERROR")) {
		tb.Fatalf("regression: %s: %v", bug, err)
	}
}

// postgresConfigured reports whether the PostgreSQL backend runs. A fuzz
// function checks it first: testutil.StartServer would skip the whole fuzz
// test instead of one backend.
func postgresConfigured() bool { return os.Getenv(testutil.PostgresEnv) != "" }
