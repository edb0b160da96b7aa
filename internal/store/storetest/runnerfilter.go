package storetest

import (
	"reflect"
	"testing"

	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// testFindRunnersByPhaseAndName checks the console's filters: by phase, and
// by a part of the name that ignores ASCII case and takes LIKE's wildcards
// as text.
func testFindRunnersByPhaseAndName(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	for _, r := range []struct {
		name  string
		phase runners.Phase
	}{
		{"web-1", runners.PhaseActive}, {"WEB-2", runners.PhaseInactive}, {"db_1", runners.PhaseActive},
		{"dbx1", runners.PhaseCreated}, {"100%-busy", runners.PhaseDegraded}, {"a!b", runners.PhaseActive},
	} {
		rn := newRunner(org.ID, r.name)
		rn.Status.Phase = r.phase
		must(t, s.CreateRunner(ctx, rn, nil), "create")
	}
	for _, tt := range []struct {
		name   string
		filter runners.Filter
		want   []string
	}{
		{"Phase", runners.Filter{Phases: []runners.Phase{runners.PhaseActive}}, []string{"web-1", "db_1", "a!b"}},
		{"Phases", runners.Filter{Phases: []runners.Phase{runners.PhaseInactive, runners.PhaseDegraded}}, []string{"WEB-2", "100%-busy"}},
		{"NameIgnoresCase", runners.Filter{NameContains: "Web"}, []string{"web-1", "WEB-2"}},
		{"UnderscoreIsText", runners.Filter{NameContains: "b_"}, []string{"db_1"}},
		{"PercentIsText", runners.Filter{NameContains: "0%"}, []string{"100%-busy"}},
		{"EscapeIsText", runners.Filter{NameContains: "a!b"}, []string{"a!b"}},
		{"Both", runners.Filter{NameContains: "web", Phases: []runners.Phase{runners.PhaseActive}}, []string{"web-1"}},
		{"PageOfMatches", runners.Filter{Phases: []runners.Phase{runners.PhaseActive}, Limit: 2}, []string{"web-1", "db_1"}},
		{"None", runners.Filter{NameContains: "nope"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.OrgID = org.ID
			got, err := s.FindRunners(ctx, tt.filter)
			must(t, err, "find runners")
			var names []string
			for _, r := range got {
				names = append(names, r.Name)
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Fatalf("got %v, want %v", names, tt.want)
			}
		})
	}
}
