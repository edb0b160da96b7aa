package automations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/runners"
)

// This file holds what becomes of the services and task executions of a
// runner that cannot be reached. While it is INACTIVE they keep the phase it
// last reported (the vendor's phases have no "unknown", and they may well
// still run) and show why no news comes in their failure message
// (markUnreachable, on every read; nothing is stored, so a runner that
// comes back and reports again is simply believed). Once it has been
// unreachable for longer than the control plane's --lost-after,
// FailRunnerWork fails them for good.

// runnerFinder is the part of the store that reads runners; the SQL store
// has it. A store without it marks nothing unreachable.
type runnerFinder interface {
	FindRunnerByID(ctx context.Context, orgID, id string) (*runners.Runner, error)
}

// reachability reads the runners of orgID's environments for one answer.
type reachability struct {
	m     *Manager
	orgID string
	r     *runners.Reachability
	envs  map[string]string // environment ID -> runner ID
}

func (s *Manager) reachability(orgID string) *reachability {
	var find runners.FindFunc
	if f, ok := s.Store.(runnerFinder); ok {
		find = f.FindRunnerByID
	}
	return &reachability{m: s, orgID: orgID, r: runners.NewReachability(orgID, find), envs: map[string]string{}}
}

// message is the UnreachableMessage of environment envID's runner.
func (r *reachability) message(ctx context.Context, envID string) (string, error) {
	runnerID, ok := r.envs[envID]
	if !ok {
		e, err := r.m.Store.FindEnvironmentByID(ctx, r.orgID, envID)
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			return "", fmt.Errorf("environment %q: %w", envID, err)
		}
		if e != nil {
			runnerID = e.RunnerID
		}
		r.envs[envID] = runnerID
	}
	return r.r.Message(ctx, runnerID)
}

// withUnreachable puts msg before a failure message.
func withUnreachable(msg, failure string) string {
	if failure == "" {
		return msg
	}
	return msg + "; " + failure
}

// markServicesUnreachable sets the failure message of each service that
// runs or waits for its runner (to start, stop or delete it) on an
// INACTIVE runner.
func (s *Manager) markServicesUnreachable(ctx context.Context, orgID string, svcs ...*Service) error {
	reach := s.reachability(orgID)
	for _, svc := range svcs {
		if !waitsForRunner(svc) {
			continue
		}
		msg, err := reach.message(ctx, svc.EnvironmentID)
		if err != nil {
			return err
		}
		if msg != "" {
			svc.Status.FailureMessage = withUnreachable(msg, svc.Status.FailureMessage)
		}
	}
	return nil
}

// markExecutionsUnreachable sets the failure message of each unfinished
// execution on an INACTIVE runner.
func (s *Manager) markExecutionsUnreachable(ctx context.Context, orgID string, xs ...*TaskExecution) error {
	reach := s.reachability(orgID)
	for _, x := range xs {
		if x.Status.Phase.Finished() {
			continue
		}
		msg, err := reach.message(ctx, x.EnvironmentID)
		if err != nil {
			return err
		}
		if msg != "" {
			x.Status.FailureMessage = withUnreachable(msg, x.Status.FailureMessage)
		}
	}
	return nil
}

// FailRunnerWork fails the services and unfinished task executions of a
// runner that was deleted or stayed unreachable past --lost-after, with
// reason, and returns how many it failed. A running service becomes FAILED
// and desired STOPPED, so a runner that comes back stops it (a service
// being deleted is removed); an execution becomes FAILED, which no report
// changes any more, and leaves the runner's desired state, so a runner that
// comes back stops it. Status versions stay as they are: they are the
// runner's. The control plane calls it from runners.Service.Gone; it acts
// for the system and checks no caller.
func (s *Manager) FailRunnerWork(ctx context.Context, orgID, runnerID, reason string) (int, error) {
	n := 0
	svcs, err := s.Store.FindServices(ctx, ServiceFilter{OrgID: orgID, RunnerID: runnerID})
	if err != nil {
		return n, fmt.Errorf("services of runner %q: %w", runnerID, err)
	}
	for _, svc := range svcs {
		if svc.Stopped() {
			continue
		}
		failed := false
		got, err := s.Store.UpdateService(ctx, orgID, svc.ID, func(svc *Service) error {
			failed = failService(svc, reason, s.now())
			return nil
		})
		if apperr.Is(err, apperr.CodeNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("fail service %q: %w", svc.ID, err)
		}
		if failed {
			n++
		}
		if got.Deleting() && got.Stopped() {
			err := s.Store.EditAutomations(ctx, orgID, got.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
				if x := set.service(got.ID); x == nil || !x.Deleting() || !x.Stopped() {
					return nil, errKeep
				}
				return &Changes{DeleteServices: []string{got.ID}}, nil
			})
			if err != nil && !errors.Is(err, errKeep) && !apperr.Is(err, apperr.CodeNotFound) {
				return n, fmt.Errorf("remove deleted service %q: %w", got.ID, err)
			}
		}
	}
	xs, err := s.Store.FindTaskExecutions(ctx, ExecutionFilter{
		OrgID: orgID, RunnerID: runnerID, Phases: []ExecutionPhase{ExecutionPhasePending, ExecutionPhaseRunning},
	})
	if err != nil {
		return n, fmt.Errorf("task executions of runner %q: %w", runnerID, err)
	}
	for _, x := range xs {
		failed := false
		_, err := s.Store.UpdateTaskExecution(ctx, orgID, x.ID, func(x *TaskExecution) error {
			failed = failExecution(x, reason, s.now())
			return nil
		})
		if apperr.Is(err, apperr.CodeNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("fail task execution %q: %w", x.ID, err)
		}
		if failed {
			n++
		}
	}
	if n > 0 {
		s.changed(orgID, runnerID)
	}
	return n, nil
}

// waitsForRunner reports whether a service runs or waits for its runner to
// start, stop or delete it: what an unreachable runner leaves undecided.
func waitsForRunner(svc *Service) bool { return !svc.Stopped() || svc.Deleting() }

// failService fails a service that runs or is about to, at now, and
// reports whether it did. The failed session is over: the status names it,
// so no start is pending, and a service desired RUNNING becomes desired
// STOPPED, so its runner, when back, stops it rather than carrying on.
func failService(svc *Service, reason string, now time.Time) bool {
	if svc.Stopped() {
		return false
	}
	svc.Status.Phase, svc.Status.FailureMessage = ServicePhaseFailed, reason
	svc.Status.Session = svc.Spec.Session
	if svc.Spec.DesiredPhase == ServicePhaseRunning {
		svc.Spec.DesiredPhase = ServicePhaseStopped
		svc.Spec.SpecVersion++
	}
	svc.UpdatedAt = now
	return true
}

// failExecution fails an unfinished execution and its unfinished steps at
// now, and reports whether it did.
func failExecution(x *TaskExecution, reason string, now time.Time) bool {
	if x.Status.Phase.Finished() {
		return false
	}
	x.Status.Phase, x.Status.FailureMessage = ExecutionPhaseFailed, reason
	for i := range x.Status.Steps {
		if !x.Status.Steps[i].Phase.Finished() {
			x.Status.Steps[i].Phase, x.Status.Steps[i].FailureMessage = ExecutionPhaseFailed, reason
		}
	}
	if x.StartedAt == nil {
		x.StartedAt = &now
	}
	x.CompletedAt = &now
	return true
}
