package spec_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/runyard/runyard/internal/automations/spec"
)

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph spec.Graph
		root  string
		want  [][]string
		err   string
	}{
		{
			"Single",
			spec.Graph{"a": nil},
			"a",
			[][]string{{"a"}},
			"",
		},
		{
			// d depends on b and c, which both depend on a.
			"Diamond",
			spec.Graph{"a": nil, "b": {"a"}, "c": {"a"}, "d": {"b", "c"}},
			"d",
			[][]string{{"a"}, {"b", "c"}, {"d"}},
			"",
		},
		{
			"Chain",
			spec.Graph{"a": nil, "b": {"a"}, "c": {"b"}, "d": {"c"}},
			"d",
			[][]string{{"a"}, {"b"}, {"c"}, {"d"}},
			"",
		},
		{
			"MidChainRoot",
			spec.Graph{"a": nil, "b": {"a"}, "c": {"b"}, "d": {"c"}},
			"b",
			[][]string{{"a"}, {"b"}},
			"",
		},
		{
			// c depends on a directly and through b: the longest path puts
			// it after b, and a still runs once.
			"ShortcutEdge",
			spec.Graph{"a": nil, "b": {"a"}, "c": {"a", "b"}},
			"c",
			[][]string{{"a"}, {"b"}, {"c"}},
			"",
		},
		{
			// x depends on a leaf and on a chain: the leaf runs as early as
			// it can, in the first group.
			"AsEarlyAsPossible",
			spec.Graph{"leaf": nil, "a": nil, "b": {"a"}, "x": {"leaf", "b"}},
			"x",
			[][]string{{"a", "leaf"}, {"b"}, {"x"}},
			"",
		},
		{
			"UnrelatedNodesLeftOut",
			spec.Graph{"a": nil, "b": {"a"}, "other": {"a"}, "cyclic": {"cyclic"}},
			"b",
			[][]string{{"a"}, {"b"}},
			"",
		},
		{
			"DuplicateDependency",
			spec.Graph{"a": nil, "b": {"a", "a"}},
			"b",
			[][]string{{"a"}, {"b"}},
			"",
		},
		{
			"ErrSelfCycle",
			spec.Graph{"a": {"a"}},
			"a",
			nil,
			"dependency cycle a -> a",
		},
		{
			"ErrCycleBelowRoot",
			spec.Graph{"root": {"x"}, "x": {"y"}, "y": {"z"}, "z": {"x"}},
			"root",
			nil,
			"dependency cycle x -> y -> z -> x",
		},
		{
			"ErrMissingRoot",
			spec.Graph{"a": nil},
			"b",
			nil,
			`"b" does not exist`,
		},
		{
			"ErrMissingDependency",
			spec.Graph{"a": {"gone"}},
			"a",
			nil,
			`"a" depends on "gone", which does not exist`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := spec.Plan(tc.graph, tc.root)
			if tc.err != "" {
				if got != nil {
					t.Errorf("Plan returned %q with an error", got)
				}
				checkInvalid(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Plan = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlan_Deterministic(t *testing.T) {
	// The same graph with dependencies declared in different orders, and
	// many map iteration orders, plans the same.
	g1 := spec.Graph{"root": {"m", "c", "x", "a"}, "a": nil, "c": nil, "m": {"a"}, "x": {"c"}}
	g2 := spec.Graph{"root": {"a", "x", "m", "c"}, "a": nil, "c": nil, "m": {"a"}, "x": {"c"}}
	want := [][]string{{"a", "c"}, {"m", "x"}, {"root"}}
	for range 20 {
		for _, g := range []spec.Graph{g1, g2} {
			got, err := spec.Plan(g, "root")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Plan = %q, want %q", got, want)
			}
		}
	}
}

func TestPlan_LongChain(t *testing.T) {
	// Deep enough that a walk that is not linear, or a small stack, shows.
	const n = 100_000
	g := spec.Graph{"n0": nil}
	for i := 1; i < n; i++ {
		g[fmt.Sprint("n", i)] = []string{fmt.Sprint("n", i-1)}
	}
	got, err := spec.Plan(g, fmt.Sprint("n", n-1))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0][0] != "n0" || got[n-1][0] != fmt.Sprint("n", n-1) {
		t.Fatalf("Plan gave %d groups, want %d from n0 to n%d", len(got), n, n-1)
	}
}

func TestPlanAll(t *testing.T) {
	g := spec.Graph{
		"db":      nil,
		"install": nil,
		"migrate": {"install", "db"},
		"seed":    {"migrate"},
		"lint":    {"install"},
		"other":   nil,
	}
	for _, tc := range []struct {
		name  string
		roots []string
		want  [][]string
	}{
		{"None", nil, nil},
		{"One", []string{"lint"}, [][]string{{"install"}, {"lint"}}},
		{
			"SharedDependencies",
			[]string{"seed", "lint", "db"},
			[][]string{{"db", "install"}, {"lint", "migrate"}, {"seed"}},
		},
		{
			"RootThatIsADependency",
			[]string{"migrate", "install", "install"},
			[][]string{{"db", "install"}, {"migrate"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := spec.PlanAll(g, tc.roots)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PlanAll = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("ErrCycle", func(t *testing.T) {
		g := spec.Graph{"a": nil, "b": {"c"}, "c": {"b"}}
		_, err := spec.PlanAll(g, []string{"a", "b"})
		checkInvalid(t, err, "dependency cycle b -> c -> b")
	})
}

// TestPlanAll_EnvironmentStart is what the service does when an environment
// starts: everything postEnvironmentStart triggers, in dependency order.
func TestPlanAll_EnvironmentStart(t *testing.T) {
	f, err := spec.Parse(MustReadFile(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := spec.PlanAll(f.Graph(), f.TriggeredBy(spec.TriggerPostEnvironmentStart))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"db", "install"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("PlanAll = %q, want %q", got, want)
	}
	got, err = spec.Plan(f.Graph(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"db", "install"}, {"migrate"}, {"test"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Plan(test) = %q, want %q", got, want)
	}
}

func TestFindCycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph spec.Graph
		want  []string
	}{
		{"Empty", spec.Graph{}, nil},
		{"Acyclic", spec.Graph{"a": nil, "b": {"a"}, "c": {"a", "b"}}, nil},
		{"MissingDependencyIgnored", spec.Graph{"a": {"gone"}}, nil},
		{"Self", spec.Graph{"a": {"a"}}, []string{"a", "a"}},
		{"Rotated", spec.Graph{"c": {"a"}, "a": {"b"}, "b": {"c"}}, []string{"a", "b", "c", "a"}},
		{
			// b is entered first, through 0x, yet the cycle reads from a.
			"EnteredMidCycle",
			spec.Graph{"0x": {"b"}, "a": {"b"}, "b": {"c"}, "c": {"a"}},
			[]string{"a", "b", "c", "a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := spec.FindCycle(tc.graph)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("FindCycle = %q, want %q", got, tc.want)
			}
		})
	}
}
