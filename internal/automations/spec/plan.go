package spec

import (
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
)

// Graph maps each node to the nodes it depends on. Nodes are opaque strings:
// references when planning a file, task and service IDs when the service
// plans what it has stored. Every node that appears as a dependency must be
// a key too, with nil dependencies if it is a leaf such as a service.
type Graph map[string][]string

// Plan returns root and its transitive dependencies in groups: the groups
// run one after another and the nodes of a group run concurrently. Each node
// appears once, after every node it depends on, in the earliest group that
// allows (its longest dependency chain decides), and each group is sorted.
// A root or dependency that is not in g, or a cycle reachable from root, is
// an invalid_argument error naming it.
func Plan(g Graph, root string) ([][]string, error) {
	return PlanAll(g, []string{root})
}

// PlanAll is Plan for several roots at once, such as everything one trigger
// starts: their dependencies are shared, so each node still runs once. No
// roots is an empty plan.
func PlanAll(g Graph, roots []string) ([][]string, error) {
	p := newPlanner(g)
	for _, root := range sortedUnique(roots) {
		if _, ok := g[root]; !ok {
			return nil, apperr.Invalid("", "%q does not exist", root)
		}
		if _, err := p.visit(root); err != nil {
			return nil, err
		}
	}
	var groups [][]string
	for _, n := range p.order {
		l := p.layer[n]
		for len(groups) <= l {
			groups = append(groups, nil)
		}
		groups[l] = append(groups[l], n)
	}
	for _, grp := range groups {
		slices.Sort(grp)
	}
	return groups, nil
}

// FindCycle returns a dependency cycle of g as the path that walks it, first
// node repeated at the end (a -> b -> a is [a b a]), or nil if g is acyclic.
// Of several cycles it returns the same one on every call, rotated to start
// at its smallest node, so a message naming it does not change between
// requests. Dependencies missing from g are ignored here.
func FindCycle(g Graph) []string {
	p := newPlanner(g)
	p.ignoreMissing = true
	for _, n := range sortedKeys(g) {
		if _, err := p.visit(n); err != nil {
			return p.cycle
		}
	}
	return nil
}

// FormatCycle renders a cycle from FindCycle as "a -> b -> a".
func FormatCycle(cycle []string) string { return strings.Join(cycle, " -> ") }

// planner is one depth-first walk that finds cycles and layers at once: a
// node's layer is one more than the highest layer of its dependencies, so
// every node lands in the earliest group its dependencies allow.
type planner struct {
	g             Graph
	ignoreMissing bool
	layer         map[string]int
	onPath        map[string]bool
	path          []string
	order         []string // nodes in the order they were finished
	cycle         []string
}

func newPlanner(g Graph) *planner {
	return &planner{g: g, layer: map[string]int{}, onPath: map[string]bool{}}
}

// visit returns n's layer. It recurses once per node because finished nodes
// are memoised in layer, so the walk is linear in the size of the graph.
func (p *planner) visit(n string) (int, error) {
	if l, ok := p.layer[n]; ok {
		return l, nil
	}
	if p.onPath[n] {
		i := slices.Index(p.path, n)
		p.cycle = canonicalCycle(append(slices.Clone(p.path[i:]), n))
		return 0, apperr.Invalid("", "dependency cycle %s", FormatCycle(p.cycle))
	}
	p.onPath[n] = true
	p.path = append(p.path, n)
	l := 0
	// Sorting makes the walk, and so the cycle reported, independent of the
	// order dependencies were declared or loaded in.
	for _, d := range sortedUnique(p.g[n]) {
		if _, ok := p.g[d]; !ok {
			if p.ignoreMissing {
				continue
			}
			return 0, apperr.Invalid("", "%q depends on %q, which does not exist", n, d)
		}
		dl, err := p.visit(d)
		if err != nil {
			return 0, err
		}
		l = max(l, dl+1)
	}
	p.path = p.path[:len(p.path)-1]
	delete(p.onPath, n)
	p.layer[n] = l
	p.order = append(p.order, n)
	return l, nil
}

// canonicalCycle rotates a closed walk [a b c a] to start at its smallest
// node, so the same cycle reads the same whichever node the walk entered by.
func canonicalCycle(c []string) []string {
	ring := c[:len(c)-1]
	start := 0
	for i, n := range ring {
		if n < ring[start] {
			start = i
		}
	}
	out := make([]string, 0, len(c))
	out = append(out, ring[start:]...)
	out = append(out, ring[:start]...)
	return append(out, ring[start])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func oneOf[T comparable](v T, set []T) bool { return slices.Contains(set, v) }
