package storetest

import (
	"reflect"
	"testing"

	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// testFindRunnersByPhaseAndName checks the console's filters: by phase, by
// a part of the name that ignores ASCII case and takes LIKE's wildcards as
// text, and by desired phase (the runners being drained).
func testFindRunnersByPhaseAndName(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	byName := map[string]*runners.Runner{}
	for _, r := range []struct {
		name  string
		phase runners.Phase
	}{
		{"web-1", runners.PhaseActive}, {"WEB-2", runners.PhaseInactive}, {"db_1", runners.PhaseActive},
		{"dbx1", runners.PhaseCreated}, {"100%-busy", runners.PhaseDegraded}, {"a!b", runners.PhaseActive},
	} {
		rn := newRunner(org.ID, r.name)
		rn.Status.Phase = r.phase
		rn.Spec.DesiredPhase = runners.PhaseActive
		must(t, s.CreateRunner(ctx, rn, nil), "create")
		byName[r.name] = rn
	}
	// Two runners are being drained: their desired phase changed after
	// they were created, as a drain changes it.
	for _, name := range []string{"db_1", "100%-busy"} {
		rn := byName[name]
		_, err := s.UpdateRunner(ctx, org.ID, rn.ID, func(r *runners.Runner) error {
			r.Spec.DesiredPhase = runners.PhaseInactive
			return nil
		})
		must(t, err, "drain "+name)
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
		{"Draining", runners.Filter{DesiredPhases: []runners.Phase{runners.PhaseInactive}}, []string{"db_1", "100%-busy"}},
		{"NotDraining", runners.Filter{DesiredPhases: []runners.Phase{runners.PhaseActive}}, []string{"web-1", "WEB-2", "dbx1", "a!b"}},
		{"DrainingPage", runners.Filter{DesiredPhases: []runners.Phase{runners.PhaseInactive}, Limit: 1}, []string{"db_1"}},
		{"DrainingAndName", runners.Filter{DesiredPhases: []runners.Phase{runners.PhaseInactive}, NameContains: "BUSY"}, []string{"100%-busy"}},
		{"DrainingAndPhase", runners.Filter{DesiredPhases: []runners.Phase{runners.PhaseInactive}, Phases: []runners.Phase{runners.PhaseActive}}, []string{"db_1"}},
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
