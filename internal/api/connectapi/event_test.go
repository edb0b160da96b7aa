package connectapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/testutil"
)

// EventService/WatchEvents over real HTTP: every kind of resource through
// the API, scopes, organizations, resuming, the vendor SDKs' JSONL form,
// and replicas sharing PostgreSQL.

// ev is an event as the tests compare them.
type ev struct {
	typ gitpodv1.ResourceType
	op  gitpodv1.ResourceOperation
	id  string
}

func (e ev) String() string {
	return strings.TrimPrefix(e.typ.String(), "RESOURCE_TYPE_") + "/" + strings.TrimPrefix(e.op.String(), "RESOURCE_OPERATION_") + "/" + e.id
}

func evOf(m *gitpodv1.WatchEventsResponse) ev {
	return ev{typ: m.GetResourceType(), op: m.GetOperation(), id: m.GetResourceId()}
}

const (
	rtRunner    = gitpodv1.ResourceType_RESOURCE_TYPE_RUNNER
	rtEnv       = gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT
	rtService   = gitpodv1.ResourceType_RESOURCE_TYPE_SERVICE
	rtTask      = gitpodv1.ResourceType_RESOURCE_TYPE_TASK
	rtExecution = gitpodv1.ResourceType_RESOURCE_TYPE_TASK_EXECUTION
	rtSecret    = gitpodv1.ResourceType_RESOURCE_TYPE_SECRET

	opCreate       = gitpodv1.ResourceOperation_RESOURCE_OPERATION_CREATE
	opUpdate       = gitpodv1.ResourceOperation_RESOURCE_OPERATION_UPDATE
	opDelete       = gitpodv1.ResourceOperation_RESOURCE_OPERATION_DELETE
	opUpdateStatus = gitpodv1.ResourceOperation_RESOURCE_OPERATION_UPDATE_STATUS
)

// watcher collects the events of one WatchEvents stream.
type watcher struct {
	events chan *gitpodv1.WatchEventsResponse
	done   chan error
	cancel context.CancelFunc
	// last is the cursor of the last event taken.
	last string
}

// streamClient is newHTTPClient without its timeout, which would end a
// stream that outlives it.
func streamClient(tb testing.TB, h2c bool) *http.Client {
	hc := newHTTPClient(tb, h2c)
	hc.Timeout = 0
	return hc
}

// watchConnect opens a stream with a Connect client of protocol p and
// waits until the server established it (changes after that reach it), or
// returns the error the server refused it with.
func watchConnect(t *testing.T, baseURL string, p protocol, authorization string, req *gitpodv1.WatchEventsRequest) (*watcher, error) {
	t.Helper()
	c := gitpodv1connect.NewEventServiceClient(streamClient(t, p.h2c), baseURL, p.opts...)
	sctx, cancel := context.WithCancel(context.Background())
	r := connect.NewRequest(req)
	if authorization != "" {
		r.Header().Set("Authorization", authorization)
	}
	stream, err := c.WatchEvents(sctx, r)
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() { cancel(); stream.Close() })
	if stream.ResponseHeader().Get("Runyard-Watch-Started") == "" {
		if stream.Receive() {
			t.Fatalf("an event before the watch started: %v", stream.Msg())
		}
		if stream.Err() == nil {
			t.Fatal("the stream ended without an error nor a start")
		}
		return nil, stream.Err()
	}
	w := &watcher{events: make(chan *gitpodv1.WatchEventsResponse, 10000), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(w.events)
		for stream.Receive() {
			w.events <- stream.Msg()
		}
		w.done <- stream.Err()
	}()
	return w, nil
}

// watchJSONL opens a stream the way the vendor's SDKs do.
func watchJSONL(t *testing.T, baseURL, authorization, body string) (*watcher, *http.Response) {
	t.Helper()
	sctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, baseURL+gitpodv1connect.EventServiceWatchEventsProcedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/jsonl")
	req.Header.Set("Accept", "application/jsonl")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := streamClient(t, false).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("watch (jsonl): %v", err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		return nil, res
	}
	w := &watcher{events: make(chan *gitpodv1.WatchEventsResponse, 10000), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(w.events)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var m gitpodv1.WatchEventsResponse
			if err := protojson.Unmarshal(sc.Bytes(), &m); err != nil {
				w.done <- fmt.Errorf("line %q: %w", sc.Text(), err)
				return
			}
			w.events <- &m
		}
		w.done <- sc.Err()
	}()
	return w, res
}

// until takes events until one equal to want, and returns those before it.
func (w *watcher) until(t *testing.T, want ev) []ev {
	t.Helper()
	var seen []ev
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-w.events:
			if !ok {
				t.Fatalf("stream ended waiting for %v (after %v): %v", want, seen, <-w.done)
			}
			w.last = m.GetCursor()
			if got := evOf(m); got == want {
				return seen
			} else {
				seen = append(seen, got)
			}
		case <-deadline:
			t.Fatalf("no event %v; saw %v", want, seen)
		}
	}
}

// take takes n events.
func (w *watcher) take(t *testing.T, n int) []ev {
	t.Helper()
	var seen []ev
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case m, ok := <-w.events:
			if !ok {
				t.Fatalf("stream ended after %d events (last %v): %v", len(seen), seen[max(len(seen)-3, 0):], <-w.done)
			}
			w.last = m.GetCursor()
			seen = append(seen, evOf(m))
		case <-deadline:
			t.Fatalf("%d events of %d (last %v)", len(seen), n, seen[max(len(seen)-3, 0):])
		}
	}
	return seen
}

func has(evs []ev, typ gitpodv1.ResourceType) []ev {
	var out []ev
	for _, e := range evs {
		if e.typ == typ {
			out = append(out, e)
		}
	}
	return out
}

var orgWide = &gitpodv1.WatchEventsRequest{Scope: &gitpodv1.WatchEventsRequest_Organization{Organization: true}}

func envScope(id, cursor string) *gitpodv1.WatchEventsRequest {
	return &gitpodv1.WatchEventsRequest{Scope: &gitpodv1.WatchEventsRequest_EnvironmentId{EnvironmentId: id}, Cursor: cursor}
}

// marker makes a change of its own in the admin's organization (a runner
// created) and returns its event: a watcher that reaches it has seen
// everything committed before it.
func marker(t *testing.T, admin *client) ev {
	t.Helper()
	r, _ := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("marker"), Provider: provLinux})
	return ev{rtRunner, opCreate, r.GetRunnerId()}
}

// TestEvents_EachResourceKind changes every kind of resource through the
// API and the runner protocol, and checks what the organization's watcher
// and the environment's watcher see, in order. A renewal changes nothing
// a watcher sees.
func TestEvents_EachResourceKind(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			p := protocols[0]
			admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
			secrets := newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken))
			org, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
			mustOK(t, err, "watch the organization")

			r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("events"), Provider: provLinux})
			runnerID := r.GetRunnerId()
			org.until(t, ev{rtRunner, opCreate, runnerID})
			_, err = admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: runnerID, Name: ptr(name("renamed"))}))
			mustOK(t, err, "rename the runner")
			org.until(t, ev{rtRunner, opUpdate, runnerID})

			// The runner connects and reports: its status changes.
			token := mustExchange(t, admin.client, x)
			sctx, stop := context.WithCancel(context.Background())
			defer stop()
			control := runnerv1connect.NewRunnerControlServiceClient(newHTTPClient(t, true), ts.URL, connect.WithGRPC())
			stream := control.Connect(sctx)
			stream.RequestHeader().Set("Authorization", bearer(token))
			mustOK(t, stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{Version: "test"}}}), "send status")
			if m, err := stream.Receive(); err != nil || m.GetWelcome() == nil {
				t.Fatalf("handshake: %v, %v", m, err)
			}
			org.until(t, ev{rtRunner, opUpdateStatus, runnerID})

			// Renewals (heartbeats) are no change a watcher sees.
			orgID := whoami(t, admin.client).GetOrganizationId()
			for i := range 3 {
				_, err := st.RenewRunners(ctx, []runners.Renewal{{OrgID: orgID, RunnerID: runnerID, At: time.Now().Add(time.Duration(i) * time.Second)}})
				mustOK(t, err, "renew")
			}
			if seen := org.until(t, marker(t, admin.client)); len(seen) != 0 {
				t.Fatalf("renewals made events %v", seen)
			}

			// Environments: in the organization's scope; the environment's
			// watcher resumes from before its creation.
			before := org.last
			env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, runnerID)).GetId()
			org.until(t, ev{rtEnv, opCreate, env})
			envW, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), envScope(env, before))
			mustOK(t, err, "watch the environment")
			envW.until(t, ev{rtEnv, opCreate, env})

			svc := mustCreateService(t, admin, env, "web")
			mustOK(t, startService(admin, svc.GetId()), "start the service")
			task := mustCreateTask(t, admin, env, "build")
			exec := mustStartTask(t, admin, task.GetId())
			mustOK(t, stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ServiceStatus{ServiceStatus: &runnerv1.ServiceStatus{
				Id: svc.GetId(), StatusVersion: 100, Phase: svcRunning, Session: mustGetService(t, admin, svc.GetId()).GetSpec().GetSession(),
			}}}), "report the service")
			envW.until(t, ev{rtService, opCreate, svc.GetId()})
			envW.until(t, ev{rtService, opUpdate, svc.GetId()})
			envW.until(t, ev{rtTask, opCreate, task.GetId()})
			envW.until(t, ev{rtExecution, opCreate, exec.GetId()})
			envW.until(t, ev{rtService, opUpdateStatus, svc.GetId()})
			_, err = admin.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: exec.GetId()}))
			mustOK(t, err, "stop the execution")
			envW.until(t, ev{rtExecution, opUpdate, exec.GetId()})
			_, err = admin.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: task.GetId()}))
			mustOK(t, err, "delete the task")
			envW.until(t, ev{rtTask, opDelete, task.GetId()})
			reportEnvironment(t, st, orgID, env, "ENVIRONMENT_PHASE_RUNNING")
			envW.until(t, ev{rtEnv, opUpdateStatus, env})
			_, err = admin.Envs.StopEnvironment(ctx, connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: env}))
			mustOK(t, err, "stop the environment")
			envW.until(t, ev{rtEnv, opUpdate, env})

			// The organization's watcher saw the environment's changes but
			// none of its services, tasks or executions.
			m := marker(t, admin.client)
			seen := org.until(t, m)
			for _, e := range seen {
				if e.typ != rtEnv && e.typ != rtRunner {
					t.Errorf("the organization's watcher saw %v", e)
				}
			}
			if got := has(seen, rtEnv); len(got) < 2 {
				t.Errorf("the organization's watcher saw environment events %v, want its status and its stop", got)
			}

			// Secrets: the organization's scope.
			sec := mustCreateSecret(t, secrets, &gitpodv1.CreateSecretRequest{Name: name("sec"), Value: "v", Scope: orgScope(orgID)})
			org.until(t, ev{rtSecret, opCreate, sec.GetId()})
			_, err = secrets.UpdateSecretValue(ctx, connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: sec.GetId(), Value: "w"}))
			mustOK(t, err, "update the secret")
			org.until(t, ev{rtSecret, opUpdate, sec.GetId()})
			_, err = secrets.DeleteSecret(ctx, connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: sec.GetId()}))
			mustOK(t, err, "delete the secret")
			org.until(t, ev{rtSecret, opDelete, sec.GetId()})

			// Deleting the environment deletes it for both watchers.
			_, err = admin.Envs.DeleteEnvironment(ctx, connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: env, Force: true}))
			mustOK(t, err, "delete the environment")
			envW.until(t, ev{rtEnv, opDelete, env})
			org.until(t, ev{rtEnv, opDelete, env})

			// A runner that never connected is deleted at once.
			gone, _ := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("gone"), Provider: provLinux})
			_, err = admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: gone.GetRunnerId()}))
			mustOK(t, err, "delete a runner")
			org.until(t, ev{rtRunner, opDelete, gone.GetRunnerId()})
		})
	}
}

// TestEvents_Scopes: who may watch what. The organization's scope shows
// the kinds the key's read scopes cover; the environment's scope needs
// environments:read and an environment of the caller's organization.
func TestEvents_Scopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[1]
		admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
		r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("scopes"), Provider: provLinux})
		env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
		_, runnersKey := mustCreateKey(t, admin.client, "runners-read", "runners:read")
		_, envKey := mustCreateKey(t, admin.client, "env-read", "environments:read")
		_, secretsKey := mustCreateKey(t, admin.client, "secrets-read", "secrets:read")
		_, podsKey := mustCreateKey(t, admin.client, "pods-read", "pods:read")
		runnerToken := mustExchange(t, admin.client, x)

		refused := []struct {
			name, auth string
			req        *gitpodv1.WatchEventsRequest
			code       connect.Code
			contains   string
		}{
			{"NoToken", "", orgWide, connect.CodeUnauthenticated, "authentication required"},
			{"BadToken", bearer("ryd_ak_nope"), orgWide, connect.CodeUnauthenticated, ""},
			{"NoReadScope", bearer(podsKey), orgWide, connect.CodePermissionDenied, "environments:read"},
			{"RunnerToken", bearer(runnerToken), orgWide, connect.CodePermissionDenied, ""},
			{"EnvironmentWithoutEnvironmentsRead", bearer(runnersKey), envScope(env, ""), connect.CodePermissionDenied, "environments:read"},
			{"EnvironmentNotUUID", bearer(envKey), envScope("nope", ""), connect.CodeInvalidArgument, "environmentId"},
			{"EnvironmentUnknown", bearer(envKey), envScope("00000000-0000-4000-8000-000000000000", ""), connect.CodeNotFound, ""},
			{"BadCursor", bearer(envKey), &gitpodv1.WatchEventsRequest{Cursor: "x"}, connect.CodeInvalidArgument, "cursor"},
		}
		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				_, err := watchConnect(t, ts.URL, p, tc.auth, tc.req)
				wantCode(t, err, tc.code, tc.contains)
			})
		}

		// Each key sees its kinds only.
		watchers := map[string]*watcher{}
		for k, key := range map[string]string{"runners": runnersKey, "environments": envKey, "secrets": secretsKey} {
			w, err := watchConnect(t, ts.URL, p, bearer(key), &gitpodv1.WatchEventsRequest{})
			mustOK(t, err, "watch with "+k)
			watchers[k] = w
		}
		orgID := whoami(t, admin.client).GetOrganizationId()
		env2 := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
		sec := mustCreateSecret(t, newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken)),
			&gitpodv1.CreateSecretRequest{Name: name("sec"), Value: "v", Scope: orgScope(orgID)})
		m := marker(t, admin.client)
		if seen := watchers["runners"].until(t, m); len(seen) != 0 {
			t.Errorf("runners:read saw %v", seen)
		}
		if seen := watchers["environments"].until(t, ev{rtEnv, opCreate, env2}); len(seen) != 0 {
			t.Errorf("environments:read saw %v", seen)
		}
		if seen := watchers["secrets"].until(t, ev{rtSecret, opCreate, sec.GetId()}); len(seen) != 0 {
			t.Errorf("secrets:read saw %v", seen)
		}
		// The secrets watcher does not see the marker runner: another
		// secret proves it got past it.
		sec2 := mustCreateSecret(t, newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken)),
			&gitpodv1.CreateSecretRequest{Name: name("sec"), Value: "v", Scope: orgScope(orgID)})
		if seen := watchers["secrets"].until(t, ev{rtSecret, opCreate, sec2.GetId()}); len(seen) != 0 {
			t.Errorf("secrets:read saw %v", seen)
		}

		// ListAuditLogs is implemented beside WatchEvents (audit_test.go
		// covers it): the admin key reads the log.
		t.Run("ListAuditLogs", func(t *testing.T) {
			c := gitpodv1connect.NewEventServiceClient(newHTTPClient(t, p.h2c), ts.URL, p.opts...)
			req := connect.NewRequest(&gitpodv1.ListAuditLogsRequest{})
			req.Header().Set("Authorization", bearer(testutil.AdminToken))
			res, err := c.ListAuditLogs(ctx, req)
			mustOK(t, err, "list audit logs")
			if len(res.Msg.GetEntries()) == 0 {
				t.Error("no audit entries after the session's changes")
			}
		})
	})
}

// TestEvents_Organizations: a watcher never sees another organization's
// changes, nor can it watch its environments.
func TestEvents_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			p := protocols[2] // gRPC: trailers through the held flushes
			admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
			other := otherOrganization(t, ts, st, p)
			otherAuth := ""
			{
				org := whoami(t, other.client).GetOrganizationId()
				_, secret := mustCreateTokenInStore(t, st, org, nil, identity.ScopeAdmin)
				otherAuth = bearer(secret)
			}
			theirs, err := watchConnect(t, ts.URL, p, otherAuth, orgWide)
			mustOK(t, err, "watch the other organization")
			ours, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
			mustOK(t, err, "watch ours")

			r, _ := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("ours"), Provider: provLinux})
			env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
			ours.until(t, ev{rtEnv, opCreate, env})
			_, err = watchConnect(t, ts.URL, p, otherAuth, envScope(env, ""))
			wantCode(t, err, connect.CodeNotFound)

			// Their own change comes after ours in the feed: reaching it
			// proves they were handed nothing of ours.
			rt, _ := mustCreateRunner(t, other.client, &gitpodv1.CreateRunnerRequest{Name: name("theirs"), Provider: provLinux})
			if seen := theirs.until(t, ev{rtRunner, opCreate, rt.GetRunnerId()}); len(seen) != 0 {
				t.Fatalf("the other organization saw %v", seen)
			}
			if seen := ours.until(t, marker(t, admin.client)); len(seen) != 0 {
				t.Fatalf("we saw %v", seen)
			}
		})
	}
}

// TestEvents_Resume: a watcher that comes back with the cursor of the last
// event it saw gets every change made meanwhile, once, in order; a cursor
// older than the events kept is refused.
func TestEvents_Resume(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			p := protocols[0]
			admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
			w, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
			mustOK(t, err, "watch")
			first := marker(t, admin.client)
			w.until(t, first)
			cursor := w.last
			w.cancel()

			var want []ev
			for range 25 {
				want = append(want, marker(t, admin.client))
			}
			again, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken),
				&gitpodv1.WatchEventsRequest{Scope: orgWide.Scope, Cursor: cursor})
			mustOK(t, err, "watch again")
			got := again.take(t, len(want))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after resuming: %v\nwant %v", got, want)
			}
			// And it carries on live.
			live := marker(t, admin.client)
			if seen := again.until(t, live); len(seen) != 0 {
				t.Fatalf("after resuming, before %v: %v", live, seen)
			}

			// Once pruned, the old cursor is refused.
			_, err = st.PruneEvents(ctx, time.Now().Add(time.Hour))
			mustOK(t, err, "prune")
			_, err = watchConnect(t, ts.URL, p, bearer(testutil.AdminToken),
				&gitpodv1.WatchEventsRequest{Scope: orgWide.Scope, Cursor: cursor})
			wantCode(t, err, connect.CodeFailedPrecondition, "older than the events kept")
		})
	}
}

// TestEvents_ConcurrentWriters: many changes committed concurrently (on
// PostgreSQL their IDs commit out of order) reach a watcher each once.
func TestEvents_ConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[1]
		admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
		secrets := newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken))
		orgID := whoami(t, admin.client).GetOrganizationId()
		w, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
		mustOK(t, err, "watch")
		const writers, each = 8, 25
		var wg sync.WaitGroup
		ids := make(chan string, writers*each)
		for range writers {
			wg.Go(func() {
				for range each {
					ids <- mustCreateSecret(t, secrets, &gitpodv1.CreateSecretRequest{Name: name("c"), Value: "v", Scope: orgScope(orgID)}).GetId()
				}
			})
		}
		wg.Wait()
		close(ids)
		want := map[string]bool{}
		for id := range ids {
			want[id] = true
		}
		got := w.take(t, writers*each)
		seen := map[string]bool{}
		for _, e := range got {
			if e.typ != rtSecret || e.op != opCreate || !want[e.id] || seen[e.id] {
				t.Fatalf("unexpected or repeated %v", e)
			}
			seen[e.id] = true
		}
	})
}

// TestEvents_JSONL: the vendor SDKs' form of the stream (application/jsonl,
// one JSON object per line), and its errors as Connect JSON errors.
func TestEvents_JSONL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
		w, res := watchJSONL(t, ts.URL, bearer(testutil.AdminToken), `{"organization":true}`)
		if w == nil {
			b, _ := io.ReadAll(res.Body)
			t.Fatalf("status %d: %s", res.StatusCode, b)
		}
		if got := res.Header.Get("Content-Type"); got != "application/jsonl" {
			t.Errorf("Content-Type %q", got)
		}
		m := marker(t, admin.client)
		w.until(t, m)
		if _, err := strconv.ParseInt(w.last, 10, 64); err != nil {
			t.Errorf("cursor %q: %v", w.last, err)
		}

		for _, tc := range []struct {
			name, auth, body string
			status           int
			code             string
		}{
			{"NoToken", "", `{}`, http.StatusUnauthorized, "unauthenticated"},
			{"UnknownField", bearer(testutil.AdminToken), `{"nope":1}`, http.StatusBadRequest, "invalid_argument"},
			{"BadEnvironment", bearer(testutil.AdminToken), `{"environmentId":"x"}`, http.StatusBadRequest, "invalid_argument"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w, res := watchJSONL(t, ts.URL, tc.auth, tc.body)
				if w != nil {
					t.Fatal("the watch started")
				}
				var e struct{ Code, Message string }
				b, _ := io.ReadAll(res.Body)
				if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != tc.status || e.Code != tc.code {
					t.Fatalf("status %d, body %s (%v); want %d %s", res.StatusCode, b, err, tc.status, tc.code)
				}
			})
		}
	})
}

// TestEvents_Replicas: a change made through one control-plane replica
// reaches a watcher on another, and a cursor from one resumes on the other.
func TestEvents_Replicas(t *testing.T) {
	a := testutil.StartServer(t, testutil.Postgres)
	b := testutil.StartServerWith(t, testutil.Postgres, testutil.Options{DatabaseURL: a.DatabaseURL()})
	p := protocols[0]
	adminA := newEnvClient(t, a.URL, p, bearer(testutil.AdminToken))
	onB, err := watchConnect(t, b.URL, p, bearer(testutil.AdminToken), orgWide)
	mustOK(t, err, "watch on b")
	r, _ := mustCreateRunner(t, adminA.client, &gitpodv1.CreateRunnerRequest{Name: name("replica"), Provider: provLinux})
	onB.until(t, ev{rtRunner, opCreate, r.GetRunnerId()})
	env := mustCreateEnvironment(t, adminA, mustClassOf(t, adminA, r.GetRunnerId())).GetId()
	onB.until(t, ev{rtEnv, opCreate, env})

	// Resume on a with b's cursor.
	cursor := onB.last
	onB.cancel()
	want := []ev{marker(t, adminA.client), marker(t, adminA.client)}
	onA, err := watchConnect(t, a.URL, p, bearer(testutil.AdminToken), &gitpodv1.WatchEventsRequest{Scope: orgWide.Scope, Cursor: cursor})
	mustOK(t, err, "watch on a")
	if got := onA.take(t, 2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("resumed on a: %v, want %v", got, want)
	}
}

// TestEvents_SharedEncodings: an event is encoded once per wire format and
// the bytes shared by the streams of that format; several streams of each
// format (Connect JSON and binary, gRPC, JSONL) each get every event whole
// and in order.
func TestEvents_SharedEncodings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
		var ws []*watcher
		for range 3 {
			for _, p := range protocols {
				w, err := watchConnect(t, ts.URL, p, bearer(testutil.AdminToken), orgWide)
				mustOK(t, err, "watch ("+p.name+")")
				ws = append(ws, w)
			}
			w, res := watchJSONL(t, ts.URL, bearer(testutil.AdminToken), `{"organization":true}`)
			if w == nil {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("jsonl: status %d: %s", res.StatusCode, b)
			}
			ws = append(ws, w)
		}
		var want []ev
		for range 20 {
			want = append(want, marker(t, admin.client))
		}
		for i, w := range ws {
			if got := w.take(t, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("watcher %d: %v\nwant %v", i, got, want)
			}
			if w.last != ws[0].last {
				t.Fatalf("watcher %d: last cursor %q, watcher 0: %q", i, w.last, ws[0].last)
			}
		}
	})
}
