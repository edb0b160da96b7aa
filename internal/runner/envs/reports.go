package envs

import (
	"cmp"
	"maps"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/automations"
)

// Execution reports. The executor records an execution's status several
// times per step (started, log opened, holder recorded, ended, released),
// each time in full. Sending each in full made the control plane read and
// write every step on every change: O(steps²) for an execution. Instead a
// report names only the steps that changed since the previous event
// (ExecutionStatus.partial_steps, when the control plane offers it), an
// event that changes nothing the control plane keeps is not sent, and the
// changes of reportDelay fold into one report per execution: the steps of a
// group that end together arrive as one.

// reportDelay is how long an execution's change waits for others to fold
// into its report. The runner never waits for the report to go on with
// the plan: only the control plane learns of the change this much later.
const reportDelay = 2 * time.Millisecond

// execReports holds the execution reports not yet handed to the stream.
type execReports struct {
	// partial says the control plane takes partial reports (Welcome).
	partial bool
	pending map[string]*pendingReport
	order   []string
	armed   bool
	// delay is reportDelay; tests set it longer and flush themselves.
	delay time.Duration
}

// pendingReport is an execution's report to be: its whole status (built
// into a message only when sent), or the changes since the last report.
type pendingReport struct {
	whole *automations.ExecutionStatus
	delta *runnerv1.ExecutionStatus
}

// PartialReports says whether the control plane the runner is connected to
// takes reports of the steps that changed (Welcome.partial_execution_reports).
// Until it is called, and after it is called with false, every execution
// report is whole.
func (m *Manager) PartialReports(on bool) {
	m.xmu.Lock()
	m.xr.partial = on
	m.xmu.Unlock()
}

// reportExecution folds the change from prev (nil: unknown, the report is
// whole) to cur into cur's pending report.
func (m *Manager) reportExecution(prev, cur *automations.ExecutionStatus) {
	m.xmu.Lock()
	defer m.xmu.Unlock()
	if m.xr.pending == nil {
		m.xr.pending = map[string]*pendingReport{}
	}
	p := m.xr.pending[cur.ID]
	switch {
	case !m.xr.partial || prev == nil || (p != nil && p.whole != nil):
		// Whole: it replaces anything pending, which it includes.
		if p == nil {
			p = &pendingReport{}
			m.xr.pending[cur.ID] = p
			m.xr.order = append(m.xr.order, cur.ID)
		}
		p.whole, p.delta = cur, nil
	default:
		changed := changedSteps(prev, cur)
		if p == nil {
			if len(changed) == 0 && prev.Phase == cur.Phase && prev.FailureMessage == cur.FailureMessage {
				return // nothing the control plane keeps changed
			}
			p = &pendingReport{delta: &runnerv1.ExecutionStatus{Id: cur.ID, PartialSteps: true}}
			m.xr.pending[cur.ID] = p
			m.xr.order = append(m.xr.order, cur.ID)
		}
		d := p.delta
		d.StatusVersion, d.Phase, d.FailureMessage = cur.Version, executionPhase(string(cur.Phase)), cur.FailureMessage
		for _, s := range changed {
			st := stepStatus(s)
			i := 0
			for i < len(d.Steps) && d.Steps[i].GetId() != s.ID {
				i++
			}
			if i < len(d.Steps) {
				d.Steps[i] = st
			} else {
				d.Steps = append(d.Steps, st)
			}
		}
	}
	if !m.xr.armed {
		m.xr.armed = true
		time.AfterFunc(cmp.Or(m.xr.delay, reportDelay), m.flushExecutions)
	}
}

// flushExecutions hands the pending execution reports to the stream, in
// the order their executions first changed.
func (m *Manager) flushExecutions() {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.xmu.Lock()
	pending, order := m.xr.pending, m.xr.order
	m.xr.pending, m.xr.order, m.xr.armed = nil, nil, false
	m.xmu.Unlock()
	for _, id := range order {
		p := pending[id]
		st := p.delta
		if p.whole != nil {
			st = executionStatus(p.whole, p.whole.Steps, false)
		}
		m.reports.Push(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ExecutionStatus{ExecutionStatus: st}})
	}
}

// WholeReport returns r as a control plane without partial reports reads
// it: a partial execution report becomes the execution's whole latest
// status. Any other report is returned as it is.
func (m *Manager) WholeReport(r *runnerv1.ConnectRequest) *runnerv1.ConnectRequest {
	x := r.GetExecutionStatus()
	if x == nil || !x.GetPartialSteps() {
		return r
	}
	m.mu.Lock()
	st := m.executions[x.GetId()]
	m.mu.Unlock()
	if st == nil {
		return r
	}
	return &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ExecutionStatus{ExecutionStatus: executionStatus(st, st.Steps, false)}}
}

// changedSteps returns the steps of cur that prev lacks or holds otherwise.
func changedSteps(prev, cur *automations.ExecutionStatus) []automations.StepStatus {
	var out []automations.StepStatus
	for i, s := range cur.Steps {
		var old *automations.StepStatus
		if i < len(prev.Steps) && prev.Steps[i].ID == s.ID {
			old = &prev.Steps[i] // steps are appended: mostly in place
		} else {
			for j := range prev.Steps {
				if prev.Steps[j].ID == s.ID {
					old = &prev.Steps[j]
					break
				}
			}
		}
		if old == nil || old.Phase != s.Phase || old.FailureMessage != s.FailureMessage || old.LogID != s.LogID || !maps.Equal(old.Outputs, s.Outputs) {
			out = append(out, s)
		}
	}
	return out
}

func executionStatus(x *automations.ExecutionStatus, steps []automations.StepStatus, partial bool) *runnerv1.ExecutionStatus {
	st := &runnerv1.ExecutionStatus{Id: x.ID, StatusVersion: x.Version, Phase: executionPhase(string(x.Phase)), FailureMessage: x.FailureMessage, PartialSteps: partial}
	for _, s := range steps {
		st.Steps = append(st.Steps, stepStatus(s))
	}
	return st
}

func stepStatus(s automations.StepStatus) *runnerv1.StepStatus {
	return &runnerv1.StepStatus{Id: s.ID, Phase: executionPhase(string(s.Phase)), FailureMessage: s.FailureMessage, Output: s.Outputs, LogId: s.LogID}
}
