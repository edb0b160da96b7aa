package prebuilds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/contexturl"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// MinScheduleInterval is the shortest interval a schedule takes.
const MinScheduleInterval = time.Minute

// Schedule creates a prebuild of ContextURL on the runner of ClassID every
// Interval, as its creator; the first one when it is created.
type Schedule struct {
	ID             string
	OrgID          string
	ContextURL     string
	ClassID        string
	Interval       time.Duration
	NextRunAt      time.Time
	LastPrebuildID string
	Creator        identity.Subject
	CreatedAt      time.Time
}

// ScheduleStore is the storage of schedules.
type ScheduleStore interface {
	CreatePrebuildSchedule(ctx context.Context, s *Schedule) error
	// FindPrebuildSchedules returns an organization's schedules, oldest
	// first.
	FindPrebuildSchedules(ctx context.Context, orgID string) ([]*Schedule, error)
	// DeletePrebuildSchedule fails with CodeNotFound.
	DeletePrebuildSchedule(ctx context.Context, orgID, id string) error
	// FindDueSchedules returns up to limit schedules of every organization
	// whose NextRunAt is not after now.
	FindDueSchedules(ctx context.Context, now time.Time, limit int) ([]*Schedule, error)
	// ClaimSchedule moves a schedule's NextRunAt from due to next and
	// reports whether it did: false when another replica claimed it first
	// (or it is gone).
	ClaimSchedule(ctx context.Context, id string, due, next time.Time) (bool, error)
	// SetScheduleLastPrebuild records the last prebuild a schedule made.
	SetScheduleLastPrebuild(ctx context.Context, id, prebuildID string) error
	// FindPrebuildsUnderWay returns up to limit prebuilds of every
	// organization that are not over, oldest first.
	FindPrebuildsUnderWay(ctx context.Context, limit int) ([]*Prebuild, error)
}

// CreateScheduleInput is a schedule to create.
type CreateScheduleInput struct {
	ContextURL string
	ClassID    string
	Interval   time.Duration
}

// CreateSchedule creates a schedule; its first prebuild comes at the next
// sweep. It needs ScopeEnvironmentsWrite and fails with CodeInvalid (naming
// contextUrl, environmentClassId or interval).
func (s *Service) CreateSchedule(ctx context.Context, in CreateScheduleInput) (*Schedule, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	url := strings.TrimSpace(in.ContextURL)
	if url == "" {
		return nil, apperr.Invalid("contextUrl", "is required: the repository to prebuild")
	}
	if _, err := contexturl.Parse("contextUrl", url); err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentClassId", in.ClassID); err != nil {
		return nil, err
	}
	if _, err := s.Envs.Store.FindRunnerByID(ctx, c.OrgID, environments.RunnerOfClass(in.ClassID)); apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.Invalid("environmentClassId", "environment class %q does not exist", in.ClassID)
	} else if err != nil {
		return nil, fmt.Errorf("find the runner of class %q: %w", in.ClassID, err)
	}
	if in.Interval < MinScheduleInterval {
		return nil, apperr.Invalid("interval", "must be at least %s", MinScheduleInterval)
	}
	now := s.now()
	sc := &Schedule{
		ID: uuid.NewString(), OrgID: c.OrgID, ContextURL: url, ClassID: in.ClassID,
		Interval: in.Interval.Truncate(time.Second), NextRunAt: now, Creator: c.Subject, CreatedAt: now,
	}
	if err := s.Schedules.CreatePrebuildSchedule(ctx, sc); err != nil {
		return nil, fmt.Errorf("create prebuild schedule: %w", err)
	}
	return sc, nil
}

// ListSchedules returns the organization's schedules. It needs
// ScopeEnvironmentsRead.
func (s *Service) ListSchedules(ctx context.Context) ([]*Schedule, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, err
	}
	return s.Schedules.FindPrebuildSchedules(ctx, c.OrgID)
}

// DeleteSchedule deletes a schedule; its prebuilds stay. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid and CodeNotFound.
func (s *Service) DeleteSchedule(ctx context.Context, id string) error {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("scheduleId", id); err != nil {
		return err
	}
	if err := s.Schedules.DeletePrebuildSchedule(ctx, c.OrgID, id); err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			return apperr.NotFound("prebuild schedule %q not found", id)
		}
		return err
	}
	return nil
}

// Sweep fails prebuilds that ran past their timeout and creates the
// prebuilds of schedules that are due. It acts for the system: a
// schedule's prebuild is created as its creator, with the environment
// scopes. Every replica sweeps; a schedule is claimed by one.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	var errs []error
	under, err := s.Schedules.FindPrebuildsUnderWay(ctx, 1000)
	if err != nil {
		return fmt.Errorf("prebuilds under way: %w", err)
	}
	for _, p := range under {
		if !now.After(p.CreatedAt.Add(p.Timeout)) {
			continue
		}
		q, err := s.Store.UpdatePrebuild(ctx, p.OrgID, p.ID, func(x *Prebuild) error {
			if x.Phase.Final() {
				return errUnchanged
			}
			x.Phase, x.CompletedAt, x.UpdatedAt = PhaseFailed, &now, now
			x.FailureMessage = fmt.Sprintf("timed out: not done %s after it was created", x.Timeout)
			return nil
		})
		if errors.Is(err, errUnchanged) || apperr.Is(err, apperr.CodeNotFound) {
			continue
		}
		if err == nil {
			err = s.retire(ctx, q)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("time out prebuild %q: %w", p.ID, err))
		}
	}
	due, err := s.Schedules.FindDueSchedules(ctx, now, 100)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("due prebuild schedules: %w", err))...)
	}
	for _, sc := range due {
		ok, err := s.Schedules.ClaimSchedule(ctx, sc.ID, sc.NextRunAt, now.Add(sc.Interval))
		if err != nil || !ok {
			if err != nil {
				errs = append(errs, fmt.Errorf("claim prebuild schedule %q: %w", sc.ID, err))
			}
			continue
		}
		as := identity.NewContext(ctx, &identity.Caller{
			OrgID: sc.OrgID, Subject: sc.Creator,
			Scopes: []identity.Scope{identity.ScopeEnvironmentsRead, identity.ScopeEnvironmentsWrite},
		})
		p, err := s.Create(as, CreateInput{ContextURL: sc.ContextURL, ClassID: sc.ClassID, TriggeredBy: TriggerScheduled})
		if err != nil {
			errs = append(errs, fmt.Errorf("scheduled prebuild of %s (schedule %s): %w", sc.ContextURL, sc.ID, err))
			continue
		}
		if err := s.Schedules.SetScheduleLastPrebuild(ctx, sc.ID, p.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunSweep calls Sweep every interval until ctx ends; onErr gets each
// failure.
func (s *Service) RunSweep(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
