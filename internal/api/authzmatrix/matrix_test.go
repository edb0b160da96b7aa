package authzmatrix_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/api/connectapi"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// workers bounds the calls in flight: the machine is shared.
const workers = 8

// env is one live control plane with the fixtures the requests name.
type env struct {
	t       *testing.T
	url     string
	clients *clients
	// vars are the fixtures of the first organization, by placeholder.
	vars map[string]string
	seq  atomic.Int64
	// st is a handle on the server's database, for users.
	st store.Store
}

// cell is one call of the matrix and the answer the table promises.
type cell struct {
	row       row
	principal principal
	req       request
	want      string
	// probe marks the second call of a refused caller: an empty or
	// malformed request, which must be refused the same way.
	probe bool
	// noCSRF marks a session's write sent without its CSRF token;
	// foreign one sent by a page of another site (its Origin).
	noCSRF, foreign bool
}

func TestAuthorizationMatrix(t *testing.T) {
	rows := readTable(t)
	checkCoverage(t, rows)
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			// Every kind of caller signs in: more than one client address
			// may try at once by default.
			// A public URL a cluster could reach: the Kubiya rows make
			// runner manifests, refused without one.
			ts := testutil.StartServerWith(t, backend, testutil.Options{PublicURL: "http://runyard.example.com",
				SignInLimits: sessions.Limits{PerIPBurst: 10000, PerIPInterval: time.Millisecond}})
			e := &env{t: t, url: ts.URL, clients: newClients(), vars: map[string]string{}, st: ts.OpenStore(t)}
			// Before the server stops: its shutdown waits for open
			// connections.
			t.Cleanup(e.clients.close)
			e.setUp()
			principals := e.principals()
			cells := e.cells(rows, principals)
			counts := e.run(cells)
			var lines []string
			for s, n := range counts {
				lines = append(lines, fmt.Sprintf("%s: %d calls", s, n))
			}
			sort.Strings(lines)
			t.Logf("%d principals, %d calls: %s", len(principals), len(cells), strings.Join(lines, "; "))
		})
	}
}

// checkCoverage fails for a served method or route without a row, and for
// a row that names nothing served.
func checkCoverage(t *testing.T, rows []row) {
	t.Helper()
	declared := map[string]protoreflect.MethodDescriptor{}
	for _, sd := range connectapi.APIServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			declared[connectapi.Procedure(md)] = md
		}
	}
	runnerSvc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(strings.Trim(runnerv1connect.RunnerControlServiceName, "/")))
	if err != nil {
		t.Fatalf("runner protocol: %v", err)
	}
	documented := map[string]bool{}
	patterns := map[string]bool{}
	for _, r := range rows {
		if _, ok := templates[r.method]; !ok && r.method != "*" {
			t.Errorf("%s: no request template in requests_test.go", r)
		}
		switch {
		case r.method == "*":
		case r.surface == "connect":
			documented[r.procedure()] = true
			if _, ok := declared[r.procedure()]; !ok && !strings.HasPrefix(r.method, "runyard.runner.v1.") {
				t.Errorf("%s: no such procedure is declared", r)
			}
		default:
			patterns[r.pattern()] = true
		}
	}
	sd := runnerSvc.(protoreflect.ServiceDescriptor)
	for i := range sd.Methods().Len() {
		if p := connectapi.Procedure(sd.Methods().Get(i)); !documented[p] {
			t.Errorf("runner protocol method %s has no row in %s", p, tablePath)
		}
	}
	served := server.Routes()
	for _, p := range served {
		if !patterns[p] {
			t.Errorf("route %q is served but has no row in %s", p, tablePath)
		}
	}
	for p := range patterns {
		if !slices.Contains(served, p) {
			t.Errorf("row %q: no such route is served", p)
		}
	}
	// Every procedure of the vendor's API is declared, so that the
	// unimplemented rule, checked over every declared method, covers it.
	f, err := os.Open("../../protocheck/testdata/vendor_procedures.txt")
	if err != nil {
		t.Fatalf("vendor procedures: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if _, ok := declared[p]; !ok {
			t.Errorf("vendor procedure %s is not declared: the matrix cannot check it", p)
		}
	}
	// A template must be a valid request of its method, or an allowed
	// caller's answer would say nothing about authorization.
	for _, r := range rows {
		if r.surface != "connect" || r.method == "*" {
			continue
		}
		md := methodOf(r.procedure())
		if md == nil {
			t.Errorf("%s: no descriptor", r)
			continue
		}
		body := strings.NewReplacer("{name}", "n", "{slug}", "n", "{exchange}", "x").Replace(templates[r.method].body)
		body = placeholderRE.Replace(body)
		if err := protojson.Unmarshal([]byte(body), dynamicpb.NewMessage(md.Input())); err != nil {
			t.Errorf("%s: template is not a %s: %v", r, md.Input().FullName(), err)
		}
	}
}

// placeholderRE fills every fixture placeholder with a UUID, for checking
// templates' shapes.
var placeholderRE = strings.NewReplacer("{runner}", uuid.Nil.String(), "{class}", uuid.Nil.String(), "{env}", uuid.Nil.String(),
	"{service}", uuid.Nil.String(), "{task}", uuid.Nil.String(), "{execution}", uuid.Nil.String(), "{secret}", uuid.Nil.String(),
	"{token}", uuid.Nil.String(), "{orgid}", uuid.Nil.String(), "{org}", "o", "{user}", uuid.Nil.String(),
	"{invite}", "i", "{freshinvite}", "i", "{authkey}", "k", "{prebuild}", uuid.Nil.String(), "{schedule}", uuid.Nil.String())

func methodOf(proc string) protoreflect.MethodDescriptor {
	svc, m, _ := strings.Cut(strings.TrimPrefix(proc, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil
	}
	return d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(m))
}

// call makes one call as the installation admin (or auth) and decodes its
// JSON answer; anything but success fails the test.
func (e *env) call(auth, method, path, body string) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+auth)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.clients.h1.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %s: %s", method, path, res.Status, b)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return out
}

func (e *env) rpc(proc, body string) map[string]any {
	e.t.Helper()
	return e.call(testutil.AdminToken, http.MethodPost, "/"+proc, body)
}

// get reads a string at a path of keys in a decoded JSON answer.
func get(t *testing.T, m map[string]any, keys ...string) string {
	t.Helper()
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %v", keys, m)
		}
		v = mm[k]
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	}
	t.Fatalf("no %v in %v", keys, m)
	return ""
}

// setUp creates the first organization's fixtures as the installation
// admin: a runner with a class, an environment with a service, a task and
// an execution, a secret, an API key, a custom agent type, a pod and a
// signed manifest URL.
func (e *env) setUp() {
	t := e.t
	v := e.vars
	who := e.rpc("gitpod.v1.IdentityService/GetAuthenticatedIdentity", `{}`)
	v["{orgid}"] = get(t, who, "organizationId")
	v["{org}"] = get(t, e.rpc("gitpod.v1.OrganizationService/GetOrganization", `{"organizationId":"`+v["{orgid}"]+`"}`), "organization", "name")
	v["{runnername}"] = "authz-runner"
	r := e.rpc("gitpod.v1.RunnerService/CreateRunner", `{"name":"authz-runner","provider":"RUNNER_PROVIDER_LINUX_HOST"}`)
	v["{runner}"] = get(t, r, "runner", "runnerId")
	v["{runnertoken}"] = get(t, e.rpc("gitpod.v1.IdentityService/ExchangeToken", `{"exchangeToken":"`+get(t, r, "exchangeToken")+`"}`), "accessToken")
	for _, rn := range e.call(testutil.AdminToken, http.MethodGet, "/api/v1/orgs/"+url.PathEscape(v["{org}"])+"/runners", "")["runners"].([]any) {
		if m := rn.(map[string]any); m["name"] == "authz-runner" {
			v["{runnerseq}"] = get(t, m, "id")
		}
	}
	classes := e.rpc("gitpod.v1.EnvironmentService/ListEnvironmentClasses", `{"filter":{"runnerIds":["`+v["{runner}"]+`"]}}`)["environmentClasses"].([]any)
	v["{class}"] = get(t, classes[0].(map[string]any), "id")
	v["{env}"] = get(t, e.rpc("gitpod.v1.EnvironmentService/CreateEnvironment", `{"spec":{"machine":{"class":"`+v["{class}"]+`"}}}`), "environment", "id")
	v["{service}"] = get(t, e.rpc("gitpod.v1.EnvironmentAutomationService/CreateService",
		`{"environmentId":"`+v["{env}"]+`","metadata":{"reference":"authz-service","name":"s"},"spec":{"commands":{"start":"sleep 1000"}}}`), "service", "id")
	v["{task}"] = get(t, e.rpc("gitpod.v1.EnvironmentAutomationService/CreateTask",
		`{"environmentId":"`+v["{env}"]+`","metadata":{"reference":"authz-task","name":"t"},"spec":{"command":"true"}}`), "task", "id")
	v["{execution}"] = get(t, e.rpc("gitpod.v1.EnvironmentAutomationService/StartTask", `{"id":"`+v["{task}"]+`"}`), "taskExecution", "id")
	v["{log}"] = v["{execution}"]
	v["{schedule}"] = get(t, e.rpc("runyard.v1.PrebuildScheduleService/CreatePrebuildSchedule",
		`{"contextUrl":"https://github.com/runyard/runyard","environmentClassId":"`+v["{class}"]+`","interval":"86400s"}`), "schedule", "id")
	v["{prebuild}"] = get(t, e.rpc("gitpod.v1.PrebuildService/CreatePrebuild",
		`{"contextUrl":"https://github.com/runyard/runyard","environmentClassId":"`+v["{class}"]+`"}`), "prebuild", "id")
	v["{secret}"] = get(t, e.rpc("gitpod.v1.SecretService/CreateSecret",
		`{"name":"AUTHZ_SECRET","value":"v","scope":{"organizationId":"`+v["{orgid}"]+`"}}`), "secret", "id")
	v["{token}"] = get(t, e.rpc("runyard.v1.TokenService/CreateToken", `{"name":"authz-victim","scopes":["runners:read"]}`), "token", "tokenId")
	v["{logstoken}"] = get(t, e.rpc("gitpod.v1.EnvironmentService/CreateEnvironmentLogsToken", `{"environmentId":"`+v["{env}"]+`"}`), "accessToken")
	rest := "/api/v1/orgs/" + url.PathEscape(v["{org}"])
	v["{agent}"] = get(t, e.call(testutil.AdminToken, http.MethodPost, rest+"/agents",
		`{"id":"authz-agent","name":"Authz agent","command":["sh","-c","sleep 1000"]}`), "agent", "id")
	v["{pod}"] = get(t, e.call(testutil.AdminToken, http.MethodPost, rest+"/pods", `{"agent_type_id":"authz-agent","initial_prompt":"authz"}`), "pod", "key")
	if usersServed() {
		e.setUpUsers()
	}
	v["{asset}"] = e.consoleAsset()
	mu, err := url.Parse(get(t, e.call(testutil.AdminToken, http.MethodPost, "/api/v3/runners/authz-kubiya", ""), "manifest_url"))
	if err != nil {
		t.Fatal(err)
	}
	v["{manifest}"] = mu.RequestURI()
}

// principals are the callers of the matrix: nobody; an API key holding
// each role's scopes; the installation admin; the fixture runner; a logs
// token of the fixture environment; and an admin, a runner and a member of
// a second organization.
func (e *env) principals() []principal {
	t := e.t
	ps := []principal{{name: "nobody", kind: kindNone}}
	for _, role := range identity.KnownRoles {
		scopes := identity.RoleScopes[role]
		names, _ := json.Marshal(scopes)
		secret := get(t, e.rpc("runyard.v1.TokenService/CreateToken", fmt.Sprintf(`{"name":"authz-%s","scopes":%s}`, role, names)), "secret")
		ps = append(ps, principal{name: "key:" + string(role), kind: kindKey, authorization: "Bearer " + secret, scopes: scopes})
	}
	ps = append(ps,
		principal{name: "installation-admin", kind: kindInstallationAdmin, authorization: "Bearer " + testutil.AdminToken, scopes: []identity.Scope{identity.ScopeAdmin}},
		principal{name: "runner", kind: kindRunner, authorization: "Bearer " + e.vars["{runnertoken}"]},
		principal{name: "logs-token", kind: kindLogs, authorization: "Bearer " + e.vars["{logstoken}"]},
	)
	if usersServed() {
		ps = append(ps, e.users()...)
	}
	other := get(t, e.rpc("gitpod.v1.OrganizationService/CreateOrganization", `{"name":"authz-other"}`), "organization", "id")
	for _, role := range []identity.Role{identity.RoleAdmin, identity.RoleMember} {
		scopes := identity.RoleScopes[role]
		names, _ := json.Marshal(scopes)
		secret := get(t, e.rpc("runyard.v1.TokenService/CreateToken",
			fmt.Sprintf(`{"name":"authz-other-%s","scopes":%s,"organizationId":"%s"}`, role, names, other)), "secret")
		ps = append(ps, principal{name: "other-org:" + string(role), kind: kindKey, authorization: "Bearer " + secret, scopes: scopes, other: true})
		if role == identity.RoleAdmin {
			r := e.call(secret, http.MethodPost, "/gitpod.v1.RunnerService/CreateRunner", `{"name":"authz-other-runner","provider":"RUNNER_PROVIDER_LINUX_HOST"}`)
			token := get(t, e.rpc("gitpod.v1.IdentityService/ExchangeToken", `{"exchangeToken":"`+get(t, r, "exchangeToken")+`"}`), "accessToken")
			ps = append(ps, principal{name: "other-org:runner", kind: kindRunner, authorization: "Bearer " + token, other: true})
		}
	}
	return ps
}

// cells makes the calls of every row (and of every declared Connect method
// without one, under the unimplemented rule) for every principal.
func (e *env) cells(rows []row, ps []principal) []cell {
	var out []cell
	documented := map[string]bool{}
	var unimplemented row
	for _, r := range rows {
		if r.method == "*" {
			unimplemented = r
			continue
		}
		if r.surface == "connect" {
			documented[r.procedure()] = true
		}
	}
	for _, sd := range connectapi.APIServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			if p := connectapi.Procedure(md); !documented[p] {
				r := unimplemented
				r.method = strings.TrimPrefix(p, "/")
				rows = append(rows, r)
			}
		}
	}
	for _, r := range rows {
		if r.method == "*" {
			continue
		}
		for i, p := range ps {
			want := expect(r, p)
			out = append(out, cell{row: r, principal: p, want: want, req: e.request(r, p, i, false)})
			// A variant's empty request is its method's, not the variant's.
			if (want == "unauthenticated" || want == "permission_denied") && r.needs != "unimplemented" && !strings.Contains(r.method, " (") && !templates[r.method].noProbe {
				if want == "permission_denied" && r.namesOrganization() {
					// An empty request names no organization of the
					// caller's: not_found says nothing either.
					want += "|not_found"
				}
				out = append(out, cell{row: r, principal: p, want: want, req: e.request(r, p, i, true), probe: true})
			}
			// A console action of a session, without the session's CSRF
			// token: what a page of another site could make a browser send.
			if r.surface == "console" && strings.HasPrefix(r.method, "POST ") && p.kind == kindSession {
				req := e.request(r, p, i, false)
				req.header = req.header.Clone()
				req.header.Del("X-CSRF-Token")
				out = append(out, cell{row: r, principal: p, want: "permission_denied", req: req, noCSRF: true})
				// With the token, from another site's page: the console
				// refuses a form posted from elsewhere.
				req = e.request(r, p, i, false)
				req.header = req.header.Clone()
				req.header.Set("Origin", "https://evil.example")
				out = append(out, cell{row: r, principal: p, want: "permission_denied", req: req, foreign: true})
			}
		}
	}
	return out
}

// request builds the call of r as p. A Connect call goes to / for even
// principals and under /api/ for odd ones (the runner protocol only at /).
// probe makes it empty: {} for Connect, every id "x" and a body of {} for
// HTTP.
func (e *env) request(r row, p principal, i int, probe bool) request {
	tpl := templates[r.method]
	h := http.Header{}
	if p.authorization != "" {
		h.Set("Authorization", p.authorization)
	}
	if p.session != "" {
		h.Set("Cookie", sessionCookie+"="+p.session)
		h.Set("X-CSRF-Token", p.csrf)
		// A cookie's WebSocket must come from the server's own pages.
		h.Set("Origin", e.url)
	}
	switch r.surface {
	case "connect":
		md := methodOf(r.procedure())
		base := e.url
		if i%2 == 1 && !strings.HasPrefix(r.method, "runyard.runner.v1.") {
			base += connectapi.PathPrefix
		}
		body := tpl.body
		if body == "" || probe {
			body = "{}"
		}
		req := request{method: http.MethodPost, url: base + r.procedure(), body: []byte(body), header: h}
		if md != nil && (md.IsStreamingClient() || md.IsStreamingServer()) {
			req.stream = true
			h.Set("Content-Type", "application/connect+json")
		} else {
			h.Set("Content-Type", "application/json")
			h.Set("Connect-Protocol-Version", "1")
		}
		return req
	}
	method, path, _ := strings.Cut(r.method, " ")
	if tpl.path != "" {
		path = tpl.path
	}
	req := request{method: method, url: e.url + path, header: h, websocket: r.surface == "websocket"}
	if r.surface == "console" {
		// The console's actions post forms.
		if method == http.MethodPost {
			req.body = []byte(tpl.body)
			if probe {
				req.body = []byte{}
			}
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return req
	}
	if tpl.body != "" || probe && (method == http.MethodPost || method == http.MethodPatch) {
		req.body = []byte(tpl.body)
		if probe {
			req.body = []byte("{}")
		}
		h.Set("Content-Type", "application/json")
	}
	return req
}

// fill replaces the placeholders of a request just before it is sent:
// fresh names and exchange tokens are made per call.
func (e *env) fill(c cell) request {
	req := c.req
	n := e.seq.Add(1)
	tpl := templates[c.row.method]
	var pairs []string
	for k, v := range e.vars {
		switch {
		case c.probe && k != "{org}":
			v = "x"
		case tpl.destructive && !c.principal.other && k != "{org}" && k != "{orgid}":
			v = uuid.NewString()
		}
		pairs = append(pairs, k, v)
	}
	pairs = append(pairs, "{name}", fmt.Sprintf("authz-%d", n), "{slug}", fmt.Sprintf("authz-%d", n))
	in := string(req.body) + "\x00" + req.url
	if strings.Contains(in, "{exchange}") {
		pairs = append(pairs, "{exchange}", get(e.t, e.rpc("gitpod.v1.RunnerService/CreateRunner",
			fmt.Sprintf(`{"name":"authz-x-%d","provider":"RUNNER_PROVIDER_LINUX_HOST"}`, n)), "exchangeToken"))
	}
	if strings.Contains(in, "{freshinvite}") {
		pairs = append(pairs, "{freshinvite}", e.invite())
	}
	if tpl.freshSession && c.principal.session != "" {
		session, csrf := e.signIn(c.principal.email)
		req.header = req.header.Clone()
		req.header.Set("Cookie", sessionCookie+"="+session)
		req.header.Set("X-CSRF-Token", csrf)
	}
	rp := strings.NewReplacer(pairs...)
	body, u, _ := strings.Cut(rp.Replace(in), "\x00")
	if req.body != nil {
		req.body = []byte(body)
	}
	// Names in paths are escaped; the manifest's is a path and query already.
	req.url = u
	return req
}

// run makes every call, workers at a time, and reports each answer that is
// not what its row promises. It returns the number of calls per surface.
func (e *env) run(cells []cell) map[string]int {
	var (
		mu       sync.Mutex
		failures []string
		counts   = map[string]int{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, workers)
	)
	for _, c := range cells {
		counts[c.row.surface]++
		req := e.fill(c)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			got, err := e.clients.do(context.Background(), req)
			if err == nil && matches(c.want, got) {
				return
			}
			what := "request"
			switch {
			case c.probe:
				what = "empty request"
			case c.noCSRF:
				what = "without CSRF token"
			case c.foreign:
				what = "from another site"
			}
			var msg string
			if err != nil {
				msg = fmt.Sprintf("%s as %s (%s): %v", c.row, c.principal.name, what, err)
			} else {
				msg = fmt.Sprintf("%s as %s (%s): got %s, want %s [%s %s %s]", c.row, c.principal.name, what, got, c.want,
					req.method, strings.TrimPrefix(req.url, e.url), bytes.TrimSpace(req.body))
			}
			mu.Lock()
			failures = append(failures, msg)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		e.t.Error(f)
	}
	return counts
}

// consoleAsset returns the path of an asset the console's sign-in page
// loads: its names carry a hash.
func (e *env) consoleAsset() string {
	t := e.t
	res, err := e.clients.h1.Get(e.url + "/signin")
	if err != nil {
		t.Fatalf("console sign-in page: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := assetRE.Find(b)
	if m == nil {
		t.Fatalf("console sign-in page: no asset in %s", b)
	}
	return string(m)
}

var assetRE = regexp.MustCompile(`/console/assets/[A-Za-z0-9._-]+`)
