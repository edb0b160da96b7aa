package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

func authed[T any](msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	return r
}

// poll calls check until it returns "" or the deadline passes.
func poll(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s: %s", what, last)
}

// TestAutoStop_Sessions: an environment with spec.timeout.disconnected is
// kept running while a session into it is open (here an exec session that
// sends nothing), however long that is, and stops once the session closed
// and the timeout passed, saying why. The timeout is set to 2 s in the
// database (the API's minimum is 30 min: not a test's wait).
func TestAutoStop_Sessions(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServerWith(t, backend, testutil.Options{InactivitySweep: 50 * time.Millisecond})
			st := ts.OpenStore(t)
			ctx := context.Background()
			envs := gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, ts.URL)
			runners := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL)
			cr, err := runners.CreateRunner(ctx, authed(&gitpodv1.CreateRunnerRequest{Name: "autostop", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
			if err != nil {
				t.Fatal(err)
			}
			testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: cr.Msg.GetExchangeToken(), Name: "autostop", StopGrace: 2 * time.Second})
			runnerID := cr.Msg.GetRunner().GetRunnerId()
			var class string
			poll(t, "the runner has a class", func() string {
				res, err := envs.ListEnvironmentClasses(ctx, authed(&gitpodv1.ListEnvironmentClassesRequest{
					Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerID}}}))
				if err != nil || len(res.Msg.GetEnvironmentClasses()) == 0 {
					return "no class yet"
				}
				class = res.Msg.GetEnvironmentClasses()[0].GetId()
				return ""
			})
			ce, err := envs.CreateEnvironment(ctx, authed(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
				Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}))
			if err != nil {
				t.Fatal(err)
			}
			envID := ce.Msg.GetEnvironment().GetId()
			orgID := ce.Msg.GetEnvironment().GetMetadata().GetOrganizationId()
			get := func() *gitpodv1.Environment {
				t.Helper()
				res, err := envs.GetEnvironment(ctx, authed(&gitpodv1.GetEnvironmentRequest{EnvironmentId: envID}))
				if err != nil {
					t.Fatal(err)
				}
				return res.Msg.GetEnvironment()
			}
			poll(t, "the environment runs", func() string {
				if p := get().GetStatus().GetPhase(); p != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
					return p.String()
				}
				return ""
			})

			// An exec session that stays open and quiet.
			org, err := st.FindOrganizationByID(ctx, orgID)
			if err != nil {
				t.Fatal(err)
			}
			u := strings.Replace(ts.URL, "http://", "ws://", 1) + "/api/v1/orgs/" + url.PathEscape(org.Name) + "/environments/" + envID + "/exec?command=sleep&command=1000"
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			ws, _, err := websocket.Dial(wctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testutil.AdminToken}}})
			if err != nil {
				t.Fatalf("open an exec session: %v", err)
			}
			defer ws.CloseNow()
			const timeout = 2 * time.Second
			if _, err := st.UpdateEnvironment(ctx, orgID, envID, func(e *environments.Environment) error {
				e.Spec.Timeout.Disconnected = timeout
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// Several timeouts pass with the session open: the sweep (every
			// 50 ms) sees it in use and keeps it running.
			for end := time.Now().Add(3 * timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if p := get().GetSpec().GetDesiredPhase(); p != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
					t.Fatalf("stopped (%s) while an exec session is open: %q", p, get().GetStatus().GetMachine().GetTimeout())
				}
			}
			if a := get().GetStatus().GetActivitySignal(); a.GetSource() != "exec" {
				t.Errorf("status.activitySignal %v, want the exec session", a)
			}
			ws.Close(websocket.StatusNormalClosure, "")

			// Closed: it stops after the timeout, and says why.
			var e *gitpodv1.Environment
			poll(t, "the environment is stopped for inactivity", func() string {
				e = get()
				if p := e.GetSpec().GetDesiredPhase(); p != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED {
					return p.String()
				}
				return ""
			})
			if m := e.GetStatus().GetMachine().GetTimeout(); !strings.Contains(m, "2s without activity") || !strings.Contains(m, `"exec"`) {
				t.Errorf("status.machine.timeout %q: want the timeout and the last activity (the exec session)", m)
			}
			// The console's environment page says it too.
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/environments/"+envID, nil)
			req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(page), `id="env-timed-out">stopped after 2s without activity`) {
				t.Errorf("the console's environment page does not say why it stopped:\n%s", page)
			}
		})
	}
}
