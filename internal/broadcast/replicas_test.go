package broadcast_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// rest sends a REST request to a replica with the admin key and decodes
// the JSON answer into out (when set).
func rest(t *testing.T, ts *testutil.TestServer, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+"/api/v1/orgs/default"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: status %d: %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// auditEntries counts the audit log's entries of method (a route pattern),
// read through ts's API.
func auditEntries(t *testing.T, ts *testutil.TestServer, method string) int {
	t.Helper()
	events := gitpodv1connect.NewEventServiceClient(http.DefaultClient, ts.URL)
	req := connect.NewRequest(&gitpodv1.ListAuditLogsRequest{Filter: &gitpodv1.ListAuditLogsRequest_Filter{Methods: []string{method}}})
	req.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	res, err := events.ListAuditLogs(context.Background(), req)
	if err != nil {
		t.Fatalf("list the audit log: %v", err)
	}
	return len(res.Msg.GetEntries())
}

func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if last = check(); last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still %s", what, last)
}

// TestReplicas_ChangesReachTheRunnersStream runs two control-plane
// replicas on one PostgreSQL database with a runner connected to the first,
// and changes its work through the second only: a new agent type (the
// runner must learn to offer it), a pod placed on it, and the pod's
// termination all reach the runner. No desired state is ever resent on a
// timer, so without the notices between replicas the runner would never
// hear of any of it.
func TestReplicas_ChangesReachTheRunnersStream(t *testing.T) {
	a := testutil.StartServer(t, testutil.Postgres)
	b := testutil.StartServerWith(t, testutil.Postgres, testutil.Options{DatabaseURL: a.DatabaseURL()})

	runners := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, a.URL)
	req := connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: "replica-runner", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
	req.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	created, err := runners.CreateRunner(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	testutil.StartRunner(t, runner.Config{Server: a.URL, ExchangeToken: created.Msg.GetExchangeToken(), Name: "replica-host", MaxPods: 2})
	eventually(t, "the runner is online", func() string {
		var res struct {
			Runners []struct {
				Status string `json:"status"`
			} `json:"runners"`
		}
		rest(t, b, http.MethodGet, "/runners/available", "", &res)
		if len(res.Runners) != 1 {
			return fmt.Sprintf("%d available runners", len(res.Runners))
		}
		return ""
	})

	// Through the other replica only.
	rest(t, b, http.MethodPost, "/agents", `{"id": "waiter", "name": "Waiter", "command": ["sh", "-c", "exec sleep 300"]}`, nil)
	var pod struct {
		Pod struct {
			Key    string `json:"key"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"pod"`
	}
	rest(t, b, http.MethodPost, "/pods", `{"agent_type_id": "waiter", "initial_prompt": "wait"}`, &pod)
	key := pod.Pod.Key
	status := func(want string) func() string {
		return func() string {
			rest(t, b, http.MethodGet, "/pods/"+key, "", &pod)
			if pod.Pod.Status != want {
				return fmt.Sprintf("pod %s %s (%s)", key, pod.Pod.Status, pod.Pod.Reason)
			}
			return ""
		}
	}
	eventually(t, "the runner offers the new agent type and runs the pod", status("running"))
	rest(t, b, http.MethodPost, "/pods/"+key+"/terminate", "", nil)
	eventually(t, "the runner ends the pod", status("terminated"))
}

// TestReplicas_TerminalThroughAnotherReplica attaches to a pod's terminal
// and reads its output through a replica other than the one its runner is
// connected to: the request is relayed to that one.
func TestReplicas_TerminalThroughAnotherReplica(t *testing.T) {
	a := testutil.StartServer(t, testutil.Postgres)
	b := testutil.StartServerWith(t, testutil.Postgres, testutil.Options{DatabaseURL: a.DatabaseURL()})
	runners := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, a.URL)
	req := connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: "relay-runner", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
	req.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	created, err := runners.CreateRunner(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	rest(t, a, http.MethodPost, "/agents", `{"id": "echoer", "name": "Echoer", "command": ["sh", "-c", "echo started-$RUNYARD_POD_KEY; exec cat"]}`, nil)
	testutil.StartRunner(t, runner.Config{Server: a.URL, ExchangeToken: created.Msg.GetExchangeToken(), Name: "relay-host", MaxPods: 2})
	var pod struct {
		Pod struct {
			Key    string `json:"key"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"pod"`
	}
	rest(t, a, http.MethodPost, "/pods", `{"agent_type_id": "echoer", "initial_prompt": "hi"}`, &pod)
	key := pod.Pod.Key
	eventually(t, "the pod runs", func() string {
		rest(t, a, http.MethodGet, "/pods/"+key, "", &pod)
		if pod.Pod.Status != "running" {
			return fmt.Sprintf("pod %s %s (%s)", key, pod.Pod.Status, pod.Pod.Reason)
		}
		return ""
	})

	output := func(ts *testutil.TestServer) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/orgs/default/pods/"+key+"/output", nil)
		req.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	eventually(t, "the output through the other replica", func() string {
		if code, body := output(b); code != http.StatusOK || !strings.Contains(body, "started-"+key) {
			return fmt.Sprintf("status %d, %q", code, body)
		}
		return ""
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(b.URL, "http") + "/api/v1/orgs/default/pods/" + key + "/terminal"
	c, res, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testutil.AdminToken}}})
	if err != nil {
		t.Fatalf("attach through the other replica: %v (%v)", err, res)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, []byte("relayed-input\n")); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	for !strings.Contains(seen.String(), "relayed-input") {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read the terminal: %v; seen %q", err, seen.String())
		}
		seen.Write(b)
	}

	// The attach is in the audit log once: the replica the client reached
	// records it, the one it was relayed to does not. A client that sets
	// the relay header itself is recorded all the same (only a replica can
	// sign it).
	const attach = "GET /api/v1/orgs/{org}/pods/{key}/terminal"
	eventually(t, "one audit entry for the relayed attach", func() string {
		if n := auditEntries(t, a, attach); n != 1 {
			return fmt.Sprintf("%d entries", n)
		}
		return ""
	})
	forged, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(a.URL, "http")+"/api/v1/orgs/default/pods/"+key+"/terminal",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testutil.AdminToken}, "X-Runyard-Relayed": {"1"}}})
	if err != nil {
		t.Fatalf("attach with a header of one's own: %v (%v)", err, res)
	}
	forged.CloseNow()
	eventually(t, "the attach with a forged relay header recorded", func() string {
		if n := auditEntries(t, b, attach); n != 2 {
			return fmt.Sprintf("%d entries", n)
		}
		return ""
	})

	// A request another replica relayed already is answered where it
	// lands, never relayed again (no loops between replicas).
	relayed, _ := http.NewRequest(http.MethodGet, b.URL+"/api/v1/orgs/default/pods/"+key+"/output", nil)
	relayed.Header.Set("Authorization", "Bearer "+testutil.AdminToken)
	relayed.Header.Set("X-Runyard-Relayed", "1")
	again, err := http.DefaultClient.Do(relayed)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a relayed request to a replica without the runner: status %d, want 503", again.StatusCode)
	}
}
