package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/runners"
)

// checkLostAfter validates Config.LostAfter and sets its default (never
// below the runner timeout). A runner
// is not unreachable before the runner timeout passed, so a shorter
// lost-after could only mean "at once" and is refused rather than read so.
func checkLostAfter(cfg *Config) error {
	if cfg.LostAfter < 0 {
		return errors.New("--lost-after must be positive")
	}
	timeout := cfg.RunnerTimeout
	if timeout == 0 {
		timeout = fleet.DefaultTimeout
	}
	if cfg.LostAfter == 0 {
		cfg.LostAfter = max(runners.DefaultLostAfter, timeout)
	}
	if cfg.LostAfter < timeout {
		return fmt.Errorf("--lost-after (%s) must be at least --runner-timeout (%s): a runner is unreachable only after the timeout", cfg.LostAfter, timeout)
	}
	return nil
}

// runnerGone is runners.Service.Gone: the work of a runner that was deleted
// or stayed unreachable past --lost-after is failed with reason, so it
// leaves the runner's desired state and a runner that comes back stops it.
func (s *Server) runnerGone(autos *automations.Manager) func(orgID, runnerID, reason string) {
	return func(orgID, runnerID, reason string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if n, err := s.pods.FailRunnerPods(ctx, orgID, runnerID, reason); err != nil {
			s.log.Error("fail the pods of a lost runner", "runner", runnerID, "err", err)
		} else if n > 0 {
			s.log.Info("pods failed with their runner", "runner", runnerID, "pods", n, "reason", reason)
		}
		if n, err := autos.FailRunnerWork(ctx, orgID, runnerID, reason); err != nil {
			s.log.Error("fail the services and task executions of a lost runner", "runner", runnerID, "err", err)
		} else if n > 0 {
			s.log.Info("services and task executions failed with their runner", "runner", runnerID, "count", n, "reason", reason)
		}
	}
}
