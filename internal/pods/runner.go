package pods

import (
	"context"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// This file holds what a runner daemon does with the pods placed on it: read
// the set it should run, and report what became of each. A pod's first report
// is the runner's acknowledgement that it received the pod.

// Desired returns the pods the calling runner should run: placed on it,
// pending or running, not asked to terminate. It fails with
// CodePermissionDenied for any caller but a runner.
func (s *Service) Desired(ctx context.Context) ([]*Pod, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Pod
	for _, st := range []Status{StatusPending, StatusRunning} {
		items, _, err := s.Store.FindPods(ctx, Filter{OrgID: c.OrgID, RunnerID: c.RunnerID, Status: st})
		if err != nil {
			return nil, fmt.Errorf("pods of runner %q: %w", c.RunnerID, err)
		}
		for _, p := range items {
			if p.DesiredStatus != StatusTerminated {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// Claim binds the calling runner's active pods that no stream was handed yet
// to its stream of epoch and returns the epoch of the stream each pod was
// first handed to, by key; CodeAborted when that epoch was superseded. A
// pod starts at most once across daemons of the same runner: a daemon starts
// only pods handed to one of its own streams (runyard.runner.v1 PodSpec
// started_epoch).
func (s *Service) Claim(ctx context.Context, epoch int64) (map[string]int64, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := s.Store.ClaimRunnerPods(ctx, c.OrgID, c.RunnerID, epoch)
	if err != nil {
		return nil, fmt.Errorf("claim pods of runner %q: %w", c.RunnerID, err)
	}
	return claims, nil
}

// Report is what a runner says about one of its pods.
type Report struct {
	Key        string
	Status     Status // running, terminated or failed
	ExitCode   *int
	Reason     string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// ReportStatus records a runner's report on one of its pods. A finished pod
// stays finished; a report on a pod the runner does not hold is
// CodeNotFound. When a pod finishes, its place frees up and pending pods are
// placed.
func (s *Service) ReportStatus(ctx context.Context, rep Report) (*Pod, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	switch rep.Status {
	case StatusRunning, StatusTerminated, StatusFailed:
	default:
		return nil, apperr.Invalid("podStatus.state", "must be running, terminated or failed, got %q", rep.Status)
	}
	now := s.now()
	finished := false
	p, err := s.Store.UpdatePod(ctx, c.OrgID, rep.Key, func(p *Pod) error {
		finished = false
		if p.RunnerID != c.RunnerID {
			return apperr.NotFound("pod %q not found", rep.Key)
		}
		if p.Status == StatusTerminated || p.Status == StatusFailed {
			return nil
		}
		p.Status = rep.Status
		if rep.StartedAt != nil {
			p.StartedAt = micro(rep.StartedAt)
		} else if p.StartedAt == nil {
			p.StartedAt = &now
		}
		if rep.Status == StatusRunning {
			p.Reason = ""
			return nil
		}
		finished = true
		p.ExitCode, p.Reason = rep.ExitCode, rep.Reason
		p.FinishedAt = &now
		if rep.FinishedAt != nil {
			p.FinishedAt = micro(rep.FinishedAt)
		}
		return nil
	})
	if err != nil {
		return nil, podNotFound(rep.Key, err)
	}
	if finished {
		if _, err := s.PlacePending(ctx, c.OrgID); err != nil {
			return p, fmt.Errorf("place pending pods after %q finished: %w", p.Key, err)
		}
	}
	return p, nil
}

func micro(t *time.Time) *time.Time {
	v := t.UTC().Truncate(time.Microsecond)
	return &v
}

// FailRunnerPods marks the active pods of a runner that was deleted or stayed
// unreachable past --lost-after as failed with reason. The control plane
// calls it from runners.Service.Gone; it acts for the system and checks no
// caller.
func (s *Service) FailRunnerPods(ctx context.Context, orgID, runnerID, reason string) (int, error) {
	now := s.now()
	n := 0
	for _, st := range []Status{StatusPending, StatusRunning} {
		items, _, err := s.Store.FindPods(ctx, Filter{OrgID: orgID, RunnerID: runnerID, Status: st})
		if err != nil {
			return n, fmt.Errorf("pods of runner %q: %w", runnerID, err)
		}
		for _, p := range items {
			_, err := s.Store.UpdatePod(ctx, orgID, p.Key, func(p *Pod) error {
				if p.RunnerID != runnerID || !p.Active() {
					return nil
				}
				p.Status, p.Reason, p.FinishedAt = StatusFailed, reason, &now
				n++
				return nil
			})
			if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
				return n, fmt.Errorf("fail pod %q: %w", p.Key, err)
			}
		}
	}
	if n > 0 {
		// A runner that reconnected meanwhile stops them now, not at its
		// next reconnect.
		s.changed(orgID, runnerID)
	}
	return n, nil
}

// AgentBinaries maps the calling runner's organization's custom agent types
// to the binary each runs, so the runner can tell which it can run.
func (s *Service) AgentBinaries(ctx context.Context) (map[string]string, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	types, err := s.Store.FindAgentTypes(ctx, c.OrgID)
	if err != nil {
		return nil, fmt.Errorf("agent types: %w", err)
	}
	out := make(map[string]string, len(types))
	for _, a := range types {
		out[a.ID] = a.Binary()
	}
	return out, nil
}
