package environments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
)

// Service creates, lists, starts, stops and deletes environments and lists
// environment classes.
type Service struct {
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Changed, when set, is called after an environment on runnerID was
	// created or its spec changed or it was removed, so that the runner can
	// be told its new desired state.
	Changed func(orgID, runnerID string)
	// LogsTokens issues the tokens of CreateLogsToken, and LogOwner tells
	// AuthorizeLog whose a log is; without them logs tokens are refused.
	LogsTokens LogsTokens
	LogOwner   LogOwner
	// InUse, when set, names what has a session open in an environment on
	// this replica ("" for nothing): the inactivity sweep does not stop
	// it (activity.go).
	InUse func(orgID, envID string) string
}

// NewService returns a Service on store with the real clock.
func NewService(store Store) *Service { return &Service{Store: store, Now: time.Now} }

// now is the clock at the storage's precision, so what Create returns equals
// what a later Get reads.
func (s *Service) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func (s *Service) changed(orgID, runnerID string) {
	if s.Changed != nil {
		s.Changed(orgID, runnerID)
	}
}

func notFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("environment %q not found", id)
	}
	return fmt.Errorf("environment %q: %w", id, err)
}

// Create creates an environment on the runner of spec.machine.class. It is
// CREATING until the runner reports on it. It needs ScopeEnvironmentsWrite
// and fails with CodeInvalid (an unknown class names spec.machine.class) and
// CodeFailedPrecondition (the runner is being deleted or drains).
func (s *Service) Create(ctx context.Context, in CreateInput) (*Environment, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	r, err := s.Store.FindRunnerByID(ctx, c.OrgID, RunnerOfClass(in.Spec.Machine.Class))
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.Invalid("spec.machine.class", "environment class %q does not exist", in.Spec.Machine.Class)
	}
	if err != nil {
		return nil, fmt.Errorf("find the runner of class %q: %w", in.Spec.Machine.Class, err)
	}
	class := DefaultClass(r)
	switch {
	case !class.Enabled:
		return nil, apperr.FailedPrecondition("environment class %q is disabled: its runner %q is being deleted", class.ID, r.Name)
	case r.Draining():
		return nil, apperr.FailedPrecondition("environment class %q cannot take new environments: its runner %q is draining", class.ID, r.Name)
	}
	now := s.now()
	e := &Environment{
		ID:            uuid.NewString(),
		OrgID:         c.OrgID,
		RunnerID:      r.ID,
		RunnerKind:    r.Kind,
		Creator:       c.Subject,
		CreatedAt:     now,
		UpdatedAt:     now,
		LastStartedAt: &now,
		Spec:          in.Spec,
		Status:        Status{Phase: PhaseCreating},
	}
	e.Spec.SpecVersion = 1
	e.Spec.PrebuildID = in.PrebuildID
	// The repository's automations file applies at the first start.
	e.Spec.AutomationsFile.FileRequested = 1
	e.Spec.AutomationsFile.FileApplied, e.Spec.AutomationsFile.TriggeredStart = 0, nil
	if e.Spec.DesiredPhase != PhaseRunning {
		e.LastStartedAt = nil
	}
	if len(e.Spec.Content.Initializers) > 0 {
		first := e.Spec.Content.Initializers[0]
		e.ContextURL = first.Git.RemoteURI
		if first.ContextURL != nil {
			e.ContextURL = strings.TrimSpace(*first.ContextURL)
		}
		// What a context URL named is now its git initializer, which is
		// what is stored.
		for i := range e.Spec.Content.Initializers {
			e.Spec.Content.Initializers[i].ContextURL = nil
		}
	}
	switch {
	case in.Name != nil:
		e.Name = *in.Name
	case len(e.Spec.Content.Initializers) > 0:
		e.Name = repoName(e.Spec.Content.Initializers[0].Git.RemoteURI)
	default:
		e.Name = "environment-" + e.ID[:8]
	}
	if err := s.Store.CreateEnvironment(ctx, e); err != nil {
		return nil, fmt.Errorf("create environment: %w", err)
	}
	s.changed(e.OrgID, e.RunnerID)
	return e, nil
}

// Get returns an environment of the caller's organization. It needs
// ScopeEnvironmentsRead and fails with CodeInvalid and CodeNotFound.
func (s *Service) Get(ctx context.Context, id string) (*Environment, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", id); err != nil {
		return nil, err
	}
	e, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	if err := s.markUnreachable(ctx, c.OrgID, e); err != nil {
		return nil, err
	}
	return e, nil
}

// MaxFilterValues bounds each list filter, so one request stays one
// reasonable query on either database.
const MaxFilterValues = 100

// ListFilter selects environments for List.
type ListFilter struct {
	RunnerIDs   []string
	Phases      []Phase
	CreatorIDs  []string
	RunnerKinds []runners.Kind
	// ProjectIDs is refused when set: runyard has no projects.
	ProjectIDs []string
	// ArchivalStatus is an ARCHIVAL_STATUS_ name or empty; runyard archives
	// nothing, so ARCHIVED lists nothing.
	ArchivalStatus string
}

func validateUUIDs(field string, ids []string) error {
	if len(ids) > MaxFilterValues {
		return apperr.Invalid(field, "at most %d values, got %d", MaxFilterValues, len(ids))
	}
	for i, id := range ids {
		if err := identity.ValidateUUID(fmt.Sprintf("%s[%d]", field, i), id); err != nil {
			return err
		}
	}
	return nil
}

func validateEnums[T comparable](field string, vals, known []T) error {
	if len(vals) > MaxFilterValues {
		return apperr.Invalid(field, "at most %d values, got %d", MaxFilterValues, len(vals))
	}
	for i, v := range vals {
		if !slices.Contains(known, v) {
			return apperr.Invalid(fmt.Sprintf("%s[%d]", field, i), "unknown value %v", v)
		}
	}
	return nil
}

// List returns one page of the caller's organization's environments, newest
// first, and the token of the next page. It needs ScopeEnvironmentsRead.
func (s *Service) List(ctx context.Context, f ListFilter, page paging.Page) ([]*Environment, string, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.runnerIds", f.RunnerIDs); err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.creatorIds", f.CreatorIDs); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.statusPhases", f.Phases, Phases); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.runnerKinds", f.RunnerKinds, runners.Kinds); err != nil {
		return nil, "", err
	}
	if len(f.ProjectIDs) > 0 {
		return nil, "", apperr.Invalid("filter.projectIds", "is not supported: runyard has no projects")
	}
	if f.ArchivalStatus == "ARCHIVAL_STATUS_ARCHIVED" {
		return []*Environment{}, "", nil
	}
	items, err := s.Store.FindEnvironments(ctx, Filter{
		OrgID: c.OrgID, RunnerIDs: f.RunnerIDs, Phases: f.Phases, CreatorIDs: f.CreatorIDs, RunnerKinds: f.RunnerKinds,
		Before: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list environments: %w", err)
	}
	// The page token carries the Seq of the last environment returned; the
	// next page starts below it (paging.Page.After is "after" in list
	// order, which is descending here).
	items, next := paging.Trim(page, items, func(e *Environment) int64 { return e.Seq })
	if err := s.markUnreachable(ctx, c.OrgID, items...); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// setDesired moves an environment's desired phase to phase, idempotently.
func (s *Service) setDesired(ctx context.Context, id string, phase Phase) error {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("environmentId", id); err != nil {
		return err
	}
	changed := false
	e, err := s.Store.UpdateEnvironment(ctx, c.OrgID, id, func(e *Environment) error {
		changed = false
		if e.Deleting() {
			return apperr.FailedPrecondition("environment %q is being deleted", id)
		}
		if e.Spec.DesiredPhase == phase {
			return nil
		}
		now := s.now()
		e.Spec.DesiredPhase = phase
		e.Spec.SpecVersion++
		e.UpdatedAt = now
		if phase == PhaseRunning {
			e.LastStartedAt = &now
			e.Spec.TimedOut = ""
		}
		changed = true
		return nil
	})
	if err != nil {
		return notFound(id, err)
	}
	if changed {
		s.changed(e.OrgID, e.RunnerID)
	}
	return nil
}

// Start asks the environment's runner to run it. Starting a running
// environment changes nothing. It needs ScopeEnvironmentsWrite and fails with
// CodeNotFound and CodeFailedPrecondition (being deleted).
func (s *Service) Start(ctx context.Context, id string) error {
	return s.setDesired(ctx, id, PhaseRunning)
}

// Stop asks the environment's runner to stop it, which stops its services.
// Stopping a stopped environment changes nothing. It needs
// ScopeEnvironmentsWrite and fails with CodeNotFound and
// CodeFailedPrecondition (being deleted).
func (s *Service) Stop(ctx context.Context, id string) error {
	return s.setDesired(ctx, id, PhaseStopped)
}

// Delete deletes an environment. With force, or when its runner never
// reported on it, the environment and its automations are removed at once;
// otherwise its desired phase becomes DELETED and its runner removes it after
// stopping everything (ReportStatus with phase DELETED). Deleting twice is
// not an error. It needs ScopeEnvironmentsWrite and fails with CodeNotFound.
func (s *Service) Delete(ctx context.Context, id string, force bool) error {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("environmentId", id); err != nil {
		return err
	}
	var runnerID string
	err = s.Store.DeleteEnvironment(ctx, c.OrgID, id, func(e *Environment) error {
		runnerID = e.RunnerID
		if force || !e.PickedUp() {
			return nil
		}
		return errKeep
	})
	if err == nil {
		s.changed(c.OrgID, runnerID)
		return nil
	}
	if !errors.Is(err, errKeep) {
		return notFound(id, err)
	}
	changed := false
	e, err := s.Store.UpdateEnvironment(ctx, c.OrgID, id, func(e *Environment) error {
		changed = false
		if e.Deleting() {
			return nil
		}
		e.Spec.DesiredPhase = PhaseDeleted
		e.Spec.SpecVersion++
		e.UpdatedAt = s.now()
		changed = true
		return nil
	})
	if err != nil {
		return notFound(id, err)
	}
	if changed {
		s.changed(e.OrgID, e.RunnerID)
	}
	return nil
}

// errKeep tells DeleteEnvironment to keep an environment its runner has to
// clean up first.
var errKeep = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "the runner must delete the environment"}

// ClassFilter selects environment classes for ListClasses.
type ClassFilter struct {
	RunnerIDs []string
	// Enabled and CanCreate, when set, keep only classes whose field has
	// that value.
	Enabled         *bool
	CanCreate       *bool
	RunnerKinds     []runners.Kind
	RunnerProviders []runners.Provider
}

func (f *ClassFilter) keep(r *runners.Runner, cl *Class) bool {
	return (f.Enabled == nil || *f.Enabled == cl.Enabled) &&
		(f.CanCreate == nil || *f.CanCreate == cl.CanCreate) &&
		(len(f.RunnerKinds) == 0 || slices.Contains(f.RunnerKinds, r.Kind)) &&
		(len(f.RunnerProviders) == 0 || slices.Contains(f.RunnerProviders, r.Provider))
}

// ListClasses returns one page of the environment classes of the caller's
// organization's runners, in the runners' order, and the token of the next
// page. It needs ScopeEnvironmentsRead.
func (s *Service) ListClasses(ctx context.Context, f ClassFilter, page paging.Page) ([]*Class, string, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.runnerIds", f.RunnerIDs); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.runnerKinds", f.RunnerKinds, runners.Kinds); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.runnerProviders", f.RunnerProviders, runners.Providers); err != nil {
		return nil, "", err
	}
	var classes []*Class
	if len(f.RunnerIDs) > 0 {
		classes, err = s.classesOf(ctx, c.OrgID, f, page)
	} else {
		classes, err = s.classesPaged(ctx, c.OrgID, f, page)
	}
	if err != nil {
		return nil, "", err
	}
	classes, next := paging.Trim(page, classes, func(cl *Class) int64 { return cl.RunnerSeq })
	return classes, next, nil
}

// classesOf returns up to page.Limit+1 classes of the runners f names.
func (s *Service) classesOf(ctx context.Context, orgID string, f ClassFilter, page paging.Page) ([]*Class, error) {
	var out []*Class
	seen := map[string]bool{}
	for _, id := range f.RunnerIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := s.Store.FindRunnerByID(ctx, orgID, id)
		if apperr.Is(err, apperr.CodeNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list environment classes: %w", err)
		}
		if cl := DefaultClass(r); r.Seq > page.After && f.keep(r, cl) {
			out = append(out, cl)
		}
	}
	slices.SortFunc(out, func(a, b *Class) int { return cmp.Compare(a.RunnerSeq, b.RunnerSeq) })
	if len(out) > page.Limit+1 {
		out = out[:page.Limit+1]
	}
	return out, nil
}

// classesPaged walks the organization's runners from page.After until it has
// page.Limit+1 classes that pass f: the enabled filters are not columns, so
// a page of runners may yield fewer classes.
func (s *Service) classesPaged(ctx context.Context, orgID string, f ClassFilter, page paging.Page) ([]*Class, error) {
	var out []*Class
	after := page.After
	const batch = paging.MaxSize + 1
	for {
		rs, err := s.Store.FindRunners(ctx, runners.Filter{
			OrgID: orgID, Kinds: f.RunnerKinds, Providers: f.RunnerProviders, After: after, Limit: batch,
		})
		if err != nil {
			return nil, fmt.Errorf("list environment classes: %w", err)
		}
		for _, r := range rs {
			if cl := DefaultClass(r); f.keep(r, cl) {
				out = append(out, cl)
				if len(out) == page.Limit+1 {
					return out, nil
				}
			}
		}
		if len(rs) < batch {
			return out, nil
		}
		after = rs[len(rs)-1].Seq
	}
}
