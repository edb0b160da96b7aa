package environments

import (
	"context"
	"errors"

	"github.com/runyard/runyard/internal/apperr"
)

// Retire deletes environment id of orgID for the system: a prebuild's
// environment once its snapshot is made, failed or cancelled. Its runner
// stops and removes it, as after Delete; one its runner never reported on
// goes at once. It checks no caller. A missing environment is not an
// error.
func (s *Service) Retire(ctx context.Context, orgID, id string) error {
	var runnerID string
	err := s.Store.DeleteEnvironment(ctx, orgID, id, func(e *Environment) error {
		runnerID = e.RunnerID
		if !e.PickedUp() {
			return nil
		}
		return errKeep
	})
	if err == nil || apperr.Is(err, apperr.CodeNotFound) {
		if err == nil {
			s.changed(orgID, runnerID)
		}
		return nil
	}
	if !errors.Is(err, errKeep) {
		return err
	}
	e, err := s.Store.UpdateEnvironment(ctx, orgID, id, func(e *Environment) error {
		if e.Deleting() {
			return errKeep
		}
		e.Spec.DesiredPhase = PhaseDeleted
		e.Spec.SpecVersion++
		e.UpdatedAt = s.now()
		return nil
	})
	switch {
	case errors.Is(err, errKeep), apperr.Is(err, apperr.CodeNotFound):
		return nil
	case err != nil:
		return err
	}
	s.changed(e.OrgID, e.RunnerID)
	return nil
}
