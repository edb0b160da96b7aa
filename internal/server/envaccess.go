package server

import (
	"context"

	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/store"
)

// environmentAccess is the service behind shells, commands, SFTP and port
// forwards in environments: sessions reach the runner through the fleet,
// and each one opened counts as activity on its environment.
func (s *Server) environmentAccess(st store.Store, envSvc *environments.Service) *envaccess.Service {
	return &envaccess.Service{
		Environments: st,
		Opener:       s.fleet,
		Active: func(ctx context.Context, orgID, envID, source string) {
			if err := envSvc.MarkActive(ctx, environments.MarkActiveInput{EnvironmentID: envID, Source: source}); err != nil {
				s.log.Warn("record activity of an environment session", "environment", envID, "err", err)
			}
		},
	}
}
