package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// podDetail is a pod of /pods, decoded strictly.
type podDetail struct {
	Key           string   `json:"key"`
	Status        string   `json:"status"`
	DesiredStatus string   `json:"desired_status"`
	AgentTypeID   string   `json:"agent_type_id"`
	InitialPrompt string   `json:"initial_prompt"`
	RunnerID      *int64   `json:"runner_id"`
	Labels        []string `json:"labels"`
	Workdir       string   `json:"workdir"`
	Reason        string   `json:"reason"`
	ExitCode      *int     `json:"exit_code"`
	CreatedAt     string   `json:"created_at"`
	StartedAt     *string  `json:"started_at"`
	FinishedAt    *string  `json:"finished_at"`
}

type podBody struct {
	Pod podDetail `json:"pod"`
}

type podListBody struct {
	Pods   []podDetail `json:"pods"`
	Total  int         `json:"total"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
}

// send sends method base+path with a body (none if empty).
func send(tb testing.TB, method, base, auth, path, body string) *response {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, r)
	mustOK(tb, err, "new request")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	mustOK(tb, err, "%s %s", method, path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	mustOK(tb, err, "read %s", path)
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (a *api) post(tb testing.TB, path, body string) *response {
	tb.Helper()
	return send(tb, http.MethodPost, a.base, a.auth, path, body)
}

// wantStatus fails unless the response has status and a JSON body, and
// decodes it strictly into v.
func (r *response) wantStatus(tb testing.TB, status int, v any) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	r.Status = http.StatusOK
	r.wantOK(tb, v)
	r.Status = status
}

func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	mustOK(tb, err, "encode")
	return string(b)
}

// createPod posts a pod and wants 201.
func (a *api) createPod(tb testing.TB, body map[string]any) podDetail {
	tb.Helper()
	var b podBody
	a.post(tb, "/pods", jsonOf(tb, body)).wantStatus(tb, http.StatusCreated, &b)
	return b.Pod
}

func (a *api) pod(tb testing.TB, key string) podDetail {
	tb.Helper()
	var b podBody
	a.get(tb, "/pods/"+key).wantOK(tb, &b)
	return b.Pod
}

func (a *api) podList(tb testing.TB, query string) podListBody {
	tb.Helper()
	var b podListBody
	a.get(tb, "/pods"+query).wantOK(tb, &b)
	if b.Pods == nil {
		tb.Fatalf("pods is null, want an array")
	}
	return b
}

// fakeRunner registers a runner through the API and stores, as its daemon
// would, a fresh report: online now, with rep. The test ends long before
// the server's runner timeout would sweep it.
func fakeRunner(t *testing.T, adm *admin, a *api, st store.Store, org, n string, rep runners.Report) int64 {
	t.Helper()
	id, _ := adm.createRunner(t, n)
	_, err := st.UpdateRunner(context.Background(), org, id, func(r *runners.Runner) error {
		r.ApplyReport(rep, time.Now().UTC())
		return nil
	})
	mustOK(t, err, "report runner %s", n)
	return a.seqOf(t, n)
}

func report(maxPods int, labels []string, agents ...string) runners.Report {
	return runners.Report{MaxPods: maxPods, Labels: labels, AgentTypes: agents}
}

func runnerIs(tb testing.TB, p podDetail, want int64) {
	tb.Helper()
	if want == 0 {
		if p.RunnerID != nil {
			tb.Fatalf("pod %s on runner %d, want none (reason %q)", p.Key, *p.RunnerID, p.Reason)
		}
		return
	}
	if p.RunnerID == nil || *p.RunnerID != want {
		tb.Fatalf("pod %s on runner %v, want %d (reason %q)", p.Key, p.RunnerID, want, p.Reason)
	}
}

var keyRE = regexp.MustCompile(`^pod-[0-9a-z]{12}$`)

func TestPods_Create(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			org := orgID(t, st)
			gpu := fakeRunner(t, adm, a, st, org, name("gpu"), report(2, []string{"gpu", "linux"}, "claude-code", "aider"))
			plain := fakeRunner(t, adm, a, st, org, name("plain"), report(2, []string{"linux"}, "claude-code"))

			var first podDetail
			t.Run("OK", func(t *testing.T) {
				before := time.Now().UTC().Add(-time.Second)
				first = a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "Fix the login bug",
					"labels": []string{"gpu"}, "env": map[string]string{"TOKEN": "s3cret"}, "workdir": "src/app/"})
				runnerIs(t, first, gpu)
				if !keyRE.MatchString(first.Key) {
					t.Errorf("key %q, want pod- and 12 base-36 digits", first.Key)
				}
				want := podDetail{Key: first.Key, Status: "pending", DesiredStatus: "running", AgentTypeID: "claude-code",
					InitialPrompt: "Fix the login bug", RunnerID: first.RunnerID, Labels: []string{"gpu"}, Workdir: "src/app",
					CreatedAt: first.CreatedAt}
				if !reflect.DeepEqual(first, want) {
					t.Errorf("pod = %+v, want %+v", first, want)
				}
				if tm := wantTime(t, "created_at", first.CreatedAt); tm.Before(before) {
					t.Errorf("created_at %v before the request", tm)
				}
				if got := a.pod(t, first.Key); !reflect.DeepEqual(got, first) {
					t.Errorf("GET = %+v, want what POST returned, %+v", got, first)
				}
			})
			t.Run("RunSpec", func(t *testing.T) {
				p, err := st.FindPodByKey(context.Background(), org, first.Key)
				mustOK(t, err, "find pod")
				s := p.Spec
				if !slices.Equal(s.Argv, []string{"claude", "Fix the login bug"}) || s.Workdir != "src/app" ||
					s.Env["RUNYARD_INITIAL_PROMPT"] != "Fix the login bug" || s.Env["RUNYARD_POD_KEY"] != first.Key || s.Env["TOKEN"] != "s3cret" {
					t.Errorf("run spec = %+v", s)
				}
				if strings.Contains(string(a.get(t, "/pods/"+first.Key).Body), "s3cret") {
					t.Error("the pod's env is in the response; it is write-only")
				}
			})
			t.Run("LeastLoaded", func(t *testing.T) {
				runnerIs(t, a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x"}), plain)
				// Both have one pod now: the lower id wins.
				runnerIs(t, a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x"}), gpu)
			})
			t.Run("Full", func(t *testing.T) {
				// gpu holds 2 of 2; plain 1 of 2 but lacks the label.
				p := a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x", "labels": []string{"gpu"}})
				runnerIs(t, p, 0)
				if p.Status != "pending" || p.Reason != "all runners that fit are full (2 of 2 pods)" {
					t.Errorf("pod = %s %q, want pending, all full", p.Status, p.Reason)
				}
				if r := a.runner(t, gpu); r.PodCount != 2 {
					t.Errorf("pod_count = %d, want 2", r.PodCount)
				}
				if got := names(a.runners(t, "/runners/available")); len(got) != 1 {
					t.Errorf("available = %q, want only the plain runner", got)
				}
			})
			t.Run("PendingReasons", func(t *testing.T) {
				p := a.createPod(t, map[string]any{"agent_type_id": "codex", "initial_prompt": "x"})
				if runnerIs(t, p, 0); p.Reason != `no online runner has agent type "codex"` {
					t.Errorf("reason = %q", p.Reason)
				}
				p = a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x", "labels": []string{"arm"}})
				if runnerIs(t, p, 0); p.Reason != `no online runner with agent type "claude-code" has labels [arm]` {
					t.Errorf("reason = %q", p.Reason)
				}
			})
			t.Run("RequestedRunner", func(t *testing.T) {
				p := a.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x", "runner_id": plain})
				runnerIs(t, p, plain)
				before := a.podList(t, "").Total
				a.post(t, "/pods", jsonOf(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x", "runner_id": plain})).
					wantError(t, http.StatusPreconditionFailed, "failed_precondition", fmt.Sprintf("runner %d", plain), "it is full (2 of 2 pods)")
				a.post(t, "/pods", jsonOf(t, map[string]any{"agent_type_id": "aider", "initial_prompt": "x", "runner_id": plain})).
					wantError(t, http.StatusPreconditionFailed, "failed_precondition", `it does not have agent type "aider"`)
				a.post(t, "/pods", jsonOf(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x", "runner_id": 99999})).
					wantError(t, http.StatusBadRequest, "invalid_argument", "runner_id", "no runner 99999")
				if got := a.podList(t, "").Total; got != before {
					t.Errorf("%d pods after refused creates, want %d", got, before)
				}
			})
			t.Run("Errors", func(t *testing.T) {
				before := a.podList(t, "").Total
				for _, tt := range []struct {
					name, body string
					mention    []string
				}{
					{"ErrUnknownAgent", `{"agent_type_id": "cursor", "initial_prompt": "x"}`, []string{"agent_type_id", `"cursor"`}},
					{"ErrNoAgent", `{"initial_prompt": "x"}`, []string{"agent_type_id"}},
					{"ErrNoPrompt", `{"agent_type_id": "claude-code", "initial_prompt": "  "}`, []string{"initial_prompt"}},
					{"ErrLongPrompt", jsonOf(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": strings.Repeat("x", pods.MaxPromptBytes+1)}), []string{"initial_prompt"}},
					{"ErrEnvName", `{"agent_type_id": "claude-code", "initial_prompt": "x", "env": {"1BAD": "v"}}`, []string{"env", "1BAD"}},
					{"ErrEnvReserved", `{"agent_type_id": "claude-code", "initial_prompt": "x", "env": {"RUNYARD_POD_KEY": "v"}}`, []string{"env", "RUNYARD_"}},
					{"ErrWorkdirClimbs", `{"agent_type_id": "claude-code", "initial_prompt": "x", "workdir": "a/../../etc"}`, []string{"workdir"}},
					{"ErrEmptyLabel", `{"agent_type_id": "claude-code", "initial_prompt": "x", "labels": ["gpu", ""]}`, []string{"labels[1]"}},
					{"ErrRunnerIDString", `{"agent_type_id": "claude-code", "initial_prompt": "x", "runner_id": "7"}`, []string{"runner_id", "a number"}},
					{"ErrRunnerIDZero", `{"agent_type_id": "claude-code", "initial_prompt": "x", "runner_id": 0}`, []string{"runner_id"}},
					{"ErrUnknownField", `{"agent_type_id": "claude-code", "initial_prompt": "x", "agent": "y"}`, []string{"agent", "not a known field"}},
					{"ErrNotJSON", `agent=claude-code`, []string{"body"}},
					{"ErrEmpty", ``, []string{"body"}},
					{"ErrTrailing", `{"agent_type_id": "claude-code", "initial_prompt": "x"} {}`, []string{"body"}},
					// encoding/json alone would store U+FFFD in place of the byte.
					{"ErrInvalidUTF8", "{\"agent_type_id\": \"claude-code\", \"initial_prompt\": \"x\xff\"}", []string{"body", "UTF-8"}},
				} {
					t.Run(tt.name, func(t *testing.T) {
						a.post(t, "/pods", tt.body).wantError(t, http.StatusBadRequest, "invalid_argument", tt.mention...)
					})
				}
				// Too large is 413, not 400 and not 429 (a rate limit).
				a.post(t, "/pods", `{"initial_prompt": "`+strings.Repeat("x", 2<<20)+`"}`).
					wantError(t, http.StatusRequestEntityTooLarge, "resource_exhausted", "body", "at most")
				if got := a.podList(t, "").Total; got != before {
					t.Errorf("%d pods after refused creates, want %d", got, before)
				}
			})
			t.Run("RunnerPods", func(t *testing.T) {
				if got := a.pods(t, gpu, "?status=pending"); got.Total != 2 {
					t.Errorf("GET /runners/%d/pods total = %d, want the 2 placed pods", gpu, got.Total)
				}
			})
		})
	}
}

// TestPods_Concurrent creates pods at once against one runner with room for
// three: exactly three get it, the others wait.
func TestPods_Concurrent(t *testing.T) {
	const n, room = 12, 3
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			id := fakeRunner(t, adm, a, st, orgID(t, st), name("one"), report(room, nil, "claude-code"))
			var wg sync.WaitGroup
			results := make(chan *response, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results <- send(t, http.MethodPost, a.base, a.auth, "/pods", `{"agent_type_id": "claude-code", "initial_prompt": "x"}`)
				}()
			}
			wg.Wait()
			close(results)
			placed := 0
			for res := range results {
				var b podBody
				res.wantStatus(t, http.StatusCreated, &b)
				if b.Pod.RunnerID != nil {
					placed++
				} else if b.Pod.Reason != fmt.Sprintf("all runners that fit are full (%d of %d pods)", room, room) {
					t.Errorf("pending reason %q", b.Pod.Reason)
				}
			}
			if placed != room {
				t.Fatalf("%d of %d concurrent pods placed on a runner with room for %d", placed, n, room)
			}
			if r := a.runner(t, id); r.PodCount != room {
				t.Errorf("pod_count = %d, want %d", r.PodCount, room)
			}
		})
	}
}

// TestPods_PlacedLater follows pods end to end with a real runner daemon: a
// custom agent type whose command is a small script, pods pending until a
// runner that can run it connects, one placed and RUNNING on the runner, the
// other pending while the runner is full, and placed once a terminate frees
// the place.
func TestPods_PlacedLater(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, _ := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			a.post(t, "/agents", `{"id":"script-agent","name":"Script","command":["sh","-c","echo \"$RUNYARD_INITIAL_PROMPT\"; exec sleep 600"]}`).
				wantStatus(t, http.StatusCreated, nil)

			first := a.createPod(t, map[string]any{"agent_type_id": "script-agent", "initial_prompt": "one"})
			if runnerIs(t, first, 0); first.Reason != "no runner online" {
				t.Fatalf("reason = %q, want no runner online", first.Reason)
			}
			second := a.createPod(t, map[string]any{"agent_type_id": "script-agent", "initial_prompt": "two"})

			// A runner daemon with room for one pod connects; sh is on its
			// PATH, so it reports that it can run script-agent.
			n := name("late")
			_, x := adm.createRunner(t, n)
			testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: x, Name: "late-host", MaxPods: 1, StopGrace: 5 * time.Second})
			id := a.seqOf(t, n)
			eventually(t, "the oldest pending pod runs on the runner", func() string {
				if p := a.pod(t, first.Key); p.RunnerID == nil || *p.RunnerID != id || p.Status != "running" {
					return fmt.Sprintf("runner %v, status %s, reason %q", p.RunnerID, p.Status, p.Reason)
				}
				return ""
			})
			eventually(t, "the other says the runner is full", func() string {
				if p := a.pod(t, second.Key); p.RunnerID != nil || p.Reason != "all runners that fit are full (1 of 1 pods)" {
					return fmt.Sprintf("runner %v, reason %q", p.RunnerID, p.Reason)
				}
				return ""
			})

			// Terminating the first stops its process on the runner; its
			// place frees and the second pod runs.
			a.post(t, "/pods/"+first.Key+"/terminate", "").wantStatus(t, http.StatusOK, nil)
			eventually(t, "the first pod is terminated by its runner", func() string {
				if p := a.pod(t, first.Key); p.Status != "terminated" {
					return fmt.Sprintf("status %s, reason %q", p.Status, p.Reason)
				}
				return ""
			})
			eventually(t, "the second pod runs", func() string {
				if p := a.pod(t, second.Key); p.RunnerID == nil || *p.RunnerID != id || p.Status != "running" {
					return fmt.Sprintf("runner %v, status %s, reason %q", p.RunnerID, p.Status, p.Reason)
				}
				return ""
			})
		})
	}
}

func TestPods_ListGetTerminate(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			org := orgID(t, st)
			r1 := fakeRunner(t, adm, a, st, org, name("r1"), report(3, nil, "claude-code"))

			t.Run("Empty", func(t *testing.T) {
				if got := a.podList(t, ""); len(got.Pods) != 0 || got.Total != 0 || got.Limit != 50 || got.Offset != 0 {
					t.Errorf("empty list = %+v", got)
				}
			})
			// Three placed, then four pending (gemini-cli is on no runner).
			var all []podDetail
			for i := range 7 {
				agent := "claude-code"
				if i >= 3 {
					agent = "gemini-cli"
				}
				all = append(all, a.createPod(t, map[string]any{"agent_type_id": agent, "initial_prompt": fmt.Sprintf("task %d", i)}))
			}
			slices.Reverse(all) // newest first
			keys := func(ps []podDetail) []string {
				out := make([]string, len(ps))
				for i, p := range ps {
					out[i] = p.Key
				}
				return out
			}

			t.Run("Pages", func(t *testing.T) {
				var got []string
				for offset := 0; offset < 7; offset += 3 {
					page := a.podList(t, fmt.Sprintf("?limit=3&offset=%d", offset))
					if page.Total != 7 || page.Limit != 3 || page.Offset != offset {
						t.Errorf("page at %d: total %d limit %d offset %d", offset, page.Total, page.Limit, page.Offset)
					}
					got = append(got, keys(page.Pods)...)
				}
				if want := keys(all); !slices.Equal(got, want) {
					t.Errorf("pages = %q, want %q (newest first)", got, want)
				}
				if page := a.podList(t, "?offset=7"); len(page.Pods) != 0 || page.Total != 7 {
					t.Errorf("past the end: %+v", page)
				}
			})
			t.Run("Filters", func(t *testing.T) {
				if got := a.podList(t, fmt.Sprintf("?runner_id=%d", r1)); !slices.Equal(keys(got.Pods), keys(all[4:])) || got.Total != 3 {
					t.Errorf("runner filter = %q total %d, want %q", keys(got.Pods), got.Total, keys(all[4:]))
				}
				if got := a.podList(t, "?status=pending&limit=2&offset=1"); got.Total != 7 || !slices.Equal(keys(got.Pods), keys(all[1:3])) {
					t.Errorf("pending page = %q total %d", keys(got.Pods), got.Total)
				}
				if got := a.podList(t, "?status=running"); got.Total != 0 {
					t.Errorf("running total = %d, want 0", got.Total)
				}
				if got := a.podList(t, "?runner_id=99999"); got.Total != 0 {
					t.Errorf("pods of a missing runner = %d", got.Total)
				}
			})
			t.Run("ErrQuery", func(t *testing.T) {
				for _, q := range []struct{ query, field string }{
					{"?status=lost", "status"}, {"?limit=0", "limit"}, {"?limit=101", "limit"}, {"?limit=x", "limit"},
					{"?offset=-1", "offset"}, {"?runner_id=abc", "runner_id"}, {"?runner_id=0", "runner_id"},
				} {
					a.get(t, "/pods"+q.query).wantError(t, http.StatusBadRequest, "invalid_argument", q.field)
				}
			})
			t.Run("ErrGetUnknown", func(t *testing.T) {
				a.get(t, "/pods/pod-000000000000").wantError(t, http.StatusNotFound, "not_found", "pod-000000000000")
				a.post(t, "/pods/pod-000000000000/terminate", "").wantError(t, http.StatusNotFound, "not_found")
			})
			t.Run("TerminatePending", func(t *testing.T) {
				var b podBody
				a.post(t, "/pods/"+all[0].Key+"/terminate", "").wantOK(t, &b)
				p := b.Pod
				if p.Status != "terminated" || p.DesiredStatus != "terminated" || p.FinishedAt == nil || p.RunnerID != nil {
					t.Errorf("terminated pending pod = %+v", p)
				}
				// Again: nothing changes.
				var again podBody
				a.post(t, "/pods/"+all[0].Key+"/terminate", "").wantOK(t, &again)
				if !reflect.DeepEqual(again.Pod, p) {
					t.Errorf("second terminate = %+v, want %+v", again.Pod, p)
				}
				if got := a.podList(t, "?status=terminated"); got.Total != 1 || got.Pods[0].Key != all[0].Key {
					t.Errorf("terminated pods = %+v", got)
				}
			})
			t.Run("TerminatePlaced", func(t *testing.T) {
				var b podBody
				a.post(t, "/pods/"+all[6].Key+"/terminate", "").wantOK(t, &b)
				p := b.Pod
				runnerIs(t, p, r1)
				if p.Status != "pending" || p.DesiredStatus != "terminated" || p.FinishedAt != nil {
					t.Errorf("terminated placed pod = %+v, want pending until its runner confirms, desired terminated", p)
				}
				// It holds its place until the runner confirms.
				if r := a.runner(t, r1); r.PodCount != 3 {
					t.Errorf("pod_count = %d, want 3", r.PodCount)
				}
			})
		})
	}
}

// TestPods_Auth checks the scopes of /pods and /agents.
func TestPods_Auth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		adm := newAdmin(ts, testutil.AdminToken)
		_, readKey := adm.createKey(t, "pods:read")
		_, writeKey := adm.createKey(t, "pods:write")
		_, runnersKey := adm.createKey(t, "runners:read", "runners:write")
		admin := newAPI(ts, "default", bearer(testutil.AdminToken))
		p := admin.createPod(t, map[string]any{"agent_type_id": "claude-code", "initial_prompt": "x"})
		create := `{"agent_type_id": "claude-code", "initial_prompt": "x"}`
		agent := func() string {
			return jsonOf(t, map[string]any{"id": name("agent"), "name": "A", "command": []string{"a"}})
		}
		reads := []string{"/pods", "/pods/" + p.Key, "/agents", "/agents/codex"}

		t.Run("ReadKey", func(t *testing.T) {
			a := newAPI(ts, "default", bearer(readKey))
			for _, path := range reads {
				a.get(t, path).wantOK(t, nil)
			}
			a.post(t, "/pods", create).wantError(t, http.StatusForbidden, "permission_denied", "pods:write")
			a.post(t, "/pods/"+p.Key+"/terminate", "").wantError(t, http.StatusForbidden, "permission_denied", "pods:write")
			a.post(t, "/agents", agent()).wantError(t, http.StatusForbidden, "permission_denied", "pods:write")
			send(t, http.MethodPatch, a.base, a.auth, "/agents/x", `{"name":"y"}`).wantError(t, http.StatusForbidden, "permission_denied", "pods:write")
			send(t, http.MethodDelete, a.base, a.auth, "/agents/x", "").wantError(t, http.StatusForbidden, "permission_denied", "pods:write")
		})
		t.Run("WriteKey", func(t *testing.T) {
			a := newAPI(ts, "default", bearer(writeKey))
			for _, path := range reads {
				a.get(t, path).wantError(t, http.StatusForbidden, "permission_denied", "pods:read")
			}
			a.post(t, "/pods", create).wantStatus(t, http.StatusCreated, nil)
			a.post(t, "/agents", agent()).wantStatus(t, http.StatusCreated, nil)
			a.post(t, "/pods/"+p.Key+"/terminate", "").wantOK(t, nil)
		})
		t.Run("ErrRunnersKey", func(t *testing.T) {
			a := newAPI(ts, "default", bearer(runnersKey))
			for _, path := range reads {
				a.get(t, path).wantError(t, http.StatusForbidden, "permission_denied")
			}
			a.post(t, "/pods", create).wantError(t, http.StatusForbidden, "permission_denied")
		})
		t.Run("ErrNoToken", func(t *testing.T) {
			a := newAPI(ts, "default", "")
			a.get(t, "/pods").wantError(t, http.StatusUnauthorized, "unauthenticated")
			a.post(t, "/pods", create).wantError(t, http.StatusUnauthorized, "unauthenticated")
		})
		t.Run("ErrOtherOrg", func(t *testing.T) {
			newAPI(ts, "elsewhere", bearer(testutil.AdminToken)).post(t, "/pods", create).wantError(t, http.StatusNotFound, "not_found")
		})
	})
}

// The JSON of /agents, decoded strictly.
type agentJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env"`
	Builtin   bool              `json:"builtin"`
	CreatedAt *string           `json:"created_at"`
}

type agentsBody struct {
	BuiltinAgents []agentJSON `json:"builtin_agents"`
	CustomAgents  []agentJSON `json:"custom_agents"`
}

type agentBody struct {
	Agent agentJSON `json:"agent"`
}

func TestAgents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		a := newAPI(ts, "default", bearer(testutil.AdminToken))
		t.Run("Builtin", func(t *testing.T) {
			var b agentsBody
			a.get(t, "/agents").wantOK(t, &b)
			var ids []string
			for _, ag := range b.BuiltinAgents {
				ids = append(ids, ag.ID)
				if !ag.Builtin || ag.CreatedAt != nil || len(ag.Command) == 0 || ag.Env == nil {
					t.Errorf("built-in agent = %+v", ag)
				}
			}
			if want := []string{"claude-code", "codex", "gemini-cli", "aider", "opencode"}; !slices.Equal(ids, want) {
				t.Errorf("built-in agents = %q, want %q", ids, want)
			}
			if b.CustomAgents == nil || len(b.CustomAgents) != 0 {
				t.Errorf("custom agents = %#v, want []", b.CustomAgents)
			}
			if got := b.BuiltinAgents[0].Command; !slices.Equal(got, []string{"claude", "{{prompt}}"}) {
				t.Errorf("claude-code command = %q", got)
			}
		})
		t.Run("Create", func(t *testing.T) {
			body := `{"id": "echo-agent", "name": "Echo", "command": ["/bin/sh", "-c", "echo \"$RUNYARD_INITIAL_PROMPT\"; exec cat"], "env": {"MODE": "test"}}`
			var b agentBody
			a.post(t, "/agents", body).wantStatus(t, http.StatusCreated, &b)
			want := agentJSON{ID: "echo-agent", Name: "Echo", Command: []string{"/bin/sh", "-c", "echo \"$RUNYARD_INITIAL_PROMPT\"; exec cat"},
				Env: map[string]string{"MODE": "test"}, CreatedAt: b.Agent.CreatedAt}
			if !reflect.DeepEqual(b.Agent, want) || b.Agent.CreatedAt == nil {
				t.Errorf("created = %+v, want %+v", b.Agent, want)
			}
			var list agentsBody
			a.get(t, "/agents").wantOK(t, &list)
			if len(list.CustomAgents) != 1 || !reflect.DeepEqual(list.CustomAgents[0], b.Agent) {
				t.Errorf("custom agents = %+v", list.CustomAgents)
			}
			// A pod of the custom type is stored with its resolved spec.
			p := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "hello"})
			if p.AgentTypeID != "echo-agent" || p.Reason != "no runner online" {
				t.Errorf("pod of a custom type = %+v", p)
			}
			a.post(t, "/agents", body).wantError(t, http.StatusConflict, "already_exists", "echo-agent")
		})
		t.Run("Errors", func(t *testing.T) {
			for _, tt := range []struct {
				name, body, field string
			}{
				{"ErrShadowsBuiltin", `{"id": "codex", "name": "C", "command": ["codex"]}`, "id"},
				{"ErrIDShort", `{"id": "x", "name": "C", "command": ["c"]}`, "id"},
				{"ErrIDUpper", `{"id": "My-Agent", "name": "C", "command": ["c"]}`, "id"},
				{"ErrIDLong", jsonOf(t, map[string]any{"id": strings.Repeat("a", 64), "name": "C", "command": []string{"c"}}), "id"},
				{"ErrNoName", `{"id": "agent-x", "name": " ", "command": ["c"]}`, "name"},
				{"ErrNoCommand", `{"id": "agent-x", "name": "C", "command": []}`, "command"},
				{"ErrEmptyProgram", `{"id": "agent-x", "name": "C", "command": [""]}`, "command[0]"},
				{"ErrCommandString", `{"id": "agent-x", "name": "C", "command": "sh -c x"}`, "command"},
				{"ErrEnvName", `{"id": "agent-x", "name": "C", "command": ["c"], "env": {"A-B": "1"}}`, "env"},
				{"ErrEnvReserved", `{"id": "agent-x", "name": "C", "command": ["c"], "env": {"RUNYARD_INITIAL_PROMPT": "1"}}`, "env"},
				{"ErrUnknownField", `{"id": "agent-x", "name": "C", "command": ["c"], "shell": true}`, "shell"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					a.post(t, "/agents", tt.body).wantError(t, http.StatusBadRequest, "invalid_argument", tt.field)
				})
			}
			var list agentsBody
			a.get(t, "/agents").wantOK(t, &list)
			if len(list.CustomAgents) != 1 {
				t.Errorf("%d custom agents after refused creates, want 1", len(list.CustomAgents))
			}
		})
		t.Run("Get", func(t *testing.T) {
			var b agentBody
			a.get(t, "/agents/echo-agent").wantOK(t, &b)
			if b.Agent.ID != "echo-agent" || b.Agent.Builtin || b.Agent.Env["MODE"] != "test" {
				t.Errorf("custom agent = %+v", b.Agent)
			}
			a.get(t, "/agents/codex").wantOK(t, &b)
			if b.Agent.ID != "codex" || !b.Agent.Builtin || b.Agent.CreatedAt != nil {
				t.Errorf("built-in agent = %+v", b.Agent)
			}
			a.get(t, "/agents/no-such-agent").wantError(t, http.StatusNotFound, "not_found", "no-such-agent")
		})
		t.Run("Update", func(t *testing.T) {
			// Each answer is decoded into a new value: decoding into a
			// used one would merge maps.
			var before agentBody
			a.get(t, "/agents/echo-agent").wantOK(t, &before)
			agent := func(r *response) agentJSON {
				t.Helper()
				var b agentBody
				r.wantOK(t, &b)
				return b.Agent
			}
			old := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "before"})
			// Another one is placed (on a runner of the store's making: none
			// is online here) before the update.
			st := ts.OpenStore(t)
			placed := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "placed"})
			_, err := st.UpdatePod(context.Background(), orgID(t, st), placed.Key, func(p *pods.Pod) error {
				p.RunnerID = "runner-of-the-test"
				return nil
			})
			mustOK(t, err, "place a pod")
			// Only what the body names changes.
			got := agent(send(t, http.MethodPatch, a.base, a.auth, "/agents/echo-agent", `{"command": ["/bin/echo", "{{prompt}}"]}`))
			want := before.Agent
			want.Command = []string{"/bin/echo", "{{prompt}}"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("updated = %+v, want %+v", got, want)
			}
			got = agent(send(t, http.MethodPatch, a.base, a.auth, "/agents/echo-agent", `{"name": "Echo 2", "env": {}}`))
			want.Name, want.Env = "Echo 2", map[string]string{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("updated = %+v, want %+v", got, want)
			}
			if got := agent(a.get(t, "/agents/echo-agent")); !reflect.DeepEqual(got, want) {
				t.Errorf("read back = %+v, want %+v", got, want)
			}
			// A placed pod keeps the command it was created with; one still
			// waiting for a runner, and one created after, run the new one.
			newer := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "after"})
			for key, want := range map[string][]string{
				placed.Key: {"/bin/sh", "-c", "echo \"$RUNYARD_INITIAL_PROMPT\"; exec cat"},
				old.Key:    {"/bin/echo", "before"},
				newer.Key:  {"/bin/echo", "after"},
			} {
				p, err := st.FindPodByKey(context.Background(), orgID(t, st), key)
				mustOK(t, err, "find pod")
				if !slices.Equal(p.Spec.Argv, want) {
					t.Errorf("pod %s runs %q, want %q", key, p.Spec.Argv, want)
				}
			}
			for _, tt := range []struct {
				name, path, body string
				status           int
				code, field      string
			}{
				{"ErrEmptyCommand", "/agents/echo-agent", `{"command": []}`, http.StatusBadRequest, "invalid_argument", "command"},
				{"ErrName", "/agents/echo-agent", `{"name": " "}`, http.StatusBadRequest, "invalid_argument", "name"},
				{"ErrEnvReserved", "/agents/echo-agent", `{"env": {"RUNYARD_POD_KEY": "x"}}`, http.StatusBadRequest, "invalid_argument", "env"},
				{"ErrNothing", "/agents/echo-agent", `{}`, http.StatusBadRequest, "invalid_argument", "nothing to change"},
				{"ErrUnknownField", "/agents/echo-agent", `{"id": "other"}`, http.StatusBadRequest, "invalid_argument", "id"},
				{"ErrBuiltin", "/agents/codex", `{"name": "Mine"}`, http.StatusBadRequest, "invalid_argument", "built-in"},
				{"ErrUnknown", "/agents/no-such-agent", `{"name": "X"}`, http.StatusNotFound, "not_found", "no-such-agent"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					send(t, http.MethodPatch, a.base, a.auth, tt.path, tt.body).wantError(t, tt.status, tt.code, tt.field)
				})
			}
			if got := agent(a.get(t, "/agents/echo-agent")); !reflect.DeepEqual(got, want) {
				t.Errorf("after refused updates = %+v, want %+v", got, want)
			}
		})
		t.Run("Delete", func(t *testing.T) {
			send(t, http.MethodDelete, a.base, a.auth, "/agents/codex", "").wantError(t, http.StatusBadRequest, "invalid_argument", "built-in")
			// Pods of the type wait for a runner (none is online): they
			// would wait forever, so they must go first.
			var waiting []string
			st := ts.OpenStore(t)
			all, _, err := st.FindPods(context.Background(), pods.Filter{OrgID: orgID(t, st), Status: pods.StatusPending})
			mustOK(t, err, "find pending pods")
			for _, p := range all {
				switch {
				// Placed ones keep their command and are not in the way.
				case p.AgentTypeID == "echo-agent" && p.RunnerID == "":
					waiting = append(waiting, p.Key)
				}
			}
			if len(waiting) == 0 {
				t.Fatal("no pending echo-agent pods to stand in the way")
			}
			send(t, http.MethodDelete, a.base, a.auth, "/agents/echo-agent", "").
				wantError(t, http.StatusPreconditionFailed, "failed_precondition", fmt.Sprintf("%d pending pods", len(waiting)), "echo-agent")
			a.get(t, "/agents/echo-agent").wantOK(t, nil)
			for _, key := range waiting {
				a.post(t, "/pods/"+key+"/terminate", "").wantOK(t, nil)
			}
			res := send(t, http.MethodDelete, a.base, a.auth, "/agents/echo-agent", "")
			if res.Status != http.StatusNoContent || len(res.Body) != 0 {
				t.Fatalf("delete: status %d, body %q; want 204 and no body", res.Status, res.Body)
			}
			a.get(t, "/agents/echo-agent").wantError(t, http.StatusNotFound, "not_found")
			send(t, http.MethodDelete, a.base, a.auth, "/agents/echo-agent", "").wantError(t, http.StatusNotFound, "not_found")
			a.post(t, "/pods", `{"agent_type_id": "echo-agent", "initial_prompt": "x"}`).
				wantError(t, http.StatusBadRequest, "invalid_argument", "agent_type_id", "echo-agent")
			var list agentsBody
			a.get(t, "/agents").wantOK(t, &list)
			if len(list.CustomAgents) != 0 {
				t.Errorf("custom agents after delete = %+v", list.CustomAgents)
			}
		})
	})
}
