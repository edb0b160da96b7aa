package automations

import (
	"bufio"
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// ExecutionPhase is a task execution's phase on the runner.
type ExecutionPhase string

const (
	ExecutionRunning   ExecutionPhase = "running"
	ExecutionSucceeded ExecutionPhase = "succeeded"
	ExecutionFailed    ExecutionPhase = "failed"
	ExecutionStopped   ExecutionPhase = "stopped"
)

// Final reports whether the execution ended.
func (p ExecutionPhase) Final() bool { return p != ExecutionRunning && p != "" }

// StepPhase is a step's phase.
type StepPhase string

const (
	StepRunning   StepPhase = "running"
	StepSucceeded StepPhase = "succeeded"
	StepFailed    StepPhase = "failed"
	StepStopped   StepPhase = "stopped"
)

// Final reports whether the step ended.
func (p StepPhase) Final() bool { return p != StepRunning && p != "" }

// StepSpec is one step of an execution: a task's command, or a service
// (ServiceID) awaited until it runs. The control plane asks for the service
// to run; the step only waits for it.
type StepSpec struct {
	// ID names the step in the status: the task's or the service's ID.
	ID string
	// Label is the step's name for people (the task's or service's
	// name); it may be empty.
	Label     string
	Task      *Command
	ServiceID string
}

// stepName names step id of steps for a failure message: its label and ID
// when it has a label.
func stepName(steps []StepSpec, id string) string {
	for _, st := range steps {
		if st.ID == id && st.Label != "" {
			return fmt.Sprintf("%q (%s)", st.Label, id)
		}
	}
	return id
}

// ExecutionSpec is a task execution as the control plane wants it.
type ExecutionSpec struct {
	ID string
	// Groups run one after another; the steps of a group run at once.
	Groups [][]StepSpec
	// Stop asks a running execution to stop.
	Stop bool
}

// StepStatus is a step that started.
type StepStatus struct {
	ID             string            `json:"id"`
	Phase          StepPhase         `json:"phase"`
	FailureMessage string            `json:"failureMessage,omitempty"`
	Outputs        map[string]string `json:"outputs,omitempty"`
	LogID          string            `json:"logId,omitempty"`
	StartedAt      time.Time         `json:"startedAt"`
	FinishedAt     time.Time         `json:"finishedAt,omitzero"`
}

// ExecutionStatus is an execution's state on the runner. Steps lists the
// steps that started, in plan order; missing steps never started.
type ExecutionStatus struct {
	ID             string         `json:"id"`
	Phase          ExecutionPhase `json:"phase"`
	FailureMessage string         `json:"failureMessage,omitempty"`
	Steps          []StepStatus   `json:"steps"`
	StartedAt      time.Time      `json:"startedAt"`
	CompletedAt    time.Time      `json:"completedAt,omitzero"`
	Version        uint64         `json:"version"`
}

type executionRecord struct {
	Status ExecutionStatus `json:"status"`
	// Held maps each running task step to its process holder's directory,
	// written before the holder starts: a later runner process adopts the
	// steps and carries on with the plan.
	Held map[string]string `json:"held,omitempty"`
	// HeldSteps says the steps ran under holders; an unfinished record
	// without it is from a runner version whose steps died with it.
	HeldSteps bool `json:"heldSteps,omitempty"`
	// Groups are the sessions of steps of runner versions without holders.
	Groups []proc.Record `json:"groups,omitempty"`
}

// stopMsg asks an execution to stop: stopped with reason, or failed with
// it when the runner stops (an interrupted execution never succeeded).
type stopMsg struct {
	reason string
	fail   bool
}

type execution struct {
	e  *Executor
	id string

	mu     sync.Mutex
	st     ExecutionStatus
	held   map[string]string // running steps' holder directories, by step ID
	stop   chan stopMsg      // the stop request; capacity 1
	force  chan struct{}
	detach chan struct{} // closed by Close: steps run on under their holders
	done   bool
	// resume says the execution ran under a previous runner process: the
	// next EnsureExecutions carries on with its plan.
	resume  bool
	forceMu sync.Once

	saveMu sync.Mutex
	saved  uint64 // the version of the record on disk
}

func (x *execution) status() *ExecutionStatus {
	st := x.st
	st.Steps = append([]StepStatus(nil), x.st.Steps...)
	return &st
}

// EnsureExecutions converges on specs: an execution not seen before starts
// (once per ID, also across runner restarts); Stop, or leaving the set,
// stops a running one.
func (e *Executor) EnsureExecutions(specs []ExecutionSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	want := map[string]bool{}
	for _, sp := range specs {
		if err := validID("execution", sp.ID); err != nil {
			return err
		}
		want[sp.ID] = true
		x := e.executions[sp.ID]
		if x == nil {
			if sp.Stop {
				continue // stopped before it started here: nothing to run
			}
			x = e.newExecution(sp.ID)
			x.st = ExecutionStatus{ID: sp.ID, Phase: ExecutionRunning, StartedAt: time.Now(), Steps: []StepStatus{}}
			e.executions[sp.ID] = x
			e.wg.Add(1)
			go x.run(sp)
			continue
		}
		if x.takeResume() {
			// Its steps ran on under their holders while no runner
			// process watched: carry on with the plan where it was.
			if sp.Stop {
				x.requestStop(stopMsg{reason: "stopped on request"})
			}
			e.wg.Add(1)
			go x.run(sp)
			continue
		}
		if sp.Stop {
			x.requestStop(stopMsg{reason: "stopped on request"})
		}
	}
	for id, x := range e.executions {
		if !want[id] {
			if x.takeResume() {
				// Removed while no runner process watched: its plan is
				// not known any more; its running steps are stopped.
				e.wg.Add(1)
				go x.stopResumed("the execution was removed")
				continue
			}
			x.requestStop(stopMsg{reason: "the execution was removed"})
			x.mu.Lock()
			if x.done {
				delete(e.executions, id)
			}
			x.mu.Unlock()
		}
	}
	return nil
}

func (e *Executor) newExecution(id string) *execution {
	return &execution{e: e, id: id, held: map[string]string{}, stop: make(chan stopMsg, 1), force: make(chan struct{}), detach: e.detach}
}

// takeResume reports whether x waits to be resumed, and clears it.
func (x *execution) takeResume() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.resume
	x.resume = false
	return r
}

func (x *execution) requestStop(m stopMsg) {
	select {
	case x.stop <- m:
	default:
	}
}

func (x *execution) kill() { x.forceMu.Do(func() { close(x.force) }) }

// update changes the status under the lock, records and reports it.
func (x *execution) update(f func(*ExecutionStatus)) { x.change(f, true) }

// note changes the status and reports it without writing the record: for
// a change a crash may lose, because the next recorded one carries it and
// nothing irreversible happens before that. A task step is recorded twice
// (its holder before it starts, its end before its holder directory goes)
// instead of five times: each record is the whole execution, synced twice.
func (x *execution) note(f func(*ExecutionStatus)) { x.change(f, false) }

func (x *execution) change(f func(*ExecutionStatus), durable bool) {
	x.mu.Lock()
	f(&x.st)
	x.st.Version = x.e.nextVersion()
	st := x.status()
	rec := executionRecord{Status: *st, HeldSteps: true}
	if len(x.held) > 0 {
		rec.Held = map[string]string{}
		for id, dir := range x.held {
			rec.Held[id] = dir
		}
	}
	x.mu.Unlock()
	if !durable {
		x.e.emit(Event{Execution: st})
		x.e.executionsChanged()
		return
	}
	// Steps of a group finish at once: records are written one at a time,
	// and one older than the last written is dropped, so the file a
	// restarted runner reads is the newest.
	x.saveMu.Lock()
	if st.Version > x.saved {
		if err := statefile.Write(filepath.Join(x.e.cfg.Dir, executionsDir, x.id+".json"), rec); err != nil {
			x.e.log.Error("record execution", "execution", x.id, "err", err)
		}
		x.saved = st.Version
	}
	x.saveMu.Unlock()
	x.e.emit(Event{Execution: st})
	x.e.executionsChanged()
}

func (x *execution) step(id string, f func(*StepStatus)) { x.changeStep(id, f, true) }

// noteStep is step without writing the record (note).
func (x *execution) noteStep(id string, f func(*StepStatus)) { x.changeStep(id, f, false) }

func (x *execution) changeStep(id string, f func(*StepStatus), durable bool) {
	x.change(func(st *ExecutionStatus) {
		for i := range st.Steps {
			if st.Steps[i].ID == id {
				f(&st.Steps[i])
				return
			}
		}
	}, durable)
}

// run runs the plan: a group starts once every step of the one before
// succeeded; a failed step fails the execution and stops its group. A
// resumed execution skips the steps that succeeded and adopts the ones
// still running under their holders. When the executor closes, run lets
// go of the running steps, which go on for the next runner process.
func (x *execution) run(sp ExecutionSpec) {
	defer x.e.wg.Done()
	x.update(func(*ExecutionStatus) {})
	var stopped *stopMsg
	stop := func(m stopMsg) {
		phase := ExecutionStopped
		if m.fail {
			phase = ExecutionFailed
		}
		x.update(func(s *ExecutionStatus) {
			s.Phase, s.FailureMessage, s.CompletedAt = phase, m.reason, time.Now()
		})
		x.finish()
	}
	for gi, group := range sp.Groups {
		// Steps hear of a stop through cancel; the first failure cancels
		// the group too.
		cancel := make(chan struct{})
		var once sync.Once
		cancelGroup := func() { once.Do(func() { close(cancel) }) }
		results := make(chan stepResult, len(group))
		n := 0
		for _, st := range group {
			prev, seen := x.stepStatus(st.ID)
			switch {
			case seen && prev.Phase == StepSucceeded:
				continue // done before the runner restarted
			case seen && prev.Phase.Final():
				results <- stepResult{id: st.ID, failure: cmp.Or(prev.FailureMessage, string(prev.Phase))}
			case seen:
				go func() { results <- x.runStep(st, cancel) }()
			default:
				// Recorded with the step's holder (runStep), before
				// anything starts: a crash before that leaves a step
				// that never ran, which the next runner process starts.
				x.note(func(s *ExecutionStatus) {
					s.Steps = append(s.Steps, StepStatus{ID: st.ID, Phase: StepRunning, StartedAt: time.Now()})
				})
				go func() { results <- x.runStep(st, cancel) }()
			}
			n++
		}
		var failed *stepResult
		detached := false
		for range n {
			var r stepResult
			select {
			case r = <-results:
			case m := <-x.stop:
				stopped = &m
				cancelGroup()
				r = <-results
			}
			detached = detached || r.detached
			if r.failure != "" && failed == nil && stopped == nil {
				failed = &r
				cancelGroup()
			}
		}
		cancelGroup()
		switch {
		case detached:
			return
		case stopped != nil:
			stop(*stopped)
			return
		case failed != nil:
			x.update(func(s *ExecutionStatus) {
				s.Phase, s.CompletedAt = ExecutionFailed, time.Now()
				s.FailureMessage = fmt.Sprintf("step %s (group %d of %d) failed: %s", stepName(sp.Groups[gi], failed.id), gi+1, len(sp.Groups), failed.failure)
			})
			x.finish()
			return
		}
		select {
		case m := <-x.stop:
			stop(m)
			return
		default:
		}
	}
	x.update(func(s *ExecutionStatus) { s.Phase, s.CompletedAt = ExecutionSucceeded, time.Now() })
	x.finish()
}

// stepStatus returns the status of step id, if it started.
func (x *execution) stepStatus(id string) (StepStatus, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, st := range x.st.Steps {
		if st.ID == id {
			return st, true
		}
	}
	return StepStatus{}, false
}

// stopResumed stops the steps of an execution that ran under a previous
// runner process and is no longer wanted: its plan is not known any more.
func (x *execution) stopResumed(reason string) {
	defer x.e.wg.Done()
	x.mu.Lock()
	held := maps.Clone(x.held)
	x.mu.Unlock()
	for id, dir := range held {
		if h, err := holder.Adopt(dir, holder.Hooks{}); err == nil {
			killHeld(h)
		}
		x.step(id, func(s *StepStatus) {
			if !s.Phase.Final() {
				s.Phase, s.FinishedAt = StepStopped, time.Now()
			}
		})
		x.release(id, dir)
	}
	x.update(func(s *ExecutionStatus) {
		s.Phase, s.FailureMessage, s.CompletedAt = ExecutionStopped, reason, time.Now()
	})
	x.finish()
}

// release forgets step id's holder once its end is recorded.
func (x *execution) release(id, dir string) {
	x.mu.Lock()
	delete(x.held, id)
	x.mu.Unlock()
	if err := holder.Remove(dir); err != nil {
		x.e.log.Warn("remove a step's holder directory", "execution", x.id, "step", id, "err", err)
	}
	_ = os.Remove(x.e.outputPath(filepath.Base(dir)))
	// The step's end is recorded already (every caller records it
	// first): a crash before the next record leaves a finished step that
	// names a holder directory no longer there, which is never adopted.
	x.note(func(*ExecutionStatus) {})
}

func (x *execution) finish() {
	x.mu.Lock()
	x.done = true
	x.mu.Unlock()
	x.e.executionsChanged()
}

type stepResult struct {
	id      string
	failure string // empty when the step succeeded or was stopped
	// detached says the runner process stops and let go of the step,
	// which runs on under its holder.
	detached bool
}

// runStep runs one step until it ends or cancel closes; a step that ran
// under a previous runner process is adopted instead of started.
func (x *execution) runStep(sp StepSpec, cancel <-chan struct{}) stepResult {
	if sp.ServiceID != "" {
		return x.awaitService(sp, cancel)
	}
	e := x.e
	end := func(phase StepPhase, msg string, outputs map[string]string) stepResult {
		x.step(sp.ID, func(s *StepStatus) {
			s.Phase, s.FailureMessage, s.Outputs, s.FinishedAt = phase, msg, outputs, time.Now()
		})
		if phase == StepFailed {
			return stepResult{id: sp.ID, failure: msg}
		}
		return stepResult{id: sp.ID}
	}
	if sp.Task == nil {
		return end(StepFailed, "the step has neither a command nor a service", nil)
	}
	x.mu.Lock()
	dir, adopted := x.held[sp.ID]
	x.mu.Unlock()
	var (
		logID string
		lg    *runLog
		h     *holder.Handle
		err   error
	)
	if adopted && holder.Unstarted(dir) {
		// The previous runner process recorded the step and died before
		// it handed the command to a holder: it never ran, and starts now,
		// with the log it was given.
		adopted, logID = false, filepath.Base(dir)
		if lg, err = e.reopenLog(logID); err != nil {
			r := end(StepFailed, "reopen the step's log: "+err.Error(), nil)
			x.release(sp.ID, dir)
			return r
		}
		e.log.Info("starting a task step a previous runner process recorded but did not start", "execution", x.id, "step", sp.ID)
	}
	if adopted {
		logID = filepath.Base(dir)
		if lg, err = e.reopenLog(logID); err == nil {
			h, err = holder.Adopt(dir, holder.Hooks{Grew: lg.grew})
		}
		if err != nil {
			if lg != nil {
				e.closeLog(logID, lg)
			}
			r := end(StepFailed, "the runner could not take over the step's process after it restarted: "+err.Error(), nil)
			x.release(sp.ID, dir)
			return r
		}
		e.log.Info("adopted a task step a previous runner process started", "execution", x.id, "step", sp.ID, "pid", h.Record().Command.Session)
	} else {
		if lg == nil {
			if logID, lg, err = e.openLog(); err != nil {
				return end(StepFailed, "create the step's log: "+err.Error(), nil)
			}
			x.noteStep(sp.ID, func(s *StepStatus) { s.LogID = logID })
		}
		spec, err := e.holderSpec(*sp.Task, lg.path, "RUNYARD_OUTPUT="+e.outputPath(logID), "RUNYARD_TASK_EXECUTION_ID="+x.id)
		if err == nil {
			dir = e.holderDir(logID)
			x.mu.Lock()
			x.held[sp.ID] = dir
			x.mu.Unlock()
			x.update(func(*ExecutionStatus) {}) // records the holder before it starts
			if h, err = holder.Start(dir, spec, holder.Hooks{Grew: lg.grew, Recyclable: true}); err != nil {
				x.mu.Lock()
				delete(x.held, sp.ID)
				x.mu.Unlock()
				_ = holder.Remove(dir)
			}
		}
		if err != nil {
			lg.line("the command could not start: %v", err)
			e.closeLog(logID, lg)
			return end(StepFailed, "the command could not start: "+err.Error(), nil)
		}
	}
	defer e.closeLog(logID, lg)
	// The outputs file goes with the holder (release): a step that runs
	// on for the next runner process keeps writing it.
	outFile := e.outputPath(logID)
	select {
	case <-h.Done():
	case <-x.detach:
		h.Detach()
		return stepResult{id: sp.ID, detached: true}
	case <-cancel:
		_ = h.Signal(syscall.SIGTERM)
		grace := time.NewTimer(e.cfg.StopGrace)
		defer grace.Stop()
		select {
		case <-h.Done():
		case <-grace.C:
			lg.line("the step did not stop within the %s grace period: killing it", e.cfg.StopGrace)
		case <-x.force:
		}
		killHeld(h)
		lg.line("stopped")
		r := end(StepStopped, "", nil)
		x.release(sp.ID, dir)
		return r
	case <-x.force:
		killHeld(h)
		r := end(StepFailed, "the runner stopped during the step", nil)
		x.release(sp.ID, dir)
		return r
	}
	xit := h.Exit()
	lg.line("the command ended: %s", xit.How)
	outputs, err := readOutputs(outFile)
	var r stepResult
	switch {
	case err != nil:
		r = end(StepFailed, err.Error(), nil)
	case xit.Code != 0 || xit.Signal != 0:
		r = end(StepFailed, xit.How, outputs)
	default:
		r = end(StepSucceeded, "", outputs)
	}
	x.release(sp.ID, dir)
	// The holder's directory is gone: the holder may run the next step.
	h.Recycle()
	return r
}

// awaitService waits until the step's service runs on this runner; the
// service failing or stopping fails the step.
func (x *execution) awaitService(sp StepSpec, cancel <-chan struct{}) stepResult {
	end := func(phase StepPhase, msg string) stepResult {
		x.step(sp.ID, func(s *StepStatus) { s.Phase, s.FailureMessage, s.FinishedAt = phase, msg, time.Now() })
		if phase == StepFailed {
			return stepResult{id: sp.ID, failure: msg}
		}
		return stepResult{id: sp.ID}
	}
	seenStarting := false
	for {
		e := x.e
		e.mu.Lock()
		changed := e.svcChanged
		s := e.services[sp.ServiceID]
		e.mu.Unlock()
		if s != nil {
			s.mu.Lock()
			phase, msg, running := s.st.Phase, s.st.FailureMessage, s.running
			s.mu.Unlock()
			switch {
			case phase == PhaseRunning:
				return end(StepSucceeded, "")
			case phase == PhaseStarting:
				seenStarting = true
			case phase == PhaseFailed && (seenStarting || !running):
				return end(StepFailed, fmt.Sprintf("service %s failed: %s", sp.ServiceID, msg))
			case phase == PhaseStopped && seenStarting:
				return end(StepFailed, fmt.Sprintf("service %s stopped before it was ready", sp.ServiceID))
			}
		}
		select {
		case <-changed:
		case <-cancel:
			return end(StepStopped, "")
		case <-x.force:
			return end(StepFailed, "the runner stopped during the step")
		case <-x.detach:
			return stepResult{id: sp.ID, detached: true}
		}
	}
}

// maxOutputs bounds what a step may set through $RUNYARD_OUTPUT.
const (
	maxOutputs     = 256
	maxOutputBytes = 64 << 10
)

// readOutputs parses the key=value lines a step wrote to $RUNYARD_OUTPUT.
func readOutputs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the step's outputs: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the step's outputs: %w", err)
	}
	if st.Size() > maxOutputBytes {
		return nil, fmt.Errorf("$RUNYARD_OUTPUT holds %d bytes; at most %d are allowed", st.Size(), maxOutputBytes)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxOutputBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("$RUNYARD_OUTPUT line %d: want key=value, got %q", n, line)
		}
		out[strings.TrimSpace(k)] = v
		if len(out) > maxOutputs {
			return nil, fmt.Errorf("$RUNYARD_OUTPUT sets more than %d outputs", maxOutputs)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the step's outputs: %w", err)
	}
	return out, nil
}
