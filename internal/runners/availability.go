package runners

import "time"

// This file holds the rules the REST API's runner views rest on: when a
// runner counts as online, and when it may take another pod.

// Online reports whether a runner's daemon is connected and working: its
// phase is ACTIVE or DEGRADED and it renewed within timeout of now. A runner
// that never connected, went silent, or is being deleted is offline.
func (r *Runner) Online(now time.Time, timeout time.Duration) bool {
	switch r.Status.Phase {
	case PhaseActive, PhaseDegraded:
		return r.Live(now, timeout)
	}
	return false
}

// Draining reports whether a runner takes no new work: its daemon said so, or
// a user asked for any desired phase but ACTIVE.
func (r *Runner) Draining() bool {
	return r.Report.Draining || r.Spec.DesiredPhase != PhaseActive
}

// TakesNoPods reports whether pod placement passes a runner over, however
// few pods it has: it drains, or its daemon reports its pod manager
// unhealthy (a pod placed there would fail at once, and the runner would
// stay the least loaded and get every next pod too).
func (r *Runner) TakesNoPods() bool {
	return r.Draining() || r.PodManagerFault() != ""
}

// PodManagerFault is what the daemon says is wrong with its pod manager,
// "" while it reports it healthy.
func (r *Runner) PodManagerFault() string {
	for _, c := range r.Report.Components {
		if c.Name == ComponentAgent && !c.Healthy {
			if c.Message == "" {
				return "unhealthy"
			}
			return c.Message
		}
	}
	return ""
}

// Available reports whether a runner can take another pod at now: it is
// online, takes pods (TakesNoPods), and podCount (its active pods) is below
// the maximum its daemon reported.
func (r *Runner) Available(now time.Time, timeout time.Duration, podCount int) bool {
	return r.Online(now, timeout) && !r.TakesNoPods() && podCount < r.Report.MaxPods
}
