package envs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// These tests prove that what users made survives a runner restart and an
// environment stop and start (issue 10, items 1 and 2): the repository's
// automations file is applied when the environment is created and never
// again by a restart, so API-created services and tasks stay, an upserted
// file is not reverted, a service a user stopped stays stopped, and a
// service a user started runs again after the environment starts again.

const keepFile = `services:
  web:
    name: Web from the repository
    triggeredBy: [postEnvironmentStart]
    commands:
      start: exec -a %[1]s-web sleep 1000
  docs:
    name: Docs from the repository
    commands:
      start: exec -a %[1]s-docs sleep 1000
tasks:
  hello:
    name: Hello
    triggeredBy: [postEnvironmentStart]
    command: echo hello
`

func TestEnvironments_RestartKeepsWhatUsersMade(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			testRestartKeepsWhatUsersMade(t, backend)
		})
	}
}

func testRestartKeepsWhatUsersMade(t *testing.T, backend testutil.Backend) {
	marker := fmt.Sprintf("runyard-e2e-keep-%s-%d", backend, os.Getpid())
	state := t.TempDir()
	c, class, cfg, stopRunner := setup(t, backend, state)
	ctx := context.Background()
	repo := gitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(keepFile, marker)})
	envID := c.createEnv(t, class, repo)
	c.waitEnvPhase(t, envID, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	c.waitService(t, envID, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	hello := c.taskID(t, envID, "hello")
	c.waitExecutions(t, envID, hello, 1)

	// What a user makes through the API: a started service, a task.
	flag := filepath.Join(t.TempDir(), "exit-now")
	api := must[gitpodv1.CreateServiceResponse](t, "create service")(c.autos.CreateService(ctx, req(&gitpodv1.CreateServiceRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.ServiceMetadata{Reference: "api-svc", Name: "Made through the API"},
		Spec: &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{
			Start: fmt.Sprintf("while [ ! -f %s ]; do sleep 0.1; done; echo exiting", flag),
		}},
	}))).GetService()
	must[gitpodv1.StartServiceResponse](t, "start service")(c.autos.StartService(ctx, req(&gitpodv1.StartServiceRequest{Id: api.GetId()})))
	apiTask := must[gitpodv1.CreateTaskResponse](t, "create task")(c.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.TaskMetadata{Reference: "api-task", Name: "Task made through the API"},
		Spec:          &gitpodv1.TaskSpec{Command: "echo api task"},
	}))).GetTask()
	c.waitService(t, envID, "api-svc", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)

	// `automations update -f`: web is renamed, docs dropped (it came from
	// a file, so the file apply removes it); the API-created items stay.
	upserted := &gitpodv1.AutomationsFile{
		Services: map[string]*gitpodv1.AutomationsFile_Service{"web": {
			Name: "Web as upserted", TriggeredBy: []string{"postEnvironmentStart"},
			Commands: &gitpodv1.ServiceSpec_Commands{Start: fmt.Sprintf("exec -a %s-web sleep 1000", marker)},
		}},
		Tasks: map[string]*gitpodv1.AutomationsFile_Task{"hello": {Name: "Hello", TriggeredBy: []string{"postEnvironmentStart"}, Command: "echo hello"}},
	}
	must[gitpodv1.UpsertAutomationsFileResponse](t, "upsert")(c.autos.UpsertAutomationsFile(ctx, req(&gitpodv1.UpsertAutomationsFileRequest{
		EnvironmentId: envID, AutomationsFile: upserted,
	})))
	// A file that names an API-created item is refused and changes
	// nothing.
	clash := proto.Clone(upserted).(*gitpodv1.AutomationsFile)
	clash.Services["api-svc"] = &gitpodv1.AutomationsFile_Service{Commands: &gitpodv1.ServiceSpec_Commands{Start: "true"}}
	_, err := c.autos.UpsertAutomationsFile(ctx, req(&gitpodv1.UpsertAutomationsFileRequest{EnvironmentId: envID, AutomationsFile: clash}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "automationsFile.services.api-svc") {
		t.Fatalf("an upsert naming an API-created service: %v, want already_exists naming automationsFile.services.api-svc", err)
	}
	// The user stops the trigger-started web; a runner restart must not
	// start it again.
	web := c.services(t, envID)["web"]
	must[gitpodv1.StopServiceResponse](t, "stop web")(c.autos.StopService(ctx, req(&gitpodv1.StopServiceRequest{Id: web.GetId()})))
	c.waitService(t, envID, "web", gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED)
	apiSpec := c.service(t, api.GetId()).GetSpec()

	check := func(when string) {
		t.Helper()
		svcs := c.services(t, envID)
		if got := svcs["api-svc"]; got == nil {
			t.Fatalf("%s: the API-created service is gone (services: %v)", when, keys(svcs))
		}
		got := c.service(t, api.GetId())
		if !proto.Equal(got.GetSpec().GetCommands(), apiSpec.GetCommands()) || got.GetSpec().GetDesiredPhase() != gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING {
			t.Errorf("%s: API-created service spec %v, want commands %v desired RUNNING", when, got.GetSpec(), apiSpec.GetCommands())
		}
		if _, err := c.autos.GetTask(ctx, req(&gitpodv1.GetTaskRequest{Id: apiTask.GetId()})); err != nil {
			t.Errorf("%s: the API-created task: %v", when, err)
		}
		if got := svcs["web"].GetMetadata().GetName(); got != "Web as upserted" {
			t.Errorf("%s: web is named %q: the upserted file was reverted", when, got)
		}
		if _, ok := svcs["docs"]; ok {
			t.Errorf("%s: docs, dropped by the upsert, is back", when)
		}
	}

	// A runner daemon restart (the graceful stop a SIGTERM makes): the
	// runner hands the same start over again, which changes nothing.
	before := c.env(t, envID)
	stopRunner()
	testutil.StartRunner(t, cfg)
	c.waitEnvReported(t, envID, before.GetStatus().GetStatusVersion(), gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	if got := c.env(t, envID).GetMetadata().GetLastStartedAt(); !proto.Equal(got, before.GetMetadata().GetLastStartedAt()) {
		t.Fatalf("lastStartedAt moved from %v to %v: the restart was taken for a start", before.GetMetadata().GetLastStartedAt(), got)
	}
	check("after a runner restart")
	c.waitService(t, envID, "api-svc", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	if got := c.service(t, web.GetId()).GetSpec().GetDesiredPhase(); got != gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED {
		t.Errorf("after a runner restart web is desired %s: the start trigger fired again", got)
	}
	if n := len(c.executionsOf(t, envID, hello)); n != 1 {
		t.Errorf("after a runner restart hello ran %d times, want once", n)
	}

	// statusVersion cannot be wedged: status writes through UpdateService
	// with the runner's token do not make the runner's next ordered report
	// (the process exited) look stale.
	runnerClient := gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, c.url)
	token := runnerToken(t, state)
	session := c.service(t, api.GetId()).GetStatus().GetSession()
	for i := range 50 {
		r := connect.NewRequest(&gitpodv1.UpdateServiceRequest{Id: api.GetId(), Status: &gitpodv1.UpdateServiceRequest_ServiceStatus{
			Phase: gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING.Enum(), Session: &session,
			Output: map[string]string{"round": fmt.Sprint(i)},
		}})
		r.Header().Set("Authorization", "Bearer "+token)
		if _, err := runnerClient.UpdateService(ctx, r); err != nil {
			t.Fatalf("status write with the runner's token: %v", err)
		}
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.waitService(t, envID, "api-svc", gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	must[gitpodv1.StartServiceResponse](t, "start service again")(c.autos.StartService(ctx, req(&gitpodv1.StartServiceRequest{Id: api.GetId()})))
	c.waitService(t, envID, "api-svc", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)

	// An environment stop and start: the file is not applied again; the
	// start triggers fire for the new start (web, hello), and the service
	// the user started comes back instead of sitting at desired RUNNING,
	// phase STOPPED.
	must[gitpodv1.StopEnvironmentResponse](t, "stop environment")(c.envs.StopEnvironment(ctx, req(&gitpodv1.StopEnvironmentRequest{EnvironmentId: envID})))
	c.waitEnvPhase(t, envID, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED)
	if processWithMarker(marker + "-web") {
		t.Errorf("web runs in a stopped environment")
	}
	before = c.env(t, envID)
	must[gitpodv1.StartEnvironmentResponse](t, "start environment")(c.envs.StartEnvironment(ctx, req(&gitpodv1.StartEnvironmentRequest{EnvironmentId: envID})))
	c.waitEnvReported(t, envID, before.GetStatus().GetStatusVersion(), gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
	check("after an environment stop and start")
	c.waitService(t, envID, "api-svc", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	c.waitService(t, envID, "web", gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING)
	c.waitExecutions(t, envID, hello, 2)

	// `automations reload`: the runner reads the repository's file from
	// the workspace again (edited there) and the control plane applies it
	// to the file-managed items; the API-created ones stay.
	content := c.env(t, envID).GetStatus().GetContent().GetContentLocationInMachine()
	if content == "" {
		t.Fatal("the environment reports no content location")
	}
	edited := strings.Replace(fmt.Sprintf(keepFile, marker), "Web from the repository", "Web reloaded", 1) + `  added:
    name: Added in the workspace
    command: echo added
`
	if err := os.WriteFile(filepath.Join(content, ".runyard", "automations.yaml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	reload := runyardv1connect.NewAutomationsServiceClient(http.DefaultClient, c.url)
	res := must[runyardv1.ReloadAutomationsFileResponse](t, "reload")(reload.ReloadAutomationsFile(ctx, req(&runyardv1.ReloadAutomationsFileRequest{EnvironmentId: envID})))
	if res.GetRequest() != 2 {
		t.Errorf("reload request %d, want 2 (creation was the first)", res.GetRequest())
	}
	eventually(t, "the reloaded file is applied", func() string {
		svcs := c.services(t, envID)
		if got := svcs["web"].GetMetadata().GetName(); got != "Web reloaded" {
			return "web is named " + got
		}
		if _, ok := svcs["docs"]; !ok {
			return "docs is not back"
		}
		return ""
	})
	c.taskID(t, envID, "added")
	if got := c.service(t, api.GetId()); !proto.Equal(got.GetSpec().GetCommands(), apiSpec.GetCommands()) {
		t.Errorf("the reload changed the API-created service: %v", got.GetSpec())
	}
	if _, err := c.autos.GetTask(ctx, req(&gitpodv1.GetTaskRequest{Id: apiTask.GetId()})); err != nil {
		t.Errorf("after the reload, the API-created task: %v", err)
	}
}

// taskID returns the ID of the task ref of environment envID.
func (c *client) taskID(t *testing.T, envID, ref string) string {
	t.Helper()
	ts := must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(context.Background(), req(&gitpodv1.ListTasksRequest{
		Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{envID}, References: []string{ref}},
	}))).GetTasks()
	if len(ts) != 1 {
		t.Fatalf("task %s: %d found", ref, len(ts))
	}
	return ts[0].GetId()
}

func (c *client) service(t *testing.T, id string) *gitpodv1.Service {
	t.Helper()
	return must[gitpodv1.GetServiceResponse](t, "get service")(c.autos.GetService(context.Background(), req(&gitpodv1.GetServiceRequest{Id: id}))).GetService()
}

// executionsOf returns the executions of task taskID.
func (c *client) executionsOf(t *testing.T, envID, taskID string) []*gitpodv1.TaskExecution {
	t.Helper()
	var out []*gitpodv1.TaskExecution
	for _, x := range c.executions(t, envID) {
		if x.GetMetadata().GetTaskId() == taskID {
			out = append(out, x)
		}
	}
	return out
}

// waitExecutions waits until task taskID has n executions, all finished
// with success.
func (c *client) waitExecutions(t *testing.T, envID, taskID string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("task %s ran %d times", taskID, n), func() string {
		xs := c.executionsOf(t, envID, taskID)
		if len(xs) != n {
			return fmt.Sprintf("%d executions", len(xs))
		}
		for _, x := range xs {
			if p := x.GetStatus().GetPhase(); p != gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED {
				return "an execution is " + p.String()
			}
		}
		return ""
	})
}

// waitEnvReported waits until the runner reported phase want in a report
// newer than statusVersion after.
func (c *client) waitEnvReported(t *testing.T, id string, after uint64, want gitpodv1.EnvironmentPhase) {
	t.Helper()
	eventually(t, fmt.Sprintf("environment %s is reported %s again", id, want), func() string {
		st := c.env(t, id).GetStatus()
		if st.GetStatusVersion() <= after || st.GetPhase() != want {
			return fmt.Sprintf("phase %s, version %d (before: %d)", st.GetPhase(), st.GetStatusVersion(), after)
		}
		return ""
	})
}

// runnerToken reads the runner's access token from its state directory.
func runnerToken(t *testing.T, stateDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.AccessToken == "" {
		t.Fatalf("runner credentials: %v", err)
	}
	return creds.AccessToken
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
