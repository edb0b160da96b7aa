package runners

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// This file holds what a runner daemon may do to its own runner, and what the
// control plane does when a runner renews or goes silent. Each method checks
// that the caller is the runner itself.

// Limits on a report, so that a daemon cannot bloat the registry.
const (
	maxLabels      = 64
	maxLabelLength = 63
	maxComponents  = 16
)

func validateReport(rep *Report) error {
	if len(rep.Labels) > maxLabels {
		return apperr.Invalid("status.labels", "at most %d labels", maxLabels)
	}
	for i, l := range rep.Labels {
		if l == "" || len(l) > maxLabelLength {
			return apperr.Invalid(fmt.Sprintf("status.labels[%d]", i), "must be 1 to %d characters", maxLabelLength)
		}
	}
	if len(rep.AgentTypes) > maxLabels {
		return apperr.Invalid("status.agentTypes", "at most %d agent types", maxLabels)
	}
	if rep.MaxPods < 0 {
		return apperr.Invalid("status.maxPods", "must not be negative")
	}
	if len(rep.Components) > maxComponents {
		return apperr.Invalid("status.components", "at most %d components", maxComponents)
	}
	if len(rep.PublicKey) != 0 && len(rep.PublicKey) != 32 {
		return apperr.Invalid("status.publicKey", "must be 32 bytes, got %d", len(rep.PublicKey))
	}
	return nil
}

// Report records the full report of the calling runner daemon and returns its
// runner. It fails with CodePermissionDenied for any caller but a runner,
// CodeInvalid for a bad report and CodeNotFound for a deleted runner.
func (s *Service) Report(ctx context.Context, rep Report) (*Runner, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateReport(&rep); err != nil {
		return nil, err
	}
	now := s.now()
	r, err := s.Store.UpdateRunner(ctx, c.OrgID, c.RunnerID, func(r *Runner) error {
		r.ApplyReport(rep, now)
		return nil
	})
	if err != nil {
		return nil, notFound(c.RunnerID, err)
	}
	return r, nil
}

// Self returns the calling runner daemon's own runner.
func (s *Service) Self(ctx context.Context) (*Runner, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.Store.FindRunnerByID(ctx, c.OrgID, c.RunnerID)
	if err != nil {
		return nil, notFound(c.RunnerID, err)
	}
	return r, nil
}

// ConfirmDeletion deletes the calling runner once it has stopped its work:
// the runner becomes a tombstone (phase DELETED). The runner must have been
// asked to delete itself (CodeFailedPrecondition otherwise). Its tokens go,
// so the daemon cannot come back.
func (s *Service) ConfirmDeletion(ctx context.Context) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	_, err = s.Store.DeleteRunner(ctx, c.OrgID, c.RunnerID, func(r *Runner) error {
		if r.Spec.DesiredPhase != PhaseDeleted {
			return apperr.FailedPrecondition("runner %q was not asked to delete itself", c.RunnerID)
		}
		r.markDeleted(now, "confirmed by its runner after it stopped its work")
		return nil
	})
	if apperr.Is(err, apperr.CodeFailedPrecondition) {
		return err
	}
	if err != nil {
		return notFound(c.RunnerID, err)
	}
	s.deleted(c.OrgID, c.RunnerID)
	return nil
}

// RecordRenewals stores a batch of renewals and brings INACTIVE runners in it
// back to life.
func (s *Service) RecordRenewals(ctx context.Context, batch []Renewal) error {
	inactive, err := s.Store.RenewRunners(ctx, batch)
	if err != nil {
		return fmt.Errorf("record %d renewals: %w", len(batch), err)
	}
	for _, rn := range inactive {
		_, err := s.Store.UpdateRunner(ctx, rn.OrgID, rn.RunnerID, func(r *Runner) error {
			r.ApplyRenewal(rn.At)
			return nil
		})
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			return fmt.Errorf("revive runner %q: %w", rn.RunnerID, err)
		}
	}
	return nil
}

// SweepSilent marks the runners that did not renew within timeout of now as
// INACTIVE, then gives up on the work of runners that stayed unreachable
// for longer than LostAfter (SweepLost). It returns how many runners it
// marked INACTIVE. Each is re-checked in its own transaction, so a renewal
// that lands meanwhile wins. An INACTIVE runner keeps its work: its pods,
// services and executions show that it is unreachable (UnreachableMessage)
// and are its again when it comes back.
func (s *Service) SweepSilent(ctx context.Context, timeout time.Duration) (int, error) {
	now := s.now()
	silent, err := s.Store.FindSilentRunners(ctx, now.Add(-timeout))
	if err != nil {
		return 0, fmt.Errorf("find silent runners: %w", err)
	}
	n := 0
	for _, rn := range silent {
		_, err := s.Store.UpdateRunner(ctx, rn.OrgID, rn.RunnerID, func(r *Runner) error {
			if r.Live(now, timeout) || (r.Status.Phase != PhaseActive && r.Status.Phase != PhaseDegraded) {
				return errUnchanged
			}
			r.Status.Phase = PhaseInactive
			r.Status.Message = InactiveMessage(r.LastSeen, timeout)
			return nil
		})
		if err != nil && !errors.Is(err, errUnchanged) && !apperr.Is(err, apperr.CodeNotFound) {
			return n, fmt.Errorf("mark runner %q inactive: %w", rn.RunnerID, err)
		}
		if err == nil {
			n++
		}
	}
	if _, err := s.SweepLost(ctx); err != nil {
		return n, err
	}
	return n, nil
}

// SweepLost gives up on the work of the runners that have been INACTIVE
// since before LostAfter ago: each is marked lost once per outage and Gone
// fails its work, which then leaves its desired state, so a runner that
// comes back later stops it. It returns how many runners it gave up on.
func (s *Service) SweepLost(ctx context.Context) (int, error) {
	after := s.lostAfter()
	now := s.now()
	cutoff := now.Add(-after)
	lost, err := s.Store.FindLostRunners(ctx, cutoff)
	if err != nil {
		return 0, fmt.Errorf("find lost runners: %w", err)
	}
	n := 0
	for _, rn := range lost {
		ok, err := s.Store.MarkRunnerLost(ctx, rn.OrgID, rn.RunnerID, cutoff, now)
		if err != nil {
			return n, fmt.Errorf("mark runner %q lost: %w", rn.RunnerID, err)
		}
		if ok {
			n++
			s.gone(rn.OrgID, rn.RunnerID, LostMessage(after))
		}
	}
	return n, nil
}

func (s *Service) lostAfter() time.Duration {
	if s.LostAfter > 0 {
		return s.LostAfter
	}
	return DefaultLostAfter
}

// errUnchanged aborts an update that turned out to have nothing to do.
var errUnchanged = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "unchanged"}
