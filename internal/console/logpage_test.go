package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// twoEnvironments makes two environments on a new runner (which need not
// run) and returns their IDs and an automations client.
func (e *env) twoEnvironments(t *testing.T) ([]string, gitpodv1connect.EnvironmentAutomationServiceClient) {
	t.Helper()
	ctx := context.Background()
	runnerID, _ := e.createRunner(t, "two-envs-runner")
	envs := gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, e.ts.URL)
	classes, err := envs.ListEnvironmentClasses(ctx, admin(&gitpodv1.ListEnvironmentClassesRequest{
		Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerID}}}))
	if err != nil || len(classes.Msg.GetEnvironmentClasses()) == 0 {
		t.Fatalf("environment classes: %v", err)
	}
	class := classes.Msg.GetEnvironmentClasses()[0].GetId()
	var ids []string
	for range 2 {
		res, err := envs.CreateEnvironment(ctx, admin(&gitpodv1.CreateEnvironmentRequest{
			Spec: &gitpodv1.EnvironmentSpec{Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}))
		if err != nil {
			t.Fatalf("create environment: %v", err)
		}
		ids = append(ids, res.Msg.GetEnvironment().GetId())
	}
	return ids, gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, e.ts.URL)
}

// TestConsole_LogPageOfAnotherEnvironment: a log page names its
// environment and the service whose log it shows; a service of another
// environment is not found, rather than shown under the wrong name.
func TestConsole_LogPageOfAnotherEnvironment(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			ids, autos := e.twoEnvironments(t)
			svc, err := autos.CreateService(context.Background(), admin(&gitpodv1.CreateServiceRequest{
				EnvironmentId: ids[1],
				Metadata:      &gitpodv1.ServiceMetadata{Reference: "web", Name: "Web"},
				Spec:          &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 600"}},
			}))
			if err != nil {
				t.Fatalf("create service: %v", err)
			}
			svcID := svc.Msg.GetService().GetId()
			for _, c := range []struct {
				env  string
				want int
			}{
				// Its own environment's page: the service has not run yet.
				{ids[1], http.StatusPreconditionFailed},
				{ids[0], http.StatusNotFound},
			} {
				res, body := e.request(t, http.MethodGet, "/environments/"+c.env+"/logs/service/"+svcID, testutil.AdminToken, nil, nil)
				if res.StatusCode != c.want {
					t.Errorf("log page of the service under environment %s: status %d, want %d\n%s", c.env, res.StatusCode, c.want, body)
				}
			}
		})
	}
}

// TestConsole_ActionOnAnotherEnvironmentsItem: a service's or task's
// start/stop posted under another environment's path is not found and
// changes nothing; under its own environment it acts.
func TestConsole_ActionOnAnotherEnvironmentsItem(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			ctx := context.Background()
			ids, autos := e.twoEnvironments(t)
			svc, err := autos.CreateService(ctx, admin(&gitpodv1.CreateServiceRequest{
				EnvironmentId: ids[1],
				Metadata:      &gitpodv1.ServiceMetadata{Reference: "web", Name: "Web"},
				Spec:          &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 600"}},
			}))
			if err != nil {
				t.Fatalf("create service: %v", err)
			}
			task, err := autos.CreateTask(ctx, admin(&gitpodv1.CreateTaskRequest{
				EnvironmentId: ids[1],
				Metadata:      &gitpodv1.TaskMetadata{Reference: "build", Name: "Build"},
				Spec:          &gitpodv1.TaskSpec{Command: "true"},
			}))
			if err != nil {
				t.Fatalf("create task: %v", err)
			}
			svcID, taskID := svc.Msg.GetService().GetId(), task.Msg.GetTask().GetId()
			desired := func() gitpodv1.ServicePhase {
				t.Helper()
				res, err := autos.GetService(ctx, admin(&gitpodv1.GetServiceRequest{Id: svcID}))
				if err != nil {
					t.Fatalf("get service: %v", err)
				}
				return res.Msg.GetService().GetSpec().GetDesiredPhase()
			}
			executions := func() int {
				t.Helper()
				res, err := autos.ListTaskExecutions(ctx, admin(&gitpodv1.ListTaskExecutionsRequest{
					Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{TaskIds: []string{taskID}}}))
				if err != nil {
					t.Fatalf("list executions: %v", err)
				}
				return len(res.Msg.GetTaskExecutions())
			}
			before := desired()
			for _, path := range []string{"/services/" + svcID + "/start", "/services/" + svcID + "/stop", "/tasks/" + taskID + "/start"} {
				res, body := e.request(t, http.MethodPost, "/environments/"+ids[0]+path, testutil.AdminToken, strings.NewReader(""), nil)
				if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "is not in environment") {
					t.Errorf("POST %s under another environment: status %d, want 404\n%.500s", path, res.StatusCode, body)
				}
			}
			if got := desired(); got != before {
				t.Errorf("the service's desired phase changed from %v to %v through another environment's path", before, got)
			}
			if n := executions(); n != 0 {
				t.Errorf("the task ran %d times through another environment's path", n)
			}
			// Under its own environment the same posts act.
			for _, path := range []string{"/services/" + svcID + "/start", "/tasks/" + taskID + "/start"} {
				res, body := e.request(t, http.MethodPost, "/environments/"+ids[1]+path, testutil.AdminToken, strings.NewReader(""), nil)
				if res.StatusCode != http.StatusSeeOther {
					t.Errorf("POST %s under its environment: status %d, want 303\n%.500s", path, res.StatusCode, body)
				}
			}
			if got := desired(); got != gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING {
				t.Errorf("after a start under its environment the service's desired phase is %v", got)
			}
			if n := executions(); n != 1 {
				t.Errorf("after a start under its environment the task has %d executions, want 1", n)
			}
		})
	}
}
