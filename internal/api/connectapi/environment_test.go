package connectapi_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// Environments over real HTTP. Without a runner daemon nothing reports on an
// environment, so its status stays CREATING: these tests check what the
// control plane does (specs, desired phases, removal of what no runner
// picked up). Where a test needs a runner's report it writes one into the
// server's database, as the fleet would.

const (
	pathListEnvironmentClasses = gitpodv1connect.EnvironmentServiceListEnvironmentClassesProcedure
	pathListEnvironments       = gitpodv1connect.EnvironmentServiceListEnvironmentsProcedure

	envCreating = gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_CREATING
	envRunning  = gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING
	envStopped  = gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED
	envDeleted  = gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED
)

// envClient adds the environment and automation services to the clients of
// helpers_test.go, for one protocol and one credential.
type envClient struct {
	*client
	Envs  gitpodv1connect.EnvironmentServiceClient
	Autos gitpodv1connect.EnvironmentAutomationServiceClient
}

func newEnvClient(tb testing.TB, baseURL string, p protocol, authorization string) *envClient {
	tb.Helper()
	hc := newHTTPClient(tb, p.h2c)
	opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(authorization))}, p.opts...)
	return &envClient{
		client: newClient(tb, baseURL, p, authorization),
		Envs:   gitpodv1connect.NewEnvironmentServiceClient(hc, baseURL, opts...),
		Autos:  gitpodv1connect.NewEnvironmentAutomationServiceClient(hc, baseURL, opts...),
	}
}

// forEachEnvProtocol runs fn with admin clients of every protocol.
func forEachEnvProtocol(t *testing.T, ts *testutil.TestServer, fn func(t *testing.T, p protocol, admin *envClient)) {
	t.Helper()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			fn(t, p, newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken)))
		})
	}
}

// mustClassOf returns the ID of the default environment class of a runner.
func mustClassOf(tb testing.TB, c *envClient, runnerID string) string {
	tb.Helper()
	res, err := c.Envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{
		Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerID}},
	}))
	mustOK(tb, err, "list the classes of runner "+runnerID)
	if n := len(res.Msg.GetEnvironmentClasses()); n != 1 {
		tb.Fatalf("runner %s has %d classes, want 1", runnerID, n)
	}
	return res.Msg.GetEnvironmentClasses()[0].GetId()
}

// mustCreateEnvironment creates an environment with an empty workspace on
// class.
func mustCreateEnvironment(tb testing.TB, c *envClient, class string) *gitpodv1.Environment {
	tb.Helper()
	res, err := c.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{
		Spec: &gitpodv1.EnvironmentSpec{Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}},
	}))
	mustOK(tb, err, "create environment")
	return res.Msg.GetEnvironment()
}

func mustGetEnvironment(tb testing.TB, c *envClient, id string) *gitpodv1.Environment {
	tb.Helper()
	res, err := c.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
	mustOK(tb, err, "get environment "+id)
	return res.Msg.GetEnvironment()
}

func envIDs(es []*gitpodv1.Environment) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.GetId()
	}
	return out
}

// gitSpec is a spec with one git initializer.
func gitSpec(class, remote string) *gitpodv1.EnvironmentSpec {
	return &gitpodv1.EnvironmentSpec{
		Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
		Content: &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
			Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{
				Git: &gitpodv1.GitInitializer{RemoteUri: remote},
			}}},
		}},
	}
}

func TestEnvironments_ListClasses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		var runnerIDs []string
		for range 5 {
			runnerIDs = append(runnerIDs, mustCreateLinuxRunner(t, admin.client).GetRunnerId())
		}
		gcp, _ := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("gcp"), Provider: provGCP})
		runnerIDs = append(runnerIDs, gcp.GetRunnerId())

		list := func(t *testing.T, f *gitpodv1.ListEnvironmentClassesRequest_Filter, token string, size int32) *gitpodv1.ListEnvironmentClassesResponse {
			t.Helper()
			res, err := admin.Envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{
				Filter: f, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: size},
			}))
			mustOK(t, err, "list classes")
			return res.Msg
		}

		t.Run("EveryRunnerHasOne", func(t *testing.T) {
			res := list(t, nil, "", 100)
			byRunner := map[string]*gitpodv1.EnvironmentClass{}
			for _, c := range res.GetEnvironmentClasses() {
				if byRunner[c.GetRunnerId()] != nil {
					t.Fatalf("runner %s has two classes", c.GetRunnerId())
				}
				byRunner[c.GetRunnerId()] = c
			}
			for _, id := range runnerIDs {
				c := byRunner[id]
				if c == nil {
					t.Fatalf("runner %s has no class", id)
				}
				if err := uuid.Validate(c.GetId()); err != nil || c.GetId() == id {
					t.Fatalf("class id %q of runner %s: want a UUID of its own (%v)", c.GetId(), id, err)
				}
				if !c.GetEnabled() || c.GetDisplayName() == "" || c.GetDescription() == "" {
					t.Fatalf("class %v: want enabled, with a display name and a description", c)
				}
			}
			if got, want := res.GetPagination().GetNextToken(), ""; got != want {
				t.Fatalf("nextToken = %q, want none", got)
			}
		})
		t.Run("FilterRunnerIDs", func(t *testing.T) {
			res := list(t, &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{runnerIDs[3], runnerIDs[1], uuid.NewString()}}, "", 0)
			var got []string
			for _, c := range res.GetEnvironmentClasses() {
				got = append(got, c.GetRunnerId())
			}
			if want := []string{runnerIDs[1], runnerIDs[3]}; !slices.Equal(got, want) {
				t.Fatalf("classes of runners %v, want %v in the runners' order", got, want)
			}
		})
		t.Run("FilterProviderAndEnabled", func(t *testing.T) {
			res := list(t, &gitpodv1.ListEnvironmentClassesRequest_Filter{
				RunnerProviders: []gitpodv1.RunnerProvider{provGCP}, Enabled: ptr(true),
			}, "", 0)
			if n := len(res.GetEnvironmentClasses()); n != 1 || res.GetEnvironmentClasses()[0].GetRunnerId() != gcp.GetRunnerId() {
				t.Fatalf("GCP classes = %v, want the one of %s", res.GetEnvironmentClasses(), gcp.GetRunnerId())
			}
			// Runners that never connected take no environment yet.
			if res := list(t, &gitpodv1.ListEnvironmentClassesRequest_Filter{CanCreateEnvironments: ptr(true)}, "", 0); len(res.GetEnvironmentClasses()) != 0 {
				t.Fatalf("canCreateEnvironments classes = %v, want none: no runner is connected", res.GetEnvironmentClasses())
			}
			if res := list(t, &gitpodv1.ListEnvironmentClassesRequest_Filter{Enabled: ptr(false)}, "", 0); len(res.GetEnvironmentClasses()) != 0 {
				t.Fatalf("disabled classes = %v, want none", res.GetEnvironmentClasses())
			}
		})
		t.Run("Paging", func(t *testing.T) {
			var walked []string
			token := ""
			for page := 0; ; page++ {
				if page > len(runnerIDs) {
					t.Fatal("walk does not end")
				}
				res := list(t, nil, token, 2)
				if n := len(res.GetEnvironmentClasses()); n > 2 {
					t.Fatalf("page of %d classes, want at most 2", n)
				}
				for _, c := range res.GetEnvironmentClasses() {
					walked = append(walked, c.GetRunnerId())
				}
				if token = res.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			if !slices.Equal(walked, runnerIDs) {
				t.Fatalf("walked classes of %v, want %v", walked, runnerIDs)
			}
		})
		t.Run("QueryString", func(t *testing.T) {
			var p1, p2 struct {
				EnvironmentClasses []struct{ RunnerID string } `json:"environmentClasses"`
				Pagination         struct{ NextToken string }  `json:"pagination"`
			}
			raw.post(t, pathListEnvironmentClasses+"?pageSize=4", `{"pagination":{"pageSize":1}}`).wantOK(t, &p1)
			raw.post(t, pathListEnvironmentClasses+"?pageSize=4&token="+p1.Pagination.NextToken, `{}`).wantOK(t, &p2)
			var got []string
			for _, c := range append(p1.EnvironmentClasses, p2.EnvironmentClasses...) {
				got = append(got, c.RunnerID)
			}
			if len(p1.EnvironmentClasses) != 4 || !slices.Equal(got, runnerIDs) || p2.Pagination.NextToken != "" {
				t.Fatalf("pages of %d and %d classes of %v (next %q), want 4 and 2 of %v", len(p1.EnvironmentClasses),
					len(p2.EnvironmentClasses), got, p2.Pagination.NextToken, runnerIDs)
			}
			raw.post(t, pathListEnvironmentClasses+"?pageSize=x", `{}`).wantError(t, 400, "invalid_argument", "pageSize")
		})
		t.Run("Errors", func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				f     *gitpodv1.ListEnvironmentClassesRequest_Filter
				field string
			}{
				{"ErrRunnerID", &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{"runner-1"}}, "filter.runnerIds[0]"},
				{"ErrUnknownKind", &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerKinds: []gitpodv1.RunnerKind{kindLocal, 42}}, "filter.runnerKinds[1]"},
				{"ErrUnknownProvider", &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerProviders: []gitpodv1.RunnerProvider{99}}, "filter.runnerProviders[0]"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := admin.Envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{Filter: tc.f}))
					wantCode(t, err, connect.CodeInvalidArgument, tc.field)
				})
			}
		})
	})
}

func TestEnvironments_Create(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachEnvProtocol(t, ts, func(t *testing.T, p protocol, admin *envClient) {
			me := whoami(t, admin.client)
			runner := mustCreateLinuxRunner(t, admin.client)
			class := mustClassOf(t, admin, runner.GetRunnerId())

			t.Run("EmptyWorkspace", func(t *testing.T) {
				before := time.Now().Add(-time.Second)
				e := mustCreateEnvironment(t, admin, class)
				if err := uuid.Validate(e.GetId()); err != nil {
					t.Fatalf("id %q: %v", e.GetId(), err)
				}
				md := e.GetMetadata()
				if md.GetOrganizationId() != me.GetOrganizationId() || md.GetRunnerId() != runner.GetRunnerId() {
					t.Fatalf("metadata %v: want organization %s and runner %s", md, me.GetOrganizationId(), runner.GetRunnerId())
				}
				diffProto(t, "creator", md.GetCreator(), me.GetSubject())
				if got, want := md.GetName(), "environment-"+e.GetId()[:8]; got != want {
					t.Fatalf("name = %q, want %q", got, want)
				}
				if md.GetOriginalContextUrl() != "" || md.GetProjectId() != "" {
					t.Fatalf("originalContextUrl %q, projectId %q: want both empty", md.GetOriginalContextUrl(), md.GetProjectId())
				}
				if c := md.GetCreatedAt().AsTime(); c.Before(before) || !proto.Equal(md.GetCreatedAt(), md.GetLastStartedAt()) {
					t.Fatalf("createdAt %v, lastStartedAt %v: want now and equal", md.GetCreatedAt(), md.GetLastStartedAt())
				}
				want := &gitpodv1.EnvironmentSpec{
					SpecVersion:  1,
					DesiredPhase: envRunning,
					Machine:      &gitpodv1.EnvironmentSpec_Machine{Class: class},
					Content:      &gitpodv1.EnvironmentSpec_Content{},
					AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{
						AutomationsFilePath: environments.DefaultAutomationsFilePath,
					},
				}
				diffProto(t, "spec", e.GetSpec(), want)
				diffProto(t, "status", e.GetStatus(), &gitpodv1.EnvironmentStatus{Phase: envCreating})
				diffProto(t, "GetEnvironment", mustGetEnvironment(t, admin, e.GetId()), e)
			})
			t.Run("GitInitializer", func(t *testing.T) {
				remote := "file://" + filepath.ToSlash(t.TempDir()) + "/hello-world.git"
				res, err := admin.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{Spec: gitSpec(class, remote)}))
				mustOK(t, err, "create environment")
				e := res.Msg.GetEnvironment()
				if got, want := e.GetMetadata().GetName(), "hello-world"; got != want {
					t.Fatalf("name = %q, want the repository's %q", got, want)
				}
				if got := e.GetMetadata().GetOriginalContextUrl(); got != remote {
					t.Fatalf("originalContextUrl = %q, want %q", got, remote)
				}
				wantGit := &gitpodv1.GitInitializer{
					RemoteUri: remote, TargetMode: gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_HEAD, CheckoutLocation: "hello-world",
				}
				specs := e.GetSpec().GetContent().GetInitializer().GetSpecs()
				if len(specs) != 1 {
					t.Fatalf("initializer specs = %v, want one", specs)
				}
				diffProto(t, "git initializer", specs[0].GetGit(), wantGit)
				diffProto(t, "GetEnvironment", mustGetEnvironment(t, admin, e.GetId()), e)
			})
			t.Run("EveryField", func(t *testing.T) {
				req := &gitpodv1.CreateEnvironmentRequest{
					Name: ptr("every field " + p.name),
					Spec: &gitpodv1.EnvironmentSpec{
						SpecVersion:  42, // the environment's own: ignored
						DesiredPhase: envStopped,
						Machine:      &gitpodv1.EnvironmentSpec_Machine{Session: "m-1", Class: class},
						Content: &gitpodv1.EnvironmentSpec_Content{
							Session: "c-1", GitUsername: "Jane Doe", GitEmail: "jane@example.com",
							Initializer: &gitpodv1.EnvironmentInitializer{Specs: []*gitpodv1.EnvironmentInitializer_Spec{
								{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{Git: &gitpodv1.GitInitializer{
									RemoteUri: "file:///srv/git/app.git", UpstreamRemoteUri: "https://example.com/upstream/app.git",
									TargetMode: gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_BRANCH, CloneTarget: "feature/x",
									CheckoutLocation: "src/app",
								}}},
								{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{Git: &gitpodv1.GitInitializer{
									RemoteUri: "https://example.com/lib.git", TargetMode: gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_COMMIT,
									CloneTarget: "0123abcd",
								}}},
							}},
						},
						AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{
							Session: "a-1", AutomationsFilePath: ".gitpod/automations.yaml",
							TriggerFilter: []*gitpodv1.AutomationTrigger{
								{Trigger: &gitpodv1.AutomationTrigger_PostEnvironmentStart{PostEnvironmentStart: true}},
								{Trigger: &gitpodv1.AutomationTrigger_Manual{Manual: true}},
							},
						},
					},
				}
				res, err := admin.Envs.CreateEnvironment(ctx, connect.NewRequest(req))
				mustOK(t, err, "create environment")
				e := res.Msg.GetEnvironment()
				want := proto.Clone(req.GetSpec()).(*gitpodv1.EnvironmentSpec)
				want.SpecVersion = 1
				want.Content.Initializer.Specs[1].GetGit().CheckoutLocation = "lib"
				diffProto(t, "spec", e.GetSpec(), want)
				if got := e.GetMetadata().GetName(); got != req.GetName() {
					t.Fatalf("name = %q, want %q", got, req.GetName())
				}
				if e.GetMetadata().GetLastStartedAt() != nil {
					t.Fatalf("lastStartedAt = %v, want none for an environment created stopped", e.GetMetadata().GetLastStartedAt())
				}
				diffProto(t, "GetEnvironment", mustGetEnvironment(t, admin, e.GetId()), e)
			})

			withGit := func(g *gitpodv1.GitInitializer) *gitpodv1.EnvironmentSpec {
				s := gitSpec(class, "")
				s.Content.Initializer.Specs[0].Spec = &gitpodv1.EnvironmentInitializer_Spec_Git{Git: g}
				return s
			}
			for _, tc := range []struct {
				name  string
				req   *gitpodv1.CreateEnvironmentRequest
				code  connect.Code
				field string
			}{
				{"ErrNoClass", &gitpodv1.CreateEnvironmentRequest{}, connect.CodeInvalidArgument, "spec.machine.class"},
				{"ErrUnknownClass", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: uuid.NewString()}}}, connect.CodeInvalidArgument, "spec.machine.class"},
				{"ErrRunnerIDAsClass", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: runner.GetRunnerId()}}}, connect.CodeInvalidArgument, "spec.machine.class"},
				{"ErrUnknownDesiredPhase", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{DesiredPhase: 99,
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}, connect.CodeInvalidArgument, "spec.desiredPhase"},
				{"ErrDesiredPhaseDeleted", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{DesiredPhase: envDeleted,
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}, connect.CodeInvalidArgument, "spec.desiredPhase"},
				{"ErrUnknownTargetMode", &gitpodv1.CreateEnvironmentRequest{Spec: withGit(&gitpodv1.GitInitializer{
					RemoteUri: "file:///srv/a.git", TargetMode: 77})}, connect.CodeInvalidArgument, "spec.content.initializer.specs[0].git.targetMode"},
				{"ErrNoRemote", &gitpodv1.CreateEnvironmentRequest{Spec: withGit(&gitpodv1.GitInitializer{})},
					connect.CodeInvalidArgument, "spec.content.initializer.specs[0].git.remoteUri"},
				{"ErrRemoteOption", &gitpodv1.CreateEnvironmentRequest{Spec: withGit(&gitpodv1.GitInitializer{RemoteUri: "--upload-pack=touch /tmp/x"})},
					connect.CodeInvalidArgument, "spec.content.initializer.specs[0].git.remoteUri"},
				{"ErrCheckoutOutside", &gitpodv1.CreateEnvironmentRequest{Spec: withGit(&gitpodv1.GitInitializer{
					RemoteUri: "file:///srv/a.git", CheckoutLocation: "../a"})}, connect.CodeInvalidArgument, "spec.content.initializer.specs[0].git.checkoutLocation"},
				{"ErrContextURL", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
					Content: &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{Specs: []*gitpodv1.EnvironmentInitializer_Spec{
						{Spec: &gitpodv1.EnvironmentInitializer_Spec_ContextUrl{ContextUrl: &gitpodv1.ContextURLInitializer{Url: "https://github.com/a"}}},
					}}}}}, connect.CodeInvalidArgument, "spec.content.initializer.specs[0].contextUrl.url"},
				{"ErrEmptyInitializer", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
					Content: &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{Specs: []*gitpodv1.EnvironmentInitializer_Spec{{}}}}}},
					connect.CodeInvalidArgument, "spec.content.initializer.specs[0]"},
				{"ErrTriggerFalse", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
					AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{TriggerFilter: []*gitpodv1.AutomationTrigger{
						{Trigger: &gitpodv1.AutomationTrigger_Prebuild{Prebuild: false}}}}}},
					connect.CodeInvalidArgument, "spec.automationsFile.triggerFilter[0].prebuild"},
				{"ErrTriggerUnset", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine:         &gitpodv1.EnvironmentSpec_Machine{Class: class},
					AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{TriggerFilter: []*gitpodv1.AutomationTrigger{{}}}}},
					connect.CodeInvalidArgument, "spec.automationsFile.triggerFilter[0]"},
				{"ErrAbsoluteAutomationsFile", &gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine:         &gitpodv1.EnvironmentSpec_Machine{Class: class},
					AutomationsFile: &gitpodv1.EnvironmentSpec_AutomationsFile{AutomationsFilePath: "/etc/passwd"}}},
					connect.CodeInvalidArgument, "spec.automationsFile.automationsFilePath"},
				{"ErrBlankName", &gitpodv1.CreateEnvironmentRequest{Name: ptr("  "), Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}, connect.CodeInvalidArgument, "name"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := admin.Envs.CreateEnvironment(ctx, connect.NewRequest(tc.req))
					wantCode(t, err, tc.code, tc.field)
				})
			}
			t.Run("ErrDrainingRunner", func(t *testing.T) {
				r := mustCreateLinuxRunner(t, admin.client)
				c := mustClassOf(t, admin, r.GetRunnerId())
				_, err := admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: r.GetRunnerId(),
					Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: ptr(phaseInactive)}}))
				mustOK(t, err, "drain runner")
				_, err = admin.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: c}}}))
				wantCode(t, err, connect.CodeFailedPrecondition, "draining")
			})
		})
	})
}

// reportEnvironment writes a runner's status report on an environment into
// the server's database, as the fleet would on the runner's behalf.
func reportEnvironment(t *testing.T, st store.Store, orgID, id string, phase environments.Phase) {
	t.Helper()
	_, err := st.UpdateEnvironment(context.Background(), orgID, id, func(e *environments.Environment) error {
		e.Status.StatusVersion++
		e.Status.Phase = phase
		return nil
	})
	mustOK(t, err, "report environment "+id)
}

func TestEnvironments_Lifecycle(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			forEachEnvProtocol(t, ts, func(t *testing.T, p protocol, admin *envClient) {
				orgID := whoami(t, admin.client).GetOrganizationId()
				class := mustClassOf(t, admin, mustCreateLinuxRunner(t, admin.client).GetRunnerId())
				start := func(id string) error {
					_, err := admin.Envs.StartEnvironment(ctx, connect.NewRequest(&gitpodv1.StartEnvironmentRequest{EnvironmentId: id}))
					return err
				}
				stop := func(id string) error {
					_, err := admin.Envs.StopEnvironment(ctx, connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: id}))
					return err
				}
				del := func(id string, force bool) error {
					_, err := admin.Envs.DeleteEnvironment(ctx, connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id, Force: force}))
					return err
				}
				wantDesired := func(t *testing.T, id string, phase gitpodv1.EnvironmentPhase, version uint64) *gitpodv1.Environment {
					t.Helper()
					e := mustGetEnvironment(t, admin, id)
					if got := e.GetSpec().GetDesiredPhase(); got != phase {
						t.Fatalf("desiredPhase = %v, want %v", got, phase)
					}
					if got := e.GetSpec().GetSpecVersion(); got != version {
						t.Fatalf("specVersion = %d, want %d", got, version)
					}
					return e
				}

				t.Run("StopStartNeverPickedUp", func(t *testing.T) {
					e := mustCreateEnvironment(t, admin, class)
					mustOK(t, stop(e.GetId()), "stop")
					wantDesired(t, e.GetId(), envStopped, 2)
					mustOK(t, stop(e.GetId()), "stop again")
					got := wantDesired(t, e.GetId(), envStopped, 2)
					// Without a runner nothing reports: the phase stays.
					if phase := got.GetStatus().GetPhase(); phase != envCreating {
						t.Fatalf("status.phase = %v, want %v: only a runner moves it", phase, envCreating)
					}
					time.Sleep(2 * time.Millisecond)
					mustOK(t, start(e.GetId()), "start")
					got = wantDesired(t, e.GetId(), envRunning, 3)
					if !got.GetMetadata().GetLastStartedAt().AsTime().After(e.GetMetadata().GetLastStartedAt().AsTime()) {
						t.Fatalf("lastStartedAt %v not after the creation's %v", got.GetMetadata().GetLastStartedAt(), e.GetMetadata().GetLastStartedAt())
					}
					mustOK(t, start(e.GetId()), "start again")
					wantDesired(t, e.GetId(), envRunning, 3)
				})
				t.Run("DeleteNeverPickedUp", func(t *testing.T) {
					// Nothing is on a runner yet: the environment goes at once.
					e := mustCreateEnvironment(t, admin, class)
					mustOK(t, del(e.GetId(), false), "delete")
					_, err := admin.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: e.GetId()}))
					wantCode(t, err, connect.CodeNotFound, e.GetId())
					wantCode(t, del(e.GetId(), false), connect.CodeNotFound)
					wantCode(t, start(e.GetId()), connect.CodeNotFound)
				})
				t.Run("DeletePickedUp", func(t *testing.T) {
					e := mustCreateEnvironment(t, admin, class)
					reportEnvironment(t, st, orgID, e.GetId(), environments.PhaseRunning)
					mustOK(t, del(e.GetId(), false), "delete")
					got := wantDesired(t, e.GetId(), envDeleted, 2)
					if phase := got.GetStatus().GetPhase(); phase != envRunning {
						t.Fatalf("status.phase = %v, want %v until the runner reports", phase, envRunning)
					}
					mustOK(t, del(e.GetId(), false), "delete again")
					wantDesired(t, e.GetId(), envDeleted, 2)
					wantCode(t, start(e.GetId()), connect.CodeFailedPrecondition, "being deleted")
					wantCode(t, stop(e.GetId()), connect.CodeFailedPrecondition, "being deleted")
					mustOK(t, del(e.GetId(), true), "force delete")
					_, err := admin.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: e.GetId()}))
					wantCode(t, err, connect.CodeNotFound)
				})
				t.Run("ForceDelete", func(t *testing.T) {
					e := mustCreateEnvironment(t, admin, class)
					reportEnvironment(t, st, orgID, e.GetId(), environments.PhaseRunning)
					mustOK(t, del(e.GetId(), true), "force delete")
					_, err := admin.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: e.GetId()}))
					wantCode(t, err, connect.CodeNotFound)
				})
				t.Run("Errors", func(t *testing.T) {
					for _, id := range []string{"", "not-a-uuid"} {
						wantCode(t, start(id), connect.CodeInvalidArgument, "environmentId")
						wantCode(t, stop(id), connect.CodeInvalidArgument, "environmentId")
						wantCode(t, del(id, false), connect.CodeInvalidArgument, "environmentId")
						_, err := admin.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
						wantCode(t, err, connect.CodeInvalidArgument, "environmentId")
					}
					missing := uuid.NewString()
					wantCode(t, start(missing), connect.CodeNotFound, missing)
					wantCode(t, stop(missing), connect.CodeNotFound, missing)
					wantCode(t, del(missing, true), connect.CodeNotFound, missing)
				})
			})
		})
	}
}

func TestEnvironments_List(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			admin := newEnvClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
			orgID := whoami(t, admin.client).GetOrganizationId()
			_, secret := mustCreateKey(t, admin.client, "env-lister", "environments:read", "environments:write")
			other := newEnvClient(t, ts.URL, protocols[1], bearer(secret))
			otherID := whoami(t, other.client).GetSubject().GetId()

			r1 := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
			r2 := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
			c1, c2 := mustClassOf(t, admin, r1), mustClassOf(t, admin, r2)
			// Created oldest first; lists are newest first.
			var on1, on2, byOther []string
			for i := range 5 {
				on1 = append([]string{mustCreateEnvironment(t, admin, c1).GetId()}, on1...)
				if i < 2 {
					on2 = append([]string{mustCreateEnvironment(t, admin, c2).GetId()}, on2...)
				}
			}
			byOther = append(byOther, mustCreateEnvironment(t, other, c2).GetId())
			on2 = append(byOther, on2...)
			reportEnvironment(t, st, orgID, on1[0], environments.PhaseStopped)

			list := func(t *testing.T, f *gitpodv1.ListEnvironmentsRequest_Filter, size int32) []string {
				t.Helper()
				var out []string
				token := ""
				for range 100 {
					res, err := admin.Envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{
						Filter: f, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: size},
					}))
					mustOK(t, err, "list environments")
					if n := len(res.Msg.GetEnvironments()); size > 0 && n > int(size) {
						t.Fatalf("page of %d, want at most %d", n, size)
					}
					out = append(out, envIDs(res.Msg.GetEnvironments())...)
					if token = res.Msg.GetPagination().GetNextToken(); token == "" {
						return out
					}
				}
				t.Fatal("walk does not end")
				return nil
			}
			// Every environment but the one reported STOPPED, newest first
			// across both runners.
			var creating []string
			for _, id := range list(t, &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r1, r2}}, 100) {
				if id != on1[0] {
					creating = append(creating, id)
				}
			}
			if len(creating) != 7 {
				t.Fatalf("%d environments CREATING, want 7", len(creating))
			}
			for _, tc := range []struct {
				name string
				f    *gitpodv1.ListEnvironmentsRequest_Filter
				want []string
			}{
				{"RunnerIDs", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r1}}, on1},
				{"CreatorIDs", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r2}, CreatorIds: []string{otherID}}, byOther},
				{"StatusPhases", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r1}, StatusPhases: []gitpodv1.EnvironmentPhase{envStopped}}, on1[:1]},
				{"StatusPhasesCreating", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r1, r2},
					StatusPhases: []gitpodv1.EnvironmentPhase{envCreating}}, creating},
				{"RunnerKinds", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{r2}, RunnerKinds: []gitpodv1.RunnerKind{kindLocal}}, on2},
				{"RunnerKindsNone", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerKinds: []gitpodv1.RunnerKind{kindRemote}}, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					for _, size := range []int32{0, 1, 2, 100} {
						if got := list(t, tc.f, size); !slices.Equal(got, tc.want) {
							t.Fatalf("pageSize %d: got %v, want %v", size, got, tc.want)
						}
					}
				})
			}
			t.Run("NewestFirst", func(t *testing.T) {
				all := list(t, nil, 0)
				if len(all) != 8 || all[0] != byOther[0] {
					t.Fatalf("got %v, want 8 environments starting with the newest %s", all, byOther[0])
				}
			})
			t.Run("QueryString", func(t *testing.T) {
				type page struct {
					Environments []struct{ ID string }      `json:"environments"`
					Pagination   struct{ NextToken string } `json:"pagination"`
				}
				body := fmt.Sprintf(`{"filter":{"runnerIds":[%q]},"pagination":{"pageSize":1}}`, r1)
				var p1, p2 page
				raw.post(t, pathListEnvironments+"?pageSize=3", body).wantOK(t, &p1)
				raw.post(t, pathListEnvironments+"?pageSize=3&token="+p1.Pagination.NextToken, body).wantOK(t, &p2)
				var got []string
				for _, e := range append(p1.Environments, p2.Environments...) {
					got = append(got, e.ID)
				}
				if !slices.Equal(got, on1) || p2.Pagination.NextToken != "" {
					t.Fatalf("query pages = %v (next %q), want %v", got, p2.Pagination.NextToken, on1)
				}
				raw.post(t, pathListEnvironments+"?token=garbage", body).wantError(t, 400, "invalid_argument", "pagination.token")
			})
			t.Run("Errors", func(t *testing.T) {
				for _, tc := range []struct {
					name  string
					f     *gitpodv1.ListEnvironmentsRequest_Filter
					field string
				}{
					{"ErrUnknownPhase", &gitpodv1.ListEnvironmentsRequest_Filter{StatusPhases: []gitpodv1.EnvironmentPhase{envRunning, 33}}, "filter.statusPhases[1]"},
					{"ErrUnspecifiedPhase", &gitpodv1.ListEnvironmentsRequest_Filter{StatusPhases: []gitpodv1.EnvironmentPhase{0}}, "filter.statusPhases[0]"},
					{"ErrUnknownKind", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerKinds: []gitpodv1.RunnerKind{9}}, "filter.runnerKinds[0]"},
					{"ErrRunnerID", &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: []string{"x"}}, "filter.runnerIds[0]"},
					{"ErrCreatorID", &gitpodv1.ListEnvironmentsRequest_Filter{CreatorIds: []string{"x"}}, "filter.creatorIds[0]"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						_, err := admin.Envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{Filter: tc.f}))
						wantCode(t, err, connect.CodeInvalidArgument, tc.field)
					})
				}
			})
		})
	}
}

// TestEnvironments_Organizations checks that another organization's
// environments and classes are not found and never listed.
func TestEnvironments_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			them := otherOrganization(t, ts, st, protocols[0])
			admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
			ourRunner := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
			ourClass := mustClassOf(t, admin, ourRunner)
			ours := mustCreateEnvironment(t, admin, ourClass)
			theirClass := mustClassOf(t, them, mustCreateLinuxRunner(t, them.client).GetRunnerId())
			theirs := mustCreateEnvironment(t, them, theirClass)

			id := ours.GetId()
			_, err := them.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
			wantCode(t, err, connect.CodeNotFound)
			_, err = them.Envs.StartEnvironment(ctx, connect.NewRequest(&gitpodv1.StartEnvironmentRequest{EnvironmentId: id}))
			wantCode(t, err, connect.CodeNotFound)
			_, err = them.Envs.StopEnvironment(ctx, connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: id}))
			wantCode(t, err, connect.CodeNotFound)
			for _, force := range []bool{false, true} {
				_, err = them.Envs.DeleteEnvironment(ctx, connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id, Force: force}))
				wantCode(t, err, connect.CodeNotFound)
			}
			// Our class is no class of theirs.
			_, err = them.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
				Machine: &gitpodv1.EnvironmentSpec_Machine{Class: ourClass}}}))
			wantCode(t, err, connect.CodeInvalidArgument, "spec.machine.class")
			res, err := them.Envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{
				Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{ourRunner}}}))
			mustOK(t, err, "list classes")
			if n := len(res.Msg.GetEnvironmentClasses()); n != 0 {
				t.Fatalf("they list %d classes of our runner, want none", n)
			}
			all, err := them.Envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{}))
			mustOK(t, err, "list environments")
			if got := envIDs(all.Msg.GetEnvironments()); !slices.Equal(got, []string{theirs.GetId()}) {
				t.Fatalf("they list %v, want only their %s", got, theirs.GetId())
			}
			diffProto(t, "our environment afterwards", mustGetEnvironment(t, admin, id), ours)
		})
	}
}

// otherOrganization stores a second organization with an admin key and
// returns clients with that key.
func otherOrganization(t *testing.T, ts *testutil.TestServer, st store.Store, p protocol) *envClient {
	t.Helper()
	org := &identity.Organization{ID: uuid.NewString(), Name: "other-" + uuid.NewString()[:8], CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	mustOK(t, st.CreateOrganization(context.Background(), org), "store organization")
	_, secret := mustCreateTokenInStore(t, st, org.ID, nil, identity.ScopeAdmin)
	return newEnvClient(t, ts.URL, p, bearer(secret))
}

func TestEnvironments_Scopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		runner, x := mustCreateRunner(t, admin.client, &gitpodv1.CreateRunnerRequest{Name: name("scopes"), Provider: provLinux})
		class := mustClassOf(t, admin, runner.GetRunnerId())
		target := mustCreateEnvironment(t, admin, class).GetId()
		_, readKey := mustCreateKey(t, admin.client, "env-read", "environments:read")
		_, writeKey := mustCreateKey(t, admin.client, "env-write", "environments:write")
		_, runnersKey := mustCreateKey(t, admin.client, "runners-only", "runners:read", "runners:write")
		runnerToken := mustExchange(t, admin.client, x)

		methods := []struct {
			name  string
			write bool
			call  func(c *envClient) error
		}{
			{"ListEnvironmentClasses", false, func(c *envClient) error {
				_, err := c.Envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{}))
				return err
			}},
			{"ListEnvironments", false, func(c *envClient) error {
				_, err := c.Envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{}))
				return err
			}},
			{"GetEnvironment", false, func(c *envClient) error {
				_, err := c.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: target}))
				return err
			}},
			{"CreateEnvironment", true, func(c *envClient) error {
				_, err := c.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
					Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class}}}))
				return err
			}},
			{"StopEnvironment", true, func(c *envClient) error {
				_, err := c.Envs.StopEnvironment(ctx, connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: target}))
				return err
			}},
			{"StartEnvironment", true, func(c *envClient) error {
				_, err := c.Envs.StartEnvironment(ctx, connect.NewRequest(&gitpodv1.StartEnvironmentRequest{EnvironmentId: target}))
				return err
			}},
			{"DeleteEnvironment", true, func(c *envClient) error {
				_, err := c.Envs.DeleteEnvironment(ctx, connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{
					EnvironmentId: mustCreateEnvironment(t, admin, class).GetId()}))
				return err
			}},
			{"MarkEnvironmentActive", true, func(c *envClient) error {
				_, err := c.Envs.MarkEnvironmentActive(ctx, connect.NewRequest(&gitpodv1.MarkEnvironmentActiveRequest{
					EnvironmentId: target, ActivitySignal: &gitpodv1.EnvironmentActivitySignal{Source: "scopes"}}))
				return err
			}},
			{"UpdateEnvironment", true, func(c *envClient) error {
				_, err := c.Envs.UpdateEnvironment(ctx, connect.NewRequest(&gitpodv1.UpdateEnvironmentRequest{EnvironmentId: target,
					Metadata: &gitpodv1.UpdateEnvironmentRequest_Metadata{Name: ptr(name("scoped"))}}))
				return err
			}},
			{"CreateEnvironmentLogsToken", false, func(c *envClient) error {
				_, err := c.Envs.CreateEnvironmentLogsToken(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: target}))
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
			{"RunnersKey", bearer(runnersKey), connect.CodePermissionDenied, connect.CodePermissionDenied},
			{"RunnerToken", bearer(runnerToken), connect.CodePermissionDenied, connect.CodePermissionDenied},
			{"Admin", bearer(testutil.AdminToken), 0, 0},
		} {
			t.Run(pr.name, func(t *testing.T) {
				for _, p := range protocols {
					c := newEnvClient(t, ts.URL, p, pr.authorization)
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
