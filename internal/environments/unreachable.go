package environments

import (
	"context"
	"slices"

	"github.com/runyard/runyard/internal/runners"
)

// markUnreachable adds a warning to each environment whose runner is
// INACTIVE, saying since when it has been unreachable. The phase stays what
// the runner last reported (gitpod.v1 has no unknown phase, and the
// environment may well still run): a client waiting for a phase learns why
// none comes. Nothing is stored; the warning goes once the runner is back.
func (s *Service) markUnreachable(ctx context.Context, orgID string, envs ...*Environment) error {
	reach := runners.NewReachability(orgID, s.Store.FindRunnerByID)
	for _, e := range envs {
		msg, err := reach.Message(ctx, e.RunnerID)
		if err != nil {
			return err
		}
		if msg != "" && !slices.Contains(e.Status.WarningMessage, msg) {
			e.Status.WarningMessage = append(slices.Clip(e.Status.WarningMessage), msg)
		}
	}
	return nil
}
