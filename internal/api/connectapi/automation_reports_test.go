package connectapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
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

// TestAutomations_StartAutomationsOncePerRequest calls StartAutomations as
// the environment's runner, as a runner does after a start, a restart or a
// reload, and checks that the repository's file is applied once per request
// to apply it (the creation, each ReloadAutomationsFile) and start triggers
// once per start; a file naming an API-created item is refused.
func TestAutomations_StartAutomationsOncePerRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
		r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("once"), Provider: provLinux})
		token := mustExchange(t, admin.client, x)
		env := mustCreateEnvironment(t, admin, mustClassOf(t, admin, r.GetRunnerId())).GetId()
		api := mustCreateService(t, admin, env, "api-svc")

		control := runnerv1connect.NewRunnerControlServiceClient(newHTTPClient(t, false), ts.URL)
		handOver := func(file string, request uint64, triggers ...string) error {
			req := connect.NewRequest(&runnerv1.StartAutomationsRequest{
				EnvironmentId: env, FilePresent: file != "", AutomationsFile: []byte(file), Triggers: triggers, FileRequest: request,
			})
			req.Header().Set("Authorization", bearer(token))
			_, err := control.StartAutomations(ctx, req)
			return err
		}
		file := func(webName string, extra string) string {
			return fmt.Sprintf("services:\n  web:\n    name: %s\n    triggeredBy: [postEnvironmentStart]\n    commands:\n      start: sleep 1000\n%s"+
				"tasks:\n  hello:\n    triggeredBy: [postEnvironmentStart]\n    command: echo hello\n", webName, extra)
		}
		state := func() (map[string]*gitpodv1.Service, int) {
			t.Helper()
			svcs := map[string]*gitpodv1.Service{}
			for _, s := range listServices(t, admin, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{env}}) {
				svcs[s.GetMetadata().GetReference()] = s
			}
			res, err := admin.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{
				Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{EnvironmentIds: []string{env}}}))
			mustOK(t, err, "list executions")
			return svcs, len(res.Msg.GetTaskExecutions())
		}
		reload := func(want uint64) {
			t.Helper()
			c := runyardv1connect.NewAutomationsServiceClient(newHTTPClient(t, false), ts.URL)
			req := connect.NewRequest(&runyardv1.ReloadAutomationsFileRequest{EnvironmentId: env})
			req.Header().Set("Authorization", bearer(testutil.AdminToken))
			res, err := c.ReloadAutomationsFile(ctx, req)
			mustOK(t, err, "reload")
			if res.Msg.GetRequest() != want {
				t.Fatalf("reload request %d, want %d", res.Msg.GetRequest(), want)
			}
		}

		// The first start applies the file and fires the triggers.
		mustOK(t, handOver(file("Web v1", ""), 1, "postEnvironmentStart"), "first start")
		svcs, runs := state()
		if svcs["web"].GetMetadata().GetName() != "Web v1" || svcs["web"].GetSpec().GetDesiredPhase() != svcRunning || runs != 1 || svcs["api-svc"] == nil {
			t.Fatalf("after the first start: services %v, %d executions", svcs, runs)
		}
		// The same start handed over again (a runner restart), with the
		// workspace's file changed meanwhile: nothing changes, nothing runs
		// twice, and the service a user stopped stays stopped.
		mustOK(t, stopService(admin, svcs["web"].GetId()), "stop web")
		mustOK(t, handOver(file("Web v2", ""), 1, "postEnvironmentStart"), "hand over again")
		mustOK(t, handOver(file("Web v2", ""), 0, "postEnvironmentStart"), "hand over again, no request")
		svcs, runs = state()
		if svcs["web"].GetMetadata().GetName() != "Web v1" || svcs["web"].GetSpec().GetDesiredPhase() != svcStopped || runs != 1 {
			t.Fatalf("after the same start again: web %v, %d executions", svcs["web"], runs)
		}

		// A reload: a hand-over read before it applies nothing new; the
		// one for it, without triggers, applies the file and runs nothing.
		reload(2)
		mustOK(t, handOver(file("Web stale", ""), 1), "stale hand-over")
		if svcs, _ = state(); svcs["web"].GetMetadata().GetName() != "Web v1" {
			t.Fatalf("a hand-over read before the reload was applied: %v", svcs["web"].GetMetadata())
		}
		mustOK(t, handOver(file("Web v2", ""), 2), "reload hand-over")
		svcs, runs = state()
		if svcs["web"].GetMetadata().GetName() != "Web v2" || runs != 1 || !proto.Equal(svcs["api-svc"], mustGetService(t, admin, api.GetId())) {
			t.Fatalf("after the reload: services %v, %d executions", svcs, runs)
		}
		mustOK(t, handOver(file("Web v3", ""), 2), "reload hand-over again")
		if svcs, _ = state(); svcs["web"].GetMetadata().GetName() != "Web v2" {
			t.Fatalf("a request was applied twice: %v", svcs["web"].GetMetadata())
		}

		// A reloaded file naming the API-created service is refused and
		// changes nothing; the runner then hands over without it.
		reload(3)
		clash := file("Web v4", "  api-svc:\n    commands:\n      start: echo clash\n")
		err := handOver(clash, 3)
		wantCode(t, err, connect.CodeAlreadyExists, "automationsFile.services.api-svc")
		if svcs, _ = state(); svcs["web"].GetMetadata().GetName() != "Web v2" || !proto.Equal(svcs["api-svc"], mustGetService(t, admin, api.GetId())) {
			t.Fatalf("a refused file changed the automations: %v", svcs)
		}
		mustOK(t, handOver("", 3), "hand over without the file")
	})
}
