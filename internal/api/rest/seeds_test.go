package rest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/testutil"
)

// Seed 002 is the API document of the runner endpoints. testdata holds its
// four example responses verbatim; these tests check that our responses
// have exactly the examples' keys, each with the example's JSON type.

func readSeed(tb testing.TB, file string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	mustOK(tb, err, "read testdata")
	return decodeObject(tb, file, b)
}

func decodeObject(tb testing.TB, what string, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %s: %v\n%s", what, err, b)
	}
	return m
}

// checkShape fails unless got has exactly the example's keys with its JSON
// types; a runner that never connected has no heartbeat, so that key may be
// null.
func checkShape(tb testing.TB, what string, got, seed map[string]any) {
	tb.Helper()
	testutil.CheckShape(tb, what, got, seed, testutil.Shape{Exact: true, Nullable: []string{"last_heartbeat_at"}})
}

// TestSeeds_Runners checks every endpoint's response against the seed's
// example, with a connected runner that runs a pod, as in the examples, and
// one that never connected.
func TestSeeds_Runners(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			n := name("dev-runner")
			runnerID, x := adm.createRunner(t, n)
			adm.createRunner(t, name("never-connected"))
			connectRunner(t, ts, x)
			id := a.seqOf(t, n)
			eventually(t, "the daemon connects", func() string { return statusOf(t, a, id, "online") })
			mustCreatePod(t, st, orgID(t, st), runnerID, pods.StatusRunning)

			for _, ex := range []struct {
				name, path, seed string
				items            string // the key of the list, which must not be empty
			}{
				{"List", "/runners", "seed002_list_runners_response.json", "runners"},
				{"Get", fmt.Sprintf("/runners/%d", id), "seed002_get_runner_response.json", ""},
				{"Available", "/runners/available", "seed002_available_runners_response.json", "runners"},
				{"Pods", fmt.Sprintf("/runners/%d/pods", id), "seed002_runner_pods_response.json", "pods"},
			} {
				t.Run(ex.name, func(t *testing.T) {
					res := a.get(t, ex.path)
					res.wantOK(t, nil)
					got := decodeObject(t, ex.path, res.Body)
					if ex.items != "" {
						if l, _ := got[ex.items].([]any); len(l) == 0 {
							t.Fatalf("%s: %s is empty: the shape check would check nothing", ex.path, ex.items)
						}
					}
					checkShape(t, ex.path, got, readSeed(t, ex.seed))
				})
			}
		})
	}
}
