package envs

import (
	"testing"
	"time"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/automations"
	"github.com/runyard/runyard/internal/runner/queue"
)

// TestExecutionReports: executor events of one execution that come within
// reportDelay fold into one report naming only the steps that changed; an
// event that changes nothing the control plane keeps is not reported; a
// control plane without partial reports gets whole ones.
func TestExecutionReports(t *testing.T) {
	type ev struct {
		version uint64
		phase   automations.ExecutionPhase
		steps   []automations.StepStatus
	}
	running, ok := automations.StepRunning, automations.StepSucceeded
	st := func(id string, phase automations.StepPhase, logID string) automations.StepStatus {
		return automations.StepStatus{ID: id, Phase: phase, LogID: logID}
	}
	type want struct {
		version uint64
		partial bool
		steps   string // "id:phase" of each step, in order
	}
	for _, tc := range []struct {
		name    string
		partial bool
		// before are events reported (and flushed) first; events come
		// at once and fold.
		before, events []ev
		want           []want
	}{
		{
			name: "first report is whole", partial: true,
			events: []ev{{1, automations.ExecutionRunning, nil}, {2, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "")}}},
			want:   []want{{2, false, "a:RUNNING"}},
		},
		{
			name: "changed steps only, folded", partial: true,
			before: []ev{{1, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "")}}},
			events: []ev{
				{2, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "log-a")}},
				{3, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "log-a")}},
				{4, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "log-a"), st("b", running, "")}},
				{5, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "log-a"), st("b", running, "")}}, // holder recorded: nothing new
				{6, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "log-a"), st("b", ok, "")}},
			},
			want: []want{{6, true, "a:SUCCEEDED b:SUCCEEDED"}},
		},
		{
			name: "nothing changed", partial: true,
			before: []ev{{1, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "")}}},
			events: []ev{{2, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "")}}},
		},
		{
			name: "the execution's phase alone", partial: true,
			before: []ev{{1, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "")}}},
			events: []ev{{2, automations.ExecutionSucceeded, []automations.StepStatus{st("a", ok, "")}}},
			want:   []want{{2, true, ""}},
		},
		{
			name:   "whole reports to a control plane without partial ones",
			before: []ev{{1, automations.ExecutionRunning, []automations.StepStatus{st("a", running, "")}}},
			events: []ev{
				{2, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, "")}},
				{3, automations.ExecutionRunning, []automations.StepStatus{st("a", ok, ""), st("b", running, "")}},
			},
			want: []want{{3, false, "a:SUCCEEDED b:RUNNING"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{reports: queue.New[*runnerv1.ConnectRequest](), executions: map[string]*automations.ExecutionStatus{}}
			defer m.reports.Close()
			m.PartialReports(tc.partial)
			m.xr.delay = time.Hour // flushed below, after all events
			var prev *automations.ExecutionStatus
			push := func(e ev) {
				cur := &automations.ExecutionStatus{ID: "x", Phase: e.phase, Steps: e.steps, Version: e.version}
				m.executions["x"] = cur
				m.reportExecution(prev, cur)
				prev = cur
			}
			for _, e := range tc.before {
				push(e)
			}
			if len(tc.before) > 0 {
				m.flushExecutions()
				<-m.reports.Out()
			}
			for _, e := range tc.events {
				push(e)
			}
			m.flushExecutions()
			var got []*runnerv1.ExecutionStatus
			deadline := time.After(time.Second)
		collect:
			for {
				select {
				case r := <-m.reports.Out():
					got = append(got, r.GetExecutionStatus())
				case <-time.After(100 * time.Millisecond):
					break collect
				case <-deadline:
					break collect
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d reports, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				steps := ""
				for j, s := range g.GetSteps() {
					if j > 0 {
						steps += " "
					}
					steps += s.GetId() + ":" + s.GetPhase().String()[len("TASK_EXECUTION_PHASE_"):]
				}
				if g.GetStatusVersion() != w.version || g.GetPartialSteps() != w.partial || steps != w.steps {
					t.Errorf("report %d: version %d partial %v steps %q, want %d %v %q", i, g.GetStatusVersion(), g.GetPartialSteps(), steps, w.version, w.partial, w.steps)
				}
			}
			// A partial report read by a control plane without them is the
			// whole latest status.
			if len(got) > 0 && got[0].GetPartialSteps() {
				whole := m.WholeReport(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ExecutionStatus{ExecutionStatus: got[0]}}).GetExecutionStatus()
				if whole.GetPartialSteps() || len(whole.GetSteps()) != len(prev.Steps) || whole.GetPhase() != gitpodv1.TaskExecutionPhase(executionPhase(string(prev.Phase))) {
					t.Errorf("whole report = %v, want the latest status %+v", whole, prev)
				}
			}
		})
	}
}
