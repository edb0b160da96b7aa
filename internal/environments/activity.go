package environments

import (
	"context"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Inactivity stop (spec.timeout.disconnected).
//
// An environment that should run and has a disconnected timeout is stopped
// once that long has passed since its last activity. Activity is:
//
//   - its start (CreateEnvironment, StartEnvironment: metadata.lastStartedAt),
//   - a MarkEnvironmentActive call (status.activitySignal),
//   - an unfinished task execution: the sweep does not stop an environment
//     that is running one, and counts the sweep's look as activity, so the
//     full timeout runs again from then,
//   - a session into it (shell, exec, SSH, SFTP, port forward, preview
//     URL): opening one, its traffic and its staying open are activity
//     (RecordActivity, written at most once per interval by
//     internal/envaccess), and the sweep counts one open on its own
//     replica (InUse) as it counts a task execution.
//
// The stop is an ordinary stop (desired phase STOPPED, services stopped by
// the runner) whose reason is shown in status.machine.timeout until the
// environment is started again. The sweep runs on every control-plane
// replica; each stop re-checks the environment in its own transaction, so
// two replicas never stop one twice and a concurrent MarkEnvironmentActive
// wins.

// Activity is the last activity recorded on an environment.
type Activity struct {
	// Source is a human-readable name of what was active ("VS Code",
	// "SSH", ...).
	Source string
	// At is when the activity was observed.
	At time.Time
}

// maxActivitySource bounds Activity.Source.
const maxActivitySource = 128

// StopAfter is when the environment is stopped for inactivity, or nil when
// it never is: no timeout, or it should not run. The store keeps it in a
// column the sweep reads.
func (e *Environment) StopAfter() *time.Time {
	d := e.Spec.Timeout.Disconnected
	if d <= 0 || e.Spec.DesiredPhase != PhaseRunning {
		return nil
	}
	// An environment that should run has been started (lastStartedAt is
	// set by both CreateEnvironment and StartEnvironment); the creation
	// time stands in for a record from before that.
	last := e.CreatedAt
	if e.LastStartedAt != nil {
		last = *e.LastStartedAt
	}
	if e.Activity != nil && e.Activity.At.After(last) {
		last = e.Activity.At
	}
	t := last.Add(d)
	return &t
}

// MarkActiveInput is an activity signal.
type MarkActiveInput struct {
	EnvironmentID string
	Source        string
	// At is when the source observed the activity; zero means now. A time
	// in the future counts as now.
	At time.Time
}

// MarkActive records activity on an environment, which postpones its
// inactivity stop. An older signal than the recorded one changes nothing.
// It needs ScopeEnvironmentsWrite and fails with CodeInvalid and
// CodeNotFound.
func (s *Service) MarkActive(ctx context.Context, in MarkActiveInput) error {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("environmentId", in.EnvironmentID); err != nil {
		return err
	}
	return s.markActive(ctx, c.OrgID, in)
}

// RecordActivity records activity on an environment observed by the
// control plane itself (a session into it, traffic to its ports), with no
// caller: the surface that saw the activity authorized it. It fails with
// CodeInvalid and CodeNotFound.
func (s *Service) RecordActivity(ctx context.Context, orgID, envID, source string) error {
	return s.markActive(ctx, orgID, MarkActiveInput{EnvironmentID: envID, Source: source})
}

func (s *Service) markActive(ctx context.Context, orgID string, in MarkActiveInput) error {
	if err := validateText("activitySignal.source", in.Source, maxActivitySource, false); err != nil {
		return err
	}
	now := s.now()
	at := in.At.UTC().Truncate(time.Microsecond)
	if in.At.IsZero() || at.After(now) {
		at = now
	}
	_, err := s.Store.UpdateEnvironment(ctx, orgID, in.EnvironmentID, func(e *Environment) error {
		if e.Activity != nil && !at.After(e.Activity.At) {
			return nil
		}
		e.Activity = &Activity{Source: in.Source, At: at}
		return nil
	})
	if err != nil {
		return notFound(in.EnvironmentID, err)
	}
	return nil
}

// stopBatch bounds one sweep's read.
const stopBatch = 100

// StopInactive stops every environment whose StopAfter has passed and that
// runs no task execution; one that runs one counts as active now. It is the
// control plane's own work (no caller) and returns how many it stopped.
func (s *Service) StopInactive(ctx context.Context) (int, error) {
	now := s.now()
	due, err := s.Store.FindEnvironmentsToStop(ctx, now, stopBatch)
	if err != nil {
		return 0, fmt.Errorf("find inactive environments: %w", err)
	}
	stopped := 0
	for _, ref := range due {
		busy, err := s.Store.EnvironmentBusy(ctx, ref.OrgID, ref.ID)
		if err != nil {
			return stopped, fmt.Errorf("environment %q: %w", ref.ID, err)
		}
		source := "task execution"
		if s.InUse != nil && !busy {
			if src := s.InUse(ref.OrgID, ref.ID); src != "" {
				busy, source = true, src
			}
		}
		did := false
		e, err := s.Store.UpdateEnvironment(ctx, ref.OrgID, ref.ID, func(e *Environment) error {
			did = false
			after := e.StopAfter()
			if after == nil || after.After(now) {
				return nil
			}
			if busy {
				e.Activity = &Activity{Source: source, At: now}
				return nil
			}
			last := "its start"
			if e.Activity != nil && (e.LastStartedAt == nil || e.Activity.At.After(*e.LastStartedAt)) {
				last = fmt.Sprintf("activity from %q at %s", e.Activity.Source, e.Activity.At.Format(time.RFC3339))
			}
			e.Spec.DesiredPhase = PhaseStopped
			e.Spec.SpecVersion++
			e.Spec.TimedOut = fmt.Sprintf("stopped after %s without activity (spec.timeout.disconnected); the last was %s", e.Spec.Timeout.Disconnected, last)
			e.UpdatedAt = now
			did = true
			return nil
		})
		if apperr.Is(err, apperr.CodeNotFound) {
			continue
		}
		if err != nil {
			return stopped, fmt.Errorf("stop inactive environment %q: %w", ref.ID, err)
		}
		if did {
			stopped++
			s.changed(e.OrgID, e.RunnerID)
		}
	}
	return stopped, nil
}

// RunInactivitySweep calls StopInactive every interval until ctx ends,
// reporting failures to logErr (which may be nil).
func (s *Service) RunInactivitySweep(ctx context.Context, interval time.Duration, logErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.StopInactive(ctx); err != nil && ctx.Err() == nil && logErr != nil {
			logErr(err)
		}
	}
}
