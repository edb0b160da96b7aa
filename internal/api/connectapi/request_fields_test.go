package connectapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/testutil"
)

// Request fields the vendor documents, sent as JSON the way its SDKs send
// them: accepted and recorded where runyard honours them, refused naming
// the JSON path where it cannot and the value is not the default, and
// unknown fields still refused.

const (
	pathCreateEnvironment = gitpodv1connect.EnvironmentServiceCreateEnvironmentProcedure
	pathGetEnvironment    = gitpodv1connect.EnvironmentServiceGetEnvironmentProcedure
	pathMarkActive        = gitpodv1connect.EnvironmentServiceMarkEnvironmentActiveProcedure
	pathParseContextURL   = gitpodv1connect.RunnerServiceParseContextURLProcedure
	sshKey                = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"
)

// envJSON is the part of an environment these tests read.
type envJSON struct {
	Environment struct {
		ID       string `json:"id"`
		Metadata struct {
			Name               string `json:"name"`
			OriginalContextURL string `json:"originalContextUrl"`
		} `json:"metadata"`
		Spec struct {
			DesiredPhase string `json:"desiredPhase"`
			Ports        []struct {
				Port      int    `json:"port"`
				Name      string `json:"name"`
				Admission string `json:"admission"`
			} `json:"ports"`
			SSHPublicKeys []struct{ ID, Value string } `json:"sshPublicKeys"`
			Timeout       struct {
				Disconnected string `json:"disconnected"`
			} `json:"timeout"`
			Admission string `json:"admission"`
			Content   struct {
				Initializer struct {
					Specs []struct {
						Git struct {
							RemoteURI   string `json:"remoteUri"`
							TargetMode  string `json:"targetMode"`
							CloneTarget string `json:"cloneTarget"`
						} `json:"git"`
					} `json:"specs"`
				} `json:"initializer"`
			} `json:"content"`
		} `json:"spec"`
		Status struct {
			ActivitySignal *struct {
				Source    string `json:"source"`
				Timestamp string `json:"timestamp"`
			} `json:"activitySignal"`
			EnvironmentURLs struct {
				Ports []struct {
					Port int `json:"port"`
				} `json:"ports"`
			} `json:"environmentUrls"`
			Machine struct {
				Timeout string `json:"timeout"`
			} `json:"machine"`
		} `json:"status"`
	} `json:"environment"`
}

func TestRequestFields_Environment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
		class := mustClassOf(t, admin, mustCreateLinuxRunner(t, admin.client).GetRunnerId())
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		create := func(specFields string) rawResponse {
			return raw.post(t, "/"+pathCreateEnvironment, fmt.Sprintf(`{"spec":{"machine":{"class":%q}%s}}`, class, specFields))
		}

		t.Run("Recorded", func(t *testing.T) {
			var created envJSON
			create(`,"ports":[{"port":8080,"name":"web","admission":"ADMISSION_LEVEL_EVERYONE"},{"port":3000}],
				"sshPublicKeys":[{"id":"laptop","value":`+jsonString(sshKey)+`}],
				"timeout":{"disconnected":"3600s"},"admission":"ADMISSION_LEVEL_OWNER_ONLY",
				"devcontainer":{"session":"s1","dotfiles":{"repository":""}},"secrets":[]`).wantOK(t, &created)
			var got envJSON
			raw.post(t, "/"+pathGetEnvironment, fmt.Sprintf(`{"environmentId":%q}`, created.Environment.ID)).wantOK(t, &got)
			s := got.Environment.Spec
			if len(s.Ports) != 2 || s.Ports[0].Port != 8080 || s.Ports[0].Name != "web" || s.Ports[0].Admission != "ADMISSION_LEVEL_EVERYONE" || s.Ports[1].Port != 3000 {
				t.Errorf("spec.ports %+v", s.Ports)
			}
			if len(s.SSHPublicKeys) != 1 || s.SSHPublicKeys[0].ID != "laptop" || s.SSHPublicKeys[0].Value != sshKey {
				t.Errorf("spec.sshPublicKeys %+v", s.SSHPublicKeys)
			}
			if s.Timeout.Disconnected != "3600s" || s.Admission != "ADMISSION_LEVEL_OWNER_ONLY" {
				t.Errorf("spec.timeout %+v admission %q", s.Timeout, s.Admission)
			}
			if p := got.Environment.Status.EnvironmentURLs.Ports; len(p) != 2 || p[0].Port != 8080 || p[1].Port != 3000 {
				t.Errorf("status.environmentUrls.ports %+v, want the spec's ports", p)
			}
		})

		t.Run("VendorExamples", func(t *testing.T) {
			// The three CreateEnvironment examples of the vendor's SDK
			// documentation, as JSON.
			for _, fields := range []string{
				`,"content":{"initializer":{"specs":[{"contextUrl":{"url":"https://github.com/gitpod-io/gitpod"}}]}}`,
				`,"content":{"initializer":{"specs":[{"git":{"remoteUri":"https://github.com/gitpod-io/gitpod","cloneTarget":"main","targetMode":"CLONE_TARGET_MODE_REMOTE_BRANCH"}}]}}`,
				`,"content":{"initializer":{"specs":[{"contextUrl":{"url":"https://github.com/gitpod-io/gitpod"}}]}},
				  "timeout":{"disconnected":"7200s"},"ports":[{"port":3000,"admission":"ADMISSION_LEVEL_EVERYONE","name":"Web App"}]`,
			} {
				var got envJSON
				create(fields).wantOK(t, &got)
				if got.Environment.Metadata.Name != "gitpod" {
					t.Errorf("created %+v", got.Environment.Metadata)
				}
			}
		})

		t.Run("RefusedWhenSet", func(t *testing.T) {
			for _, tc := range []struct{ fields, field string }{
				{`,"devcontainer":{"devcontainerFilePath":".devcontainer/devcontainer.json"}`, "spec.devcontainer.devcontainerFilePath"},
				{`,"devcontainer":{"defaultDevcontainerImage":"ubuntu:24.04"}`, "spec.devcontainer.defaultDevcontainerImage"},
				{`,"devcontainer":{"dotfiles":{"repository":"https://github.com/me/dotfiles"}}`, "spec.devcontainer.dotfiles"},
				{`,"secrets":[{"id":"6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d","environmentVariable":"TOKEN"}]`, "spec.secrets"},
				{`,"timeout":{"disconnected":"600s"}`, "spec.timeout.disconnected"},
				{`,"ports":[{"port":70000}]`, "spec.ports[0].port"},
				{`,"sshPublicKeys":[{"id":"k","value":"not a key"}]`, "spec.sshPublicKeys[0].value"},
				{`,"content":{"initializer":{"specs":[{"contextUrl":{"url":"https://github.com/org"}}]}}`, "spec.content.initializer.specs[0].contextUrl.url"},
			} {
				create(tc.fields).wantError(t, http.StatusBadRequest, "invalid_argument", tc.field+": ")
			}
			// Undocumented fields are refused as before.
			create(`,"timeout":{"disconnected":"3600s","idle":"1s"}`).wantError(t, http.StatusBadRequest, "invalid_argument", "idle")
			create(`,"gpu":true`).wantError(t, http.StatusBadRequest, "invalid_argument", "gpu")
		})

		t.Run("ContextURL", func(t *testing.T) {
			// The vendor's documented first example.
			const url = "https://github.com/org/repo/tree/branch"
			var created envJSON
			create(`,"content":{"initializer":{"specs":[{"contextUrl":{"url":`+jsonString(url)+`}}]}}`).wantOK(t, &created)
			e := created.Environment
			if e.Metadata.OriginalContextURL != url || e.Metadata.Name != "repo" {
				t.Errorf("metadata %+v", e.Metadata)
			}
			if specs := e.Spec.Content.Initializer.Specs; len(specs) != 1 || specs[0].Git.RemoteURI != "https://github.com/org/repo.git" ||
				specs[0].Git.TargetMode != "CLONE_TARGET_MODE_REMOTE_BRANCH" || specs[0].Git.CloneTarget != "branch" {
				t.Errorf("initializer %+v, want the git initializer of the URL", specs)
			}
		})

		t.Run("MarkEnvironmentActive", func(t *testing.T) {
			var created envJSON
			create(`,"timeout":{"disconnected":"1800s"}`).wantOK(t, &created)
			id := created.Environment.ID
			raw.post(t, "/"+pathMarkActive, fmt.Sprintf(`{"environmentId":%q,"activitySignal":{"source":"VS Code","timestamp":"2025-02-12T14:30:00Z"}}`, id)).wantOK(t, nil)
			var got envJSON
			raw.post(t, "/"+pathGetEnvironment, fmt.Sprintf(`{"environmentId":%q}`, id)).wantOK(t, &got)
			if a := got.Environment.Status.ActivitySignal; a == nil || a.Source != "VS Code" || a.Timestamp != "2025-02-12T14:30:00Z" {
				t.Errorf("status.activitySignal %+v", a)
			}
			raw.post(t, "/"+pathMarkActive, `{"environmentId":"x"}`).wantError(t, http.StatusBadRequest, "invalid_argument", "environmentId")
			raw.post(t, "/"+pathMarkActive, fmt.Sprintf(`{"environmentId":%q,"activitySignal":{"sauce":"x"}}`, id)).wantError(t, http.StatusBadRequest, "invalid_argument", "sauce")
		})

		t.Run("ListFilter", func(t *testing.T) {
			raw.post(t, "/"+pathListEnvironments, `{"filter":{"projectIds":["6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d"]}}`).
				wantError(t, http.StatusBadRequest, "invalid_argument", "filter.projectIds")
			var all, archived struct{ Environments []json.RawMessage }
			raw.post(t, "/"+pathListEnvironments, `{"filter":{"archivalStatus":"ARCHIVAL_STATUS_ACTIVE","projectIds":[]}}`).wantOK(t, &all)
			raw.post(t, "/"+pathListEnvironments, `{"filter":{"archivalStatus":"ARCHIVAL_STATUS_ARCHIVED"}}`).wantOK(t, &archived)
			if len(all.Environments) == 0 || len(archived.Environments) != 0 {
				t.Errorf("active lists %d, archived %d: want some and none", len(all.Environments), len(archived.Environments))
			}
		})
	})
}

func TestRequestFields_ParseContextURL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
		runnerID := mustCreateLinuxRunner(t, admin.client).GetRunnerId()
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		var got struct {
			OriginalContextURL string            `json:"originalContextUrl"`
			Git                map[string]string `json:"git"`
			ProjectIDs         []string          `json:"projectIds"`
		}
		raw.post(t, "/"+pathParseContextURL, fmt.Sprintf(`{"contextUrl":"https://gitlab.com/group/sub/repo/-/merge_requests/12","runnerId":%q}`, runnerID)).wantOK(t, &got)
		want := map[string]string{"host": "gitlab.com", "owner": "group/sub", "repo": "repo",
			"cloneUrl": "https://gitlab.com/group/sub/repo.git", "branch": "refs/merge-requests/12/head"}
		if got.OriginalContextURL != "https://gitlab.com/group/sub/repo/-/merge_requests/12" || fmt.Sprint(got.Git) != fmt.Sprint(want) {
			t.Errorf("parsed %+v, want git %v", got, want)
		}
		got.Git = nil
		raw.post(t, "/"+pathParseContextURL, `{"contextUrl":"https://github.com/org/repo/commit/0123abcd"}`).wantOK(t, &got)
		if got.Git["commit"] != "0123abcd" || got.Git["branch"] != "" {
			t.Errorf("commit URL parsed as %v", got.Git)
		}
		raw.post(t, "/"+pathParseContextURL, `{"contextUrl":"ftp://example.com/x"}`).wantError(t, http.StatusBadRequest, "invalid_argument", "contextUrl: ")
		raw.post(t, "/"+pathParseContextURL, `{"contextUrl":""}`).wantError(t, http.StatusBadRequest, "invalid_argument", "contextUrl: is required")
		raw.post(t, "/"+pathParseContextURL, `{"contextUrl":"https://github.com/a/b","runnerId":"6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d"}`).
			wantError(t, http.StatusNotFound, "not_found")
	})
}

func TestRequestFields_Secrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		var created struct {
			Secret map[string]any `json:"secret"`
		}
		raw.post(t, "/"+pathCreateSecret, `{"name":"registry","value":"me:pw","containerRegistryBasicAuthHost":"registry.example.com:5000"}`).wantOK(t, &created)
		if h := created.Secret["containerRegistryBasicAuthHost"]; h != "registry.example.com:5000" {
			t.Errorf("created secret %v, want its registry host", created.Secret)
		}
		var list struct {
			Secrets []map[string]any `json:"secrets"`
		}
		// The deprecated filter.projectIds is ignored, as the vendor documents.
		raw.post(t, "/"+pathListSecrets, `{"filter":{"projectIds":["6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d"]}}`).wantOK(t, &list)
		if len(list.Secrets) != 1 || list.Secrets[0]["containerRegistryBasicAuthHost"] != "registry.example.com:5000" {
			t.Errorf("listed %v", list.Secrets)
		}
		for _, tc := range []struct{ body, field string }{
			{`{"name":"a","value":"v","containerRegistryBasicAuthHost":"https://ghcr.io/x"}`, "containerRegistryBasicAuthHost"},
			{`{"name":"b","value":"v","containerRegistryBasicAuthHost":"ghcr.io:99999"}`, "containerRegistryBasicAuthHost"},
			{`{"name":"c","value":"v","projectId":"6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d"}`, "projectId"},
			{`{"name":"d","value":"v","scope":{"projectId":"6f7f1a4e-3b51-4b88-9d7a-7a0f5c6f7e6d"}}`, "scope.projectId"},
		} {
			raw.post(t, "/"+pathCreateSecret, tc.body).wantError(t, http.StatusBadRequest, "invalid_argument", tc.field+": ")
		}
	})
}

// TestInactivityStop_Server: a live control plane stops an environment
// whose spec.timeout.disconnected passed without activity, and says why in
// status.machine.timeout. The environment's start is moved back in its
// database, as waiting half an hour is not a test.
func TestInactivityStop_Server(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts := testutil.StartServerWith(t, backend, testutil.Options{InactivitySweep: 50 * time.Millisecond})
			st := ts.OpenStore(t)
			admin := newEnvClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
			class := mustClassOf(t, admin, mustCreateLinuxRunner(t, admin.client).GetRunnerId())
			raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
			var idle, kept envJSON
			raw.post(t, "/"+pathCreateEnvironment, fmt.Sprintf(`{"spec":{"machine":{"class":%q},"timeout":{"disconnected":"1800s"}}}`, class)).wantOK(t, &idle)
			raw.post(t, "/"+pathCreateEnvironment, fmt.Sprintf(`{"spec":{"machine":{"class":%q},"timeout":{"disconnected":"1800s"}}}`, class)).wantOK(t, &kept)
			org := mustGetEnvironment(t, admin, idle.Environment.ID).GetMetadata().GetOrganizationId()
			// Activity now keeps one running: marked before the starts move
			// back, so no sweep in between finds it idle.
			raw.post(t, "/"+pathMarkActive, fmt.Sprintf(`{"environmentId":%q,"activitySignal":{"source":"SSH"}}`, kept.Environment.ID)).wantOK(t, nil)
			past := time.Now().Add(-time.Hour)
			for _, id := range []string{idle.Environment.ID, kept.Environment.ID} {
				_, err := st.UpdateEnvironment(context.Background(), org, id, func(e *environments.Environment) error {
					e.LastStartedAt = &past
					return nil
				})
				mustOK(t, err, "move the start back")
			}

			deadline := time.Now().Add(20 * time.Second)
			var got envJSON
			for {
				raw.post(t, "/"+pathGetEnvironment, fmt.Sprintf(`{"environmentId":%q}`, idle.Environment.ID)).wantOK(t, &got)
				if got.Environment.Spec.DesiredPhase == "ENVIRONMENT_PHASE_STOPPED" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the idle environment was not stopped: desired phase %s", got.Environment.Spec.DesiredPhase)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if m := got.Environment.Status.Machine.Timeout; !strings.Contains(m, "30m0s without activity") {
				t.Errorf("status.machine.timeout %q", m)
			}
			raw.post(t, "/"+pathGetEnvironment, fmt.Sprintf(`{"environmentId":%q}`, kept.Environment.ID)).wantOK(t, &got)
			if p := got.Environment.Spec.DesiredPhase; p != "ENVIRONMENT_PHASE_RUNNING" {
				t.Errorf("the environment marked active is %s", p)
			}
		})
	}
}
