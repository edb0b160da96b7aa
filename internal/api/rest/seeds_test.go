package rest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
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

// jsonType names the JSON type of a value decoded into any.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return reflect.TypeOf(v).String()
}

// nullable are the keys the document allows to be null where its example
// has a value: a runner that never connected has no heartbeat.
var nullable = map[string]bool{"last_heartbeat_at": true}

// shapeProblems lists the differences between the shape of got and the
// seed example: a key only one of them has, or a value of another JSON
// type. Every element of an array must have the shape of the example's
// first.
func shapeProblems(path string, got, seed any) []string {
	gt, st := jsonType(got), jsonType(seed)
	if gt == "null" && nullable[lastKey(path)] {
		return nil
	}
	if gt != st {
		return []string{fmt.Sprintf("%s: ours is a %s, the seed's a %s", path, gt, st)}
	}
	var out []string
	switch g := got.(type) {
	case map[string]any:
		s := seed.(map[string]any)
		for k, v := range g {
			sv, ok := s[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: the seed example has no such key", path, k))
				continue
			}
			out = append(out, shapeProblems(path+"."+k, v, sv)...)
		}
		for k := range s {
			if _, ok := g[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing from ours", path, k))
			}
		}
	case []any:
		s := seed.([]any)
		for i, v := range g {
			if len(s) == 0 {
				return append(out, path+": the seed example's array is empty")
			}
			out = append(out, shapeProblems(path+"["+strconv.Itoa(i)+"]", v, s[0])...)
		}
	}
	slices.Sort(out)
	return out
}

func lastKey(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[i+1:]
		}
	}
	return path
}

func checkShape(tb testing.TB, what string, got, seed map[string]any) {
	tb.Helper()
	for _, p := range shapeProblems("", got, seed) {
		tb.Errorf("%s: %s", what, p)
	}
}

// TestShapeProblems checks the checker: a passing seed test means nothing if
// it cannot fail.
func TestShapeProblems(t *testing.T) {
	seed := map[string]any{"a": "x", "last_heartbeat_at": "t", "l": []any{map[string]any{"k": "v"}}}
	tests := []struct {
		name string
		got  map[string]any
		want []string
	}{
		{"OKSame", seed, nil},
		{"OKNullable", map[string]any{"a": "y", "last_heartbeat_at": nil, "l": []any{}}, nil},
		{"ErrNull", map[string]any{"a": nil, "last_heartbeat_at": "t", "l": []any{}}, []string{".a: ours is a null, the seed's a string"}},
		{"ErrMissingKey", map[string]any{"a": "x", "l": []any{}}, []string{".last_heartbeat_at: missing from ours"}},
		{"ErrExtraKey", map[string]any{"a": "x", "last_heartbeat_at": "t", "l": []any{}, "z": true}, []string{".z: the seed example has no such key"}},
		{"ErrType", map[string]any{"a": 1.0, "last_heartbeat_at": "t", "l": []any{}}, []string{".a: ours is a number, the seed's a string"}},
		{"ErrArrayElement", map[string]any{"a": "x", "last_heartbeat_at": "t", "l": []any{map[string]any{"k": false}}},
			[]string{".l[0].k: ours is a bool, the seed's a string"}},
		{"ErrArrayElementMissingKey", map[string]any{"a": "x", "last_heartbeat_at": "t", "l": []any{map[string]any{}}},
			[]string{".l[0].k: missing from ours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shapeProblems("", tt.got, seed); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
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
