package runners_test

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
)

// TestList_PhaseAndName checks the list's phase and name filters: bad
// values are refused naming the field; good ones select in the store.
func TestList_PhaseAndName(t *testing.T) {
	svc, _, admin := setup(t)
	for _, name := range []string{"web-one", "web-two", "db-one"} {
		if _, _, err := svc.Create(admin, runners.CreateInput{Name: name, Provider: runners.ProviderLinuxHost}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	for _, tc := range []struct {
		name  string
		f     runners.ListFilter
		field string
		want  int
	}{
		{"UnknownPhase", runners.ListFilter{Phases: []runners.Phase{"RUNNER_PHASE_NOPE"}}, "filter.phases[0]", 0},
		{"DeletedPhase", runners.ListFilter{Phases: []runners.Phase{runners.PhaseDeleted}}, "filter.phases[0]", 0},
		{"LongName", runners.ListFilter{NameContains: strings.Repeat("x", 128)}, "filter.name", 0},
		{"Name", runners.ListFilter{NameContains: "WEB"}, "", 2},
		{"Phase", runners.ListFilter{Phases: []runners.Phase{runners.PhaseCreated}, NameContains: "one"}, "", 2},
		{"OtherPhase", runners.ListFilter{Phases: []runners.Phase{runners.PhaseActive}}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, _, err := svc.List(admin, tc.f, paging.Page{Limit: 10})
			if tc.field != "" {
				if e := apperr.As(err); err == nil || e.Code != apperr.CodeInvalid || e.Field != tc.field {
					t.Fatalf("List = %v, want invalid_argument at %s", err, tc.field)
				}
				return
			}
			if err != nil || len(items) != tc.want {
				t.Fatalf("List = %d runners, %v; want %d", len(items), err, tc.want)
			}
		})
	}
}
