package connectapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/testutil"
)

// fullStatus sets every field of a runner's status to a value other than
// its zero value, so that a field the store or the converter drops shows.
// The public key holds bytes whose standard base64 has '+', '/' and '='.
func fullStatus() runners.Status {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf8 + i%8)
	}
	return runners.Status{
		Version:       "1.2.3-status",
		SystemDetails: "linux/amd64 status-host",
		Phase:         runners.PhaseDegraded,
		Message:       "pod manager: out of disk",
		Region:        "eu-central-1",
		AdditionalInfo: []runners.FieldValue{
			{Key: "kernel", Value: "6.1.0"},
			{Key: "zone", Value: "eu-central-1b"},
		},
		Capabilities: []runners.Capability{
			"RUNNER_CAPABILITY_AGENT_EXECUTION",
			"RUNNER_CAPABILITY_SECRET_CONTAINER_REGISTRY",
			"RUNNER_CAPABILITY_PORT_AUTHENTICATION",
		},
		LogURL: "https://logs.example.com/runner/status",
		Gateway: &runners.GatewayInfo{
			Name: "gw-frankfurt", URL: "https://gw.example.com", Region: "eu-central-1",
			Latency: 1500 * time.Millisecond,
		},
		PublicKey:        key,
		SupportBundleURL: "https://support.example.com/bundle/status",
		LLMURL:           "https://llm.example.com/v1",
	}
}

// TestRunners_StatusRoundTrip writes a runner's whole status through the
// store, as the fleet does, and reads it back with GetRunner over real HTTP:
// every field of RunnerStatus in the JSON exactly as protojson renders it
// (enum names, an RFC 3339 timestamp with microseconds, a duration string,
// standard base64 for bytes), then the same status over binary protobuf and
// in ListRunners.
func TestRunners_StatusRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		st := ts.OpenStore(t)
		admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		org := whoami(t, admin).GetOrganizationId()
		created := mustCreateLinuxRunner(t, admin)
		id := created.GetRunnerId()

		status := fullStatus()
		// Fresh enough that the fleet's sweep leaves the runner alone for the
		// test's few seconds; with microseconds so that their loss shows.
		lastSeen := time.Now().UTC().Truncate(time.Second).Add(123456 * time.Microsecond)
		_, err := st.UpdateRunner(ctx, org, id, func(r *runners.Runner) error {
			r.Status = status
			r.LastSeen = lastSeen
			return nil
		})
		mustOK(t, err, "write the runner's status")

		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		res := raw.post(t, pathGetRunner, `{"runnerId":`+jsonString(id)+`}`)
		var body struct {
			Runner struct {
				Status map[string]any `json:"status"`
			} `json:"runner"`
		}
		res.wantOK(t, &body)
		want := map[string]any{
			"updatedAt":     "", // filled below
			"version":       "1.2.3-status",
			"systemDetails": "linux/amd64 status-host",
			"phase":         "RUNNER_PHASE_DEGRADED",
			"message":       "pod manager: out of disk",
			"region":        "eu-central-1",
			"additionalInfo": []any{
				map[string]any{"key": "kernel", "value": "6.1.0"},
				map[string]any{"key": "zone", "value": "eu-central-1b"},
			},
			"capabilities": []any{
				"RUNNER_CAPABILITY_AGENT_EXECUTION",
				"RUNNER_CAPABILITY_SECRET_CONTAINER_REGISTRY",
				"RUNNER_CAPABILITY_PORT_AUTHENTICATION",
			},
			"logUrl": "https://logs.example.com/runner/status",
			"gatewayInfo": map[string]any{
				"gateway": map[string]any{"name": "gw-frankfurt", "url": "https://gw.example.com", "region": "eu-central-1"},
				// protojson writes 0, 3, 6 or 9 fractional digits: 1.5 s is "1.500s".
				"latency": "1.500s",
			},
			"publicKey":        base64.StdEncoding.EncodeToString(status.PublicKey),
			"supportBundleUrl": "https://support.example.com/bundle/status",
			"llmUrl":           "https://llm.example.com/v1",
		}
		want["updatedAt"] = lastSeen.Format("2006-01-02T15:04:05.000000Z")
		checkJSONFields(t, "GetRunner status", body.Runner.Status, want)

		// Binary protobuf carries the same status.
		wantProto := &gitpodv1.RunnerStatus{
			UpdatedAt:     timestamppb.New(lastSeen),
			Version:       status.Version,
			SystemDetails: status.SystemDetails,
			Phase:         gitpodv1.RunnerPhase_RUNNER_PHASE_DEGRADED,
			Message:       status.Message,
			Region:        status.Region,
			AdditionalInfo: []*gitpodv1.FieldValue{
				{Key: "kernel", Value: "6.1.0"}, {Key: "zone", Value: "eu-central-1b"},
			},
			Capabilities: []gitpodv1.RunnerCapability{
				gitpodv1.RunnerCapability_RUNNER_CAPABILITY_AGENT_EXECUTION,
				gitpodv1.RunnerCapability_RUNNER_CAPABILITY_SECRET_CONTAINER_REGISTRY,
				gitpodv1.RunnerCapability_RUNNER_CAPABILITY_PORT_AUTHENTICATION,
			},
			LogUrl: status.LogURL,
			GatewayInfo: &gitpodv1.GatewayInfo{
				Gateway: &gitpodv1.Gateway{Name: "gw-frankfurt", Url: "https://gw.example.com", Region: "eu-central-1"},
				Latency: durationpb.New(1500 * time.Millisecond),
			},
			PublicKey:        status.PublicKey,
			SupportBundleUrl: status.SupportBundleURL,
			LlmUrl:           status.LLMURL,
		}
		got, err := admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
		mustOK(t, err, "get runner (binary)")
		diffProto(t, "GetRunner status (binary)", got.Msg.GetRunner().GetStatus(), wantProto)

		// ListRunners renders the same status as GetRunner.
		var list struct {
			Runners []struct {
				RunnerID string         `json:"runnerId"`
				Status   map[string]any `json:"status"`
			} `json:"runners"`
		}
		raw.post(t, pathListRunners, `{}`).wantOK(t, &list)
		found := false
		for _, r := range list.Runners {
			if r.RunnerID == id {
				found = true
				checkJSONFields(t, "ListRunners status", r.Status, want)
			}
		}
		if !found {
			t.Fatalf("ListRunners lacks runner %s", id)
		}
	})
}

// checkJSONFields compares a decoded JSON object with want key by key,
// naming every missing, different and unexpected field.
func checkJSONFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inGot:
			t.Errorf("%s: %q is missing, want %s", what, k, compactJSON(w))
		case !inWant:
			t.Errorf("%s: unexpected field %q = %s", what, k, compactJSON(g))
		case !reflect.DeepEqual(g, w):
			t.Errorf("%s: %q = %s, want %s", what, k, compactJSON(g), compactJSON(w))
		}
	}
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}
