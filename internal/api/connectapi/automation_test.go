package connectapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// EnvironmentAutomationService over real HTTP. No runner daemon runs here, so
// no phase moves on its own: the tests check what the control plane keeps
// (specs, desired phases, sessions, plans) and, with a runner's token, what
// a runner may write.

const (
	svcUnspecified = gitpodv1.ServicePhase_SERVICE_PHASE_UNSPECIFIED
	svcRunning     = gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING
	svcStopped     = gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED
	svcDeleted     = gitpodv1.ServicePhase_SERVICE_PHASE_DELETED

	execPending = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_PENDING
	execRunning = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_RUNNING
	execStopped = gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED

	// The IDs the seed's examples use.
	seedEnvironmentID = "07e03a28-65a5-4d98-b532-8ea67b188048"
	seedObjectID      = "d2c94c27-3b76-4a42-b88c-95a85e392c68"
)

// seedTestdata is where internal/protocheck keeps seed 003 and its YAML
// examples transcribed to JSON; these tests send the same examples.
var seedTestdata = filepath.Join("..", "..", "protocheck", "testdata")

// autoFixture is an environment on a runner that never connects, with the
// runner's access token for what only the runner may do.
type autoFixture struct {
	admin       *envClient
	runner      *envClient
	runnerID    string
	class       string
	env         string
	environment *gitpodv1.Environment
	// secret is a secret of the organization, for env vars' secretRefs.
	secret string
}

func newAutoFixture(t *testing.T, ts *testutil.TestServer, p protocol) *autoFixture {
	t.Helper()
	admin := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
	r, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("auto"), Provider: provLinux})
	f := &autoFixture{admin: admin, runnerID: r.GetRunnerId(), class: mustClassOf(t, admin, r.GetRunnerId())}
	f.runner = newEnvClient(t, ts.URL, p, bearer(mustExchange(t, admin.client, x)))
	f.environment = mustCreateEnvironment(t, admin, f.class)
	f.env = f.environment.GetId()
	f.secret = mustCreateSecret(t, newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken)), &gitpodv1.CreateSecretRequest{
		Name: name("secret"), Value: "v", Scope: orgScope(f.environment.GetMetadata().GetOrganizationId()),
	}).GetId()
	return f
}

func trig(name string) *gitpodv1.AutomationTrigger {
	switch name {
	case "manual":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_Manual{Manual: true}}
	case "postEnvironmentStart":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostEnvironmentStart{PostEnvironmentStart: true}}
	case "postDevcontainerStart":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostDevcontainerStart{PostDevcontainerStart: true}}
	case "postMachineStart":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_PostMachineStart{PostMachineStart: true}}
	case "prebuild":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_Prebuild{Prebuild: true}}
	case "beforeSnapshot":
		return &gitpodv1.AutomationTrigger{Trigger: &gitpodv1.AutomationTrigger_BeforeSnapshot{BeforeSnapshot: true}}
	}
	panic("unknown trigger " + name)
}

func docker(image string, env ...string) *gitpodv1.RunsOn {
	return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Docker_{Docker: &gitpodv1.RunsOn_Docker{Image: image, Environment: env}}}
}

func machine() *gitpodv1.RunsOn {
	return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Machine_{Machine: &gitpodv1.RunsOn_Machine{}}}
}

func envValue(n, v string) *gitpodv1.EnvironmentVariableItem {
	return &gitpodv1.EnvironmentVariableItem{Name: n, Source: &gitpodv1.EnvironmentVariableItem_Value{Value: v}}
}

func envSecret(n, id string) *gitpodv1.EnvironmentVariableItem {
	return &gitpodv1.EnvironmentVariableItem{Name: n, Source: &gitpodv1.EnvironmentVariableItem_ValueFrom{
		ValueFrom: &gitpodv1.EnvironmentVariableSource{Source: &gitpodv1.EnvironmentVariableSource_SecretRef{SecretRef: &gitpodv1.SecretRef{Id: id}}},
	}}
}

func mustCreateService(tb testing.TB, c *envClient, envID, ref string) *gitpodv1.Service {
	tb.Helper()
	res, err := c.Autos.CreateService(ctx, connect.NewRequest(&gitpodv1.CreateServiceRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.ServiceMetadata{Reference: ref},
		Spec:          &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 1000"}},
	}))
	mustOK(tb, err, "create service "+ref)
	return res.Msg.GetService()
}

func mustGetService(tb testing.TB, c *envClient, id string) *gitpodv1.Service {
	tb.Helper()
	res, err := c.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
	mustOK(tb, err, "get service "+id)
	return res.Msg.GetService()
}

func mustCreateTask(tb testing.TB, c *envClient, envID, ref string, dependsOn ...string) *gitpodv1.Task {
	tb.Helper()
	res, err := c.Autos.CreateTask(ctx, connect.NewRequest(&gitpodv1.CreateTaskRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.TaskMetadata{Reference: ref},
		Spec:          &gitpodv1.TaskSpec{Command: "echo " + ref},
		DependsOn:     dependsOn,
	}))
	mustOK(tb, err, "create task "+ref)
	return res.Msg.GetTask()
}

func mustGetTask(tb testing.TB, c *envClient, id string) *gitpodv1.Task {
	tb.Helper()
	res, err := c.Autos.GetTask(ctx, connect.NewRequest(&gitpodv1.GetTaskRequest{Id: id}))
	mustOK(tb, err, "get task "+id)
	return res.Msg.GetTask()
}

func mustStartTask(tb testing.TB, c *envClient, id string) *gitpodv1.TaskExecution {
	tb.Helper()
	res, err := c.Autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: id}))
	mustOK(tb, err, "start task "+id)
	return res.Msg.GetTaskExecution()
}

func startService(c *envClient, id string) error {
	_, err := c.Autos.StartService(ctx, connect.NewRequest(&gitpodv1.StartServiceRequest{Id: id}))
	return err
}

func stopService(c *envClient, id string) error {
	_, err := c.Autos.StopService(ctx, connect.NewRequest(&gitpodv1.StopServiceRequest{Id: id}))
	return err
}

func updateService(c *envClient, req *gitpodv1.UpdateServiceRequest) error {
	_, err := c.Autos.UpdateService(ctx, connect.NewRequest(req))
	return err
}

// reportService sends a runner's status update through UpdateService.
func reportService(c *envClient, id string, phase gitpodv1.ServicePhase, session string) error {
	return updateService(c, &gitpodv1.UpdateServiceRequest{Id: id, Status: &gitpodv1.UpdateServiceRequest_ServiceStatus{
		Phase: &phase, Session: &session,
	}})
}

func serviceIDs(ss []*gitpodv1.Service) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.GetId()
	}
	return out
}

func taskIDs(ts []*gitpodv1.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.GetId()
	}
	return out
}

func executionIDs(xs []*gitpodv1.TaskExecution) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.GetId()
	}
	return out
}

func listServices(tb testing.TB, c *envClient, f *gitpodv1.ListServicesRequest_Filter) []*gitpodv1.Service {
	tb.Helper()
	res, err := c.Autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{Filter: f, Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
	mustOK(tb, err, "list services")
	return res.Msg.GetServices()
}

func listTasks(tb testing.TB, c *envClient, f *gitpodv1.ListTasksRequest_Filter) []*gitpodv1.Task {
	tb.Helper()
	res, err := c.Autos.ListTasks(ctx, connect.NewRequest(&gitpodv1.ListTasksRequest{Filter: f, Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
	mustOK(tb, err, "list tasks")
	return res.Msg.GetTasks()
}

// seed003 is what the tests take from seed 003: the request examples by
// method (JSON, in document order) and the response example of each method.
type seed003 struct {
	requests  map[string][]string
	responses map[string]map[string]any
}

var (
	seedMethodRE   = regexp.MustCompile("^## (\\w+) \\*\\*post\\*\\*")
	seedResponseRE = regexp.MustCompile("^#### Response ```json(.*)```\\s*$")
)

func readSeed003(tb testing.TB) *seed003 {
	tb.Helper()
	s := &seed003{requests: map[string][]string{}, responses: map[string]map[string]any{}}
	b, err := os.ReadFile(filepath.Join(seedTestdata, "seed003_yaml_examples.json"))
	mustOK(tb, err, "read the seed's examples")
	var examples []struct {
		Method string          `json:"method"`
		JSON   json.RawMessage `json:"json"`
	}
	mustOK(tb, json.Unmarshal(b, &examples), "decode the seed's examples")
	for _, ex := range examples {
		s.requests[ex.Method] = append(s.requests[ex.Method], string(ex.JSON))
	}
	doc, err := os.ReadFile(filepath.Join(seedTestdata, "seed003.readable.md"))
	mustOK(tb, err, "read seed 003")
	method := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if m := seedMethodRE.FindStringSubmatch(line); m != nil {
			method = m[1]
			continue
		}
		if m := seedResponseRE.FindStringSubmatch(line); m != nil && method != "" {
			s.responses[method] = decodeObject(tb, method+" response example", []byte(m[1]))
			method = ""
		}
	}
	if len(s.responses) != 17 {
		tb.Fatalf("found %d response examples in seed 003, want 17", len(s.responses))
	}
	return s
}

// send posts the seed's example i of method as raw Connect JSON, with the
// seed's IDs replaced by ours, and checks that the response has the shape
// of the seed's response example.
func (s *seed003) send(t *testing.T, raw *rawJSON, method string, i int, envID, objectID string) map[string]any {
	t.Helper()
	body := strings.ReplaceAll(s.requests[method][i], seedEnvironmentID, envID)
	body = strings.ReplaceAll(body, seedObjectID, objectID)
	res := raw.post(t, "/gitpod.v1.EnvironmentAutomationService/"+method, body)
	res.wantOK(t, nil)
	got := decodeObject(t, method+" response", res.Body)
	testutil.CheckShape(t, method+" response", got, s.responses[method], testutil.Shape{})
	return got
}

// sendErr is send for an example that must fail.
func (s *seed003) sendErr(t *testing.T, raw *rawJSON, method string, i int, envID, objectID string, status int, code string, contains ...string) {
	t.Helper()
	body := strings.ReplaceAll(s.requests[method][i], seedEnvironmentID, envID)
	body = strings.ReplaceAll(body, seedObjectID, objectID)
	raw.post(t, "/gitpod.v1.EnvironmentAutomationService/"+method, body).wantError(t, status, code, contains...)
}

func TestAutomations_SeedExamples(t *testing.T) {
	seed := readSeed003(t)
	for _, m := range []string{"UpsertAutomationsFile", "CreateService", "DeleteService", "ListServices", "GetService", "StartService",
		"StopService", "UpdateService", "CreateTask", "DeleteTask", "ListTasks", "GetTask", "StartTask", "UpdateTask",
		"ListTaskExecutions", "GetTaskExecution", "StopTaskExecution"} {
		if len(seed.requests[m]) == 0 {
			t.Fatalf("no request example of %s", m)
		}
	}
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		f := newAutoFixture(t, ts, protocols[0])
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		envA := f.env
		envB := mustCreateEnvironment(t, f.admin, f.class).GetId()
		lookupS := func(m map[string]any, path string) any { v, _ := lookup(m, path); return v }

		// The automations file example on environment A.
		got := seed.send(t, raw, "UpsertAutomationsFile", 0, envA, "")
		if n, m := len(lookupS(got, "updatedServiceIds").([]any)), len(lookupS(got, "updatedTaskIds").([]any)); n != 1 || m != 1 {
			t.Fatalf("UpsertAutomationsFile updated %d services and %d tasks, want 1 and 1: %v", n, m, got)
		}
		fileSvcs := listServices(t, f.admin, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{envA}})
		if len(fileSvcs) != 1 {
			t.Fatalf("services of the file: %v", fileSvcs)
		}
		want := &gitpodv1.ServiceSpec_Commands{Start: "npm run dev", Ready: "curl -s http://localhost:3000"}
		if s := fileSvcs[0]; s.GetMetadata().GetReference() != "web-server" || s.GetMetadata().GetName() != "Web Server" ||
			s.GetMetadata().GetDescription() != "Development web server" || !proto.Equal(s.GetSpec().GetCommands(), want) ||
			!proto.Equal(s.GetMetadata().GetTriggeredBy()[0], trig("postDevcontainerStart")) {
			t.Fatalf("service of the file = %v", s)
		}
		fileTasks := listTasks(t, f.admin, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{envA}})
		if len(fileTasks) != 1 || fileTasks[0].GetMetadata().GetReference() != "build" || fileTasks[0].GetSpec().GetCommand() != "npm run build" ||
			!proto.Equal(fileTasks[0].GetMetadata().GetTriggeredBy()[0], trig("postEnvironmentStart")) {
			t.Fatalf("tasks of the file = %v", fileTasks)
		}

		// Services on environment B.
		web := seed.send(t, raw, "CreateService", 0, envB, "")
		req := decodeObject(t, "request", []byte(seed.requests["CreateService"][0]))
		checkSubset(t, "service.metadata", lookupS(web, "service.metadata"), req["metadata"])
		checkSubset(t, "service.spec", lookupS(web, "service.spec"), req["spec"])
		if got := lookupS(web, "service.spec.desiredPhase"); got != "SERVICE_PHASE_STOPPED" {
			t.Fatalf("desiredPhase = %v, want SERVICE_PHASE_STOPPED", got)
		}
		webID := lookupS(web, "service.id").(string)
		redis := seed.send(t, raw, "CreateService", 1, envB, "")
		req = decodeObject(t, "request", []byte(seed.requests["CreateService"][1]))
		checkSubset(t, "service.spec", lookupS(redis, "service.spec"), req["spec"])
		redisID := lookupS(redis, "service.id").(string)
		if got := lookupS(seed.send(t, raw, "ListServices", 0, envB, ""), "services").([]any); len(got) != 2 {
			t.Fatalf("ListServices of environment B: %d services, want 2", len(got))
		}
		// The references filter spans the organization: web-server of A and B.
		if got := lookupS(seed.send(t, raw, "ListServices", 1, envB, ""), "services").([]any); len(got) != 2 {
			t.Fatalf("ListServices by reference: %d services, want 2", len(got))
		}
		seed.send(t, raw, "GetService", 0, envB, webID)
		seed.send(t, raw, "UpdateService", 0, envB, webID)
		seed.send(t, raw, "UpdateService", 1, envB, webID)
		s := mustGetService(t, f.admin, webID)
		if got, want := s.GetSpec().GetCommands(), (&gitpodv1.ServiceSpec_Commands{Start: "npm run start:dev", Ready: "curl -s http://localhost:8080"}); !proto.Equal(got, want) {
			t.Fatalf("commands after UpdateService = %v, want %v", got, want)
		}
		if got := s.GetMetadata().GetTriggeredBy(); len(got) != 2 || !proto.Equal(got[0], trig("postDevcontainerStart")) || !proto.Equal(got[1], trig("manual")) {
			t.Fatalf("triggeredBy after UpdateService = %v", got)
		}
		seed.send(t, raw, "StartService", 0, envB, webID)
		if got := mustGetService(t, f.admin, webID).GetSpec().GetDesiredPhase(); got != svcRunning {
			t.Fatalf("desiredPhase after StartService = %v", got)
		}
		// A service that is to run keeps its spec. The Connect protocol
		// sends failed_precondition with HTTP 400.
		seed.sendErr(t, raw, "UpdateService", 0, envB, webID, http.StatusBadRequest, "failed_precondition", "stop it")
		seed.send(t, raw, "StopService", 0, envB, webID)
		if got := mustGetService(t, f.admin, webID).GetSpec().GetDesiredPhase(); got != svcStopped {
			t.Fatalf("desiredPhase after StopService = %v", got)
		}

		// Tasks and an execution on environment B.
		build := lookupS(seed.send(t, raw, "CreateTask", 0, envB, ""), "task.id").(string)
		test := seed.send(t, raw, "CreateTask", 1, envB, build)
		testID := lookupS(test, "task.id").(string)
		if got := lookupS(test, "task.dependsOn"); !slices.Equal(toStrings(got), []string{build}) {
			t.Fatalf("dependsOn = %v, want [%s]", got, build)
		}
		if got := lookupS(seed.send(t, raw, "ListTasks", 0, envB, ""), "tasks").([]any); len(got) != 2 {
			t.Fatalf("ListTasks of environment B: %d, want 2", len(got))
		}
		if got := lookupS(seed.send(t, raw, "ListTasks", 1, envB, ""), "tasks").([]any); len(got) != 3 {
			t.Fatalf("ListTasks by reference: %d, want 3 (build of A and B, test of B)", len(got))
		}
		seed.send(t, raw, "GetTask", 0, envB, testID)
		seed.send(t, raw, "UpdateTask", 0, envB, testID)
		seed.send(t, raw, "UpdateTask", 1, envB, testID)
		tk := mustGetTask(t, f.admin, testID)
		if tk.GetSpec().GetCommand() != "npm run test:coverage" || len(tk.GetMetadata().GetTriggeredBy()) != 1 ||
			!proto.Equal(tk.GetMetadata().GetTriggeredBy()[0], trig("postEnvironmentStart")) {
			t.Fatalf("task after UpdateTask = %v", tk)
		}
		x := seed.send(t, raw, "StartTask", 0, envB, testID)
		xID := lookupS(x, "taskExecution.id").(string)
		if got := lookupS(x, "taskExecution.status.phase"); got != "TASK_EXECUTION_PHASE_PENDING" {
			t.Fatalf("status.phase = %v, want PENDING until the runner reports", got)
		}
		if got := lookupS(x, "taskExecution.spec.plan").([]any); len(got) != 2 {
			t.Fatalf("plan = %v, want two groups: build, then test", got)
		}
		if got := lookupS(seed.send(t, raw, "ListTaskExecutions", 0, envB, ""), "taskExecutions").([]any); len(got) != 1 {
			t.Fatalf("ListTaskExecutions of environment B: %d, want 1", len(got))
		}
		if got, ok := lookupS(seed.send(t, raw, "ListTaskExecutions", 1, envB, ""), "taskExecutions").([]any); ok && len(got) != 0 {
			t.Fatalf("ListTaskExecutions RUNNING or FAILED: %d, want none (no runner reported)", len(got))
		}
		seed.send(t, raw, "GetTaskExecution", 0, envB, xID)
		seed.send(t, raw, "StopTaskExecution", 0, envB, xID)

		// Deletions: test first, since it depends on build.
		seed.send(t, raw, "DeleteTask", 0, envB, testID)
		seed.send(t, raw, "DeleteService", 0, envB, redisID)
		seed.send(t, raw, "DeleteService", 1, envB, webID)
		for _, id := range []string{redisID, webID} {
			_, err := f.admin.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
			wantCode(t, err, connect.CodeNotFound, id)
		}
		// The examples' own IDs name nothing here.
		seed.sendErr(t, raw, "GetService", 0, envB, seedObjectID, http.StatusNotFound, "not_found", seedObjectID)
		seed.sendErr(t, raw, "CreateService", 0, seedEnvironmentID, "", http.StatusNotFound, "not_found", seedEnvironmentID)
	})
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

// fullServiceRequest sets every field of CreateServiceRequest that seed 003
// documents, with values other than the defaults.
func fullServiceRequest(envID, ref, secretID string) *gitpodv1.CreateServiceRequest {
	return &gitpodv1.CreateServiceRequest{
		EnvironmentId: envID,
		Metadata: &gitpodv1.ServiceMetadata{
			Reference: ref, Name: "Full service", Description: "every field\nset",
			TriggeredBy: []*gitpodv1.AutomationTrigger{trig("manual"), trig("postEnvironmentStart"), trig("beforeSnapshot")},
			Role:        gitpodv1.ServiceRole_SERVICE_ROLE_AI_AGENT,
		},
		Spec: &gitpodv1.ServiceSpec{
			SpecVersion:  42, // the service's own: ignored
			DesiredPhase: svcRunning,
			Commands:     &gitpodv1.ServiceSpec_Commands{Start: "sleep 1000", Ready: "true", Stop: "kill $PID"},
			Session:      "session-1",
			RunsOn:       docker("redis:7", "A=1", "B=two words"),
			Env:          []*gitpodv1.EnvironmentVariableItem{envValue("PLAIN", "v"), envValue("EMPTY", ""), envSecret("TOKEN", secretID)},
		},
	}
}

func TestAutomations_Services(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachEnvProtocol(t, ts, func(t *testing.T, p protocol, admin *envClient) {
			f := newAutoFixture(t, ts, p)
			me := whoami(t, admin.client)

			t.Run("EveryField", func(t *testing.T) {
				req := fullServiceRequest(f.env, "full", f.secret)
				res, err := admin.Autos.CreateService(ctx, connect.NewRequest(req))
				mustOK(t, err, "create service")
				got := res.Msg.GetService()
				want := &gitpodv1.Service{
					Id: got.GetId(), EnvironmentId: f.env,
					Metadata: proto.Clone(req.GetMetadata()).(*gitpodv1.ServiceMetadata),
					Spec:     proto.Clone(req.GetSpec()).(*gitpodv1.ServiceSpec),
					Status:   &gitpodv1.ServiceStatus{},
				}
				want.Metadata.CreatedAt, want.Metadata.Creator, want.Spec.SpecVersion = got.GetMetadata().GetCreatedAt(), me.GetSubject(), 1
				diffProto(t, "service", got, want)
				if err := uuid.Validate(got.GetId()); err != nil || got.GetMetadata().GetCreatedAt() == nil {
					t.Fatalf("id %q, createdAt %v: want a UUID and a time", got.GetId(), got.GetMetadata().GetCreatedAt())
				}
				diffProto(t, "GetService", mustGetService(t, admin, got.GetId()), got)
			})
			t.Run("Defaults", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "defaults")
				if s.GetMetadata().GetName() != "defaults" || s.GetSpec().GetDesiredPhase() != svcStopped || s.GetSpec().GetSession() == "" ||
					s.GetSpec().GetRunsOn() != nil || s.GetStatus().GetPhase() != svcUnspecified {
					t.Fatalf("service = %v: want name = reference, desired STOPPED, a session, no runsOn, no phase", s)
				}
			})
			t.Run("UpdateWhileRunning", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "running")
				mustOK(t, startService(admin, s.GetId()), "start")
				mustOK(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(),
					Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{
						Name: ptr("Renamed"), Description: ptr("new"), Role: ptr(gitpodv1.ServiceRole_SERVICE_ROLE_EDITOR),
						TriggeredBy: &gitpodv1.UpdateServiceRequest_AutomationTriggerUpdate{Trigger: []*gitpodv1.AutomationTrigger{trig("prebuild")}},
					},
					// A spec that sets nothing changes nothing.
					Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{},
				}), "update metadata")
				got := mustGetService(t, admin, s.GetId())
				md := got.GetMetadata()
				if md.GetName() != "Renamed" || md.GetDescription() != "new" || md.GetRole() != gitpodv1.ServiceRole_SERVICE_ROLE_EDITOR ||
					len(md.GetTriggeredBy()) != 1 || !proto.Equal(md.GetTriggeredBy()[0], trig("prebuild")) {
					t.Fatalf("metadata after update = %v", md)
				}
				before := got
				err := updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{
					Commands: &gitpodv1.UpdateServiceRequest_ServiceSpec_Commands{Start: ptr("sleep 1")}}})
				wantCode(t, err, connect.CodeFailedPrecondition, "not stopped", "stop it")
				diffProto(t, "service after a refused update", mustGetService(t, admin, s.GetId()), before)

				// Stopped, the spec changes.
				mustOK(t, stopService(admin, s.GetId()), "stop")
				mustOK(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{
					Commands: &gitpodv1.UpdateServiceRequest_ServiceSpec_Commands{Start: ptr("sleep 2"), Stop: ptr("true")},
					RunsOn:   machine(),
					Env:      []*gitpodv1.EnvironmentVariableItem{envValue("X", "1")},
				}}), "update spec")
				sp := mustGetService(t, admin, s.GetId()).GetSpec()
				want := &gitpodv1.ServiceSpec{
					SpecVersion: before.GetSpec().GetSpecVersion() + 2, DesiredPhase: svcStopped, Session: before.GetSpec().GetSession(),
					Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 2", Stop: "true"}, RunsOn: machine(),
					Env: []*gitpodv1.EnvironmentVariableItem{envValue("X", "1")},
				}
				diffProto(t, "spec after update", sp, want)
				// The triggers clear with an empty update.
				mustOK(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{
					TriggeredBy: &gitpodv1.UpdateServiceRequest_AutomationTriggerUpdate{}}}), "clear triggers")
				if got := mustGetService(t, admin, s.GetId()).GetMetadata().GetTriggeredBy(); len(got) != 0 {
					t.Fatalf("triggeredBy = %v, want none", got)
				}
			})
			t.Run("StartStopIdempotent", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "idem")
				mustOK(t, startService(admin, s.GetId()), "start")
				first := mustGetService(t, admin, s.GetId()).GetSpec()
				if first.GetDesiredPhase() != svcRunning || first.GetSession() == s.GetSpec().GetSession() {
					t.Fatalf("spec after start = %v: want RUNNING in a new session", first)
				}
				mustOK(t, startService(admin, s.GetId()), "start again")
				diffProto(t, "spec after a second start", mustGetService(t, admin, s.GetId()).GetSpec(), first)
				mustOK(t, stopService(admin, s.GetId()), "stop")
				stopped := mustGetService(t, admin, s.GetId()).GetSpec()
				mustOK(t, stopService(admin, s.GetId()), "stop again")
				diffProto(t, "spec after a second stop", mustGetService(t, admin, s.GetId()).GetSpec(), stopped)
			})
			t.Run("StatusOnlyFromTheRunner", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "status")
				mustOK(t, startService(admin, s.GetId()), "start")
				session := mustGetService(t, admin, s.GetId()).GetSpec().GetSession()
				status := &gitpodv1.UpdateServiceRequest_ServiceStatus{
					Phase: ptr(svcRunning), FailureMessage: ptr(""), LogUrl: ptr("https://cp.example.com/logs/1"), Session: &session,
					Output: map[string]string{"url": "http://localhost:3000", "port": "3000"},
				}
				err := updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: status})
				wantCode(t, err, connect.CodePermissionDenied, "runner")
				_, key := mustCreateKey(t, admin.client, "writer-"+p.name, "environments:write", "environments:read")
				err = updateService(newEnvClient(t, ts.URL, p, bearer(key)), &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: status})
				wantCode(t, err, connect.CodePermissionDenied, "runner")
				if got := mustGetService(t, admin, s.GetId()).GetStatus(); got.GetPhase() != svcUnspecified {
					t.Fatalf("status after refused updates = %v", got)
				}
				err = updateService(f.runner, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: status, Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{Name: ptr("x")}})
				wantCode(t, err, connect.CodeInvalidArgument, "status")

				mustOK(t, updateService(f.runner, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: status}), "runner's status")
				// The version is the runner's ordered reports' alone: an
				// UpdateService status write leaves it, so it cannot make
				// the runner's next report look stale.
				want := &gitpodv1.ServiceStatus{StatusVersion: 0, Phase: svcRunning, LogUrl: "https://cp.example.com/logs/1", Session: session,
					Output: map[string]string{"url": "http://localhost:3000", "port": "3000"}}
				diffProto(t, "status", mustGetService(t, admin, s.GetId()).GetStatus(), want)
				// An empty output value unsets its key.
				mustOK(t, updateService(f.runner, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: &gitpodv1.UpdateServiceRequest_ServiceStatus{
					Output: map[string]string{"port": ""}}}), "unset output")
				if got := mustGetService(t, admin, s.GetId()).GetStatus(); got.GetStatusVersion() != 0 || len(got.GetOutput()) != 1 || got.GetPhase() != svcRunning {
					t.Fatalf("status after unsetting port = %v", got)
				}
				err = updateService(f.runner, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: &gitpodv1.UpdateServiceRequest_ServiceStatus{Phase: ptr(gitpodv1.ServicePhase(99))}})
				wantCode(t, err, connect.CodeInvalidArgument, "status.phase")

				// Another runner's token finds nothing.
				_, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("stranger"), Provider: provLinux})
				stranger := newEnvClient(t, ts.URL, p, bearer(mustExchange(t, admin.client, x)))
				wantCode(t, updateService(stranger, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Status: status}), connect.CodeNotFound)

				// Once the runner reports the run exited, a start is a new session.
				mustOK(t, reportService(f.runner, s.GetId(), svcStopped, session), "report stopped")
				mustOK(t, startService(admin, s.GetId()), "start after the exit")
				if got := mustGetService(t, admin, s.GetId()).GetSpec().GetSession(); got == session {
					t.Fatal("a start after the run exited kept the session")
				}
			})
			t.Run("DeleteStopsFirst", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "deleted")
				mustOK(t, startService(admin, s.GetId()), "start")
				session := mustGetService(t, admin, s.GetId()).GetSpec().GetSession()
				mustOK(t, reportService(f.runner, s.GetId(), svcRunning, session), "report running")
				_, err := admin.Autos.DeleteService(ctx, connect.NewRequest(&gitpodv1.DeleteServiceRequest{Id: s.GetId()}))
				mustOK(t, err, "delete")
				got := mustGetService(t, admin, s.GetId())
				if got.GetSpec().GetDesiredPhase() != svcDeleted || got.GetStatus().GetPhase() != svcRunning {
					t.Fatalf("service after delete = %v: want desired DELETED, still RUNNING until the runner stops it", got)
				}
				wantCode(t, startService(admin, s.GetId()), connect.CodeFailedPrecondition, "being deleted")
				mustOK(t, reportService(f.runner, s.GetId(), svcStopped, session), "report stopped")
				_, err = admin.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: s.GetId()}))
				wantCode(t, err, connect.CodeNotFound)
			})
			t.Run("DeleteForce", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "forced")
				mustOK(t, startService(admin, s.GetId()), "start")
				_, err := admin.Autos.DeleteService(ctx, connect.NewRequest(&gitpodv1.DeleteServiceRequest{Id: s.GetId(), Force: true}))
				mustOK(t, err, "force delete")
				_, err = admin.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: s.GetId()}))
				wantCode(t, err, connect.CodeNotFound)
				// The reference is free again.
				mustCreateService(t, admin, f.env, "forced")
			})

			withSpec := func(ref string, mod func(*gitpodv1.CreateServiceRequest)) *gitpodv1.CreateServiceRequest {
				r := &gitpodv1.CreateServiceRequest{EnvironmentId: f.env, Metadata: &gitpodv1.ServiceMetadata{Reference: ref},
					Spec: &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 1"}}}
				mod(r)
				return r
			}
			mustCreateService(t, admin, f.env, "taken")
			mustCreateTask(t, admin, f.env, "task-ref")
			for _, tc := range []struct {
				name  string
				req   *gitpodv1.CreateServiceRequest
				code  connect.Code
				field string
			}{
				{"ErrReferenceTaken", withSpec("taken", func(*gitpodv1.CreateServiceRequest) {}), connect.CodeAlreadyExists, "taken"},
				{"ErrReferenceOfTask", withSpec("task-ref", func(*gitpodv1.CreateServiceRequest) {}), connect.CodeAlreadyExists, "task-ref"},
				{"ErrReference", withSpec("a b", func(*gitpodv1.CreateServiceRequest) {}), connect.CodeInvalidArgument, "metadata.reference"},
				{"ErrNoStart", withSpec("nostart", func(r *gitpodv1.CreateServiceRequest) { r.Spec.Commands = nil }), connect.CodeInvalidArgument, "spec.commands.start"},
				{"ErrUnknownRole", withSpec("role", func(r *gitpodv1.CreateServiceRequest) { r.Metadata.Role = 99 }), connect.CodeInvalidArgument, "metadata.role"},
				{"ErrUnknownDesiredPhase", withSpec("phase", func(r *gitpodv1.CreateServiceRequest) { r.Spec.DesiredPhase = 99 }), connect.CodeInvalidArgument, "spec.desiredPhase"},
				{"ErrDesiredPhaseDeleted", withSpec("phase", func(r *gitpodv1.CreateServiceRequest) { r.Spec.DesiredPhase = svcDeleted }), connect.CodeInvalidArgument, "spec.desiredPhase"},
				{"ErrTriggerFalse", withSpec("trig", func(r *gitpodv1.CreateServiceRequest) {
					r.Metadata.TriggeredBy = []*gitpodv1.AutomationTrigger{trig("manual"), {Trigger: &gitpodv1.AutomationTrigger_Manual{}}}
				}), connect.CodeInvalidArgument, "metadata.triggeredBy[1].manual"},
				{"ErrTriggerUnset", withSpec("trig", func(r *gitpodv1.CreateServiceRequest) { r.Metadata.TriggeredBy = []*gitpodv1.AutomationTrigger{{}} }),
					connect.CodeInvalidArgument, "metadata.triggeredBy[0]"},
				{"ErrTriggerTwice", withSpec("trig", func(r *gitpodv1.CreateServiceRequest) {
					r.Metadata.TriggeredBy = []*gitpodv1.AutomationTrigger{trig("manual"), trig("manual")}
				}), connect.CodeInvalidArgument, "metadata.triggeredBy[1]"},
				{"ErrValueFromEmpty", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{{Name: "A", Source: &gitpodv1.EnvironmentVariableItem_ValueFrom{ValueFrom: &gitpodv1.EnvironmentVariableSource{}}}}
				}), connect.CodeInvalidArgument, "spec.env[0].valueFrom.secretRef"},
				{"ErrSecretRefID", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("A", "1"), envSecret("B", "not-a-uuid")}
				}), connect.CodeInvalidArgument, "spec.env[1].valueFrom.secretRef.id"},
				{"ErrEnvName", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("1A", "1")}
				}),
					connect.CodeInvalidArgument, "spec.env[0].name"},
				{"ErrEnvNamePATH", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("PATH", "/tmp/evil")}
				}), connect.CodeInvalidArgument, `spec.env[0].name: "PATH" is reserved`},
				{"ErrEnvNameLDPreload", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("A", "1"), envSecret("LD_PRELOAD", f.secret)}
				}), connect.CodeInvalidArgument, `spec.env[1].name: "LD_PRELOAD" is reserved`},
				{"ErrEnvNameRunyardPrefix", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("RUNYARD_OUTPUT", "/tmp/x")}
				}), connect.CodeInvalidArgument, `spec.env[0].name: "RUNYARD_OUTPUT" is reserved`},
				{"ErrSecretRefUnknown", withSpec("env", func(r *gitpodv1.CreateServiceRequest) {
					r.Spec.Env = []*gitpodv1.EnvironmentVariableItem{envValue("A", "1"), envSecret("B", uuid.NewString())}
				}), connect.CodeInvalidArgument, "spec.env[1].valueFrom.secretRef.id"},
				{"ErrDockerImage", withSpec("docker", func(r *gitpodv1.CreateServiceRequest) { r.Spec.RunsOn = docker("") }),
					connect.CodeInvalidArgument, "spec.runsOn.docker.image"},
				{"ErrDockerEnvironment", withSpec("docker", func(r *gitpodv1.CreateServiceRequest) { r.Spec.RunsOn = docker("redis", "HOME") }),
					connect.CodeInvalidArgument, "spec.runsOn.docker.environment[0]"},
				{"ErrEnvironmentID", withSpec("env-id", func(r *gitpodv1.CreateServiceRequest) { r.EnvironmentId = "env-1" }), connect.CodeInvalidArgument, "environmentId"},
				{"ErrEnvironmentNotFound", withSpec("env-id", func(r *gitpodv1.CreateServiceRequest) { r.EnvironmentId = uuid.NewString() }), connect.CodeNotFound, "environment"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := admin.Autos.CreateService(ctx, connect.NewRequest(tc.req))
					wantCode(t, err, tc.code, tc.field)
				})
			}
			t.Run("ErrUpdate", func(t *testing.T) {
				s := mustCreateService(t, admin, f.env, "upd-errors")
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(),
					Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{Role: ptr(gitpodv1.ServiceRole(12))}}), connect.CodeInvalidArgument, "metadata.role")
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(),
					Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{Commands: &gitpodv1.UpdateServiceRequest_ServiceSpec_Commands{Start: ptr(" ")}}}),
					connect.CodeInvalidArgument, "spec.commands.start")
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{
					TriggeredBy: &gitpodv1.UpdateServiceRequest_AutomationTriggerUpdate{Trigger: []*gitpodv1.AutomationTrigger{{}}}}}),
					connect.CodeInvalidArgument, "metadata.triggeredBy.trigger[0]")
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(),
					Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{Env: []*gitpodv1.EnvironmentVariableItem{envSecret("TOKEN", uuid.NewString())}}}),
					connect.CodeInvalidArgument, "spec.env[0].valueFrom.secretRef.id")
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(),
					Spec: &gitpodv1.UpdateServiceRequest_ServiceSpec{Env: []*gitpodv1.EnvironmentVariableItem{envValue("SHELL", "/bin/evil")}}}),
					connect.CodeInvalidArgument, `spec.env[0].name: "SHELL" is reserved`)
				diffProto(t, "service after refused updates", mustGetService(t, admin, s.GetId()), s)
				missing := uuid.NewString()
				wantCode(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: missing, Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{Name: ptr("x")}}),
					connect.CodeNotFound, missing)
				wantCode(t, startService(admin, missing), connect.CodeNotFound, missing)
				wantCode(t, stopService(admin, "nope"), connect.CodeInvalidArgument, "id")
				_, err := admin.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: "nope"}))
				wantCode(t, err, connect.CodeInvalidArgument, "id")
			})
		})
	})
}

func TestAutomations_Tasks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		for _, p := range protocols {
			t.Run(p.name, func(t *testing.T) {
				f := newAutoFixture(t, ts, p)
				admin := f.admin
				me := whoami(t, admin.client)
				db := mustCreateService(t, admin, f.env, "db")

				t.Run("EveryField", func(t *testing.T) {
					dep := mustCreateTask(t, admin, f.env, "dep")
					req := &gitpodv1.CreateTaskRequest{
						EnvironmentId: f.env,
						Metadata: &gitpodv1.TaskMetadata{Reference: "full", Name: "Full task", Description: "all",
							TriggeredBy: []*gitpodv1.AutomationTrigger{trig("postMachineStart"), trig("manual")}},
						Spec: &gitpodv1.TaskSpec{Command: "make test", RunsOn: docker("golang:1.24", "CGO_ENABLED=0"),
							Env: []*gitpodv1.EnvironmentVariableItem{envValue("A", "1"), envSecret("S", f.secret)}},
						DependsOn: []string{dep.GetId(), db.GetId()},
					}
					res, err := admin.Autos.CreateTask(ctx, connect.NewRequest(req))
					mustOK(t, err, "create task")
					got := res.Msg.GetTask()
					want := &gitpodv1.Task{Id: got.GetId(), EnvironmentId: f.env, Metadata: proto.Clone(req.GetMetadata()).(*gitpodv1.TaskMetadata),
						Spec: req.GetSpec(), DependsOn: req.GetDependsOn()}
					want.Metadata.CreatedAt, want.Metadata.Creator = got.GetMetadata().GetCreatedAt(), me.GetSubject()
					diffProto(t, "task", got, want)
					diffProto(t, "GetTask", mustGetTask(t, admin, got.GetId()), got)

					_, err = admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: got.GetId(),
						Metadata: &gitpodv1.UpdateTaskRequest_TaskMetadata{Name: ptr("Renamed"), Description: ptr(""),
							TriggeredBy: &gitpodv1.UpdateTaskRequest_AutomationTriggerUpdate{}},
						Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Command: ptr("make lint"), RunsOn: machine(),
							Env: []*gitpodv1.EnvironmentVariableItem{envValue("B", "2")}},
						DependsOn: []string{dep.GetId()},
					}))
					mustOK(t, err, "update task")
					want.Metadata.Name, want.Metadata.Description, want.Metadata.TriggeredBy = "Renamed", "", nil
					want.Spec = &gitpodv1.TaskSpec{Command: "make lint", RunsOn: machine(), Env: []*gitpodv1.EnvironmentVariableItem{envValue("B", "2")}}
					want.DependsOn = []string{dep.GetId()}
					diffProto(t, "task after update", mustGetTask(t, admin, got.GetId()), want)
				})
				t.Run("CycleRefused", func(t *testing.T) {
					a := mustCreateTask(t, admin, f.env, "cycle-a")
					b := mustCreateTask(t, admin, f.env, "cycle-b", a.GetId())
					c := mustCreateTask(t, admin, f.env, "cycle-c", b.GetId())
					_, err := admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: a.GetId(), DependsOn: []string{c.GetId()},
						Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Command: ptr("changed")}}))
					wantCode(t, err, connect.CodeInvalidArgument, "dependsOn", "cycle", "cycle-a", "cycle-b", "cycle-c")
					diffProto(t, "task after the refused cycle", mustGetTask(t, admin, a.GetId()), a)
					_, err = admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: a.GetId(), DependsOn: []string{a.GetId()}}))
					wantCode(t, err, connect.CodeInvalidArgument, "dependsOn[0]", "itself")
				})
				t.Run("Errors", func(t *testing.T) {
					other := mustCreateEnvironment(t, admin, f.class).GetId()
					foreign := mustCreateTask(t, admin, other, "foreign")
					for _, tc := range []struct {
						name  string
						req   *gitpodv1.CreateTaskRequest
						code  connect.Code
						field string
					}{
						{"ErrNoCommand", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "nocmd"}},
							connect.CodeInvalidArgument, "spec.command"},
						{"ErrDependencyElsewhere", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x"},
							Spec: &gitpodv1.TaskSpec{Command: "true"}, DependsOn: []string{foreign.GetId()}}, connect.CodeInvalidArgument, "dependsOn[0]"},
						{"ErrDependencyTwice", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x"},
							Spec: &gitpodv1.TaskSpec{Command: "true"}, DependsOn: []string{db.GetId(), db.GetId()}}, connect.CodeInvalidArgument, "dependsOn[1]"},
						{"ErrTriggerFalse", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x",
							TriggeredBy: []*gitpodv1.AutomationTrigger{{Trigger: &gitpodv1.AutomationTrigger_BeforeSnapshot{}}}},
							Spec: &gitpodv1.TaskSpec{Command: "true"}}, connect.CodeInvalidArgument, "metadata.triggeredBy[0].beforeSnapshot"},
						{"ErrReferenceOfService", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "db"},
							Spec: &gitpodv1.TaskSpec{Command: "true"}}, connect.CodeAlreadyExists, "db"},
						{"ErrEnvNameHOME", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x"},
							Spec: &gitpodv1.TaskSpec{Command: "true", Env: []*gitpodv1.EnvironmentVariableItem{envValue("HOME", "/tmp")}}},
							connect.CodeInvalidArgument, `spec.env[0].name: "HOME" is reserved`},
						{"ErrEnvNameLDLibraryPath", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x"},
							Spec: &gitpodv1.TaskSpec{Command: "true", Env: []*gitpodv1.EnvironmentVariableItem{envValue("A", ""), envSecret("LD_LIBRARY_PATH", f.secret)}}},
							connect.CodeInvalidArgument, `spec.env[1].name: "LD_LIBRARY_PATH" is reserved`},
						{"ErrSecretRefUnknown", &gitpodv1.CreateTaskRequest{EnvironmentId: f.env, Metadata: &gitpodv1.TaskMetadata{Reference: "x"},
							Spec: &gitpodv1.TaskSpec{Command: "true", Env: []*gitpodv1.EnvironmentVariableItem{envSecret("TOKEN", uuid.NewString())}}},
							connect.CodeInvalidArgument, "spec.env[0].valueFrom.secretRef.id"},
					} {
						t.Run(tc.name, func(t *testing.T) {
							_, err := admin.Autos.CreateTask(ctx, connect.NewRequest(tc.req))
							wantCode(t, err, tc.code, tc.field)
						})
					}
					t.Run("ErrUpdateEnv", func(t *testing.T) {
						task := mustCreateTask(t, admin, f.env, "upd-env")
						_, err := admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: task.GetId(),
							Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Env: []*gitpodv1.EnvironmentVariableItem{envSecret("TOKEN", uuid.NewString())}}}))
						wantCode(t, err, connect.CodeInvalidArgument, "spec.env[0].valueFrom.secretRef.id")
						_, err = admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: task.GetId(),
							Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Env: []*gitpodv1.EnvironmentVariableItem{envValue("USER", "root")}}}))
						wantCode(t, err, connect.CodeInvalidArgument, `spec.env[0].name: "USER" is reserved`)
						diffProto(t, "task after refused updates", mustGetTask(t, admin, task.GetId()), task)
						_, err = admin.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: task.GetId(),
							Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Env: []*gitpodv1.EnvironmentVariableItem{envSecret("TOKEN", f.secret)}}}))
						mustOK(t, err, "update with a known secret")
					})
				})
				t.Run("Executions", func(t *testing.T) {
					// root -> (left, right) -> base; right also awaits the service.
					base := mustCreateTask(t, admin, f.env, "x-base")
					svc := mustCreateService(t, admin, f.env, "x-svc")
					left := mustCreateTask(t, admin, f.env, "x-left", base.GetId())
					right := mustCreateTask(t, admin, f.env, "x-right", base.GetId(), svc.GetId())
					root := mustCreateTask(t, admin, f.env, "x-root", left.GetId(), right.GetId())
					x := mustStartTask(t, admin, root.GetId())
					md := x.GetMetadata()
					if md.GetTaskId() != root.GetId() || md.GetEnvironmentId() != f.env || md.GetStartedBy() != "manual" ||
						!proto.Equal(md.GetCreator(), me.GetSubject()) || md.GetCreatedAt() == nil || md.GetStartedAt() != nil || md.GetCompletedAt() != nil {
						t.Fatalf("execution metadata = %v", md)
					}
					if x.GetSpec().GetDesiredPhase() != execRunning || x.GetStatus().GetPhase() != execPending {
						t.Fatalf("execution desired %v, phase %v: want RUNNING and PENDING", x.GetSpec().GetDesiredPhase(), x.GetStatus().GetPhase())
					}
					// Groups by longest path: base and the service, then left
					// and right, then root.
					var groups [][]string
					stepOf := map[string]*gitpodv1.TaskExecutionSpec_Step{}
					for _, g := range x.GetSpec().GetPlan() {
						var ids []string
						for _, st := range g.GetSteps() {
							id := st.GetTask().GetId()
							if id == "" {
								id = st.GetServiceId()
							}
							ids = append(ids, id)
							stepOf[id] = st
						}
						slices.Sort(ids)
						groups = append(groups, ids)
					}
					wantGroups := [][]string{{base.GetId(), svc.GetId()}, {left.GetId(), right.GetId()}, {root.GetId()}}
					for _, g := range wantGroups {
						slices.Sort(g)
					}
					if fmt.Sprint(groups) != fmt.Sprint(wantGroups) {
						t.Fatalf("plan groups = %v, want %v", groups, wantGroups)
					}
					if st := stepOf[root.GetId()]; st.GetLabel() != "x-root" || st.GetTask().GetSpec().GetCommand() != "echo x-root" || len(st.GetDependsOn()) != 2 {
						t.Fatalf("root step = %v", st)
					}
					if st := stepOf[right.GetId()]; !slices.Contains(st.GetDependsOn(), stepOf[svc.GetId()].GetId()) {
						t.Fatalf("right step depends on %v, want the service's step %s", st.GetDependsOn(), stepOf[svc.GetId()].GetId())
					}
					// The service the plan awaits is started with it.
					if got := mustGetService(t, admin, svc.GetId()).GetSpec().GetDesiredPhase(); got != svcRunning {
						t.Fatalf("awaited service desired %v, want RUNNING", got)
					}
					res, err := admin.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
					mustOK(t, err, "get execution")
					diffProto(t, "GetTaskExecution", res.Msg.GetTaskExecution(), x)

					for range 2 {
						_, err = admin.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: x.GetId()}))
						mustOK(t, err, "stop execution")
					}
					res, err = admin.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
					mustOK(t, err, "get execution")
					if got := res.Msg.GetTaskExecution().GetSpec().GetDesiredPhase(); got != execStopped {
						t.Fatalf("desired phase after stop = %v, want STOPPED", got)
					}

					// Deletions refused while something depends on the task or
					// service; the execution keeps its copy of the task.
					_, err = admin.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: base.GetId()}))
					wantCode(t, err, connect.CodeFailedPrecondition, "x-left", "x-right")
					_, err = admin.Autos.DeleteService(ctx, connect.NewRequest(&gitpodv1.DeleteServiceRequest{Id: svc.GetId(), Force: true}))
					wantCode(t, err, connect.CodeFailedPrecondition, "x-right")
					_, err = admin.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: root.GetId()}))
					mustOK(t, err, "delete root")
					_, err = admin.Autos.GetTask(ctx, connect.NewRequest(&gitpodv1.GetTaskRequest{Id: root.GetId()}))
					wantCode(t, err, connect.CodeNotFound)
					res, err = admin.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
					mustOK(t, err, "get execution of a deleted task")

					// A stopped environment starts no task.
					_, err = admin.Envs.StopEnvironment(ctx, connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: f.env}))
					mustOK(t, err, "stop environment")
					_, err = admin.Autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: base.GetId()}))
					wantCode(t, err, connect.CodeFailedPrecondition, "start it")
					_, err = admin.Envs.StartEnvironment(ctx, connect.NewRequest(&gitpodv1.StartEnvironmentRequest{EnvironmentId: f.env}))
					mustOK(t, err, "start environment")
					_, err = admin.Autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: uuid.NewString()}))
					wantCode(t, err, connect.CodeNotFound)
					_, err = admin.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: uuid.NewString()}))
					wantCode(t, err, connect.CodeNotFound)
				})
			})
		}
	})
}

// seedFile is the automations file of the seed's UpsertAutomationsFile
// example.
func seedFile() *gitpodv1.AutomationsFile {
	return &gitpodv1.AutomationsFile{
		Services: map[string]*gitpodv1.AutomationsFile_Service{"web-server": {
			Name: "Web Server", Description: "Development web server",
			Commands:    &gitpodv1.ServiceSpec_Commands{Start: "npm run dev", Ready: "curl -s http://localhost:3000"},
			TriggeredBy: []string{"postDevcontainerStart"},
		}},
		Tasks: map[string]*gitpodv1.AutomationsFile_Task{"build": {
			Name: "Build Project", Description: "Builds the project artifacts", Command: "npm run build",
			TriggeredBy: []string{"postEnvironmentStart"},
		}},
	}
}

func TestAutomations_UpsertFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		for _, p := range protocols {
			t.Run(p.name, func(t *testing.T) {
				f := newAutoFixture(t, ts, p)
				admin := f.admin
				upsert := func(file *gitpodv1.AutomationsFile) (*gitpodv1.UpsertAutomationsFileResponse, error) {
					res, err := admin.Autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{
						EnvironmentId: f.env, AutomationsFile: file}))
					if err != nil {
						return nil, err
					}
					return res.Msg, nil
				}
				state := func(t *testing.T) ([]*gitpodv1.Service, []*gitpodv1.Task) {
					t.Helper()
					return listServices(t, admin, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{f.env}}),
						listTasks(t, admin, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{f.env}})
				}

				res, err := upsert(seedFile())
				mustOK(t, err, "upsert the seed's file")
				svcs, tasks := state(t)
				if !slices.Equal(res.GetUpdatedServiceIds(), serviceIDs(svcs)) || !slices.Equal(res.GetUpdatedTaskIds(), taskIDs(tasks)) || len(svcs) != 1 || len(tasks) != 1 {
					t.Fatalf("updated %v %v, have %v %v", res.GetUpdatedServiceIds(), res.GetUpdatedTaskIds(), serviceIDs(svcs), taskIDs(tasks))
				}
				web, build := svcs[0], tasks[0]
				if web.GetMetadata().GetRole() != gitpodv1.ServiceRole_SERVICE_ROLE_UNSPECIFIED || web.GetSpec().GetDesiredPhase() != svcStopped ||
					build.GetMetadata().GetName() != "Build Project" || build.GetMetadata().GetDescription() != "Builds the project artifacts" {
					t.Fatalf("from the file: %v, %v", web, build)
				}

				t.Run("Unchanged", func(t *testing.T) {
					res, err := upsert(seedFile())
					mustOK(t, err, "upsert again")
					if len(res.GetUpdatedServiceIds())+len(res.GetUpdatedTaskIds()) != 0 {
						t.Fatalf("the same file again updated %v", res)
					}
					s, tk := state(t)
					diffProto(t, "service", s[0], web)
					diffProto(t, "task", tk[0], build)
				})
				t.Run("Refused", func(t *testing.T) {
					beforeS, beforeT := state(t)
					for _, tc := range []struct {
						name     string
						mod      func(*gitpodv1.AutomationsFile)
						contains []string
					}{
						{"Cycle", func(fl *gitpodv1.AutomationsFile) {
							fl.Tasks["build"].Command = "changed"
							fl.Tasks["build"].DependsOn = []string{"lint"}
							fl.Tasks["lint"] = &gitpodv1.AutomationsFile_Task{Command: "lint", DependsOn: []string{"test"}}
							fl.Tasks["test"] = &gitpodv1.AutomationsFile_Task{Command: "test", DependsOn: []string{"build"}}
						}, []string{"automationsFile.tasks", "cycle", "build -> lint -> test -> build"}},
						{"UnknownRole", func(fl *gitpodv1.AutomationsFile) { fl.Services["web-server"].Role = "admin" },
							[]string{"automationsFile.services.web-server.role"}},
						{"UnknownTrigger", func(fl *gitpodv1.AutomationsFile) { fl.Tasks["build"].TriggeredBy = []string{"sometimes"} },
							[]string{"automationsFile.tasks.build.triggeredBy[0]"}},
						{"APIOnlyTrigger", func(fl *gitpodv1.AutomationsFile) { fl.Tasks["build"].TriggeredBy = []string{"beforeSnapshot"} },
							[]string{"automationsFile.tasks.build.triggeredBy[0]"}},
						{"UnknownDependency", func(fl *gitpodv1.AutomationsFile) { fl.Tasks["build"].DependsOn = []string{"nothing"} },
							[]string{"automationsFile.tasks.build.dependsOn[0]", "nothing"}},
						{"NoStart", func(fl *gitpodv1.AutomationsFile) { fl.Services["web-server"].Commands = nil },
							[]string{"automationsFile.services.web-server.commands.start"}},
						{"SharedReference", func(fl *gitpodv1.AutomationsFile) {
							fl.Tasks["web-server"] = &gitpodv1.AutomationsFile_Task{Command: "x"}
						},
							[]string{"automationsFile.tasks.web-server"}},
						{"DockerWithoutImage", func(fl *gitpodv1.AutomationsFile) { fl.Tasks["build"].RunsOn = docker("") },
							[]string{"automationsFile.tasks.build.runsOn.docker.image"}},
					} {
						t.Run(tc.name, func(t *testing.T) {
							fl := seedFile()
							tc.mod(fl)
							_, err := upsert(fl)
							wantCode(t, err, connect.CodeInvalidArgument, tc.contains...)
							s, tk := state(t)
							if len(s) != len(beforeS) || len(tk) != len(beforeT) {
								t.Fatalf("a refused file changed the automations: %v %v", s, tk)
							}
							diffProto(t, "service", s[0], beforeS[0])
							diffProto(t, "task", tk[0], beforeT[0])
						})
					}
					t.Run("UnknownField", func(t *testing.T) {
						raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
						raw.post(t, gitpodv1connect.EnvironmentAutomationServiceUpsertAutomationsFileProcedure,
							fmt.Sprintf(`{"environmentId":%q,"automationsFile":{"services":{"web-server":{"comands":{"start":"x"}}}}}`, f.env)).
							wantError(t, http.StatusBadRequest, "invalid_argument", "comands")
					})
					t.Run("Environment", func(t *testing.T) {
						missing := uuid.NewString()
						_, err := admin.Autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{EnvironmentId: missing, AutomationsFile: seedFile()}))
						wantCode(t, err, connect.CodeNotFound, missing)
						_, err = admin.Autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{AutomationsFile: seedFile()}))
						wantCode(t, err, connect.CodeInvalidArgument, "environmentId")
					})
				})
				t.Run("SourceOfTruth", func(t *testing.T) {
					fl := seedFile()
					fl.Services["db"] = &gitpodv1.AutomationsFile_Service{Commands: &gitpodv1.ServiceSpec_Commands{Start: "postgres"},
						RunsOn: docker("postgres:16", "POSTGRES_PASSWORD=x"), Role: "default"}
					fl.Tasks["build"].DependsOn = []string{"db"}
					fl.Tasks["build"].RunsOn = machine()
					res, err := upsert(fl)
					mustOK(t, err, "upsert with db")
					s, tk := state(t)
					var db *gitpodv1.Service
					for _, x := range s {
						if x.GetMetadata().GetReference() == "db" {
							db = x
						}
					}
					if db == nil || db.GetMetadata().GetName() != "db" || db.GetMetadata().GetRole() != gitpodv1.ServiceRole_SERVICE_ROLE_DEFAULT ||
						!proto.Equal(db.GetSpec().GetRunsOn(), docker("postgres:16", "POSTGRES_PASSWORD=x")) {
						t.Fatalf("db from the file = %v", db)
					}
					if !slices.Equal(res.GetUpdatedServiceIds(), []string{db.GetId()}) || !slices.Equal(res.GetUpdatedTaskIds(), []string{build.GetId()}) {
						t.Fatalf("updated %v %v, want db and build", res.GetUpdatedServiceIds(), res.GetUpdatedTaskIds())
					}
					if got := tk[0].GetDependsOn(); !slices.Equal(got, []string{db.GetId()}) || !proto.Equal(tk[0].GetSpec().GetRunsOn(), machine()) {
						t.Fatalf("build depends on %v, runs on %v", got, tk[0].GetSpec().GetRunsOn())
					}

					// web-server runs; a file without it and without build
					// stops web-server first and removes build and db at once.
					mustOK(t, startService(admin, web.GetId()), "start web-server")
					_, err = upsert(&gitpodv1.AutomationsFile{Tasks: map[string]*gitpodv1.AutomationsFile_Task{"only": {Command: "true"}}})
					mustOK(t, err, "upsert the smaller file")
					s, tk = state(t)
					if len(s) != 1 || s[0].GetId() != web.GetId() || s[0].GetSpec().GetDesiredPhase() != svcDeleted {
						t.Fatalf("services = %v, want only web-server, desired DELETED", s)
					}
					if len(tk) != 1 || tk[0].GetMetadata().GetReference() != "only" {
						t.Fatalf("tasks = %v, want only the file's", tk)
					}
					// The runner reports it stopped: it goes.
					mustOK(t, reportService(f.runner, web.GetId(), svcStopped, s[0].GetSpec().GetSession()), "report stopped")
					if s, _ = state(t); len(s) != 0 {
						t.Fatalf("services = %v, want none", s)
					}
					// No file at all is an empty one.
					_, err = upsert(nil)
					mustOK(t, err, "upsert no file")
					if s, tk = state(t); len(s)+len(tk) != 0 {
						t.Fatalf("after an empty file: %v %v", s, tk)
					}
				})
				// Items created through the API are never changed or
				// removed by a file: one that names them is refused, one that
				// drops what an API-created task depends on too.
				t.Run("APIItems", func(t *testing.T) {
					apiSvc := mustCreateService(t, admin, f.env, "api-svc")
					fromFile := &gitpodv1.AutomationsFile{
						Services: map[string]*gitpodv1.AutomationsFile_Service{"file-db": {Commands: &gitpodv1.ServiceSpec_Commands{Start: "postgres"}}},
						Tasks:    map[string]*gitpodv1.AutomationsFile_Task{"file-task": {Command: "true"}},
					}
					_, err := upsert(fromFile)
					mustOK(t, err, "upsert")
					var fileDB, fileTask string
					s, tk := state(t)
					for _, x := range s {
						if x.GetMetadata().GetReference() == "file-db" {
							fileDB = x.GetId()
						}
					}
					for _, x := range tk {
						if x.GetMetadata().GetReference() == "file-task" {
							fileTask = x.GetId()
						}
					}
					apiTask := mustCreateTask(t, admin, f.env, "api-task", fileDB, fileTask)
					if got := mustGetService(t, admin, apiSvc.GetId()); !proto.Equal(got, apiSvc) {
						t.Fatalf("the upsert changed the API-created service: %v", got)
					}

					for _, tc := range []struct {
						name     string
						file     *gitpodv1.AutomationsFile
						code     connect.Code
						contains []string
					}{
						{"NamesAPIService", &gitpodv1.AutomationsFile{
							Services: map[string]*gitpodv1.AutomationsFile_Service{"file-db": fromFile.Services["file-db"], "api-svc": {Commands: &gitpodv1.ServiceSpec_Commands{Start: "x"}}},
							Tasks:    fromFile.Tasks,
						}, connect.CodeAlreadyExists, []string{"automationsFile.services.api-svc", "CreateService"}},
						{"NamesAPITaskAsService", &gitpodv1.AutomationsFile{
							Services: map[string]*gitpodv1.AutomationsFile_Service{"file-db": fromFile.Services["file-db"], "api-task": {Commands: &gitpodv1.ServiceSpec_Commands{Start: "x"}}},
							Tasks:    fromFile.Tasks,
						}, connect.CodeAlreadyExists, []string{"automationsFile.services.api-task", "CreateTask"}},
						{"DropsServiceAPITaskNeeds", &gitpodv1.AutomationsFile{Tasks: fromFile.Tasks},
							connect.CodeFailedPrecondition, []string{`service "file-db"`, `"api-task"`}},
						{"DropsTaskAPITaskNeeds", &gitpodv1.AutomationsFile{Services: fromFile.Services},
							connect.CodeFailedPrecondition, []string{`task "file-task"`, `"api-task"`}},
					} {
						t.Run(tc.name, func(t *testing.T) {
							beforeS, beforeT := state(t)
							_, err := upsert(tc.file)
							wantCode(t, err, tc.code, tc.contains...)
							s, tk := state(t)
							if len(s) != len(beforeS) || len(tk) != len(beforeT) {
								t.Fatalf("a refused file changed the automations: %v %v", s, tk)
							}
						})
					}

					// An empty file removes what files made and keeps the
					// API's, once nothing of the API's needs the file's.
					_, err = admin.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: apiTask.GetId()}))
					mustOK(t, err, "delete the API task")
					_, err = upsert(nil)
					mustOK(t, err, "upsert an empty file")
					s, tk = state(t)
					if len(s) != 1 || s[0].GetId() != apiSvc.GetId() || len(tk) != 0 {
						t.Fatalf("after an empty file: services %v, tasks %v; want only api-svc", serviceIDs(s), taskIDs(tk))
					}
				})
			})
		}
	})
}

func TestAutomations_ListPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		f := newAutoFixture(t, ts, protocols[1])
		admin := f.admin
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		other := mustCreateEnvironment(t, admin, f.class).GetId()
		var svcs, editors, tasks, execs []string
		for i := range 7 {
			s := mustCreateService(t, admin, f.env, fmt.Sprintf("svc-%d", i))
			svcs = append(svcs, s.GetId())
			if i%3 == 0 {
				mustOK(t, updateService(admin, &gitpodv1.UpdateServiceRequest{Id: s.GetId(), Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{
					Role: ptr(gitpodv1.ServiceRole_SERVICE_ROLE_EDITOR)}}), "set role")
				editors = append(editors, s.GetId())
			}
			tk := mustCreateTask(t, admin, f.env, fmt.Sprintf("task-%d", i))
			tasks = append(tasks, tk.GetId())
			execs = append(execs, mustStartTask(t, admin, tk.GetId()).GetId())
		}
		otherSvc := mustCreateService(t, admin, other, "svc-0").GetId()
		otherTask := mustCreateTask(t, admin, other, "task-0")
		otherExec := mustStartTask(t, admin, otherTask.GetId()).GetId()
		_, err := admin.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: execs[2]}))
		mustOK(t, err, "stop execution")

		walk := func(t *testing.T, size int32, page func(token string, size int32) ([]string, string)) []string {
			t.Helper()
			var out []string
			token := ""
			for range 100 {
				ids, next := page(token, size)
				if size > 0 && len(ids) > int(size) {
					t.Fatalf("page of %d, want at most %d", len(ids), size)
				}
				out = append(out, ids...)
				if token = next; token == "" {
					return out
				}
			}
			t.Fatal("walk does not end")
			return nil
		}
		pg := func(token string, size int32) *gitpodv1.PaginationRequest {
			return &gitpodv1.PaginationRequest{Token: token, PageSize: size}
		}
		services := func(f *gitpodv1.ListServicesRequest_Filter) func(string, int32) ([]string, string) {
			return func(token string, size int32) ([]string, string) {
				res, err := admin.Autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{Filter: f, Pagination: pg(token, size)}))
				mustOK(t, err, "list services")
				return serviceIDs(res.Msg.GetServices()), res.Msg.GetPagination().GetNextToken()
			}
		}
		taskList := func(f *gitpodv1.ListTasksRequest_Filter) func(string, int32) ([]string, string) {
			return func(token string, size int32) ([]string, string) {
				res, err := admin.Autos.ListTasks(ctx, connect.NewRequest(&gitpodv1.ListTasksRequest{Filter: f, Pagination: pg(token, size)}))
				mustOK(t, err, "list tasks")
				return taskIDs(res.Msg.GetTasks()), res.Msg.GetPagination().GetNextToken()
			}
		}
		executions := func(f *gitpodv1.ListTaskExecutionsRequest_Filter) func(string, int32) ([]string, string) {
			return func(token string, size int32) ([]string, string) {
				res, err := admin.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{Filter: f, Pagination: pg(token, size)}))
				mustOK(t, err, "list executions")
				return executionIDs(res.Msg.GetTaskExecutions()), res.Msg.GetPagination().GetNextToken()
			}
		}
		for _, tc := range []struct {
			name string
			page func(string, int32) ([]string, string)
			want []string
		}{
			{"Services", services(&gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{f.env}}), svcs},
			{"ServicesAll", services(nil), append(slices.Clone(svcs), otherSvc)},
			{"ServicesReferences", services(&gitpodv1.ListServicesRequest_Filter{References: []string{"svc-0", "svc-4"}}), []string{svcs[0], svcs[4], otherSvc}},
			{"ServicesIDs", services(&gitpodv1.ListServicesRequest_Filter{ServiceIds: []string{svcs[5], svcs[1]}}), []string{svcs[1], svcs[5]}},
			{"ServicesRoles", services(&gitpodv1.ListServicesRequest_Filter{Roles: []gitpodv1.ServiceRole{gitpodv1.ServiceRole_SERVICE_ROLE_EDITOR}}), editors},
			{"ServicesCombined", services(&gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{other}, References: []string{"svc-0"}}), []string{otherSvc}},
			{"Tasks", taskList(&gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{f.env}}), tasks},
			{"TasksReferences", taskList(&gitpodv1.ListTasksRequest_Filter{References: []string{"task-6"}}), tasks[6:]},
			{"TasksIDs", taskList(&gitpodv1.ListTasksRequest_Filter{TaskIds: []string{otherTask.GetId(), tasks[0]}}), []string{tasks[0], otherTask.GetId()}},
			{"Executions", executions(&gitpodv1.ListTaskExecutionsRequest_Filter{EnvironmentIds: []string{f.env}}), execs},
			{"ExecutionsTaskIDs", executions(&gitpodv1.ListTaskExecutionsRequest_Filter{TaskIds: []string{tasks[3]}}), execs[3:4]},
			{"ExecutionsTaskReferences", executions(&gitpodv1.ListTaskExecutionsRequest_Filter{TaskReferences: []string{"task-0"}}), []string{execs[0], otherExec}},
			{"ExecutionsPhases", executions(&gitpodv1.ListTaskExecutionsRequest_Filter{Phases: []gitpodv1.TaskExecutionPhase{execPending}}), append(slices.Clone(execs), otherExec)},
			{"ExecutionsPhasesNone", executions(&gitpodv1.ListTaskExecutionsRequest_Filter{Phases: []gitpodv1.TaskExecutionPhase{execRunning, execStopped}}), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, size := range []int32{0, 1, 3, 100} {
					if got := walk(t, size, tc.page); !slices.Equal(got, tc.want) {
						t.Fatalf("pageSize %d: got %v, want %v", size, got, tc.want)
					}
				}
			})
		}
		t.Run("QueryString", func(t *testing.T) {
			for _, tc := range []struct {
				method, key string
				want        []string
			}{
				{"ListServices", "services", svcs},
				{"ListTasks", "tasks", tasks},
				{"ListTaskExecutions", "taskExecutions", execs},
			} {
				t.Run(tc.method, func(t *testing.T) {
					path := "/gitpod.v1.EnvironmentAutomationService/" + tc.method
					body := fmt.Sprintf(`{"filter":{"environmentIds":[%q]},"pagination":{"pageSize":1}}`, f.env)
					var got []string
					token := ""
					for page := 0; ; page++ {
						if page > 10 {
							t.Fatal("walk does not end")
						}
						q := "?pageSize=3"
						if token != "" {
							q += "&token=" + token
						}
						res := raw.post(t, path+q, body)
						res.wantOK(t, nil)
						m := decodeObject(t, "list", res.Body)
						items, _ := m[tc.key].([]any)
						if len(items) > 3 {
							t.Fatalf("page of %d, want at most 3", len(items))
						}
						for _, it := range items {
							got = append(got, it.(map[string]any)["id"].(string))
						}
						next, _ := lookup(m, "pagination.nextToken")
						if token, _ = next.(string); token == "" {
							break
						}
					}
					if !slices.Equal(got, tc.want) {
						t.Fatalf("query pages = %v, want %v", got, tc.want)
					}
					raw.post(t, path+"?pageSize=-1", body).wantError(t, http.StatusBadRequest, "invalid_argument", "pageSize")
					raw.post(t, path+"?token=nope", body).wantError(t, http.StatusBadRequest, "invalid_argument", "pagination.token")
				})
			}
		})
		t.Run("Errors", func(t *testing.T) {
			_, err := admin.Autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{Filter: &gitpodv1.ListServicesRequest_Filter{
				Roles: []gitpodv1.ServiceRole{gitpodv1.ServiceRole_SERVICE_ROLE_EDITOR, 99}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "filter.roles[1]")
			_, err = admin.Autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{Filter: &gitpodv1.ListServicesRequest_Filter{
				EnvironmentIds: []string{"x"}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "filter.environmentIds[0]")
			_, err = admin.Autos.ListTasks(ctx, connect.NewRequest(&gitpodv1.ListTasksRequest{Filter: &gitpodv1.ListTasksRequest_Filter{
				References: []string{"a b"}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "filter.references[0]")
			_, err = admin.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{
				Phases: []gitpodv1.TaskExecutionPhase{77}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "filter.phases[0]")
			_, err = admin.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{Filter: &gitpodv1.ListTaskExecutionsRequest_Filter{
				TaskIds: []string{"x"}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "filter.taskIds[0]")
		})
	})
}

// TestAutomations_Organizations checks that another organization reaches
// none of ours: not found, never listed, unchanged.
func TestAutomations_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			for _, p := range protocols {
				t.Run(p.name, func(t *testing.T) {
					f := newAutoFixture(t, ts, p)
					them := otherOrganization(t, ts, st, p)
					svc := mustCreateService(t, f.admin, f.env, "ours")
					task := mustCreateTask(t, f.admin, f.env, "ours-task")
					x := mustStartTask(t, f.admin, task.GetId())

					calls := []struct {
						name string
						call func() error
					}{
						{"UpsertAutomationsFile", func() error {
							_, err := them.Autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{EnvironmentId: f.env, AutomationsFile: seedFile()}))
							return err
						}},
						{"CreateService", func() error {
							_, err := them.Autos.CreateService(ctx, connect.NewRequest(fullServiceRequest(f.env, "theirs", f.secret)))
							return err
						}},
						{"CreateTask", func() error {
							_, err := them.Autos.CreateTask(ctx, connect.NewRequest(&gitpodv1.CreateTaskRequest{EnvironmentId: f.env,
								Metadata: &gitpodv1.TaskMetadata{Reference: "theirs"}, Spec: &gitpodv1.TaskSpec{Command: "true"}}))
							return err
						}},
						{"GetService", func() error {
							_, err := them.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: svc.GetId()}))
							return err
						}},
						{"UpdateService", func() error {
							return updateService(them, &gitpodv1.UpdateServiceRequest{Id: svc.GetId(), Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{Name: ptr("hijack")}})
						}},
						{"StartService", func() error { return startService(them, svc.GetId()) }},
						{"StopService", func() error { return stopService(them, svc.GetId()) }},
						{"DeleteService", func() error {
							_, err := them.Autos.DeleteService(ctx, connect.NewRequest(&gitpodv1.DeleteServiceRequest{Id: svc.GetId(), Force: true}))
							return err
						}},
						{"GetTask", func() error {
							_, err := them.Autos.GetTask(ctx, connect.NewRequest(&gitpodv1.GetTaskRequest{Id: task.GetId()}))
							return err
						}},
						{"UpdateTask", func() error {
							_, err := them.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: task.GetId(), Spec: &gitpodv1.UpdateTaskRequest_TaskSpec{Command: ptr("rm -rf /")}}))
							return err
						}},
						{"StartTask", func() error {
							_, err := them.Autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: task.GetId()}))
							return err
						}},
						{"DeleteTask", func() error {
							_, err := them.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: task.GetId()}))
							return err
						}},
						{"GetTaskExecution", func() error {
							_, err := them.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
							return err
						}},
						{"StopTaskExecution", func() error {
							_, err := them.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: x.GetId()}))
							return err
						}},
					}
					for _, c := range calls {
						t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), connect.CodeNotFound) })
					}
					t.Run("Lists", func(t *testing.T) {
						if got := listServices(t, them, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{f.env}}); len(got) != 0 {
							t.Fatalf("they list our services %v", serviceIDs(got))
						}
						if got := listServices(t, them, nil); len(got) != 0 {
							t.Fatalf("they list services %v", serviceIDs(got))
						}
						if got := listTasks(t, them, &gitpodv1.ListTasksRequest_Filter{TaskIds: []string{task.GetId()}}); len(got) != 0 {
							t.Fatalf("they list our tasks %v", taskIDs(got))
						}
						res, err := them.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{}))
						mustOK(t, err, "list executions")
						if n := len(res.Msg.GetTaskExecutions()); n != 0 {
							t.Fatalf("they list %d executions", n)
						}
					})
					t.Run("Untouched", func(t *testing.T) {
						diffProto(t, "service", mustGetService(t, f.admin, svc.GetId()), svc)
						diffProto(t, "task", mustGetTask(t, f.admin, task.GetId()), task)
						res, err := f.admin.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
						mustOK(t, err, "get execution")
						diffProto(t, "execution", res.Msg.GetTaskExecution(), x)
					})
				})
			}
		})
	}
}

func TestAutomations_Scopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		f := newAutoFixture(t, ts, protocols[1])
		svc := mustCreateService(t, f.admin, f.env, "scoped")
		task := mustCreateTask(t, f.admin, f.env, "scoped-task")
		x := mustStartTask(t, f.admin, task.GetId())
		_, readKey := mustCreateKey(t, f.admin.client, "auto-read", "environments:read")
		_, writeKey := mustCreateKey(t, f.admin.client, "auto-write", "environments:write")
		_, runnersKey := mustCreateKey(t, f.admin.client, "auto-runners", "runners:read", "runners:write", "secrets:read")
		n := 0
		ref := func() string { n++; return fmt.Sprintf("scope-%d", n) }

		methods := []struct {
			name  string
			write bool
			call  func(c *envClient) error
		}{
			{"ListServices", false, func(c *envClient) error {
				_, err := c.Autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{}))
				return err
			}},
			{"GetService", false, func(c *envClient) error {
				_, err := c.Autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: svc.GetId()}))
				return err
			}},
			{"ListTasks", false, func(c *envClient) error {
				_, err := c.Autos.ListTasks(ctx, connect.NewRequest(&gitpodv1.ListTasksRequest{}))
				return err
			}},
			{"GetTask", false, func(c *envClient) error {
				_, err := c.Autos.GetTask(ctx, connect.NewRequest(&gitpodv1.GetTaskRequest{Id: task.GetId()}))
				return err
			}},
			{"ListTaskExecutions", false, func(c *envClient) error {
				_, err := c.Autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{}))
				return err
			}},
			{"GetTaskExecution", false, func(c *envClient) error {
				_, err := c.Autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: x.GetId()}))
				return err
			}},
			{"UpsertAutomationsFile", true, func(c *envClient) error {
				env := mustCreateEnvironment(t, f.admin, f.class).GetId()
				_, err := c.Autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{EnvironmentId: env, AutomationsFile: seedFile()}))
				return err
			}},
			{"CreateService", true, func(c *envClient) error {
				_, err := c.Autos.CreateService(ctx, connect.NewRequest(fullServiceRequest(f.env, ref(), f.secret)))
				return err
			}},
			{"UpdateService", true, func(c *envClient) error {
				return updateService(c, &gitpodv1.UpdateServiceRequest{Id: svc.GetId(), Metadata: &gitpodv1.UpdateServiceRequest_ServiceMetadata{Description: ptr(ref())}})
			}},
			{"StartService", true, func(c *envClient) error { return startService(c, svc.GetId()) }},
			{"StopService", true, func(c *envClient) error { return stopService(c, svc.GetId()) }},
			{"DeleteService", true, func(c *envClient) error {
				_, err := c.Autos.DeleteService(ctx, connect.NewRequest(&gitpodv1.DeleteServiceRequest{Id: mustCreateService(t, f.admin, f.env, ref()).GetId()}))
				return err
			}},
			{"CreateTask", true, func(c *envClient) error {
				_, err := c.Autos.CreateTask(ctx, connect.NewRequest(&gitpodv1.CreateTaskRequest{EnvironmentId: f.env,
					Metadata: &gitpodv1.TaskMetadata{Reference: ref()}, Spec: &gitpodv1.TaskSpec{Command: "true"}}))
				return err
			}},
			{"UpdateTask", true, func(c *envClient) error {
				_, err := c.Autos.UpdateTask(ctx, connect.NewRequest(&gitpodv1.UpdateTaskRequest{Id: task.GetId(), Metadata: &gitpodv1.UpdateTaskRequest_TaskMetadata{Description: ptr(ref())}}))
				return err
			}},
			{"DeleteTask", true, func(c *envClient) error {
				_, err := c.Autos.DeleteTask(ctx, connect.NewRequest(&gitpodv1.DeleteTaskRequest{Id: mustCreateTask(t, f.admin, f.env, ref()).GetId()}))
				return err
			}},
			{"StartTask", true, func(c *envClient) error {
				_, err := c.Autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: task.GetId()}))
				return err
			}},
			{"StopTaskExecution", true, func(c *envClient) error {
				_, err := c.Autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: x.GetId()}))
				return err
			}},
		}
		for _, pr := range []struct {
			name          string
			authorization string
			read, write   connect.Code // zero: allowed
		}{
			{"NoToken", "", connect.CodeUnauthenticated, connect.CodeUnauthenticated},
			{"ReadKey", bearer(readKey), 0, connect.CodePermissionDenied},
			{"WriteKey", bearer(writeKey), connect.CodePermissionDenied, 0},
			{"OtherScopesKey", bearer(runnersKey), connect.CodePermissionDenied, connect.CodePermissionDenied},
			// The runner of the environment acts only through its own
			// methods (and UpdateService's status).
			{"RunnerToken", "runner", connect.CodePermissionDenied, connect.CodePermissionDenied},
			{"Admin", bearer(testutil.AdminToken), 0, 0},
		} {
			t.Run(pr.name, func(t *testing.T) {
				for _, p := range protocols {
					c := newEnvClient(t, ts.URL, p, pr.authorization)
					if pr.authorization == "runner" {
						c = f.runner
					}
					for _, m := range methods {
						t.Run(p.name+"/"+m.name, func(t *testing.T) {
							want := pr.read
							if m.write {
								want = pr.write
							}
							err := m.call(c)
							if want == 0 {
								mustOK(t, err, m.name)
								return
							}
							wantCode(t, err, want)
						})
					}
				}
			})
		}
	})
}
