package connectapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/testutil"
)

// The seeds are the vendor's API documents for GetRunner (seed 000) and
// CreateRunner (seed 001). testdata holds their example responses verbatim and
// their example requests (YAML in the document) as JSON. These tests send the
// requests as a vendor SDK would, as raw Connect JSON, and check that our
// responses have the documented shape.

func readTestdata(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	mustOK(tb, err, "read testdata")
	return b
}

func decodeObject(tb testing.TB, what string, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %s: %v\n%s", what, err, b)
	}
	return m
}

// checkShape fails for every key of got that the seed example lacks or holds
// with another JSON type. protojson omits zero values, so got may have fewer
// keys than the example.
func checkShape(tb testing.TB, got, seed map[string]any) {
	tb.Helper()
	testutil.CheckShape(tb, "response", got, seed, testutil.Shape{})
}

// lookup returns the value at a dotted path ("runner.status.phase").
func lookup(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = o[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// runnerEssentials are the keys every runner in a response must carry: the
// SDKs and the CLI read them without checking.
var runnerEssentials = []string{
	"runner.runnerId", "runner.name", "runner.kind", "runner.provider", "runner.spec",
	"runner.status.phase", "runner.creator.id", "runner.creator.principal",
	"runner.createdAt", "runner.updatedAt",
}

func checkEssentials(tb testing.TB, got map[string]any, keys []string) {
	tb.Helper()
	for _, k := range keys {
		v, ok := lookup(got, k)
		if !ok {
			tb.Errorf("%s: missing from our response", k)
			continue
		}
		if s, isString := v.(string); isString && s == "" {
			tb.Errorf("%s: empty", k)
		}
	}
	for _, k := range []string{"runner.createdAt", "runner.updatedAt"} {
		if s, ok := lookup(got, k); ok {
			if _, err := time.Parse(time.RFC3339Nano, s.(string)); err != nil {
				tb.Errorf("%s: %v", k, err)
			}
		}
	}
}

// checkSubset fails unless every key of want is in got with an equal value.
func checkSubset(tb testing.TB, path string, got, want any) {
	tb.Helper()
	w, ok := want.(map[string]any)
	if !ok {
		if !reflect.DeepEqual(got, want) {
			tb.Errorf("%s = %v, want %v", path, got, want)
		}
		return
	}
	g, ok := got.(map[string]any)
	if !ok {
		tb.Errorf("%s = %v, want an object", path, got)
		return
	}
	for k, wv := range w {
		checkSubset(tb, path+"."+k, g[k], wv)
	}
}

func TestSeeds_CreateAndGetRunner(t *testing.T) {
	createSeed := decodeObject(t, "seed 001 response", readTestdata(t, "seed001_createrunner_response.json"))
	getSeed := decodeObject(t, "seed 000 response", readTestdata(t, "seed000_getrunner_response.json"))
	examples := []struct {
		name, file, kind string
	}{
		{"CloudRunner", "seed001_createrunner_request_cloud.json", "RUNNER_KIND_REMOTE"},
		{"LocalRunner", "seed001_createrunner_request_local.json", "RUNNER_KIND_LOCAL"},
	}
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		for _, ex := range examples {
			t.Run(ex.name, func(t *testing.T) {
				reqBody := readTestdata(t, ex.file)
				req := decodeObject(t, ex.file, reqBody)

				res := raw.post(t, pathCreateRunner, string(reqBody))
				res.wantOK(t, nil)
				created := decodeObject(t, "CreateRunner response", res.Body)
				checkShape(t, created, createSeed)
				checkEssentials(t, created, append([]string{"exchangeToken"}, runnerEssentials...))
				if _, ok := created["accessToken"]; ok {
					t.Error("accessToken is set: it is deprecated and must stay empty")
				}
				// What the example asked for is what it got.
				runner := created["runner"].(map[string]any)
				for _, k := range []string{"name", "provider", "spec"} {
					checkSubset(t, "runner."+k, runner[k], req[k])
				}
				if got := runner["kind"]; got != ex.kind {
					t.Errorf("runner.kind = %v, want %s", got, ex.kind)
				}
				if got, _ := lookup(created, "runner.status.phase"); got != "RUNNER_PHASE_CREATED" {
					t.Errorf("runner.status.phase = %v, want RUNNER_PHASE_CREATED", got)
				}

				// The GetRunner example with the id of the runner just made.
				id := runner["runnerId"].(string)
				getBody := strings.Replace(string(readTestdata(t, "seed000_getrunner_request.json")), "d2c94c27-3b76-4a42-b88c-95a85e392c68", id, 1)
				res = raw.post(t, pathGetRunner, getBody)
				res.wantOK(t, nil)
				got := decodeObject(t, "GetRunner response", res.Body)
				checkShape(t, got, getSeed)
				checkEssentials(t, got, runnerEssentials)
				if !reflect.DeepEqual(got["runner"], created["runner"]) {
					t.Errorf("GetRunner runner:\n%v\nCreateRunner runner:\n%v", got["runner"], created["runner"])
				}
			})
		}
		t.Run("ErrDuplicateExample", func(t *testing.T) {
			raw.post(t, pathCreateRunner, string(readTestdata(t, examples[0].file))).
				wantError(t, http.StatusConflict, "already_exists", "Production Runner")
		})
		t.Run("GetRunnerVerbatim", func(t *testing.T) {
			// The example's id names no runner here.
			raw.post(t, pathGetRunner, string(readTestdata(t, "seed000_getrunner_request.json"))).
				wantError(t, http.StatusNotFound, "not_found", "d2c94c27-3b76-4a42-b88c-95a85e392c68")
		})
		t.Run("EveryFieldSet", func(t *testing.T) {
			// A runner with every documented spec field set still has the
			// seed's shape, with the metrics password left out.
			admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			r, _ := mustCreateRunner(t, admin, fullCreateRequest(name("seed-full"), "seed-pw-secret"))
			res := raw.post(t, pathGetRunner, `{"runnerId":"`+r.GetRunnerId()+`"}`)
			res.wantOK(t, nil)
			got := decodeObject(t, "GetRunner response", res.Body)
			checkShape(t, got, getSeed)
			checkEssentials(t, got, runnerEssentials)
			want := map[string]any{
				"autoUpdate": true, "continuousProfiling": true, "devcontainerImageCacheEnabled": true,
				"encryptedHoneycombApiKey": "U3RhaW5sZXNzIHJvY2tz", "logLevel": "LOG_LEVEL_DEBUG",
				"metrics": map[string]any{
					"enabled": true, "includeVerboseMetrics": true, "managedMetricsEnabled": true,
					"url": "https://metrics.example.com/api/v1/write", "username": "metrics-user",
				},
				"region": "us-west-2", "releaseChannel": "RUNNER_RELEASE_CHANNEL_LATEST",
				"updateWindow": map[string]any{"startHour": 22.0, "endHour": 4.0},
			}
			cfg, _ := lookup(got, "runner.spec.configuration")
			if !reflect.DeepEqual(cfg, any(want)) {
				t.Errorf("runner.spec.configuration =\n%v\nwant\n%v", cfg, want)
			}
			for k, v := range map[string]any{"runner.spec.desiredPhase": "RUNNER_PHASE_INACTIVE", "runner.spec.variant": "RUNNER_VARIANT_ENTERPRISE"} {
				if got, _ := lookup(got, k); got != v {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
		})
	})
}
