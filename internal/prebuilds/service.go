package prebuilds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/contexturl"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// DefaultKeep is how many snapshots each repository and branch keeps on a
// runner when Service.Keep is zero.
const DefaultKeep = 3

// DefaultTimeout and MaxTimeout bound a prebuild (the vendor's: 60 minutes
// by default, at most 2 hours).
const (
	DefaultTimeout = time.Hour
	MaxTimeout     = 2 * time.Hour
)

// Service creates, reads, cancels and deletes prebuilds and records what
// their runners report.
type Service struct {
	Store Store
	// Schedules keeps the schedules.
	Schedules ScheduleStore
	// Envs creates and retires the prebuilds' environments.
	Envs *environments.Service
	// Keep is how many snapshots per runner, repository and branch are
	// kept; zero means DefaultKeep.
	Keep int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Changed, when set, tells runnerID's stream to resend its desired
	// state (the snapshots it keeps changed).
	Changed func(orgID, runnerID string)
}

func (s *Service) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func (s *Service) keep() int {
	if s.Keep > 0 {
		return s.Keep
	}
	return DefaultKeep
}

func (s *Service) changed(orgID, runnerID string) {
	if s.Changed != nil {
		s.Changed(orgID, runnerID)
	}
}

func notFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("prebuild %q not found", id)
	}
	return fmt.Errorf("prebuild %q: %w", id, err)
}

// CreateInput is a prebuild to create.
type CreateInput struct {
	// ContextURL is the repository (and branch or commit) to prebuild.
	ContextURL string
	// ClassID is the environment class: its runner runs the prebuild.
	ClassID string
	// Timeout zero means DefaultTimeout.
	Timeout time.Duration
	// ProjectID must be empty: runyard has no projects.
	ProjectID   string
	TriggeredBy Trigger
}

// Create starts a prebuild: it creates the prebuild's environment on the
// runner of in.ClassID, which runs the prebuild. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid (naming contextUrl,
// environmentClassId, spec.timeout or projectId) and
// CodeFailedPrecondition (the runner is being deleted or drains).
func (s *Service) Create(ctx context.Context, in CreateInput) (*Prebuild, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	if in.ProjectID != "" {
		return nil, apperr.Invalid("projectId", "runyard has no projects: name the repository in contextUrl instead")
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
	switch {
	case in.Timeout < 0 || in.Timeout > MaxTimeout:
		return nil, apperr.Invalid("spec.timeout", "must be between 0 and %s", MaxTimeout)
	case in.Timeout == 0:
		in.Timeout = DefaultTimeout
	}
	if in.TriggeredBy == "" {
		in.TriggeredBy = TriggerManual
	}
	now := s.now()
	p := &Prebuild{
		ID: uuid.NewString(), OrgID: c.OrgID, RunnerID: environments.RunnerOfClass(in.ClassID), ClassID: in.ClassID,
		ContextURL: url, Phase: PhasePending, Creator: c.Subject, TriggeredBy: in.TriggeredBy,
		Timeout: in.Timeout, CreatedAt: now, UpdatedAt: now,
	}
	// The prebuild exists before its environment, so that the runner's
	// desired state keeps its snapshot from the start.
	if err := s.Store.CreatePrebuild(ctx, p); err != nil {
		return nil, fmt.Errorf("create prebuild: %w", err)
	}
	name := "prebuild-" + p.ID[:8]
	env, err := s.Envs.Create(ctx, environments.CreateInput{
		Name: &name,
		Spec: environments.Spec{
			DesiredPhase: environments.PhaseRunning,
			Machine:      environments.Machine{Class: in.ClassID},
			Content:      environments.Content{Initializers: []environments.Initializer{{ContextURL: &url}}},
		},
		PrebuildID: p.ID,
	})
	if err != nil {
		_ = s.Store.DeletePrebuild(context.WithoutCancel(ctx), p.OrgID, p.ID)
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code == apperr.CodeInvalid && ae.Field == "spec.machine.class" {
			return nil, apperr.Invalid("environmentClassId", "%s", ae.Message)
		}
		return nil, err
	}
	return s.Store.UpdatePrebuild(ctx, p.OrgID, p.ID, func(p *Prebuild) error {
		p.EnvironmentID, p.RunnerID = env.ID, env.RunnerID
		if p.Phase == PhasePending {
			p.Phase = PhaseStarting
		}
		p.UpdatedAt = s.now()
		return nil
	})
}

// Get returns a prebuild. It needs ScopeEnvironmentsRead and fails with
// CodeInvalid and CodeNotFound.
func (s *Service) Get(ctx context.Context, id string) (*Prebuild, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("prebuildId", id); err != nil {
		return nil, err
	}
	p, err := s.Store.FindPrebuildByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	return p, nil
}

// ListFilter selects prebuilds for List.
type ListFilter struct {
	Phases      []Phase
	ContextURLs []string
	CreatorIDs  []string
	Triggers    []Trigger
}

// List returns a page of the organization's prebuilds, newest first, and
// the next page's token. It needs ScopeEnvironmentsRead.
func (s *Service) List(ctx context.Context, f ListFilter, page paging.Page) ([]*Prebuild, string, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, "", err
	}
	for i, p := range f.Phases {
		if !slices.Contains(Phases, p) {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.phases[%d]", i), "unknown phase %q", p)
		}
	}
	for i, t := range f.Triggers {
		if t != TriggerManual && t != TriggerScheduled {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.triggeredBy[%d]", i), "unknown trigger %q", t)
		}
	}
	items, err := s.Store.FindPrebuilds(ctx, Filter{
		OrgID: c.OrgID, Phases: f.Phases, ContextURLs: f.ContextURLs, CreatorIDs: f.CreatorIDs, Triggers: f.Triggers,
		Before: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list prebuilds: %w", err)
	}
	items, next := paging.Trim(page, items, func(p *Prebuild) int64 { return p.Seq })
	return items, next, nil
}

// Cancel stops a prebuild under way: CANCELLED, and its environment is
// deleted. A finished prebuild is returned as it is. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid and CodeNotFound.
func (s *Service) Cancel(ctx context.Context, id string) (*Prebuild, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("prebuildId", id); err != nil {
		return nil, err
	}
	p, err := s.Store.UpdatePrebuild(ctx, c.OrgID, id, func(p *Prebuild) error {
		if p.Phase.Final() {
			return nil
		}
		now := s.now()
		p.Phase, p.CompletedAt, p.UpdatedAt = PhaseCancelled, &now, now
		return nil
	})
	if err != nil {
		return nil, notFound(id, err)
	}
	if err := s.retire(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Delete removes a prebuild; one under way is cancelled first, and its
// snapshot's archive is deleted from its runner. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid and CodeNotFound.
func (s *Service) Delete(ctx context.Context, id string) error {
	p, err := s.Cancel(ctx, id)
	if err != nil {
		return err
	}
	if err := s.Store.DeletePrebuild(ctx, p.OrgID, id); err != nil {
		return notFound(id, err)
	}
	s.changed(p.OrgID, p.RunnerID)
	return nil
}

// retire deletes a finished prebuild's environment and tells its runner
// which snapshots to keep.
func (s *Service) retire(ctx context.Context, p *Prebuild) error {
	if p.EnvironmentID != "" && p.Phase.Final() {
		if err := s.Envs.Retire(ctx, p.OrgID, p.EnvironmentID); err != nil {
			return fmt.Errorf("delete the environment of prebuild %q: %w", p.ID, err)
		}
	}
	s.changed(p.OrgID, p.RunnerID)
	return nil
}

// Report is what a runner reported on a prebuild's environment.
type Report struct {
	PrebuildID    string
	EnvironmentID string
	// Phase is the environment's; FailureMessage why it failed (a clone).
	Phase          environments.Phase
	FailureMessage string
	// Snapshot is set once the prebuild is over on the runner.
	Snapshot *SnapshotReport
}

// SnapshotReport is a prebuild's outcome on its runner.
type SnapshotReport struct {
	Commit    string
	SizeBytes int64
	// Failure says why there is no snapshot.
	Failure   string
	CreatedAt time.Time
}

// Reported records what the calling runner reported on a prebuild's
// environment: the prebuild's phase follows the environment's until the
// runner reports its snapshot, which completes it (or fails it); then its
// environment is deleted and retention applied. A report on a prebuild
// that is over changes nothing. It fails with CodePermissionDenied for any
// caller but a runner.
func (s *Service) Reported(ctx context.Context, r Report) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	var env *environments.Environment
	p, err := s.Store.UpdatePrebuild(ctx, c.OrgID, r.PrebuildID, func(p *Prebuild) error {
		if p.RunnerID != c.RunnerID {
			return apperr.NotFound("prebuild %q not found", r.PrebuildID)
		}
		if p.Phase.Final() {
			return errUnchanged
		}
		now := s.now()
		before := p.Phase
		switch {
		case r.Snapshot != nil && r.Snapshot.Failure != "":
			p.Phase, p.FailureMessage, p.CompletedAt = PhaseFailed, r.Snapshot.Failure, &now
		case r.Snapshot != nil:
			if env == nil {
				var err error
				if env, err = s.Envs.Store.FindEnvironmentByID(ctx, c.OrgID, r.EnvironmentID); err != nil {
					return fmt.Errorf("environment of prebuild %q: %w", p.ID, err)
				}
			}
			snap := &Snapshot{Commit: r.Snapshot.Commit, SizeBytes: r.Snapshot.SizeBytes, CreatedAt: r.Snapshot.CreatedAt.UTC().Truncate(time.Microsecond)}
			if in := env.Spec.Content.Initializers; len(in) > 0 && in[0].Git != nil {
				snap.Repository, snap.Branch = in[0].Git.RemoteURI, in[0].Git.CloneTarget
			}
			p.Phase, p.Snapshot, p.CompletedAt = PhaseCompleted, snap, &now
		case r.Phase == environments.PhaseStopped && r.FailureMessage != "":
			p.Phase, p.FailureMessage, p.CompletedAt = PhaseFailed, r.FailureMessage, &now
		case r.Phase == environments.PhaseRunning:
			p.Phase = PhaseRunning
		case r.Phase == environments.PhaseCreating || r.Phase == environments.PhaseStarting:
			p.Phase = PhaseStarting
		}
		if p.Phase == before {
			return errUnchanged
		}
		p.UpdatedAt = now
		return nil
	})
	if errors.Is(err, errUnchanged) || apperr.Is(err, apperr.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.Phase.Final() {
		return nil
	}
	if p.Phase == PhaseCompleted {
		if err := s.applyRetention(ctx, p); err != nil {
			return err
		}
	}
	return s.retire(ctx, p)
}

var errUnchanged = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "unchanged"}

// applyRetention marks the snapshots of p's runner, repository and branch
// beyond the Keep newest deleted; the runner deletes their archives when
// its desired state no longer names them.
func (s *Service) applyRetention(ctx context.Context, p *Prebuild) error {
	all, err := s.Store.FindPrebuilds(ctx, Filter{OrgID: p.OrgID, RunnerIDs: []string{p.RunnerID}, Phases: []Phase{PhaseCompleted}})
	if err != nil {
		return fmt.Errorf("snapshots of runner %q: %w", p.RunnerID, err)
	}
	var same []*Prebuild
	for _, x := range all {
		if x.Kept() && x.Snapshot.Repository == p.Snapshot.Repository && x.Snapshot.Branch == p.Snapshot.Branch {
			same = append(same, x)
		}
	}
	slices.SortFunc(same, func(a, b *Prebuild) int { return b.Snapshot.CreatedAt.Compare(a.Snapshot.CreatedAt) })
	for _, old := range same[min(len(same), s.keep()):] {
		_, err := s.Store.UpdatePrebuild(ctx, old.OrgID, old.ID, func(x *Prebuild) error {
			if x.Snapshot == nil || x.Snapshot.Deleted {
				return errUnchanged
			}
			x.Snapshot.Deleted, x.UpdatedAt = true, s.now()
			return nil
		})
		if err != nil && !errors.Is(err, errUnchanged) && !apperr.Is(err, apperr.CodeNotFound) {
			return fmt.Errorf("retire snapshot %q: %w", old.ID, err)
		}
	}
	return nil
}

// KeptSnapshots returns the IDs of the snapshots runnerID keeps, for its
// desired state. The control plane calls it and checks no caller.
func (s *Service) KeptSnapshots(ctx context.Context, runnerID string) ([]string, error) {
	items, err := s.Store.FindKeptSnapshots(ctx, runnerID)
	if err != nil {
		return nil, fmt.Errorf("snapshots of runner %q: %w", runnerID, err)
	}
	ids := make([]string, 0, len(items))
	for _, p := range items {
		ids = append(ids, p.ID)
	}
	return ids, nil
}
