package automations

import (
	"context"
	"fmt"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
)

// IsLogOf reports whether log logID on runner runnerID belongs to environment
// envID: a task execution's log is named by the execution's ID; a service's
// is the log of its latest run, named in its status.logUrl. The caller has
// been authorized for envID already (environments.Service.AuthorizeLog asks
// this for a logs token), so it checks no scope.
func (s *Manager) IsLogOf(ctx context.Context, orgID, envID, runnerID, logID string) (bool, error) {
	x, err := s.Store.FindTaskExecutionByID(ctx, orgID, logID)
	switch {
	case err == nil:
		return x.EnvironmentID == envID, nil
	case !apperr.Is(err, apperr.CodeNotFound):
		return false, fmt.Errorf("find the execution of log %q: %w", logID, err)
	}
	svcs, err := s.Store.FindServices(ctx, ServiceFilter{OrgID: orgID, EnvironmentIDs: []string{envID}, RunnerID: runnerID})
	if err != nil {
		return false, fmt.Errorf("find the services of environment %q: %w", envID, err)
	}
	suffix := "/logs/" + runnerID + "/" + logID
	for _, sv := range svcs {
		if sv.Status.LogURL != "" && strings.HasSuffix(sv.Status.LogURL, suffix) {
			return true, nil
		}
	}
	return false, nil
}
