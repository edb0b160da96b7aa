package spec_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
)

// FuzzParse checks that Parse and Validate never panic, fail only with
// invalid_argument, answer the same twice, and that a valid file plans every
// task and trigger and survives a JSON round trip.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"{}",
		"services:\n  db:\n    commands: {start: postgres, strat: x}\n",
		"tasks:\n  a: {command: x, dependsOn: [b]}\n  b: {command: y, dependsOn: [a]}\n",
		"services: {s: {commands: {start: x}, triggeredBy: [postEnvironmentStart]}}\n" +
			"tasks:\n  a: {command: x, dependsOn: [s]}\n  b: {command: x, dependsOn: [a]}\n" +
			"  c: {command: x, dependsOn: [a]}\n  d: {command: x, dependsOn: [b, c], triggeredBy: [postEnvironmentStart]}\n",
		"tasks:\n  a: &a {command: x}\n  b: {<<: *a, dependsOn: [a]}\n",
		"tasks:\n  a: {command: x, runsOn: {docker: {image: alpine, environment: [A=1]}}}\n",
		"tasks:\n  a: {command: x, runsOn: {machine: {}}, triggeredBy: [manual, prebuild]}\n",
		"services:\n  a: {commands: {start: x}, role: ai-agent, triggeredBy: [postDevcontainerStart]}\n",
		`{"tasks": {"a": {"command": "x", "dependsOn": ["a"]}}}`,
		"a: &a [*a]\n",
		"tasks:\n  ? [a]\n  : x\n",
		"--- \n...\n---\n",
		"tasks: !!map {}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := spec.Parse(data)
		if err != nil {
			mustBeInvalid(t, "Parse", err)
			if file != nil {
				t.Fatalf("Parse returned a file with an error")
			}
			return
		}
		again, err := spec.Parse(data)
		if err != nil || !reflect.DeepEqual(file, again) {
			t.Fatalf("Parse is not deterministic: %+v, %v", again, err)
		}

		verr := spec.Validate(file)
		if again := spec.Validate(file); !sameError(verr, again) {
			t.Fatalf("Validate is not deterministic: %v, then %v", verr, again)
		}
		if verr != nil {
			mustBeInvalid(t, "Validate", verr)
			return
		}

		g := file.Graph()
		for ref := range file.Tasks {
			plan, err := spec.Plan(g, ref)
			if err != nil {
				t.Fatalf("Plan(%q) of a valid file: %v", ref, err)
			}
			checkPlan(t, g, []string{ref}, plan)
		}
		for _, tr := range spec.FileTriggers {
			roots := file.TriggeredBy(tr)
			plan, err := spec.PlanAll(g, roots)
			if err != nil {
				t.Fatalf("PlanAll(%s) of a valid file: %v", tr, err)
			}
			checkPlan(t, g, roots, plan)
		}

		// What the API stores and returns as JSON must read back the same.
		j1, err := json.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		back, err := spec.Parse(j1)
		if err != nil {
			t.Fatalf("Parse(%s): %v", j1, err)
		}
		if err := spec.Validate(back); err != nil {
			t.Fatalf("Validate(%s): %v", j1, err)
		}
		j2, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if string(j1) != string(j2) {
			t.Fatalf("JSON round trip changed the file:\n%s\n%s", j1, j2)
		}
	})
}

// FuzzPlan builds a graph from bytes and checks Plan and FindCycle against
// the definition: a plan holds each reachable node once, after all its
// dependencies, each as early as possible; an error happens exactly when a
// cycle or a missing node is reachable; a reported cycle is real.
func FuzzPlan(f *testing.F) {
	// Byte 0: node count; byte 1: root; then pairs (node, dependency).
	f.Add([]byte{4, 3, 1, 0, 2, 0, 3, 1, 3, 2}) // diamond
	f.Add([]byte{4, 3, 1, 0, 2, 1, 3, 2})       // chain
	f.Add([]byte{1, 0, 0, 0})                   // self cycle
	f.Add([]byte{3, 0, 0, 1, 1, 2, 2, 0})       // 3-cycle
	f.Add([]byte{2, 1, 1, 5})                   // missing dependency
	f.Add([]byte{12, 11, 11, 10, 10, 9, 9, 3, 3, 0, 11, 0, 7, 3, 7, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
		n := 1 + int(data[0])%len(names)
		g := spec.Graph{}
		for _, name := range names[:n] {
			g[name] = nil
		}
		for i := 2; i+1 < len(data); i += 2 {
			from := names[int(data[i])%n]
			// Indices past n name nodes that are not in the graph.
			to := "missing"
			if j := int(data[i+1]) % (n + 1); j < n {
				to = names[j]
			}
			g[from] = append(g[from], to)
		}
		root := names[int(data[1])%n]

		cycle := spec.FindCycle(g)
		checkCycle(t, g, cycle)
		if got, want := cycle != nil, !acyclic(g, slices.Collect(maps.Keys(g))); got != want {
			t.Fatalf("FindCycle = %q, but the graph has a cycle: %v", cycle, want)
		}

		roots := []string{root}
		if len(data)%2 == 1 {
			roots = append(roots, names[int(data[len(data)-1])%n])
		}
		plan, err := spec.PlanAll(g, roots)
		reach := reachable(g, roots)
		_, missingReachable := reach["missing"]
		delete(reach, "missing")
		bad := missingReachable || !acyclic(g, slices.Collect(maps.Keys(reach)))
		if err != nil {
			mustBeInvalid(t, "PlanAll", err)
			if !bad {
				t.Fatalf("PlanAll(%q) failed on a sound graph %v: %v", roots, g, err)
			}
			return
		}
		if bad {
			t.Fatalf("PlanAll(%q) = %q for a graph with a reachable cycle or missing node %v", roots, plan, g)
		}
		checkPlan(t, g, roots, plan)
	})
}

// checkPlan fails unless plan is the longest-path layering of what roots
// reach in g, with each group sorted.
func checkPlan(t *testing.T, g spec.Graph, roots []string, plan [][]string) {
	t.Helper()
	layer := map[string]int{}
	for l, grp := range plan {
		if len(grp) == 0 {
			t.Fatalf("plan %q has an empty group", plan)
		}
		if !slices.IsSorted(grp) {
			t.Fatalf("plan %q: group %d is not sorted", plan, l)
		}
		for _, n := range grp {
			if _, dup := layer[n]; dup {
				t.Fatalf("plan %q holds %q twice", plan, n)
			}
			layer[n] = l
		}
	}
	reach := reachable(g, roots)
	if len(reach) != len(layer) {
		t.Fatalf("plan %q holds %d nodes, roots %q reach %d", plan, len(layer), roots, len(reach))
	}
	for n, l := range layer {
		if _, ok := reach[n]; !ok {
			t.Fatalf("plan %q holds %q, which roots %q do not reach", plan, n, roots)
		}
		latest := -1
		for _, d := range g[n] {
			if layer[d] >= l {
				t.Fatalf("plan %q runs %q in group %d, not after its dependency %q", plan, n, l, d)
			}
			latest = max(latest, layer[d])
		}
		if latest+1 != l {
			t.Fatalf("plan %q runs %q in group %d, but it could run in group %d", plan, n, l, latest+1)
		}
	}
}

// checkCycle fails unless cycle is nil or a closed walk along g's edges that
// repeats no node and starts at its smallest.
func checkCycle(t *testing.T, g spec.Graph, cycle []string) {
	t.Helper()
	if cycle == nil {
		return
	}
	if len(cycle) < 2 || cycle[0] != cycle[len(cycle)-1] {
		t.Fatalf("cycle %q is not closed", cycle)
	}
	ring := cycle[:len(cycle)-1]
	if slices.Min(ring) != ring[0] {
		t.Fatalf("cycle %q does not start at its smallest node", cycle)
	}
	seen := map[string]bool{}
	for i, n := range ring {
		if seen[n] {
			t.Fatalf("cycle %q repeats %q", cycle, n)
		}
		seen[n] = true
		if !slices.Contains(g[n], cycle[i+1]) {
			t.Fatalf("cycle %q: %q does not depend on %q", cycle, n, cycle[i+1])
		}
	}
}

// reachable returns roots and everything they depend on, missing nodes
// included.
func reachable(g spec.Graph, roots []string) map[string]struct{} {
	seen := map[string]struct{}{}
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[n]; ok {
			continue
		}
		seen[n] = struct{}{}
		stack = append(stack, g[n]...)
	}
	return seen
}

// acyclic is Kahn's algorithm on the subgraph of nodes, ignoring edges that
// leave it: an independent check on the planner's own cycle detection.
func acyclic(g spec.Graph, nodes []string) bool {
	in := map[string]bool{}
	for _, n := range nodes {
		in[n] = true
	}
	pending := map[string]int{} // dependencies not yet done
	dependents := map[string][]string{}
	for _, n := range nodes {
		for _, d := range slices.Compact(slices.Sorted(slices.Values(g[n]))) {
			if in[d] {
				pending[n]++
				dependents[d] = append(dependents[d], n)
			}
		}
	}
	var ready []string
	for _, n := range nodes {
		if pending[n] == 0 {
			ready = append(ready, n)
		}
	}
	done := 0
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		done++
		for _, m := range dependents[n] {
			if pending[m]--; pending[m] == 0 {
				ready = append(ready, m)
			}
		}
	}
	return done == len(nodes)
}

func mustBeInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.CodeInvalid {
		t.Fatalf("%s: err = %v (%T), want an invalid_argument *apperr.Error", what, err, err)
	}
	if ae.Public() == "" {
		t.Fatalf("%s: error without a message", what)
	}
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}
