package runners

import (
	"testing"
	"time"
)

func TestRunner_Available(t *testing.T) {
	now := time.Date(2025, 1, 15, 14, 30, 0, 0, time.UTC)
	const timeout = 30 * time.Second
	// ready is a runner that takes pods: connected a second ago, ACTIVE,
	// wanted ACTIVE, room for two pods.
	ready := func() *Runner {
		return &Runner{
			Spec:     Spec{DesiredPhase: PhaseActive},
			Status:   Status{Phase: PhaseActive},
			Report:   Report{MaxPods: 2},
			LastSeen: now.Add(-time.Second),
		}
	}
	tests := []struct {
		name      string
		change    func(r *Runner)
		pods      int
		online    bool
		draining  bool
		available bool
	}{
		{"OK", func(r *Runner) {}, 0, true, false, true},
		{"OKOneFree", func(r *Runner) {}, 1, true, false, true},
		{"OKDegraded", func(r *Runner) { r.Status.Phase = PhaseDegraded }, 0, true, false, true},
		{"Full", func(r *Runner) {}, 2, true, false, false},
		{"OverFull", func(r *Runner) {}, 3, true, false, false},
		{"NoPodsAllowed", func(r *Runner) { r.Report.MaxPods = 0 }, 0, true, false, false},
		{"NeverConnected", func(r *Runner) { r.LastSeen = time.Time{}; r.Status.Phase = PhaseCreated }, 0, false, false, false},
		{"NeverConnectedButActive", func(r *Runner) { r.LastSeen = time.Time{} }, 0, false, false, false},
		{"Silent", func(r *Runner) { r.LastSeen = now.Add(-timeout) }, 0, false, false, false},
		{"JustInTime", func(r *Runner) { r.LastSeen = now.Add(-timeout + time.Microsecond) }, 0, true, false, true},
		{"Inactive", func(r *Runner) { r.Status.Phase = PhaseInactive }, 0, false, false, false},
		{"Deleting", func(r *Runner) { r.Status.Phase = PhaseDeleting; r.Spec.DesiredPhase = PhaseDeleted }, 0, false, true, false},
		{"Created", func(r *Runner) { r.Status.Phase = PhaseCreated }, 0, false, false, false},
		{"DaemonDraining", func(r *Runner) { r.Report.Draining = true }, 0, true, true, false},
		{"DesiredInactive", func(r *Runner) { r.Spec.DesiredPhase = PhaseInactive }, 0, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ready()
			tt.change(r)
			if got, want := r.Online(now, timeout), tt.online; got != want {
				t.Errorf("Online = %v, want %v", got, want)
			}
			if got, want := r.Draining(), tt.draining; got != want {
				t.Errorf("Draining = %v, want %v", got, want)
			}
			if got, want := r.Available(now, timeout, tt.pods), tt.available; got != want {
				t.Errorf("Available = %v, want %v", got, want)
			}
		})
	}
}
