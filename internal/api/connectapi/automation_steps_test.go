package connectapi_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// TestAutomations_RunnerPartialExecutionReports speaks the runner protocol
// as the environment's runner and reports a task execution step by step
// (ExecutionStatus.partial_steps, offered in Welcome): each report names
// only the steps that changed and the control plane keeps the others; a
// report older than a step's keeps that step, one naming a step the plan
// lacks changes nothing, and a whole report still replaces the steps.
func TestAutomations_RunnerPartialExecutionReports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
		r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("steps"), Provider: provLinux})
		token := mustExchange(t, admin.client, x)
		env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
		first := mustCreateTask(t, admin, env, "first")
		second := mustCreateTask(t, admin, env, "second", first.GetId())
		xid := mustStartTask(t, admin, second.GetId()).GetId()
		var stepA, stepB string
		for _, g := range mustGetExecution(t, admin, xid).GetSpec().GetPlan() {
			for _, st := range g.GetSteps() {
				switch st.GetTask().GetId() {
				case first.GetId():
					stepA = st.GetId()
				case second.GetId():
					stepB = st.GetId()
				}
			}
		}
		if stepA == "" || stepB == "" {
			t.Fatalf("plan of %s lacks a step: %v", xid, mustGetExecution(t, admin, xid).GetSpec())
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		control := runnerv1connect.NewRunnerControlServiceClient(newHTTPClient(t, true), ts.URL, connect.WithGRPC())
		stream := control.Connect(ctx)
		stream.RequestHeader().Set("Authorization", bearer(token))
		send := func(m *runnerv1.ConnectRequest) {
			t.Helper()
			if err := stream.Send(m); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{Version: "test"}}})
		m, err := stream.Receive()
		if err != nil || m.GetWelcome() == nil {
			t.Fatalf("handshake: %v, %v", m, err)
		}
		if !m.GetWelcome().GetPartialExecutionReports() {
			t.Fatal("the control plane does not offer partial execution reports")
		}
		const (
			running   = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_RUNNING
			succeeded = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED
			failed    = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED
		)
		type step struct {
			id    string
			phase gitpodv1.TaskExecutionPhase
		}
		report := func(version uint64, phase gitpodv1.TaskExecutionPhase, partial bool, steps ...step) {
			t.Helper()
			st := &runnerv1.ExecutionStatus{Id: xid, StatusVersion: version, Phase: phase, PartialSteps: partial}
			for _, s := range steps {
				st.Steps = append(st.Steps, &runnerv1.StepStatus{Id: s.id, Phase: s.phase, Output: map[string]string{"id": s.id}})
			}
			send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ExecutionStatus{ExecutionStatus: st}})
		}
		// waitSteps waits until the execution is at version with these
		// steps, in plan order.
		waitSteps := func(version uint64, phase gitpodv1.TaskExecutionPhase, want ...step) {
			t.Helper()
			var st *gitpodv1.TaskExecutionStatus
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				st = mustGetExecution(t, admin, xid).GetStatus()
				if st.GetStatusVersion() != version || st.GetPhase() != phase || len(st.GetSteps()) != len(want) {
					continue
				}
				ok := true
				for i, s := range st.GetSteps() {
					ok = ok && s.GetId() == want[i].id && s.GetPhase() == want[i].phase && s.GetOutput()["id"] == want[i].id
				}
				if ok {
					return
				}
			}
			t.Fatalf("timed out waiting for version %d, %v, steps %v: status %v", version, phase, want, st)
		}

		report(10, running, true, step{stepA, running})
		waitSteps(10, running, step{stepA, running})
		report(11, running, true, step{stepA, succeeded})
		report(12, running, true, step{stepB, running})
		waitSteps(12, running, step{stepA, succeeded}, step{stepB, running})
		// Older than both steps' reports: nothing changes, and the next
		// report shows that it was read.
		report(9, failed, true, step{stepA, failed}, step{stepB, failed})
		// A step the plan lacks: the whole report is refused.
		report(13, failed, true, step{stepB, failed}, step{"not-a-step", failed})
		report(14, running, true)
		waitSteps(14, running, step{stepA, succeeded}, step{stepB, running})
		// A whole report replaces the steps.
		report(15, running, false, step{stepB, running})
		waitSteps(15, running, step{stepB, running})
		report(16, succeeded, true, step{stepA, succeeded}, step{stepB, succeeded})
		waitSteps(16, succeeded, step{stepA, succeeded}, step{stepB, succeeded})
		if got := mustGetExecution(t, admin, xid); got.GetMetadata().GetCompletedAt() == nil || got.GetMetadata().GetStartedAt() == nil {
			t.Fatalf("a succeeded execution without startedAt or completedAt: %v", got.GetMetadata())
		}
		// A finished execution never changes again.
		report(17, failed, true, step{stepB, failed})
		report(18, failed, false)
		time.Sleep(100 * time.Millisecond) // nothing to wait for: nothing may change
		waitSteps(16, succeeded, step{stepA, succeeded}, step{stepB, succeeded})
	})
}

func mustGetExecution(tb testing.TB, c *envClient, id string) *gitpodv1.TaskExecution {
	tb.Helper()
	res, err := c.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: id}))
	mustOK(tb, err, "get task execution "+id)
	return res.Msg.GetTaskExecution()
}
