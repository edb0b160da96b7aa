package automations

import (
	"testing"
	"time"
)

func TestUnreachable_Services(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const reason = "runner unreachable for more than 10m0s"
	for _, tc := range []struct {
		name           string
		desired, phase ServicePhase
		statusSession  string
		// wait: marked while the runner is unreachable; fail: failed after
		// lost-after; wantDesired: the desired phase after that.
		wait, fail  bool
		wantDesired ServicePhase
	}{
		{"Running", ServicePhaseRunning, ServicePhaseRunning, "s1", true, true, ServicePhaseStopped},
		{"Starting", ServicePhaseRunning, ServicePhaseStarting, "s1", true, true, ServicePhaseStopped},
		{"StartPending", ServicePhaseRunning, ServicePhaseStopped, "s0", true, true, ServicePhaseStopped},
		{"Stopping", ServicePhaseStopped, ServicePhaseRunning, "s1", true, true, ServicePhaseStopped},
		{"Stopped", ServicePhaseStopped, ServicePhaseStopped, "s1", false, false, ServicePhaseStopped},
		{"ExitedInSession", ServicePhaseRunning, ServicePhaseStopped, "s1", false, false, ServicePhaseRunning},
		{"FailedBefore", ServicePhaseRunning, ServicePhaseFailed, "s1", false, false, ServicePhaseRunning},
		{"NeverRan", ServicePhaseStopped, ServicePhaseUnspecified, "", false, false, ServicePhaseStopped},
		{"DeletingRunning", ServicePhaseDeleted, ServicePhaseRunning, "s1", true, true, ServicePhaseDeleted},
		{"DeletingStopped", ServicePhaseDeleted, ServicePhaseStopped, "s1", true, false, ServicePhaseDeleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &Service{
				Spec:   ServiceSpec{SpecVersion: 3, DesiredPhase: tc.desired, Session: "s1"},
				Status: ServiceStatus{StatusVersion: 7, Phase: tc.phase, Session: tc.statusSession},
			}
			if got := waitsForRunner(svc); got != tc.wait {
				t.Errorf("waitsForRunner = %v, want %v", got, tc.wait)
			}
			before := *svc
			if got := failService(svc, reason, now); got != tc.fail {
				t.Fatalf("failService = %v, want %v", got, tc.fail)
			}
			if svc.Spec.DesiredPhase != tc.wantDesired {
				t.Errorf("desired phase = %s, want %s", svc.Spec.DesiredPhase, tc.wantDesired)
			}
			if !tc.fail {
				if svc.Spec.SpecVersion != before.Spec.SpecVersion || svc.Status.Phase != before.Status.Phase {
					t.Errorf("a service not failed changed: %+v", svc)
				}
				return
			}
			if svc.Status.Phase != ServicePhaseFailed || svc.Status.FailureMessage != reason || !svc.UpdatedAt.Equal(now) {
				t.Errorf("status = %+v, want FAILED with %q", svc.Status, reason)
			}
			// The runner's versions are its own; a failed service is
			// stopped, so it waits for nothing and a runner back stops it.
			if svc.Status.StatusVersion != 7 || svc.Status.Session != "s1" || !svc.Stopped() {
				t.Errorf("status = %+v: version changed, or not stopped", svc.Status)
			}
			if wantSpec := before.Spec.SpecVersion + map[bool]uint64{true: 1}[before.Spec.DesiredPhase == ServicePhaseRunning]; svc.Spec.SpecVersion != wantSpec {
				t.Errorf("spec version = %d, want %d", svc.Spec.SpecVersion, wantSpec)
			}
		})
	}
}

func TestUnreachable_Executions(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const reason = "runner deleted"
	for _, phase := range ExecutionPhases {
		t.Run(string(phase), func(t *testing.T) {
			x := &TaskExecution{Status: ExecutionStatus{StatusVersion: 4, Phase: phase, Steps: []StepStatus{
				{ID: "a", Phase: ExecutionPhaseSucceeded}, {ID: "b", Phase: ExecutionPhaseRunning},
			}}}
			if got, want := failExecution(x, reason, now), !phase.Finished(); got != want {
				t.Fatalf("failExecution = %v, want %v", got, want)
			}
			if phase.Finished() {
				if x.Status.Phase != phase || x.CompletedAt != nil {
					t.Errorf("a finished execution changed: %+v", x)
				}
				return
			}
			if x.Status.Phase != ExecutionPhaseFailed || x.Status.FailureMessage != reason || x.Status.StatusVersion != 4 ||
				x.CompletedAt == nil || !x.CompletedAt.Equal(now) {
				t.Errorf("status = %+v, completed %v", x.Status, x.CompletedAt)
			}
			if s := x.Status.Steps; s[0].Phase != ExecutionPhaseSucceeded || s[1].Phase != ExecutionPhaseFailed || s[1].FailureMessage != reason {
				t.Errorf("steps = %+v, want the finished one kept, the running one failed", s)
			}
		})
	}
}

func TestUnreachable_Message(t *testing.T) {
	for _, tc := range []struct{ msg, failure, want string }{
		{"runner a unreachable since T", "", "runner a unreachable since T"},
		{"runner a unreachable since T", "exit 3", "runner a unreachable since T; exit 3"},
	} {
		if got := withUnreachable(tc.msg, tc.failure); got != tc.want {
			t.Errorf("withUnreachable(%q, %q) = %q, want %q", tc.msg, tc.failure, got, tc.want)
		}
	}
}
