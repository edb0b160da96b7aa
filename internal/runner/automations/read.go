package automations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// Statuses returns the latest status of every service and execution the
// executor holds, for a control plane that reconnected: reports carry their
// versions, so sending them again is harmless.
func (e *Executor) Statuses() []Event {
	e.mu.Lock()
	svcs := make([]*service, 0, len(e.services))
	for _, s := range e.services {
		svcs = append(svcs, s)
	}
	xs := make([]*execution, 0, len(e.executions))
	for _, x := range e.executions {
		xs = append(xs, x)
	}
	e.mu.Unlock()
	out := make([]Event, 0, len(svcs)+len(xs))
	for _, s := range svcs {
		s.mu.Lock()
		out = append(out, Event{Service: s.status()})
		s.mu.Unlock()
	}
	for _, x := range xs {
		x.mu.Lock()
		out = append(out, Event{Execution: x.status()})
		x.mu.Unlock()
	}
	return out
}

// execution returns the status of execution id, from memory or from its
// record; ok is false when the executor never held it.
func (e *Executor) executionStatus(id string) (st *ExecutionStatus, done bool, ok bool) {
	e.mu.Lock()
	x := e.executions[id]
	e.mu.Unlock()
	if x != nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.status(), x.done, true
	}
	var rec executionRecord
	if err := statefile.Read(filepath.Join(e.cfg.Dir, executionsDir, id+".json"), &rec); err != nil {
		return nil, false, false
	}
	return &rec.Status, true, true
}

// ReadExecutionLog writes the log of execution id: the log of each step that
// started, in plan order, each behind a header line. With follow it goes on
// until the execution ends or ctx ends; the steps of a group run at once,
// and each step's log is written whole before the next one's.
func (e *Executor) ReadExecutionLog(ctx context.Context, id string, follow bool, w io.Writer) error {
	if validID("execution", id) != nil {
		return ErrUnknownLog
	}
	written := map[string]bool{}
	for {
		// Taken before the status is read, so that a change after the
		// read is not missed.
		e.mu.Lock()
		changed := e.execChanged
		e.mu.Unlock()
		st, done, ok := e.executionStatus(id)
		if !ok {
			return ErrUnknownLog
		}
		progressed := false
		for _, step := range st.Steps {
			if written[step.ID] || step.LogID == "" {
				continue
			}
			if _, err := fmt.Fprintf(w, "=== step %s ===\n", step.ID); err != nil {
				return err
			}
			err := e.ReadLog(ctx, step.LogID, follow, w)
			if errors.Is(err, ErrUnknownLog) {
				_, err = fmt.Fprintf(w, "(the log of this step is gone: its retention passed)\n")
			}
			if err != nil {
				return err
			}
			written[step.ID], progressed = true, true
		}
		if progressed && ctx.Err() == nil {
			continue // a step may have started meanwhile
		}
		if done || !follow || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
