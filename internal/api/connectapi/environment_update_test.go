package connectapi_test

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/testutil"
)

func updateEnv(c *envClient, req *gitpodv1.UpdateEnvironmentRequest) error {
	_, err := c.Envs.UpdateEnvironment(ctx, connect.NewRequest(req))
	return err
}

func TestEnvironments_Update(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			admin := newEnvClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			runner := mustCreateLinuxRunner(t, admin.client)
			class := mustClassOf(t, admin, runner.GetRunnerId())
			orgID := whoami(t, admin.client).GetOrganizationId()
			res, err := admin.Envs.CreateEnvironment(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentRequest{Spec: gitSpec(class, "https://example.com/org/first.git")}))
			mustOK(t, err, "create environment")
			id := res.Msg.GetEnvironment().GetId()

			t.Run("EveryProtocol", func(t *testing.T) {
				for _, p := range protocols {
					c := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
					before := mustGetEnvironment(t, c, id)
					mustOK(t, updateEnv(c, &gitpodv1.UpdateEnvironmentRequest{
						EnvironmentId: id,
						Metadata:      &gitpodv1.UpdateEnvironmentRequest_Metadata{Name: ptr("renamed-" + p.name)},
						Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
							Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{GitEmail: ptr(p.name + "@example.test"), GitUsername: ptr(p.name)},
							AutomationsFile: &gitpodv1.UpdateEnvironmentRequest_Spec_AutomationsFile{
								AutomationsFilePath: ptr("ci/" + p.name + ".yaml"),
							},
						},
					}), "update over "+p.name)
					after := mustGetEnvironment(t, c, id)
					if after.GetMetadata().GetName() != "renamed-"+p.name || after.GetSpec().GetContent().GetGitEmail() != p.name+"@example.test" ||
						after.GetSpec().GetContent().GetGitUsername() != p.name || after.GetSpec().GetAutomationsFile().GetAutomationsFilePath() != "ci/"+p.name+".yaml" {
						t.Fatalf("%s: after the update %v", p.name, after)
					}
					if after.GetSpec().GetSpecVersion() != before.GetSpec().GetSpecVersion()+1 {
						t.Errorf("%s: specVersion %d -> %d, want one more", p.name, before.GetSpec().GetSpecVersion(), after.GetSpec().GetSpecVersion())
					}
					// Fields left out stay as they are.
					if after.GetSpec().GetMachine().GetClass() != class || len(after.GetSpec().GetContent().GetInitializer().GetSpecs()) != 1 {
						t.Errorf("%s: untouched fields changed: %v", p.name, after.GetSpec())
					}
				}
			})

			t.Run("NoChangeKeepsTheSpecVersion", func(t *testing.T) {
				before := mustGetEnvironment(t, admin, id)
				mustOK(t, updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
					Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{GitEmail: ptr(before.GetSpec().GetContent().GetGitEmail())},
					// The timeout it has (none), an empty list of ports or keys
					// ("nothing to update") and a devcontainer's defaults change nothing.
					Timeout:       &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(0)},
					Ports:         []*gitpodv1.UpdateEnvironmentRequest_Spec_Port{},
					SshPublicKeys: []*gitpodv1.UpdateEnvironmentRequest_Spec_SSHPublicKey{},
					Devcontainer:  &gitpodv1.UpdateEnvironmentRequest_Spec_Devcontainer{},
				}}), "update to the same")
				mustOK(t, updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id,
					Metadata: &gitpodv1.UpdateEnvironmentRequest_Metadata{Name: ptr("only-the-name")}}), "rename")
				after := mustGetEnvironment(t, admin, id)
				if after.GetSpec().GetSpecVersion() != before.GetSpec().GetSpecVersion() || after.GetMetadata().GetName() != "only-the-name" {
					t.Fatalf("specVersion %d -> %d, name %q", before.GetSpec().GetSpecVersion(), after.GetSpec().GetSpecVersion(), after.GetMetadata().GetName())
				}
			})

			newInit := &gitpodv1.EnvironmentInitializer{Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{
				Git: &gitpodv1.GitInitializer{RemoteUri: "https://example.com/org/second.git"}}}}}
			t.Run("ContentBeforeTheRunnerPicksItUp", func(t *testing.T) {
				mustOK(t, updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
					Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{Initializer: newInit},
				}}), "change the initializer")
				g := mustGetEnvironment(t, admin, id).GetSpec().GetContent().GetInitializer().GetSpecs()[0].GetGit()
				if g.GetRemoteUri() != "https://example.com/org/second.git" || g.GetCheckoutLocation() != "second" {
					t.Fatalf("initializer after the update: %v", g)
				}
			})

			t.Run("RunningEnvironment", func(t *testing.T) {
				reportEnvironment(t, st, orgID, id, environments.PhaseRunning)
				before := mustGetEnvironment(t, admin, id)
				err := updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
					Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{Session: ptr("reinit")},
				}})
				wantCode(t, err, connect.CodeFailedPrecondition, "spec.content")
				diffProto(t, "after the refused update", mustGetEnvironment(t, admin, id), before)
				mustOK(t, updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
					Content:         &gitpodv1.UpdateEnvironmentRequest_Spec_Content{GitEmail: ptr("running@example.test")},
					AutomationsFile: &gitpodv1.UpdateEnvironmentRequest_Spec_AutomationsFile{Session: ptr("reapply")},
				}}), "update a running environment")
				after := mustGetEnvironment(t, admin, id)
				if after.GetSpec().GetContent().GetGitEmail() != "running@example.test" || after.GetSpec().GetAutomationsFile().GetSession() != "reapply" {
					t.Fatalf("after the update: %v", after.GetSpec())
				}
				// A new automations file session asks the runner to apply the
				// file again.
				e, err := st.FindEnvironmentByID(ctx, orgID, id)
				mustOK(t, err, "read the environment")
				if !e.Spec.AutomationsFile.FilePending() {
					t.Error("a new automations file session requested no file apply")
				}
			})

			t.Run("SpecFields", func(t *testing.T) {
				// The environment runs (RunningEnvironment): these change
				// while it does.
				keyB := testSSHKey(t, 7, "b@host")
				type port = gitpodv1.UpdateEnvironmentRequest_Spec_Port
				type key = gitpodv1.UpdateEnvironmentRequest_Spec_SSHPublicKey
				spec := func(f func(s *gitpodv1.UpdateEnvironmentRequest_Spec)) *gitpodv1.UpdateEnvironmentRequest {
					s := &gitpodv1.UpdateEnvironmentRequest_Spec{}
					f(s)
					return &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: s}
				}
				type want struct {
					ports   []int32 // spec.ports, and so status.environmentUrls.ports
					keys    []string
					timeout time.Duration
				}
				for i, tc := range []struct {
					name string
					req  *gitpodv1.UpdateEnvironmentRequest
					want want
				}{
					{"PortsSet", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.Ports = []*port{{Port: 8080, Name: "web", Admission: gitpodv1.AdmissionLevel_ADMISSION_LEVEL_EVERYONE}, {Port: 3000}}
					}), want{ports: []int32{8080, 3000}}},
					{"PortsReplaced", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.Ports = []*port{{Port: 5432, Name: "db", Admission: gitpodv1.AdmissionLevel_ADMISSION_LEVEL_OWNER_ONLY}}
					}), want{ports: []int32{5432}}},
					{"KeySet", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.SshPublicKeys = []*key{{Id: "laptop", Value: ptr(sshKey)}}
					}), want{ports: []int32{5432}, keys: []string{"laptop=" + sshKey}}},
					{"KeyAddedAndChanged", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.SshPublicKeys = []*key{{Id: "ci", Value: ptr(sshKey)}, {Id: "laptop", Value: ptr(keyB)}}
					}), want{ports: []int32{5432}, keys: []string{"laptop=" + keyB, "ci=" + sshKey}}},
					{"KeyRemoved", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.SshPublicKeys = []*key{{Id: "laptop"}, {Id: "absent"}}
					}), want{ports: []int32{5432}, keys: []string{"ci=" + sshKey}}},
					{"TimeoutSet", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.Timeout = &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(time.Hour)}
					}), want{ports: []int32{5432}, keys: []string{"ci=" + sshKey}, timeout: time.Hour}},
					{"TimeoutChanged", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.Timeout = &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(45 * time.Minute)}
					}), want{ports: []int32{5432}, keys: []string{"ci=" + sshKey}, timeout: 45 * time.Minute}},
					{"TimeoutDisabledKeyRemoved", spec(func(s *gitpodv1.UpdateEnvironmentRequest_Spec) {
						s.Timeout = &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(0)}
						s.SshPublicKeys = []*key{{Id: "ci", Value: ptr("")}}
					}), want{ports: []int32{5432}}},
				} {
					t.Run(tc.name, func(t *testing.T) {
						// Every protocol in turn.
						c := newEnvClient(t, ts.URL, protocols[i%len(protocols)], bearer(testutil.AdminToken))
						before := mustGetEnvironment(t, c, id)
						mustOK(t, updateEnv(c, tc.req), "update")
						e := mustGetEnvironment(t, c, id)
						var got want
						for _, p := range e.GetSpec().GetPorts() {
							got.ports = append(got.ports, p.GetPort())
						}
						var urls []int32
						for _, p := range e.GetStatus().GetEnvironmentUrls().GetPorts() {
							urls = append(urls, p.GetPort())
						}
						for _, k := range e.GetSpec().GetSshPublicKeys() {
							got.keys = append(got.keys, k.GetId()+"="+k.GetValue())
						}
						got.timeout = e.GetSpec().GetTimeout().GetDisconnected().AsDuration()
						if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(urls, tc.want.ports) {
							t.Fatalf("after the update %+v (status.environmentUrls.ports %v), want %+v", got, urls, tc.want)
						}
						if e.GetSpec().GetSpecVersion() != before.GetSpec().GetSpecVersion()+1 || e.GetStatus().GetPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
							t.Errorf("specVersion %d -> %d, phase %v", before.GetSpec().GetSpecVersion(), e.GetSpec().GetSpecVersion(), e.GetStatus().GetPhase())
						}
						// The same request again changes nothing.
						mustOK(t, updateEnv(c, tc.req), "update again")
						diffProto(t, "after the same update again", mustGetEnvironment(t, c, id), e)
					})
				}
			})

			t.Run("BadInputChangesNothing", func(t *testing.T) {
				before := mustGetEnvironment(t, admin, id)
				for _, tc := range []struct {
					name  string
					req   *gitpodv1.UpdateEnvironmentRequest
					code  connect.Code
					field string
				}{
					{"BadID", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: "nope"}, connect.CodeInvalidArgument, "environmentId"},
					{"UnknownID", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: uuid.NewString()}, connect.CodeNotFound, ""},
					{"BlankName", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Metadata: &gitpodv1.UpdateEnvironmentRequest_Metadata{Name: ptr(" ")}}, connect.CodeInvalidArgument, "metadata.name"},
					{"AbsoluteAutomationsPath", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						AutomationsFile: &gitpodv1.UpdateEnvironmentRequest_Spec_AutomationsFile{AutomationsFilePath: ptr("/etc/passwd")}}}, connect.CodeInvalidArgument, "spec.automationsFile.automationsFilePath"},
					{"GitEmailControl", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{GitEmail: ptr("a\x01b")}}}, connect.CodeInvalidArgument, "spec.content.gitEmail"},
					{"BadRemote", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Content: &gitpodv1.UpdateEnvironmentRequest_Spec_Content{Initializer: &gitpodv1.EnvironmentInitializer{Specs: []*gitpodv1.EnvironmentInitializer_Spec{{
							Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{Git: &gitpodv1.GitInitializer{RemoteUri: "--upload-pack=x"}}}}}}}}, connect.CodeInvalidArgument, "spec.content.initializer.specs[0].git.remoteUri"},
					{"PortTwice", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Ports: []*gitpodv1.UpdateEnvironmentRequest_Spec_Port{{Port: 8080, Name: "web"}, {Port: 8080}}}}, connect.CodeInvalidArgument, "spec.ports[1].port"},
					{"PortAdmissionNumber", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Ports: []*gitpodv1.UpdateEnvironmentRequest_Spec_Port{{Port: 8080, Admission: 99}}}}, connect.CodeInvalidArgument, "spec.ports[0].admission"},
					{"SSHKeyValue", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						SshPublicKeys: []*gitpodv1.UpdateEnvironmentRequest_Spec_SSHPublicKey{{Id: "good", Value: ptr(sshKey)}, {Id: "k", Value: ptr("ssh-ed25519 AAAA")}}}}, connect.CodeInvalidArgument, "spec.sshPublicKeys[1].value"},
					{"SSHKeyWithoutID", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						SshPublicKeys: []*gitpodv1.UpdateEnvironmentRequest_Spec_SSHPublicKey{{Value: ptr(sshKey)}}}}, connect.CodeInvalidArgument, "spec.sshPublicKeys[0].id"},
					{"TimeoutShort", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Timeout: &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(10 * time.Minute)}}}, connect.CodeInvalidArgument, "spec.timeout.disconnected"},
					{"TimeoutNotADuration", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Timeout: &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: &durationpb.Duration{Seconds: 3600, Nanos: -1}}}}, connect.CodeInvalidArgument, "spec.timeout.disconnected"},
					{"GoodPortsBadTimeout", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Ports:   []*gitpodv1.UpdateEnvironmentRequest_Spec_Port{{Port: 9999}},
						Timeout: &gitpodv1.UpdateEnvironmentRequest_Spec_Timeout{Disconnected: durationpb.New(time.Minute)}}}, connect.CodeInvalidArgument, "spec.timeout.disconnected"},
					{"Devcontainer", &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Spec: &gitpodv1.UpdateEnvironmentRequest_Spec{
						Devcontainer: &gitpodv1.UpdateEnvironmentRequest_Spec_Devcontainer{DevcontainerFilePath: ptr(".devcontainer/devcontainer.json")}}}, connect.CodeInvalidArgument, "spec.devcontainer.devcontainerFilePath"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						err := updateEnv(admin, tc.req)
						if tc.field != "" {
							wantCode(t, err, tc.code, tc.field+":")
						} else {
							wantCode(t, err, tc.code)
						}
					})
				}
				diffProto(t, "after the refused updates", mustGetEnvironment(t, admin, id), before)
			})

			t.Run("VendorJSON", func(t *testing.T) {
				raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
				path := gitpodv1connect.EnvironmentServiceUpdateEnvironmentProcedure
				var out map[string]any
				raw.post(t, path, `{"environmentId":`+jsonString(id)+`,"metadata":{"name":"from-json"},"spec":{"content":{"gitEmail":"json@example.test","gitUsername":"json"},"automationsFile":{"automationsFilePath":".gitpod/automations.yaml","session":"s2"}}}`).wantOK(t, &out)
				if len(out) != 0 {
					t.Errorf("response %v, want {}", out)
				}
				if got := mustGetEnvironment(t, admin, id).GetMetadata().GetName(); got != "from-json" {
					t.Errorf("name %q after the JSON update", got)
				}
				// The vendor's documented example (with a real key), ports
				// and a timeout as the vendor's SDKs send them.
				const keyID = "0194b7c1-c954-718d-91a4-9a742aa5fc11"
				raw.post(t, path, `{"environmentId":`+jsonString(id)+`,"spec":{"sshPublicKeys":[{"id":"`+keyID+`","value":`+jsonString(sshKey)+`}],`+
					`"ports":[{"port":3000,"name":"app","admission":"ADMISSION_LEVEL_EVERYONE"}],"timeout":{"disconnected":"5400s"}}}`).wantOK(t, nil)
				e := mustGetEnvironment(t, admin, id)
				if k := e.GetSpec().GetSshPublicKeys(); len(k) != 1 || k[0].GetId() != keyID || k[0].GetValue() != sshKey {
					t.Errorf("spec.sshPublicKeys %v", k)
				}
				if p := e.GetSpec().GetPorts(); len(p) != 1 || p[0].GetPort() != 3000 || p[0].GetAdmission() != gitpodv1.AdmissionLevel_ADMISSION_LEVEL_EVERYONE {
					t.Errorf("spec.ports %v", p)
				}
				if d := e.GetSpec().GetTimeout().GetDisconnected().AsDuration(); d != 90*time.Minute {
					t.Errorf("spec.timeout.disconnected %s", d)
				}
				// A key with a null value is removed; empty lists change nothing;
				// "0s" disables the inactivity stop.
				raw.post(t, path, `{"environmentId":`+jsonString(id)+`,"spec":{"sshPublicKeys":[{"id":"`+keyID+`","value":null}],"ports":[],"timeout":{"disconnected":"0s"}}}`).wantOK(t, nil)
				e = mustGetEnvironment(t, admin, id)
				if len(e.GetSpec().GetSshPublicKeys()) != 0 || len(e.GetSpec().GetPorts()) != 1 || e.GetSpec().GetTimeout() != nil {
					t.Errorf("after removing the key and the timeout: %v", e.GetSpec())
				}
				raw.post(t, path, `{"environmentId":`+jsonString(id)+`,"spec":{"sshPublicKeys":[{"id":"k","value":"ssh-rsa nope"}]}}`).
					wantError(t, http.StatusBadRequest, "invalid_argument", "spec.sshPublicKeys[0].value")
				raw.post(t, path, `{"environmentId":`+jsonString(id)+`,"spec":{"ports":[{"port":3000,"admission":"ADMISSION_LEVEL_SOMETIMES"}]}}`).
					wantError(t, http.StatusBadRequest, "invalid_argument")
			})

			t.Run("BeingDeleted", func(t *testing.T) {
				_, err := admin.Envs.DeleteEnvironment(ctx, connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id}))
				mustOK(t, err, "delete")
				err = updateEnv(admin, &gitpodv1.UpdateEnvironmentRequest{EnvironmentId: id, Metadata: &gitpodv1.UpdateEnvironmentRequest_Metadata{Name: ptr("late")}})
				wantCode(t, err, connect.CodeFailedPrecondition, "being deleted")
			})
		})
	}
}

// getLog reads a log URL path with an Authorization header.
func getLog(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	mustOK(t, err, "new request")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	mustOK(t, err, "GET "+url)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestEnvironments_LogsToken checks what a logs token may read. No runner
// daemon runs here, so a log it may read answers 503 (runner not
// connected) after authorization; reading real logs with it is
// internal/sdktest's scenario.
func TestEnvironments_LogsToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		runnerA := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
		runnerB := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
		envOf := func(runner string) string {
			return mustCreateEnvironment(t, admin, mustClassOf(t, admin, runner)).GetId()
		}
		env1, env3, env2 := envOf(runnerA), envOf(runnerA), envOf(runnerB)
		execOf := func(env string) string {
			res, err := admin.Autos.CreateTask(ctx, connect.NewRequest(&gitpodv1.CreateTaskRequest{
				EnvironmentId: env, Metadata: &gitpodv1.TaskMetadata{Reference: "t"}, Spec: &gitpodv1.TaskSpec{Command: "true"},
			}))
			mustOK(t, err, "create task")
			return mustStartTask(t, admin, res.Msg.GetTask().GetId()).GetId()
		}
		exec1, exec3, exec2 := execOf(env1), execOf(env3), execOf(env2)

		var tokens []string
		for _, p := range protocols {
			c := newEnvClient(t, ts.URL, p, bearer(testutil.AdminToken))
			res, err := c.Envs.CreateEnvironmentLogsToken(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: env1}))
			mustOK(t, err, "create a logs token over "+p.name)
			if !strings.HasPrefix(res.Msg.GetAccessToken(), identity.LogsTokenPrefix) {
				t.Fatalf("logs token %q", res.Msg.GetAccessToken())
			}
			tokens = append(tokens, res.Msg.GetAccessToken())
		}
		tok := bearer(tokens[0])
		logURL := func(runner, log string) string { return ts.URL + "/logs/" + runner + "/" + log }

		for _, tc := range []struct {
			name, url, auth string
			status          int
		}{
			{"ItsExecution", logURL(runnerA, exec1), tok, http.StatusServiceUnavailable},
			{"AnotherEnvironmentsExecution", logURL(runnerA, exec3), tok, http.StatusForbidden},
			{"AnotherRunner", logURL(runnerB, exec2), tok, http.StatusForbidden},
			{"AnotherRunnerItsExecutionID", logURL(runnerB, exec1), tok, http.StatusForbidden},
			{"UnknownLog", logURL(runnerA, uuid.NewString()), tok, http.StatusForbidden},
			{"Tampered", logURL(runnerA, exec1), tok[:len(tok)-3] + "AAA", http.StatusUnauthorized},
			{"NoToken", logURL(runnerA, exec1), "", http.StatusUnauthorized},
			{"AdminKeyAnyLog", logURL(runnerA, exec3), bearer(testutil.AdminToken), http.StatusServiceUnavailable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, body := getLog(t, tc.url, tc.auth); status != tc.status {
					t.Fatalf("GET %s: %d %s, want %d", tc.url, status, body, tc.status)
				}
			})
		}

		t.Run("ReadsLogsOnly", func(t *testing.T) {
			for _, p := range protocols {
				c := newEnvClient(t, ts.URL, p, tok)
				_, err := c.Envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: env1}))
				wantCode(t, err, connect.CodePermissionDenied)
				_, err = c.Envs.CreateEnvironmentLogsToken(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: env1}))
				wantCode(t, err, connect.CodePermissionDenied)
				_, err = c.Identity.GetIDToken(ctx, connect.NewRequest(&gitpodv1.GetIDTokenRequest{Audience: []string{"x"}}))
				wantCode(t, err, connect.CodePermissionDenied)
			}
		})

		t.Run("BadRequests", func(t *testing.T) {
			_, err := admin.Envs.CreateEnvironmentLogsToken(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: "x"}))
			wantCode(t, err, connect.CodeInvalidArgument, "environmentId")
			_, err = admin.Envs.CreateEnvironmentLogsToken(ctx, connect.NewRequest(&gitpodv1.CreateEnvironmentLogsTokenRequest{EnvironmentId: uuid.NewString()}))
			wantCode(t, err, connect.CodeNotFound)
		})
	})
}

// TestIdentity_GetIDToken verifies ID tokens as a third party would: the
// discovery document, its JWKS, then the token with go-jose.
func TestIdentity_GetIDToken(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServer(t, backend)
			admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			me := whoami(t, admin)
			keys := fetchJWKS(t, ts.URL)
			for _, p := range protocols {
				c := newClient(t, ts.URL, p, bearer(testutil.AdminToken))
				res, err := c.Identity.GetIDToken(ctx, connect.NewRequest(&gitpodv1.GetIDTokenRequest{
					Audience: []string{"https://one.example", "https://two.example"}, Version: gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V1,
				}))
				mustOK(t, err, "GetIDToken over "+p.name)
				tok, err := jwt.ParseSigned(res.Msg.GetToken(), []jose.SignatureAlgorithm{jose.ES256})
				mustOK(t, err, "parse the ID token")
				var claims identity.IDTokenClaims
				mustOK(t, tok.Claims(keys, &claims), "verify the ID token with the JWKS")
				mustOK(t, claims.Validate(jwt.Expected{Issuer: ts.URL, AnyAudience: jwt.Audience{"https://two.example"}, Time: time.Now()}), "claims")
				if claims.Subject != me.GetSubject().GetId() || claims.OrganizationID != me.GetOrganizationId() || claims.Principal != identity.PrincipalServiceAccount {
					t.Errorf("claims %+v, caller %v", claims, me)
				}
			}
			_, err := admin.Identity.GetIDToken(ctx, connect.NewRequest(&gitpodv1.GetIDTokenRequest{}))
			wantCode(t, err, connect.CodeInvalidArgument, "audience")
			_, err = admin.Identity.GetIDToken(ctx, connect.NewRequest(&gitpodv1.GetIDTokenRequest{Audience: []string{"x"}, Version: 99}))
			wantCode(t, err, connect.CodeInvalidArgument, "version")

			if backend == testutil.Postgres {
				// Every replica signs with the same key.
				replica := testutil.StartServerWith(t, backend, testutil.Options{DatabaseURL: ts.DatabaseURL()})
				if other := fetchJWKS(t, replica.URL); other.Keys[0].KeyID != keys.Keys[0].KeyID {
					t.Errorf("replica key %s, first server's %s", other.Keys[0].KeyID, keys.Keys[0].KeyID)
				}
			}
		})
	}
}

func fetchJWKS(t *testing.T, url string) *jose.JSONWebKeySet {
	t.Helper()
	var conf struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSONDoc(t, url+"/.well-known/openid-configuration", &conf)
	if conf.Issuer != url || conf.JWKSURI != url+"/.well-known/jwks.json" || len(conf.Algs) != 1 || conf.Algs[0] != "ES256" {
		t.Fatalf("openid-configuration %+v", conf)
	}
	var keys jose.JSONWebKeySet
	getJSONDoc(t, conf.JWKSURI, &keys)
	if len(keys.Keys) != 1 || !keys.Keys[0].IsPublic() || keys.Keys[0].KeyID == "" || keys.Keys[0].Use != "sig" {
		t.Fatalf("JWKS %+v", keys)
	}
	return &keys
}

func getJSONDoc(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	mustOK(t, err, "GET "+url)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %s %s", url, res.Status, res.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(res.Body)
	mustOK(t, err, "read "+url)
	mustOK(t, json.Unmarshal(b, v), "decode "+url)
}

// testSSHKey is an authorized_keys line of an ed25519 key made from seed.
func testSSHKey(t *testing.T, seed byte, comment string) string {
	t.Helper()
	b := make([]byte, ed25519.SeedSize)
	b[0] = seed
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(b).Public())
	mustOK(t, err, "ssh public key")
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}
