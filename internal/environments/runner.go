package environments

import (
	"context"
	"errors"
	"fmt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// This file holds what a runner daemon does with the environments on it:
// read the set it should converge on, and report what became of each. Every
// phase past CREATING is written here and nowhere else: the runner's
// executor delivers them, and nothing in the control plane pretends an
// environment runs.

// Desired returns every environment on the calling runner with its spec,
// oldest first: those to run, to stop and to delete. An environment missing
// from the set was removed (a forced delete) and should go from the runner
// too. It fails with CodePermissionDenied for any caller but a runner.
func (s *Service) Desired(ctx context.Context) ([]*Environment, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	items, err := s.Store.FindEnvironments(ctx, Filter{OrgID: c.OrgID, RunnerIDs: []string{c.RunnerID}})
	if err != nil {
		return nil, fmt.Errorf("environments of runner %q: %w", c.RunnerID, err)
	}
	// FindEnvironments lists newest first; a runner starts the oldest
	// first.
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	return items, nil
}

// ReportStatus records the calling runner's status report on one of its
// environments and returns the environment as stored. A report whose
// statusVersion is not above the stored one is out of date and changes
// nothing. A report of phase DELETED on an environment a user deleted
// removes it with its automations; the returned environment then carries
// that last status. It fails with CodePermissionDenied for any caller but a
// runner, CodeInvalid for a bad report, and CodeNotFound for an environment
// that is not on the calling runner.
func (s *Service) ReportStatus(ctx context.Context, id string, st Status) (*Environment, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", id); err != nil {
		return nil, err
	}
	if err := validateStatus(&st); err != nil {
		return nil, err
	}
	e, err := s.Store.UpdateEnvironment(ctx, c.OrgID, id, func(e *Environment) error {
		if e.RunnerID != c.RunnerID {
			return apperr.NotFound("environment %q not found", id)
		}
		if st.StatusVersion <= e.Status.StatusVersion {
			return errStale
		}
		e.Status = st
		e.UpdatedAt = s.now()
		return nil
	})
	if errors.Is(err, errStale) {
		// The stored status is newer; the report is dropped, as seed 003's
		// partial order on status versions has it.
		return s.Store.FindEnvironmentByID(ctx, c.OrgID, id)
	}
	if err != nil {
		return nil, notFound(id, err)
	}
	if e.Status.Phase == PhaseDeleted && e.Deleting() {
		err := s.Store.DeleteEnvironment(ctx, c.OrgID, id, func(cur *Environment) error {
			if cur.Status.Phase != PhaseDeleted || !cur.Deleting() {
				return errKeep
			}
			return nil
		})
		if err != nil && !errors.Is(err, errKeep) && !apperr.Is(err, apperr.CodeNotFound) {
			return nil, fmt.Errorf("remove deleted environment %q: %w", id, err)
		}
	}
	return e, nil
}

// errStale aborts an update with an out-of-date status report.
var errStale = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "status report is older than the stored status"}

// RunnerDeleted removes the environments of a runner that was deleted, with
// their automations: nothing can run them any more. The control plane calls
// it from runners.Service.Gone; it acts for the system and checks no caller.
func (s *Service) RunnerDeleted(ctx context.Context, orgID, runnerID string) (int, error) {
	n, err := s.Store.DeleteRunnerEnvironments(ctx, orgID, runnerID)
	if err != nil {
		return n, fmt.Errorf("remove the environments of runner %q: %w", runnerID, err)
	}
	return n, nil
}
