package connectapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/testutil"
)

var ctx = context.Background()

// Enum shorthands.
const (
	kindUnspecified = gitpodv1.RunnerKind_RUNNER_KIND_UNSPECIFIED
	kindLocal       = gitpodv1.RunnerKind_RUNNER_KIND_LOCAL
	kindRemote      = gitpodv1.RunnerKind_RUNNER_KIND_REMOTE
	kindLocalConfig = gitpodv1.RunnerKind_RUNNER_KIND_LOCAL_CONFIGURATION

	provUnspecified = gitpodv1.RunnerProvider_RUNNER_PROVIDER_UNSPECIFIED
	provAWS         = gitpodv1.RunnerProvider_RUNNER_PROVIDER_AWS_EC2
	provLinux       = gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST
	provMac         = gitpodv1.RunnerProvider_RUNNER_PROVIDER_DESKTOP_MAC
	provManaged     = gitpodv1.RunnerProvider_RUNNER_PROVIDER_MANAGED
	provGCP         = gitpodv1.RunnerProvider_RUNNER_PROVIDER_GCP
	provDevAgent    = gitpodv1.RunnerProvider_RUNNER_PROVIDER_DEV_AGENT

	phaseCreated  = gitpodv1.RunnerPhase_RUNNER_PHASE_CREATED
	phaseActive   = gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE
	phaseInactive = gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE
	phaseDeleted  = gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED
)

// fullCreateRequest sets every field of CreateRunnerRequest that the seeds
// document, with values other than the defaults, so a lost field shows.
func fullCreateRequest(runnerName, password string) *gitpodv1.CreateRunnerRequest {
	return &gitpodv1.CreateRunnerRequest{
		Name:     runnerName,
		Provider: provAWS,
		Spec: &gitpodv1.RunnerSpec{
			DesiredPhase: phaseInactive,
			Variant:      gitpodv1.RunnerVariant_RUNNER_VARIANT_ENTERPRISE,
			Configuration: &gitpodv1.RunnerConfiguration{
				Region:         "us-west-2",
				ReleaseChannel: gitpodv1.RunnerReleaseChannel_RUNNER_RELEASE_CHANNEL_LATEST,
				AutoUpdate:     true,
				LogLevel:       gitpodv1.LogLevel_LOG_LEVEL_DEBUG,
				Metrics: &gitpodv1.MetricsConfiguration{
					Enabled:               true,
					Url:                   "https://metrics.example.com/api/v1/write",
					Username:              "metrics-user",
					Password:              password,
					ManagedMetricsEnabled: true,
					IncludeVerboseMetrics: true,
				},
				DevcontainerImageCacheEnabled: true,
				UpdateWindow:                  &gitpodv1.UpdateWindow{StartHour: i32(22), EndHour: i32(4)},
				ContinuousProfiling:           true,
				EncryptedHoneycombApiKey:      []byte("Stainless rocks"),
			},
		},
	}
}

// wantSpec is the spec a runner created from req must have: the request's,
// without the write-only metrics password.
func wantSpec(req *gitpodv1.CreateRunnerRequest) *gitpodv1.RunnerSpec {
	s := proto.Clone(req.GetSpec()).(*gitpodv1.RunnerSpec)
	s.Configuration.Metrics.Password = ""
	return s
}

func diffProto(tb testing.TB, what string, got, want proto.Message) {
	tb.Helper()
	if !proto.Equal(got, want) {
		tb.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// whoami returns the subject and organization of c's credential.
func whoami(tb testing.TB, c *client) *gitpodv1.GetAuthenticatedIdentityResponse {
	tb.Helper()
	res, err := c.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
	mustOK(tb, err, "get authenticated identity")
	return res.Msg
}

func TestRunners_Create(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			me := whoami(t, admin)
			managerID := uuid.NewString()
			tests := []struct {
				name  string
				req   *gitpodv1.CreateRunnerRequest
				code  connect.Code // zero: must succeed
				field string       // must appear in the error message
				check func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse)
			}{
				{name: "OK", req: fullCreateRequest(name("full"), "pw-create-1"), check: func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
					r := res.GetRunner()
					diffProto(t, "spec", r.GetSpec(), wantSpec(req))
					if err := uuid.Validate(r.GetRunnerId()); err != nil {
						t.Fatalf("runnerId %q: %v", r.GetRunnerId(), err)
					}
					if got, want := r.GetKind(), kindRemote; got != want {
						t.Fatalf("kind = %v, want %v", got, want)
					}
					if got, want := r.GetProvider(), provAWS; got != want {
						t.Fatalf("provider = %v, want %v", got, want)
					}
					if got, want := r.GetStatus().GetPhase(), phaseCreated; got != want {
						t.Fatalf("status.phase = %v, want %v", got, want)
					}
					diffProto(t, "creator", r.GetCreator(), me.GetSubject())
					if got, want := r.GetCreator().GetPrincipal(), gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT; got != want {
						t.Fatalf("creator.principal = %v, want %v", got, want)
					}
					if r.GetCreatedAt() == nil || !proto.Equal(r.GetCreatedAt(), r.GetUpdatedAt()) {
						t.Fatalf("createdAt %v, updatedAt %v: want both set and equal", r.GetCreatedAt(), r.GetUpdatedAt())
					}
					if res.GetExchangeToken() == "" {
						t.Fatal("exchangeToken is empty")
					}
					if res.GetAccessToken() != "" { //nolint:staticcheck // the deprecated field must stay empty
						t.Fatal("accessToken is set: it is deprecated and must stay empty")
					}
				}},
				{name: "OKDefaults", req: &gitpodv1.CreateRunnerRequest{Name: name("defaults"), Provider: provLinux}, check: func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
					s := res.GetRunner().GetSpec()
					if got, want := s.GetDesiredPhase(), phaseActive; got != want {
						t.Fatalf("desiredPhase = %v, want %v", got, want)
					}
					if s.GetConfiguration().GetUpdateWindow() != nil {
						t.Fatalf("updateWindow = %v, want none", s.GetConfiguration().GetUpdateWindow())
					}
				}},
				{name: "OKName3", req: &gitpodv1.CreateRunnerRequest{Name: uniqueName(3), Provider: provLinux}},
				{name: "OKName127", req: &gitpodv1.CreateRunnerRequest{Name: uniqueName(127), Provider: provLinux}},
				{name: "OKName127Runes", req: &gitpodv1.CreateRunnerRequest{Name: uniqueName(7) + strings.Repeat("é", 120), Provider: provLinux}},
				{name: "OKKindOnly", req: &gitpodv1.CreateRunnerRequest{Name: name("kind-only"), Kind: kindLocalConfig}, check: func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
					if r := res.GetRunner(); r.GetKind() != kindLocalConfig || r.GetProvider() != provUnspecified {
						t.Fatalf("kind %v provider %v, want %v and unspecified", r.GetKind(), r.GetProvider(), kindLocalConfig)
					}
				}},
				{name: "OKManaged", req: &gitpodv1.CreateRunnerRequest{Name: name("managed"), Provider: provManaged, RunnerManagerId: managerID}, check: func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
					if got := res.GetRunner().GetRunnerManagerId(); got != managerID {
						t.Fatalf("runnerManagerId = %q, want %q", got, managerID)
					}
				}},
				{name: "OKEndHourDefault", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(5)}), check: wantWindow(5, 7)},
				{name: "OKEndHourWraps", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(23)}), check: wantWindow(23, 1)},
				{name: "OKEndHourZero", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(5), EndHour: i32(0)}), check: wantWindow(5, 0)},
				{name: "OKStartHourZero", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(0)}), check: wantWindow(0, 2)},

				{name: "ErrNameTooShort", req: &gitpodv1.CreateRunnerRequest{Name: uniqueName(2), Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrNameTooLong", req: &gitpodv1.CreateRunnerRequest{Name: uniqueName(128), Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrNameEmpty", req: &gitpodv1.CreateRunnerRequest{Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrNameWhiteSpace", req: &gitpodv1.CreateRunnerRequest{Name: " " + name("space"), Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrNameControl", req: &gitpodv1.CreateRunnerRequest{Name: "ab\x01cd", Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrNameSlash", req: &gitpodv1.CreateRunnerRequest{Name: "team/" + name("slash"), Provider: provLinux}, code: connect.CodeInvalidArgument, field: "name"},
				{name: "ErrKindAndProvider", req: &gitpodv1.CreateRunnerRequest{Name: name("both"), Kind: kindLocal, Provider: provLinux}, code: connect.CodeInvalidArgument, field: "kind"},
				{name: "ErrNeitherKindNorProvider", req: &gitpodv1.CreateRunnerRequest{Name: name("neither")}, code: connect.CodeInvalidArgument, field: "provider"},
				{name: "ErrManagedWithoutManagerID", req: &gitpodv1.CreateRunnerRequest{Name: name("managed"), Provider: provManaged}, code: connect.CodeInvalidArgument, field: "runnerManagerId"},
				{name: "ErrManagerIDNotUUID", req: &gitpodv1.CreateRunnerRequest{Name: name("managed"), Provider: provManaged, RunnerManagerId: "manager-1"}, code: connect.CodeInvalidArgument, field: "runnerManagerId"},
				{name: "ErrManagerIDOnLinuxHost", req: &gitpodv1.CreateRunnerRequest{Name: name("linux"), Provider: provLinux, RunnerManagerId: managerID}, code: connect.CodeInvalidArgument, field: "runnerManagerId"},
				{name: "ErrStartHour24", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(24)}), code: connect.CodeInvalidArgument, field: "spec.configuration.updateWindow.startHour"},
				{name: "ErrStartHourNegative", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(-1)}), code: connect.CodeInvalidArgument, field: "spec.configuration.updateWindow.startHour"},
				{name: "ErrEndHourNegative", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(3), EndHour: i32(-1)}), code: connect.CodeInvalidArgument, field: "spec.configuration.updateWindow.endHour"},
				{name: "ErrEndHour24", req: withWindow(name("window"), &gitpodv1.UpdateWindow{StartHour: i32(3), EndHour: i32(24)}), code: connect.CodeInvalidArgument, field: "spec.configuration.updateWindow.endHour"},
				{name: "ErrWindowWithoutStartHour", req: withWindow(name("window"), &gitpodv1.UpdateWindow{EndHour: i32(3)}), code: connect.CodeInvalidArgument, field: "spec.configuration.updateWindow.startHour"},
				{name: "ErrUnknownProvider", req: &gitpodv1.CreateRunnerRequest{Name: name("enum"), Provider: gitpodv1.RunnerProvider(99)}, code: connect.CodeInvalidArgument, field: "provider"},
				{name: "ErrUnknownKind", req: &gitpodv1.CreateRunnerRequest{Name: name("enum"), Kind: gitpodv1.RunnerKind(42)}, code: connect.CodeInvalidArgument, field: "kind"},
				{name: "ErrUnknownVariant", req: &gitpodv1.CreateRunnerRequest{Name: name("enum"), Provider: provLinux,
					Spec: &gitpodv1.RunnerSpec{Variant: gitpodv1.RunnerVariant(7)}}, code: connect.CodeInvalidArgument, field: "spec.variant"},
				{name: "ErrUnknownLogLevel", req: &gitpodv1.CreateRunnerRequest{Name: name("enum"), Provider: provLinux,
					Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{LogLevel: gitpodv1.LogLevel(9)}}}, code: connect.CodeInvalidArgument, field: "spec.configuration.logLevel"},
				{name: "ErrDesiredPhaseDeleted", req: &gitpodv1.CreateRunnerRequest{Name: name("phase"), Provider: provLinux,
					Spec: &gitpodv1.RunnerSpec{DesiredPhase: phaseDeleted}}, code: connect.CodeInvalidArgument, field: "spec.desiredPhase"},
				{name: "ErrMetricsURL", req: &gitpodv1.CreateRunnerRequest{Name: name("metrics"), Provider: provLinux,
					Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{Metrics: &gitpodv1.MetricsConfiguration{Url: "ftp://metrics.example.com"}}}},
					code: connect.CodeInvalidArgument, field: "spec.configuration.metrics.url"},
				{name: "ErrRegion", req: &gitpodv1.CreateRunnerRequest{Name: name("region"), Provider: provLinux,
					Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{Region: "us west"}}},
					code: connect.CodeInvalidArgument, field: "spec.configuration.region"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res, err := admin.Runners.CreateRunner(ctx, connect.NewRequest(tt.req))
					if tt.code != 0 {
						wantCode(t, err, tt.code, tt.field)
						return
					}
					mustOK(t, err, "create runner")
					r := res.Msg.GetRunner()
					if got, want := r.GetName(), tt.req.GetName(); got != want {
						t.Fatalf("name = %q, want %q", got, want)
					}
					if tt.check != nil {
						tt.check(t, tt.req, res.Msg)
					}
					// What Create returned is what Get reads back.
					got, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
					mustOK(t, err, "get runner")
					diffProto(t, "get after create", got.Msg.GetRunner(), r)
				})
			}

			t.Run("ErrDuplicateName", func(t *testing.T) {
				n := name("dup")
				mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: n, Provider: provLinux})
				_, err := admin.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: n, Provider: provGCP}))
				wantCode(t, err, connect.CodeAlreadyExists, n)
			})
		})
	})
}

func withWindow(runnerName string, w *gitpodv1.UpdateWindow) *gitpodv1.CreateRunnerRequest {
	return &gitpodv1.CreateRunnerRequest{Name: runnerName, Provider: provAWS,
		Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{UpdateWindow: w}}}
}

func wantWindow(start, end int32) func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
	return func(t *testing.T, req *gitpodv1.CreateRunnerRequest, res *gitpodv1.CreateRunnerResponse) {
		t.Helper()
		w := res.GetRunner().GetSpec().GetConfiguration().GetUpdateWindow()
		if w == nil || w.StartHour == nil || w.EndHour == nil || w.GetStartHour() != start || w.GetEndHour() != end {
			t.Fatalf("updateWindow = %v, want startHour %d endHour %d", w, start, end)
		}
	}
}

func TestRunners_KindFromProvider(t *testing.T) {
	tests := []struct {
		provider gitpodv1.RunnerProvider
		kind     gitpodv1.RunnerKind
	}{
		{provLinux, kindLocal},
		{provMac, kindLocal},
		{provDevAgent, kindLocal},
		{provAWS, kindRemote},
		{provGCP, kindRemote},
		{provManaged, kindRemote},
	}
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			for _, tt := range tests {
				t.Run(strings.TrimPrefix(tt.provider.String(), "RUNNER_PROVIDER_"), func(t *testing.T) {
					req := &gitpodv1.CreateRunnerRequest{Name: name("kind"), Provider: tt.provider}
					if tt.provider == provManaged {
						req.RunnerManagerId = uuid.NewString()
					}
					r, _ := mustCreateRunner(t, admin, req)
					if got := r.GetKind(); got != tt.kind {
						t.Fatalf("created kind = %v, want %v", got, tt.kind)
					}
					res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
					mustOK(t, err, "get runner")
					if got := res.Msg.GetRunner().GetKind(); got != tt.kind {
						t.Fatalf("stored kind = %v, want %v", got, tt.kind)
					}
				})
			}
		})
	})
}

func TestRunners_Get(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			req := fullCreateRequest(name("get"), "pw-get")
			created, _ := mustCreateRunner(t, admin, req)
			t.Run("OK", func(t *testing.T) {
				res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: created.GetRunnerId()}))
				mustOK(t, err, "get runner")
				diffProto(t, "runner", res.Msg.GetRunner(), created)
				diffProto(t, "spec", res.Msg.GetRunner().GetSpec(), wantSpec(req))
			})
			t.Run("ErrNotFound", func(t *testing.T) {
				id := uuid.NewString()
				_, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
				wantCode(t, err, connect.CodeNotFound, id)
			})
			t.Run("ErrRunnerIDNotUUID", func(t *testing.T) {
				_, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: "runner-1"}))
				wantCode(t, err, connect.CodeInvalidArgument, "runnerId")
			})
			t.Run("ErrRunnerIDEmpty", func(t *testing.T) {
				_, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{}))
				wantCode(t, err, connect.CodeInvalidArgument, "runnerId")
			})
		})
	})
}

func TestRunners_Update(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			get := func(t *testing.T, id string) *gitpodv1.Runner {
				t.Helper()
				res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
				mustOK(t, err, "get runner")
				return res.Msg.GetRunner()
			}
			update := func(req *gitpodv1.UpdateRunnerRequest) error {
				_, err := admin.Runners.UpdateRunner(ctx, connect.NewRequest(req))
				return err
			}

			t.Run("OK", func(t *testing.T) {
				before := mustCreateLinuxRunner(t, admin)
				newName := name("renamed")
				err := update(&gitpodv1.UpdateRunnerRequest{
					RunnerId: before.GetRunnerId(),
					Name:     &newName,
					Spec: &gitpodv1.UpdateRunnerRequest_Spec{
						DesiredPhase: ptr(phaseInactive),
						Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
							AutoUpdate:                    ptr(true),
							DevcontainerImageCacheEnabled: ptr(true),
							LogLevel:                      ptr(gitpodv1.LogLevel_LOG_LEVEL_WARN),
							ReleaseChannel:                ptr(gitpodv1.RunnerReleaseChannel_RUNNER_RELEASE_CHANNEL_STABLE),
							Region:                        ptr("eu-central-1"),
							UpdateWindow:                  &gitpodv1.UpdateWindow{StartHour: i32(1), EndHour: i32(3)},
							ContinuousProfiling:           ptr(true),
							Metrics: &gitpodv1.UpdateRunnerRequest_Metrics{
								Enabled:               ptr(true),
								Password:              ptr("pw-update-1"),
								Url:                   ptr("http://prometheus.internal:9090/write"),
								Username:              ptr("prom"),
								ManagedMetricsEnabled: ptr(true),
								IncludeVerboseMetrics: ptr(true),
							},
						},
					},
				})
				mustOK(t, err, "update runner")
				after := get(t, before.GetRunnerId())
				want := &gitpodv1.RunnerSpec{
					DesiredPhase: phaseInactive,
					Configuration: &gitpodv1.RunnerConfiguration{
						AutoUpdate:                    true,
						DevcontainerImageCacheEnabled: true,
						LogLevel:                      gitpodv1.LogLevel_LOG_LEVEL_WARN,
						ReleaseChannel:                gitpodv1.RunnerReleaseChannel_RUNNER_RELEASE_CHANNEL_STABLE,
						Region:                        "eu-central-1",
						UpdateWindow:                  &gitpodv1.UpdateWindow{StartHour: i32(1), EndHour: i32(3)},
						ContinuousProfiling:           true,
						Metrics: &gitpodv1.MetricsConfiguration{
							Enabled: true, Url: "http://prometheus.internal:9090/write", Username: "prom",
							ManagedMetricsEnabled: true, IncludeVerboseMetrics: true,
						},
					},
				}
				diffProto(t, "spec", after.GetSpec(), want)
				if got := after.GetName(); got != newName {
					t.Fatalf("name = %q, want %q", got, newName)
				}
				// Identity, kind, creator and creation time do not change.
				for _, f := range []struct {
					what      string
					got, want any
				}{
					{"runnerId", after.GetRunnerId(), before.GetRunnerId()},
					{"kind", after.GetKind(), before.GetKind()},
					{"provider", after.GetProvider(), before.GetProvider()},
					{"status.phase", after.GetStatus().GetPhase(), before.GetStatus().GetPhase()},
				} {
					if f.got != f.want {
						t.Fatalf("%s = %v, want %v", f.what, f.got, f.want)
					}
				}
				diffProto(t, "creator", after.GetCreator(), before.GetCreator())
				diffProto(t, "createdAt", after.GetCreatedAt(), before.GetCreatedAt())
				if after.GetUpdatedAt().AsTime().Before(before.GetUpdatedAt().AsTime()) {
					t.Fatalf("updatedAt went back: %v -> %v", before.GetUpdatedAt().AsTime(), after.GetUpdatedAt().AsTime())
				}
			})
			t.Run("OKUnsetFieldsKeepTheirValue", func(t *testing.T) {
				req := fullCreateRequest(name("keep"), "pw-keep")
				before, _ := mustCreateRunner(t, admin, req)
				newName := name("kept")
				mustOK(t, update(&gitpodv1.UpdateRunnerRequest{RunnerId: before.GetRunnerId(), Name: &newName, Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}), "update name")
				diffProto(t, "spec after renaming", get(t, before.GetRunnerId()).GetSpec(), wantSpec(req))
				mustOK(t, update(&gitpodv1.UpdateRunnerRequest{RunnerId: before.GetRunnerId(), Spec: &gitpodv1.UpdateRunnerRequest_Spec{
					Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{AutoUpdate: ptr(false), Metrics: &gitpodv1.UpdateRunnerRequest_Metrics{}},
				}}), "update autoUpdate")
				want := wantSpec(req)
				want.Configuration.AutoUpdate = false
				after := get(t, before.GetRunnerId())
				diffProto(t, "spec after autoUpdate", after.GetSpec(), want)
				if got := after.GetName(); got != newName {
					t.Fatalf("name = %q, want %q", got, newName)
				}
			})
			t.Run("OKNameOnly", func(t *testing.T) {
				// The CLI's `runners rename` and the vendor SDK send no spec
				// when only the name changes.
				before := mustCreateLinuxRunner(t, admin)
				newName := name("renamed")
				err := update(&gitpodv1.UpdateRunnerRequest{RunnerId: before.GetRunnerId(), Name: &newName})
				skipIfCrashed(t, err, "UpdateRunner without spec dereferences a nil spec in updateInput (runner_convert.go)")
				mustOK(t, err, "rename")
				if got := get(t, before.GetRunnerId()).GetName(); got != newName {
					t.Fatalf("name = %q, want %q", got, newName)
				}
				for _, req := range []*gitpodv1.UpdateRunnerRequest{
					{RunnerId: before.GetRunnerId(), Name: ptr(uniqueName(2))},
					{RunnerId: "runner-1", Name: ptr(name("x"))},
				} {
					_, err := admin.Runners.UpdateRunner(ctx, connect.NewRequest(req))
					wantCode(t, err, connect.CodeInvalidArgument)
				}
				_, err = admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: uuid.NewString(), Name: ptr(name("x"))}))
				wantCode(t, err, connect.CodeNotFound)
			})
			t.Run("OKEndHourDefault", func(t *testing.T) {
				r := mustCreateLinuxRunner(t, admin)
				for _, w := range []struct{ start, end int32 }{{5, 7}, {23, 1}, {22, 0}} {
					mustOK(t, update(&gitpodv1.UpdateRunnerRequest{RunnerId: r.GetRunnerId(), Spec: &gitpodv1.UpdateRunnerRequest_Spec{
						Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{UpdateWindow: &gitpodv1.UpdateWindow{StartHour: i32(w.start)}},
					}}), "update window")
					got := get(t, r.GetRunnerId()).GetSpec().GetConfiguration().GetUpdateWindow()
					if got.GetStartHour() != w.start || got.EndHour == nil || got.GetEndHour() != w.end {
						t.Fatalf("startHour %d: window = %v, want endHour %d", w.start, got, w.end)
					}
				}
			})

			errTests := []struct {
				name  string
				req   func(id string) *gitpodv1.UpdateRunnerRequest
				code  connect.Code
				field string
			}{
				{"ErrNameTooShort", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Name: ptr(uniqueName(2)), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
				}, connect.CodeInvalidArgument, "name"},
				{"ErrNameTooLong", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Name: ptr(uniqueName(128)), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
				}, connect.CodeInvalidArgument, "name"},
				{"ErrNameSlash", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Name: ptr("team/" + uniqueName(8)), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
				}, connect.CodeInvalidArgument, "name"},
				{"ErrStartHour24", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
						UpdateWindow: &gitpodv1.UpdateWindow{StartHour: i32(24)}}}}
				}, connect.CodeInvalidArgument, "spec.configuration.updateWindow.startHour"},
				{"ErrEndHourNegative", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
						UpdateWindow: &gitpodv1.UpdateWindow{StartHour: i32(3), EndHour: i32(-1)}}}}
				}, connect.CodeInvalidArgument, "spec.configuration.updateWindow.endHour"},
				{"ErrDesiredPhaseDeleted", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: ptr(phaseDeleted)}}
				}, connect.CodeInvalidArgument, "spec.desiredPhase"},
				{"ErrUnknownLogLevel", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
						LogLevel: ptr(gitpodv1.LogLevel(77))}}}
				}, connect.CodeInvalidArgument, "spec.configuration.logLevel"},
				{"ErrUnknownReleaseChannel", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
						ReleaseChannel: ptr(gitpodv1.RunnerReleaseChannel(77))}}}
				}, connect.CodeInvalidArgument, "spec.configuration.releaseChannel"},
				{"ErrMetricsURL", func(id string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: id, Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
						Metrics: &gitpodv1.UpdateRunnerRequest_Metrics{Url: ptr("not a url")}}}}
				}, connect.CodeInvalidArgument, "spec.configuration.metrics.url"},
				{"ErrRunnerIDNotUUID", func(string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: "runner-1", Name: ptr(name("x")), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
				}, connect.CodeInvalidArgument, "runnerId"},
				{"ErrNotFound", func(string) *gitpodv1.UpdateRunnerRequest {
					return &gitpodv1.UpdateRunnerRequest{RunnerId: uuid.NewString(), Name: ptr(name("x")), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
				}, connect.CodeNotFound, "not found"},
			}
			for _, tt := range errTests {
				t.Run(tt.name, func(t *testing.T) {
					before, _ := mustCreateRunner(t, admin, fullCreateRequest(name("upd-err"), "pw"))
					wantCode(t, update(tt.req(before.GetRunnerId())), tt.code, tt.field)
					// A refused update changes nothing.
					diffProto(t, "runner after a refused update", get(t, before.GetRunnerId()), before)
				})
			}
			t.Run("ErrDuplicateName", func(t *testing.T) {
				a, b := mustCreateLinuxRunner(t, admin), mustCreateLinuxRunner(t, admin)
				wantCode(t, update(&gitpodv1.UpdateRunnerRequest{RunnerId: b.GetRunnerId(), Name: ptr(a.GetName()), Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}), connect.CodeAlreadyExists, a.GetName())
				diffProto(t, "runner after a refused rename", get(t, b.GetRunnerId()), b)
			})
		})
	})
}

func TestRunners_Delete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			for _, force := range []bool{false, true} {
				t.Run(fmt.Sprintf("OKNeverConnected/force=%v", force), func(t *testing.T) {
					r, exchange := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("del"), Provider: provLinux})
					_, err := admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId(), Force: force}))
					mustOK(t, err, "delete runner")
					// It reads as deleted, and why.
					res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
					mustOK(t, err, "get deleted runner")
					tomb := res.Msg.GetRunner()
					why := "its runner never connected"
					if force {
						why = "forced, without waiting for its runner to stop its work"
					}
					if st := tomb.GetStatus(); st.GetPhase() != phaseDeleted || st.GetMessage() != runners.DeletedMessage(tomb.GetUpdatedAt().AsTime(), why) {
						t.Fatalf("deleted runner's status: %v %q", st.GetPhase(), st.GetMessage())
					}
					if slices.Contains(ids(listAll(t, admin, nil, 100)), r.GetRunnerId()) {
						t.Fatal("deleted runner still listed")
					}
					// Its exchange token died with it.
					_, err = admin.Identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: exchange}))
					wantCode(t, err, connect.CodeUnauthenticated)
					// Deleting it again changes nothing.
					_, err = admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId(), Force: force}))
					mustOK(t, err, "delete the deleted runner again")
					res, err = admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
					mustOK(t, err, "get deleted runner again")
					diffProto(t, "deleted runner after a second deletion", res.Msg.GetRunner(), tomb)
				})
			}
			t.Run("OKNameReusable", func(t *testing.T) {
				r := mustCreateLinuxRunner(t, admin)
				_, err := admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId()}))
				mustOK(t, err, "delete runner")
				mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: r.GetName(), Provider: provGCP})
			})
			t.Run("OKRunnerTokenStopsWorking", func(t *testing.T) {
				r, exchange := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("del"), Provider: provLinux})
				runner := newClient(t, ts.URL, p, bearer(mustExchange(t, admin, exchange)))
				whoami(t, runner)
				_, err := admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: r.GetRunnerId()}))
				mustOK(t, err, "delete runner")
				_, err = runner.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
				wantCode(t, err, connect.CodeUnauthenticated)
			})
			t.Run("ErrNotFound", func(t *testing.T) {
				_, err := admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: uuid.NewString()}))
				wantCode(t, err, connect.CodeNotFound)
			})
			t.Run("ErrRunnerIDNotUUID", func(t *testing.T) {
				_, err := admin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: "nope"}))
				wantCode(t, err, connect.CodeInvalidArgument, "runnerId")
			})
		})
	})
}

func TestRunners_List(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			// Runners of a fresh key are this subtest's alone: filtering by
			// its id as creator isolates them from the other subtests.
			key, secret := mustCreateKey(t, admin, "lister-"+p.name, "runners:read", "runners:write")
			c := newClient(t, ts.URL, p, bearer(secret))
			byProvider := map[gitpodv1.RunnerProvider]string{}
			var created []string
			for _, prov := range []gitpodv1.RunnerProvider{provLinux, provMac, provAWS, provGCP} {
				r, _ := mustCreateRunner(t, c, &gitpodv1.CreateRunnerRequest{Name: name("list"), Provider: prov})
				byProvider[prov] = r.GetRunnerId()
				created = append(created, r.GetRunnerId())
			}
			kindOnly, _ := mustCreateRunner(t, c, &gitpodv1.CreateRunnerRequest{Name: name("list"), Kind: kindLocalConfig})
			created = append(created, kindOnly.GetRunnerId())
			adminRunner := mustCreateLinuxRunner(t, admin)
			adminID := whoami(t, admin).GetSubject().GetId()

			mine := []string{key.GetTokenId()}
			tests := []struct {
				name   string
				filter *gitpodv1.ListRunnersRequest_Filter
				want   []string
			}{
				{"CreatorIDs", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine}, created},
				{"CreatorIDsUnknown", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{uuid.NewString()}}, nil},
				{"KindsLocal", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine, Kinds: []gitpodv1.RunnerKind{kindLocal}},
					[]string{byProvider[provLinux], byProvider[provMac]}},
				{"KindsRemote", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine, Kinds: []gitpodv1.RunnerKind{kindRemote}},
					[]string{byProvider[provAWS], byProvider[provGCP]}},
				{"KindsTwo", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine, Kinds: []gitpodv1.RunnerKind{kindLocalConfig, kindRemote}},
					[]string{byProvider[provAWS], byProvider[provGCP], kindOnly.GetRunnerId()}},
				{"Providers", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine, Providers: []gitpodv1.RunnerProvider{provGCP, provMac}},
					[]string{byProvider[provMac], byProvider[provGCP]}},
				{"KindsAndProviders", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine, Kinds: []gitpodv1.RunnerKind{kindLocal}, Providers: []gitpodv1.RunnerProvider{provGCP}}, nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := ids(listAll(t, c, tt.filter, 2))
					if !slices.Equal(got, tt.want) {
						t.Fatalf("got %v, want %v", got, tt.want)
					}
				})
			}
			t.Run("CreatorIDsTwo", func(t *testing.T) {
				got := ids(listAll(t, c, &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{key.GetTokenId(), adminID}}, 100))
				for _, id := range append(slices.Clone(created), adminRunner.GetRunnerId()) {
					if !slices.Contains(got, id) {
						t.Fatalf("runner %s missing from %v", id, got)
					}
				}
			})
			t.Run("ListedEqualsGot", func(t *testing.T) {
				for _, r := range listAll(t, c, &gitpodv1.ListRunnersRequest_Filter{CreatorIds: mine}, 0) {
					res, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
					mustOK(t, err, "get runner")
					diffProto(t, "listed runner", r, res.Msg.GetRunner())
				}
			})

			errTests := []struct {
				name   string
				filter *gitpodv1.ListRunnersRequest_Filter
				page   *gitpodv1.PaginationRequest
				field  string
			}{
				{"ErrUnknownKind", &gitpodv1.ListRunnersRequest_Filter{Kinds: []gitpodv1.RunnerKind{kindLocal, gitpodv1.RunnerKind(99)}}, nil, "filter.kinds[1]"},
				{"ErrUnknownProvider", &gitpodv1.ListRunnersRequest_Filter{Providers: []gitpodv1.RunnerProvider{gitpodv1.RunnerProvider(99)}}, nil, "filter.providers[0]"},
				{"ErrCreatorIDNotUUID", &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{"me"}}, nil, "filter.creatorIds[0]"},
				{"ErrNegativePageSize", nil, &gitpodv1.PaginationRequest{PageSize: -1}, "pageSize"},
				{"ErrGarbageToken", nil, &gitpodv1.PaginationRequest{Token: "garbage"}, "token"},
			}
			for _, tt := range errTests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := c.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Filter: tt.filter, Pagination: tt.page}))
					wantCode(t, err, connect.CodeInvalidArgument, tt.field)
				})
			}
		})
	})
}

// listPage is the JSON shape of a ListRunnersResponse, enough for paging.
type listPage struct {
	Pagination struct {
		NextToken string `json:"nextToken"`
	} `json:"pagination"`
	Runners []struct {
		RunnerID string `json:"runnerId"`
	} `json:"runners"`
}

func (l listPage) ids() []string {
	out := make([]string, len(l.Runners))
	for i, r := range l.Runners {
		out[i] = r.RunnerID
	}
	return out
}

func TestRunners_ListPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		key, secret := mustCreateKey(t, admin, "pager", "runners:read", "runners:write")
		c := newClient(t, ts.URL, protocols[1], bearer(secret))
		raw := newRawJSON(t, ts, bearer(secret))
		// 101 runners: one more than the largest page.
		var all []string
		for range 101 {
			all = append(all, mustCreateLinuxRunner(t, c).GetRunnerId())
		}
		filter := &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{key.GetTokenId()}}
		filterJSON := fmt.Sprintf(`"filter":{"creatorIds":[%q]}`, key.GetTokenId())
		list := func(t *testing.T, token string, size int32) *gitpodv1.ListRunnersResponse {
			t.Helper()
			res, err := c.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{
				Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: size},
			}))
			mustOK(t, err, "list runners")
			return res.Msg
		}

		t.Run("DefaultPageSize", func(t *testing.T) {
			res := list(t, "", 0)
			if got, want := ids(res.GetRunners()), all[:25]; !slices.Equal(got, want) {
				t.Fatalf("got %d runners %v, want the first 25", len(got), got)
			}
			if res.GetPagination().GetNextToken() == "" {
				t.Fatal("nextToken is empty on the first of five pages")
			}
		})
		t.Run("PageSizeClampedTo100", func(t *testing.T) {
			res := list(t, "", 500)
			if got, want := ids(res.GetRunners()), all[:100]; !slices.Equal(got, want) {
				t.Fatalf("got %d runners, want the first 100", len(got))
			}
			last := list(t, res.GetPagination().GetNextToken(), 500)
			if got, want := ids(last.GetRunners()), all[100:]; !slices.Equal(got, want) {
				t.Fatalf("last page = %v, want %v", got, want)
			}
			if tok := last.GetPagination().GetNextToken(); tok != "" {
				t.Fatalf("nextToken on the last page = %q, want empty", tok)
			}
		})
		t.Run("WalkAllPages", func(t *testing.T) {
			for _, size := range []int32{1, 7, 50, 100, 101} {
				if got := ids(listAll(t, c, filter, size)); !slices.Equal(got, all) {
					t.Fatalf("pageSize %d: walked %d runners, want all %d in creation order", size, len(got), len(all))
				}
			}
		})
		t.Run("NoEmptyTrailingPage", func(t *testing.T) {
			// 4 runners in pages of 2: the second page is the last.
			k, s := mustCreateKey(t, admin, "pager-even", "runners:read", "runners:write")
			kc := newClient(t, ts.URL, protocols[1], bearer(s))
			for range 4 {
				mustCreateLinuxRunner(t, kc)
			}
			f := &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{k.GetTokenId()}}
			res, err := kc.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Filter: f, Pagination: &gitpodv1.PaginationRequest{PageSize: 2}}))
			mustOK(t, err, "first page")
			res, err = kc.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Filter: f,
				Pagination: &gitpodv1.PaginationRequest{PageSize: 2, Token: res.Msg.GetPagination().GetNextToken()}}))
			mustOK(t, err, "second page")
			if n, tok := len(res.Msg.GetRunners()), res.Msg.GetPagination().GetNextToken(); n != 2 || tok != "" {
				t.Fatalf("second page: %d runners, nextToken %q; want 2 and empty", n, tok)
			}
		})
		t.Run("StableWhileInserting", func(t *testing.T) {
			k, s := mustCreateKey(t, admin, "pager-insert", "runners:read", "runners:write")
			kc := newClient(t, ts.URL, protocols[1], bearer(s))
			var before []string
			for range 7 {
				before = append(before, mustCreateLinuxRunner(t, kc).GetRunnerId())
			}
			f := &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{k.GetTokenId()}}
			seen := map[string]int{}
			var walked []string
			token := ""
			for page := 0; ; page++ {
				if page > 20 {
					t.Fatal("walk does not end")
				}
				res, err := kc.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Filter: f,
					Pagination: &gitpodv1.PaginationRequest{PageSize: 2, Token: token}}))
				mustOK(t, err, "list page")
				for _, r := range res.Msg.GetRunners() {
					seen[r.GetRunnerId()]++
					walked = append(walked, r.GetRunnerId())
				}
				// Another client inserts while this one pages.
				mustCreateLinuxRunner(t, kc)
				if token = res.Msg.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("runner %s listed %d times", id, n)
				}
			}
			if got := walked[:len(before)]; !slices.Equal(got, before) {
				t.Fatalf("walk began %v, want the runners created before it, in order: %v", got, before)
			}
		})

		t.Run("QueryString", func(t *testing.T) {
			var p1, p2, p3 listPage
			// The first page: the body names the filter and a page size the
			// query overrides.
			body := `{` + filterJSON + `,"pagination":{"pageSize":10}}`
			raw.post(t, pathListRunners+"?pageSize=2", body).wantOK(t, &p1)
			if got, want := p1.ids(), all[0:2]; !slices.Equal(got, want) {
				t.Fatalf("page 1 = %v, want %v", got, want)
			}
			// The auto-pager repeats the first request's body and puts the
			// token in the query.
			raw.post(t, pathListRunners+"?token="+p1.Pagination.NextToken+"&pageSize=2", body).wantOK(t, &p2)
			if got, want := p2.ids(), all[2:4]; !slices.Equal(got, want) {
				t.Fatalf("page 2 = %v, want %v", got, want)
			}
			// A token in the query wins over one in the body.
			body3 := `{` + filterJSON + `,"pagination":{"token":` + jsonString(p1.Pagination.NextToken) + `,"pageSize":2}}`
			raw.post(t, pathListRunners+"?token="+p2.Pagination.NextToken, body3).wantOK(t, &p3)
			if got, want := p3.ids(), all[4:6]; !slices.Equal(got, want) {
				t.Fatalf("page 3 = %v, want %v", got, want)
			}
			// Without a query the body's pagination is used.
			var pb listPage
			raw.post(t, pathListRunners, body3).wantOK(t, &pb)
			if got, want := pb.ids(), all[2:4]; !slices.Equal(got, want) {
				t.Fatalf("body paging = %v, want %v", got, want)
			}
			// The query's page size is clamped like the body's.
			var big listPage
			raw.post(t, pathListRunners+"?pageSize=500", `{`+filterJSON+`}`).wantOK(t, &big)
			if got := len(big.Runners); got != 100 {
				t.Fatalf("?pageSize=500 returned %d runners, want 100", got)
			}
			// Walk every page the auto-pager's way.
			var walked []string
			token := ""
			for range 100 {
				var pg listPage
				q := "?pageSize=30"
				if token != "" {
					q += "&token=" + token
				}
				raw.post(t, pathListRunners+q, `{`+filterJSON+`,"pagination":{"pageSize":30}}`).wantOK(t, &pg)
				walked = append(walked, pg.ids()...)
				if token = pg.Pagination.NextToken; token == "" {
					break
				}
			}
			if !slices.Equal(walked, all) {
				t.Fatalf("query-string walk listed %d runners, want all %d in order", len(walked), len(all))
			}
		})
		t.Run("QueryStringErrors", func(t *testing.T) {
			for _, q := range []string{"?pageSize=-1", "?pageSize=abc", "?pageSize=99999999999", "?token=garbage", "?token=" + "djE6MA"} {
				t.Run(q, func(t *testing.T) {
					raw.post(t, pathListRunners+q, `{}`).wantError(t, http.StatusBadRequest, "invalid_argument")
				})
			}
		})
		t.Run("ErrBodyPaging", func(t *testing.T) {
			for _, tt := range []struct{ name, body, field string }{
				{"NegativePageSize", `{"pagination":{"pageSize":-1}}`, "pagination.pageSize"},
				{"GarbageToken", `{"pagination":{"token":"!!!"}}`, "pagination.token"},
				{"ForeignToken", `{"pagination":{"token":"djI6MTA"}}`, "pagination.token"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					raw.post(t, pathListRunners, tt.body).wantError(t, http.StatusBadRequest, "invalid_argument", tt.field)
				})
			}
		})
	})
}

func TestRunners_MetricsPasswordWriteOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		const createPW, updatePW = "create-pw-Zq7Hd2", "update-pw-Kx9Lm4"
		noPassword := func(t *testing.T, what string, r rawResponse) {
			t.Helper()
			if r.Status != http.StatusOK {
				t.Fatalf("%s: HTTP %d: %s", what, r.Status, r.Body)
			}
			for _, pw := range []string{createPW, updatePW} {
				if strings.Contains(string(r.Body), pw) {
					t.Fatalf("%s: the response contains the metrics password: %s", what, r.Body)
				}
			}
			if strings.Contains(string(r.Body), `"password"`) {
				t.Fatalf("%s: the response has a password field: %s", what, r.Body)
			}
		}
		created := raw.post(t, pathCreateRunner, `{"name":`+jsonString(name("pw"))+`,"provider":"RUNNER_PROVIDER_AWS_EC2",
			"spec":{"configuration":{"metrics":{"enabled":true,"url":"https://m.example.com","username":"u","password":"`+createPW+`"}}}}`)
		noPassword(t, "CreateRunner", created)
		var cr struct {
			Runner struct {
				RunnerID string `json:"runnerId"`
			} `json:"runner"`
		}
		created.wantOK(t, &cr)
		id := cr.Runner.RunnerID
		getBody := `{"runnerId":"` + id + `"}`
		noPassword(t, "GetRunner", raw.post(t, pathGetRunner, getBody))
		noPassword(t, "ListRunners", raw.post(t, pathListRunners, `{}`))

		upd := raw.post(t, pathUpdateRunner, `{"runnerId":"`+id+`","spec":{"configuration":{"metrics":{"password":"`+updatePW+`"}}}}`)
		noPassword(t, "UpdateRunner", upd)
		noPassword(t, "GetRunner after update", raw.post(t, pathGetRunner, getBody))
		noPassword(t, "ListRunners after update", raw.post(t, pathListRunners, `{"pagination":{"pageSize":100}}`))

		// The binary and gRPC encodings carry no password either.
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			res, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
			mustOK(t, err, "get runner")
			m := res.Msg.GetRunner().GetSpec().GetConfiguration().GetMetrics()
			if m.GetPassword() != "" {
				t.Fatalf("metrics password returned: %q", m.GetPassword())
			}
			if !m.GetEnabled() || m.GetUsername() != "u" {
				t.Fatalf("metrics = %v, want enabled with username u", m)
			}
			r, _ := mustCreateRunner(t, admin, fullCreateRequest(name("pw"), createPW))
			if pw := r.GetSpec().GetConfiguration().GetMetrics().GetPassword(); pw != "" {
				t.Fatalf("CreateRunner returned the metrics password %q", pw)
			}
			_, err = admin.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: r.GetRunnerId(),
				Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{
					Metrics: &gitpodv1.UpdateRunnerRequest_Metrics{Password: ptr(updatePW)}}}}))
			mustOK(t, err, "update password")
			for _, r := range listAll(t, admin, nil, 100) {
				if pw := r.GetSpec().GetConfiguration().GetMetrics().GetPassword(); pw != "" {
					t.Fatalf("ListRunners returned the metrics password %q", pw)
				}
			}
		})
	})
}

func TestRunners_RequestDecoding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		tests := []struct {
			name   string
			path   string
			body   string
			status int
			code   string
			field  string
		}{
			{"ErrUnknownField", pathCreateRunner, `{"name":"abc","bogus":1}`, 400, "invalid_argument", "bogus"},
			{"ErrUnknownNestedField", pathCreateRunner, `{"name":"abcd","provider":"RUNNER_PROVIDER_GCP","spec":{"configuration":{"colour":"red"}}}`, 400, "invalid_argument", "colour"},
			{"ErrUnknownFieldUpdate", pathUpdateRunner, `{"runnerId":"` + uuid.NewString() + `","nmae":"typo"}`, 400, "invalid_argument", "nmae"},
			{"ErrUnknownFieldList", pathListRunners, `{"filter":{"creatorId":[]}}`, 400, "invalid_argument", "creatorId"},
			{"ErrUnknownFieldGet", pathGetRunner, `{"id":"x"}`, 400, "invalid_argument", "id"},
			{"ErrProviderNumber99", pathCreateRunner, `{"name":` + jsonString(name("enum")) + `,"provider":99}`, 400, "invalid_argument", "provider"},
			{"ErrKindNumber42", pathCreateRunner, `{"name":` + jsonString(name("enum")) + `,"kind":42}`, 400, "invalid_argument", "kind"},
			{"ErrProviderUnknownName", pathCreateRunner, `{"name":` + jsonString(name("enum")) + `,"provider":"RUNNER_PROVIDER_MAINFRAME"}`, 400, "invalid_argument", "provider"},
			{"ErrFilterProviderNumber", pathListRunners, `{"filter":{"providers":[2,99]}}`, 400, "invalid_argument", "filter.providers[1]"},
			{"ErrDesiredPhaseNumber", pathUpdateRunner, `{"runnerId":"` + uuid.NewString() + `","spec":{"desiredPhase":99}}`, 400, "invalid_argument", "spec.desiredPhase"},
			{"ErrMalformedJSON", pathCreateRunner, `{"name":`, 400, "invalid_argument", ""},
			{"ErrWrongType", pathCreateRunner, `{"name":123}`, 400, "invalid_argument", "name"},
			{"ErrEmptyBody", pathGetRunner, ``, 400, "invalid_argument", "runnerId"},
			{"OKProviderNumber", pathCreateRunner, `{"name":` + jsonString(name("enum")) + `,"provider":5}`, 200, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := raw.post(t, tt.path, tt.body)
				if tt.status == http.StatusOK {
					res.wantOK(t, nil)
					return
				}
				res.wantError(t, tt.status, tt.code, tt.field)
			})
		}
	})
}

func TestRunners_HugeBody(t *testing.T) {
	const size = 5 << 20
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		t.Run("RawJSON", func(t *testing.T) {
			key, secret := mustCreateKey(t, admin, "huge-raw", "runners:read", "runners:write")
			raw := newRawJSON(t, ts, bearer(secret))
			body := `{"name":"huge-raw","provider":"RUNNER_PROVIDER_GCP","spec":{"configuration":{"region":"` + strings.Repeat("a", size) + `"}}}`
			// Too large is 413, not 429 (too many requests).
			raw.post(t, pathCreateRunner, body).wantError(t, http.StatusRequestEntityTooLarge, "resource_exhausted")
			if got := listAll(t, admin, &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{key.GetTokenId()}}, 100); len(got) != 0 {
				t.Fatalf("a refused request created %d runners", len(got))
			}
		})
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			key, secret := mustCreateKey(t, admin, "huge-"+p.name, "runners:read", "runners:write")
			c := newClient(t, ts.URL, p, bearer(secret))
			_, err := c.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{
				Name: name("huge"), Provider: provGCP,
				Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{EncryptedHoneycombApiKey: make([]byte, size)}},
			}))
			wantCode(t, err, connect.CodeResourceExhausted)
			if got := listAll(t, admin, &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{key.GetTokenId()}}, 100); len(got) != 0 {
				t.Fatalf("a refused request created %d runners", len(got))
			}
			// The connection still serves requests.
			mustCreateLinuxRunner(t, c)
		})
	})
}

func TestIdentity_ExchangeToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			me := whoami(t, admin)
			anonymous := newClient(t, ts.URL, p, "")
			exchange := func(tok string) (string, error) {
				res, err := anonymous.Identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: tok}))
				if err != nil {
					return "", err
				}
				return res.Msg.GetAccessToken(), nil
			}
			t.Run("OK", func(t *testing.T) {
				r, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("exch"), Provider: provLinux})
				access, err := exchange(x)
				mustOK(t, err, "exchange")
				if access == "" || access == x {
					t.Fatalf("access token %q: want a new, non-empty token", access)
				}
				id := whoami(t, newClient(t, ts.URL, p, bearer(access)))
				if got, want := id.GetSubject().GetPrincipal(), gitpodv1.Principal_PRINCIPAL_RUNNER; got != want {
					t.Fatalf("principal = %v, want %v", got, want)
				}
				if got, want := id.GetSubject().GetId(), r.GetRunnerId(); got != want {
					t.Fatalf("subject id = %q, want the runner id %q", got, want)
				}
				if got, want := id.GetOrganizationId(), me.GetOrganizationId(); got != want {
					t.Fatalf("organizationId = %q, want %q", got, want)
				}
				t.Run("ErrSecondUse", func(t *testing.T) {
					_, err := exchange(x)
					wantCode(t, err, connect.CodeUnauthenticated)
				})
			})
			t.Run("OKCreateRunnerToken", func(t *testing.T) {
				r, x1 := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("exch"), Provider: provLinux})
				res, err := admin.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: r.GetRunnerId()}))
				mustOK(t, err, "create runner token")
				x2 := res.Msg.GetExchangeToken()
				if x2 == "" || x2 == x1 {
					t.Fatalf("exchangeToken %q: want a new, non-empty token", x2)
				}
				if res.Msg.GetAccessToken() != "" { //nolint:staticcheck // the deprecated field must stay empty
					t.Fatal("accessToken is set: it is deprecated and must stay empty")
				}
				// Both the new token and the earlier one work, once each.
				for _, x := range []string{x2, x1} {
					access, err := exchange(x)
					mustOK(t, err, "exchange")
					if got := whoami(t, newClient(t, ts.URL, p, bearer(access))).GetSubject().GetId(); got != r.GetRunnerId() {
						t.Fatalf("subject id = %q, want %q", got, r.GetRunnerId())
					}
					_, err = exchange(x)
					wantCode(t, err, connect.CodeUnauthenticated)
				}
			})
			t.Run("ErrCreateRunnerTokenNotFound", func(t *testing.T) {
				_, err := admin.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: uuid.NewString()}))
				wantCode(t, err, connect.CodeNotFound)
			})
			t.Run("ErrCreateRunnerTokenNotUUID", func(t *testing.T) {
				_, err := admin.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: "r1"}))
				wantCode(t, err, connect.CodeInvalidArgument, "runnerId")
			})
			t.Run("ErrUnknownToken", func(t *testing.T) {
				_, err := exchange("ryd_ex_not-a-real-token")
				wantCode(t, err, connect.CodeUnauthenticated)
			})
			t.Run("ErrAPIKeyIsNoExchangeToken", func(t *testing.T) {
				_, err := exchange(testutil.AdminToken)
				wantCode(t, err, connect.CodeUnauthenticated)
			})
			t.Run("ErrEmpty", func(t *testing.T) {
				_, err := exchange("")
				wantCode(t, err, connect.CodeInvalidArgument, "exchangeToken")
			})
		})
	})
}

func TestIdentity_GetAuthenticatedIdentity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			me := whoami(t, admin)
			if err := uuid.Validate(me.GetOrganizationId()); err != nil {
				t.Fatalf("organizationId %q: %v", me.GetOrganizationId(), err)
			}
			if got, want := me.GetSubject().GetPrincipal(), gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT; got != want {
				t.Fatalf("admin principal = %v, want %v", got, want)
			}
			// The admin key is its own service account.
			toks, err := admin.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{}))
			mustOK(t, err, "list tokens")
			i := slices.IndexFunc(toks.Msg.GetTokens(), func(tk *runyardv1.Token) bool { return tk.GetName() == "admin" })
			if i < 0 || toks.Msg.GetTokens()[i].GetTokenId() != me.GetSubject().GetId() {
				t.Fatalf("admin subject %q is not the admin key's id in %v", me.GetSubject().GetId(), toks.Msg.GetTokens())
			}
			key, secret := mustCreateKey(t, admin, "reader-"+p.name, "runners:read")
			id := whoami(t, newClient(t, ts.URL, p, bearer(secret)))
			if id.GetSubject().GetId() != key.GetTokenId() || id.GetOrganizationId() != me.GetOrganizationId() {
				t.Fatalf("key identity = %v, want subject %s in organization %s", id, key.GetTokenId(), me.GetOrganizationId())
			}
			// UserKey is accepted like Bearer, for the vendor's SDKs.
			id = whoami(t, newClient(t, ts.URL, p, "UserKey "+secret))
			if id.GetSubject().GetId() != key.GetTokenId() {
				t.Fatalf("UserKey identity = %v, want subject %s", id, key.GetTokenId())
			}
		})
	})
}

func TestTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			me := whoami(t, admin)
			list := func(t *testing.T, includeRevoked bool) []*runyardv1.Token {
				t.Helper()
				var out []*runyardv1.Token
				token := ""
				for range 100 {
					res, err := admin.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{
						IncludeRevoked: includeRevoked, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 2},
					}))
					mustOK(t, err, "list tokens")
					out = append(out, res.Msg.GetTokens()...)
					if token = res.Msg.GetPagination().GetNextToken(); token == "" {
						return out
					}
				}
				t.Fatal("list tokens: too many pages")
				return nil
			}
			find := func(toks []*runyardv1.Token, id string) *runyardv1.Token {
				for _, tk := range toks {
					if tk.GetTokenId() == id {
						return tk
					}
				}
				return nil
			}

			t.Run("Create", func(t *testing.T) {
				expires := timestamppb.New(time.Date(2999, 1, 2, 3, 4, 5, 0, time.UTC))
				res, err := admin.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{
					Name: "ci-" + p.name, Scopes: []string{"runners:write", "runners:read", "runners:read"}, ExpiresAt: expires,
				}))
				mustOK(t, err, "create token")
				tk := res.Msg.GetToken()
				if !strings.HasPrefix(res.Msg.GetSecret(), "ryd_ak_") {
					t.Fatalf("secret %q lacks the API key prefix", res.Msg.GetSecret())
				}
				want := &runyardv1.Token{
					TokenId: tk.GetTokenId(), Name: "ci-" + p.name, Scopes: []string{"runners:read", "runners:write"},
					Principal: gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT, Creator: me.GetSubject(),
					CreatedAt: tk.GetCreatedAt(), ExpiresAt: expires,
				}
				diffProto(t, "token", tk, want)
				id := whoami(t, newClient(t, ts.URL, p, bearer(res.Msg.GetSecret())))
				if id.GetSubject().GetId() != tk.GetTokenId() {
					t.Fatalf("new key authenticates as %v, want %s", id.GetSubject(), tk.GetTokenId())
				}
				// ListTokens shows what CreateToken returned, createdAt too.
				listed := proto.Clone(find(list(t, false), tk.GetTokenId())).(*runyardv1.Token)
				listedAt := listed.GetCreatedAt().AsTime()
				listed.CreatedAt = tk.GetCreatedAt()
				diffProto(t, "listed token", listed, want)
				if d := listedAt.Sub(tk.GetCreatedAt().AsTime()); d != 0 && d > -time.Microsecond && d < time.Microsecond {
					t.Fatal("regression: CreateToken returns createdAt with nanoseconds but the store keeps microseconds, so ListTokens shows another time (identity.Service.CreateAPIKey does not truncate its clock)")
				}
				if !listedAt.Equal(tk.GetCreatedAt().AsTime()) {
					t.Fatalf("listed createdAt %v, created %v", listedAt, tk.GetCreatedAt().AsTime())
				}
			})
			t.Run("ListShowsRunnerTokens", func(t *testing.T) {
				r, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("tok"), Provider: provLinux})
				access := mustExchange(t, admin, x)
				i := slices.IndexFunc(list(t, false), func(tk *runyardv1.Token) bool { return tk.GetRunnerId() == r.GetRunnerId() })
				if i < 0 {
					t.Fatalf("no token of runner %s listed", r.GetRunnerId())
				}
				tk := list(t, false)[i]
				if tk.GetPrincipal() != gitpodv1.Principal_PRINCIPAL_RUNNER {
					t.Fatalf("runner token principal = %v", tk.GetPrincipal())
				}
				// Revoking it locks the runner out at once.
				_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: tk.GetTokenId()}))
				mustOK(t, err, "revoke runner token")
				_, err = newClient(t, ts.URL, p, bearer(access)).Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
				wantCode(t, err, connect.CodeUnauthenticated)
			})
			t.Run("Revoke", func(t *testing.T) {
				tk, secret := mustCreateKey(t, admin, "doomed-"+p.name, "runners:read")
				c := newClient(t, ts.URL, p, bearer(secret))
				whoami(t, c)
				_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: tk.GetTokenId()}))
				mustOK(t, err, "revoke")
				_, err = c.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
				wantCode(t, err, connect.CodeUnauthenticated)
				_, err = c.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{}))
				wantCode(t, err, connect.CodeUnauthenticated)
				if find(list(t, false), tk.GetTokenId()) != nil {
					t.Fatal("revoked key listed without includeRevoked")
				}
				revoked := find(list(t, true), tk.GetTokenId())
				if revoked == nil || revoked.GetRevokedAt() == nil {
					t.Fatalf("revoked key with includeRevoked = %v, want it with revokedAt", revoked)
				}
				// Revoking again is a no-op that keeps the first time.
				_, err = admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: tk.GetTokenId()}))
				mustOK(t, err, "revoke again")
				diffProto(t, "revokedAt after revoking twice", find(list(t, true), tk.GetTokenId()).GetRevokedAt(), revoked.GetRevokedAt())
			})
			t.Run("ErrRevokeNotFound", func(t *testing.T) {
				_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: uuid.NewString()}))
				wantCode(t, err, connect.CodeNotFound)
			})
			t.Run("ErrRevokeNotUUID", func(t *testing.T) {
				_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: "t1"}))
				wantCode(t, err, connect.CodeInvalidArgument, "tokenId")
			})
			for _, tt := range []struct {
				name  string
				req   *runyardv1.CreateTokenRequest
				field string
			}{
				{"ErrNoScopes", &runyardv1.CreateTokenRequest{Name: "x"}, "scopes"},
				{"ErrUnknownScope", &runyardv1.CreateTokenRequest{Name: "x", Scopes: []string{"runners:delete"}}, "scopes"},
				{"ErrNameEmpty", &runyardv1.CreateTokenRequest{Name: "  ", Scopes: []string{"admin"}}, "name"},
				{"ErrNameTooLong", &runyardv1.CreateTokenRequest{Name: strings.Repeat("k", 101), Scopes: []string{"admin"}}, "name"},
				{"ErrExpiresInPast", &runyardv1.CreateTokenRequest{Name: "x", Scopes: []string{"admin"}, ExpiresAt: timestamppb.New(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))}, "expiresAt"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					_, err := admin.Tokens.CreateToken(ctx, connect.NewRequest(tt.req))
					wantCode(t, err, connect.CodeInvalidArgument, tt.field)
				})
			}
		})
	})
}

// TestAPI_NULBytes sends a NUL character in each text field the store keeps.
// Either answer is fine, success or invalid_argument, as long as both backends
// give the same one and neither fails with an internal error.
func TestAPI_NULBytes(t *testing.T) {
	const bug = "regression: PostgreSQL TEXT cannot hold NUL and nothing refuses it before the store (runners.validateMetrics, identity.Service.CreateAPIKey)"
	outcome := map[string]map[testutil.Backend]int{}
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			nulBytes(t, testutil.StartServer(t, backend), backend, outcome, bug)
		})
	}
}

// nulBytes runs TestAPI_NULBytes on one backend; outcome collects the
// statuses to compare the backends.
func nulBytes(t *testing.T, ts *testutil.TestServer, backend testutil.Backend, outcome map[string]map[testutil.Backend]int, bug string) {
	raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
	target := raw.post(t, pathCreateRunner, `{"name":`+jsonString(name("nul"))+`,"provider":2}`)
	var cr struct {
		Runner struct {
			RunnerID string `json:"runnerId"`
		} `json:"runner"`
	}
	target.wantOK(t, &cr)
	tests := []struct{ name, path, body string }{
		{"RunnerName", pathCreateRunner, `{"name":"nul\u0000name","provider":2}`},
		{"MetricsUsername", pathCreateRunner, `{"name":` + jsonString(name("nul")) + `,"provider":2,"spec":{"configuration":{"metrics":{"username":"a\u0000b"}}}}`},
		{"MetricsPasswordCreate", pathCreateRunner, `{"name":` + jsonString(name("nul")) + `,"provider":2,"spec":{"configuration":{"metrics":{"password":"a\u0000b"}}}}`},
		{"MetricsPasswordUpdate", pathUpdateRunner, `{"runnerId":"` + cr.Runner.RunnerID + `","spec":{"configuration":{"metrics":{"password":"a\u0000b"}}}}`},
		{"Region", pathCreateRunner, `{"name":` + jsonString(name("nul")) + `,"provider":2,"spec":{"configuration":{"region":"eu\u0000"}}}`},
		{"TokenName", "/runyard.v1.TokenService/CreateToken", `{"name":"key\u0000name","scopes":["runners:read"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := raw.post(t, tt.path, tt.body)
			if res.Status >= 500 {
				t.Fatalf("%s: HTTP %d %s", bug, res.Status, res.Body)
			}
			if res.Status != http.StatusOK {
				res.wantError(t, http.StatusBadRequest, "invalid_argument")
			}
			if outcome[tt.name] == nil {
				outcome[tt.name] = map[testutil.Backend]int{}
			}
			outcome[tt.name][backend] = res.Status
			if s, ok := outcome[tt.name][testutil.SQLite]; ok && s != res.Status {
				t.Fatalf("HTTP %d here, %d on SQLite: the backends disagree", res.Status, s)
			}
		})
	}
}

// TestRunners_ListFilterTooLong sends filters with more values than a SQL
// statement takes parameters. The request is the caller's mistake:
// invalid_argument (or a result), never an internal error.
func TestRunners_ListFilterTooLong(t *testing.T) {
	const bug = "regression: runners.Service.List passes unbounded filter lists to one SQL statement (SQLite allows 32766 parameters, PostgreSQL 65535); bound them"
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		creators := make([]string, 70000)
		for i := range creators {
			creators[i] = `"` + uuid.NewString() + `"`
		}
		tests := []struct{ name, body string }{
			{"CreatorIDs", `{"filter":{"creatorIds":[` + strings.Join(creators, ",") + `]}}`},
			{"Kinds", `{"filter":{"kinds":[` + strings.Repeat("1,", 70000) + `1]}}`},
			{"Providers", `{"filter":{"providers":[` + strings.Repeat("2,", 70000) + `2]}}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := raw.post(t, pathListRunners, tt.body)
				if res.Status >= 500 {
					t.Fatalf("%s: HTTP %d %s", bug, res.Status, res.Body)
				}
				if res.Status != http.StatusOK {
					res.wantError(t, http.StatusBadRequest, "invalid_argument", "filter")
				}
			})
		}
	})
}

func TestRunners_Concurrent(t *testing.T) {
	const n = 8
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
			t.Run("SameNameOnceOnly", func(t *testing.T) {
				shared := name("race")
				errs := make(chan error, n)
				for range n {
					go func() {
						_, err := admin.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: shared, Provider: provLinux}))
						errs <- err
					}()
				}
				ok := 0
				for range n {
					if err := <-errs; err == nil {
						ok++
					} else if connect.CodeOf(err) != connect.CodeAlreadyExists {
						t.Errorf("got %v, want success or already_exists", err)
					}
				}
				if ok != 1 {
					t.Fatalf("%d creations of %q succeeded, want 1", ok, shared)
				}
			})
			t.Run("ExchangeOnceOnly", func(t *testing.T) {
				_, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("race"), Provider: provLinux})
				errs := make(chan error, n)
				for range n {
					go func() {
						_, err := admin.Identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: x}))
						errs <- err
					}()
				}
				ok := 0
				for range n {
					if err := <-errs; err == nil {
						ok++
					} else if connect.CodeOf(err) != connect.CodeUnauthenticated {
						t.Errorf("got %v, want success or unauthenticated", err)
					}
				}
				if ok != 1 {
					t.Fatalf("the exchange token was redeemed %d times, want 1", ok)
				}
			})
		})
	})
}
