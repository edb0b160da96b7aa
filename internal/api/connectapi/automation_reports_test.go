package connectapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// TestAutomations_RunnerServiceReports speaks the runner protocol over real
// HTTP/2 as the environment's runner and checks what the control plane
// keeps of its ordered service reports: the outputs a service run set
// (status.output, seed 003), versions from the runner alone, and a report of
// a newer run that is never dropped.
func TestAutomations_RunnerServiceReports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
		r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("reports"), Provider: provLinux})
		token := mustExchange(t, admin.client, x)
		runnerClient := newEnvClient(t, ts.URL, p, bearer(token))
		env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
		svc := mustCreateService(t, admin, env, "reported")
		mustOK(t, startService(admin, svc.GetId()), "start")
		session := mustGetService(t, admin, svc.GetId()).GetSpec().GetSession()

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
		if m, err := stream.Receive(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("handshake: %v, %v", m, err)
		}
		report := func(version uint64, phase gitpodv1.ServicePhase, session string, output map[string]string) {
			t.Helper()
			send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ServiceStatus{ServiceStatus: &runnerv1.ServiceStatus{
				Id: svc.GetId(), StatusVersion: version, Phase: phase, Session: session, Output: output,
			}}})
		}
		waitStatus := func(what string, ok func(*gitpodv1.ServiceStatus) bool) *gitpodv1.ServiceStatus {
			t.Helper()
			var st *gitpodv1.ServiceStatus
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if st = mustGetService(t, admin, svc.GetId()).GetStatus(); ok(st) {
					return st
				}
			}
			t.Fatalf("timed out waiting until %s: status %v", what, st)
			return nil
		}

		// The outputs of the run are stored with the report; an empty value
		// unsets its key.
		report(100, svcRunning, session, map[string]string{"url": "http://localhost:3000", "port": "3000"})
		st := waitStatus("the output is stored", func(st *gitpodv1.ServiceStatus) bool { return st.GetStatusVersion() == 100 })
		if got := st.GetOutput(); len(got) != 2 || got["url"] != "http://localhost:3000" || got["port"] != "3000" || st.GetPhase() != svcRunning {
			t.Fatalf("status after the first report = %v", st)
		}
		report(101, svcRunning, session, map[string]string{"port": ""})
		st = waitStatus("port is unset", func(st *gitpodv1.ServiceStatus) bool { return st.GetStatusVersion() == 101 })
		if got := st.GetOutput(); len(got) != 1 || got["url"] == "" {
			t.Fatalf("output after unsetting port = %v", got)
		}

		// Status writes through UpdateService with the runner's token do not
		// move the version, so the runner's next report (102) lands.
		for i := range 5 {
			mustOK(t, updateService(runnerClient, &gitpodv1.UpdateServiceRequest{Id: svc.GetId(), Status: &gitpodv1.UpdateServiceRequest_ServiceStatus{
				Output: map[string]string{"note": fmt.Sprint(i)},
			}}), "status write")
		}
		if got := mustGetService(t, admin, svc.GetId()).GetStatus().GetStatusVersion(); got != 101 {
			t.Fatalf("statusVersion after UpdateService status writes = %d, want the runner's 101", got)
		}
		report(102, svcStopped, session, nil)
		waitStatus("the exit is stored", func(st *gitpodv1.ServiceStatus) bool {
			return st.GetStatusVersion() == 102 && st.GetPhase() == svcStopped
		})

		// A stale report of the same run is dropped; a report of a newer
		// run (the session the spec asks for) is not, whatever its version
		// (a runner whose version counter went back), and the new run
		// starts without the old run's outputs.
		report(50, gitpodv1.ServicePhase_SERVICE_PHASE_FAILED, session, map[string]string{"stale": "1"})
		report(103, svcStopped, session, nil)
		st = waitStatus("the report after the stale one is stored", func(st *gitpodv1.ServiceStatus) bool { return st.GetStatusVersion() == 103 })
		if _, ok := st.GetOutput()["stale"]; ok || st.GetPhase() != svcStopped {
			t.Fatalf("a stale report of the same run was applied: %v", st)
		}
		mustOK(t, startService(admin, svc.GetId()), "start again")
		next := mustGetService(t, admin, svc.GetId()).GetSpec().GetSession()
		report(60, svcRunning, next, map[string]string{"url": "http://localhost:4000"})
		st = waitStatus("the newer run is stored", func(st *gitpodv1.ServiceStatus) bool { return st.GetSession() == next })
		if st.GetPhase() != svcRunning || st.GetStatusVersion() != 60 || len(st.GetOutput()) != 1 || st.GetOutput()["url"] != "http://localhost:4000" {
			t.Fatalf("status of the newer run = %v", st)
		}
	})
}
