package runners

import (
	"strings"
	"testing"
	"time"
)

func TestPhases(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	healthy := Report{Components: []Component{{Name: ComponentRunner, Healthy: true}}}
	sick := Report{Components: []Component{{Name: ComponentToolManager, Healthy: false, Message: "executor stuck"}}}
	tests := []struct {
		name      string
		start     Phase
		apply     func(r *Runner)
		want      Phase
		wantInMsg string
	}{
		{"FirstReportActivates", PhaseCreated, func(r *Runner) { r.ApplyReport(healthy, t0) }, PhaseActive, ""},
		{"UnhealthyComponentDegrades", PhaseActive, func(r *Runner) { r.ApplyReport(sick, t0) }, PhaseDegraded, "tool-manager"},
		{"HealthyAgainActivates", PhaseDegraded, func(r *Runner) { r.ApplyReport(healthy, t0) }, PhaseActive, ""},
		{"RenewalRevivesInactive", PhaseInactive, func(r *Runner) { r.Report = healthy; r.ApplyRenewal(t0) }, PhaseActive, ""},
		{"RenewalRevivesDegraded", PhaseInactive, func(r *Runner) { r.Report = sick; r.ApplyRenewal(t0) }, PhaseDegraded, "executor stuck"},
		{"RenewalKeepsActive", PhaseActive, func(r *Runner) { r.ApplyRenewal(t0) }, PhaseActive, ""},
		{"DeletingIsSticky", PhaseDeleting, func(r *Runner) { r.ApplyReport(healthy, t0); r.ApplyRenewal(t0) }, PhaseDeleting, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{Status: Status{Phase: tt.start}}
			tt.apply(r)
			if r.Status.Phase != tt.want {
				t.Fatalf("phase = %s, want %s", r.Status.Phase, tt.want)
			}
			if !strings.Contains(r.Status.Message, tt.wantInMsg) {
				t.Fatalf("message = %q, want it to contain %q", r.Status.Message, tt.wantInMsg)
			}
		})
	}
}

func TestRenewalNeverMovesBack(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	r := &Runner{Status: Status{Phase: PhaseActive}}
	r.ApplyRenewal(t0.Add(time.Minute))
	r.ApplyRenewal(t0)
	if !r.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last seen moved back to %v", r.LastSeen)
	}
	if !r.Live(t0.Add(70*time.Second), 30*time.Second) || r.Live(t0.Add(91*time.Second), 30*time.Second) {
		t.Fatal("Live does not follow the timeout")
	}
	if (&Runner{}).Live(t0, time.Hour) {
		t.Fatal("a runner that never reported is live")
	}
}
