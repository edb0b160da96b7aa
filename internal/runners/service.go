package runners

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// Store is the storage the registry needs. Implementations live in
// internal/store.
type Store interface {
	// CreateRunner stores r and its first exchange token in one transaction,
	// assigning r.Seq. It fails with CodeConflict on a duplicate name in the
	// organization (tombstones do not count: their names are free).
	CreateRunner(ctx context.Context, r *Runner, x *identity.ExchangeToken) error
	// FindRunnerByID fails with CodeNotFound, also for a runner of another
	// organization and for a tombstone.
	FindRunnerByID(ctx context.Context, orgID, id string) (*Runner, error)
	// FindRunnerOrTombstone is FindRunnerByID that also finds a deleted
	// runner's tombstone until it is purged.
	FindRunnerOrTombstone(ctx context.Context, orgID, id string) (*Runner, error)
	// FindRunnerBySeq finds a runner by its numeric ID. It fails with
	// CodeNotFound, also for a tombstone.
	FindRunnerBySeq(ctx context.Context, orgID string, seq int64) (*Runner, error)
	// FindRunnerByName fails with CodeNotFound, also for a tombstone (whose
	// name a new runner may have taken).
	FindRunnerByName(ctx context.Context, orgID, name string) (*Runner, error)
	// FindRunners returns the runners matching f by ascending Seq, without
	// tombstones.
	FindRunners(ctx context.Context, f Filter) ([]*Runner, error)
	// UpdateRunner loads a runner, applies fn and stores the result in one
	// transaction; an error from fn changes nothing. It fails with
	// CodeNotFound (also for a tombstone), and CodeConflict on a duplicate
	// name.
	UpdateRunner(ctx context.Context, orgID, id string, fn func(*Runner) error) (*Runner, error)
	// DeleteRunner turns a runner into a tombstone in one transaction: it
	// loads the runner, applies fn, which must set DeletedAt (an error from
	// fn changes nothing), stores the result and deletes the runner's
	// tokens and exchange tokens. It fails with CodeNotFound, also for a
	// tombstone.
	DeleteRunner(ctx context.Context, orgID, id string, fn func(*Runner) error) (*Runner, error)
	// PurgeDeletedRunners removes the tombstones of every organization
	// whose DeletedAt is before cutoff and returns how many it removed.
	PurgeDeletedRunners(ctx context.Context, cutoff time.Time) (int, error)
	// CreateExchangeToken stores a new exchange token for a runner. It
	// fails with CodeNotFound when the runner does not exist or is a
	// tombstone, also one deleted while the token is being stored.
	CreateExchangeToken(ctx context.Context, x *identity.ExchangeToken) error
	// RenewRunners records a batch of renewals in one transaction: a
	// runner's last-seen time only moves forward. Runners that are INACTIVE
	// are left alone and returned, so the caller can bring them back through
	// UpdateRunner and the domain's phase rules. Tombstones are left alone.
	RenewRunners(ctx context.Context, batch []Renewal) (inactive []Renewal, err error)
	// FindSilentRunners returns the runners that are ACTIVE or DEGRADED and
	// were last seen before cutoff.
	FindSilentRunners(ctx context.Context, cutoff time.Time) ([]Renewal, error)
	// FindLostRunners returns the runners that are INACTIVE, were last seen
	// before cutoff, and whose work was not yet given up on since they were
	// last seen (MarkRunnerLost).
	FindLostRunners(ctx context.Context, cutoff time.Time) ([]Renewal, error)
	// MarkRunnerLost records at as the time the work of a runner that
	// FindLostRunners would still return was given up on, and reports
	// whether it did: false when the runner came back, was deleted, or
	// another caller marked it first.
	MarkRunnerLost(ctx context.Context, orgID, id string, cutoff, at time.Time) (bool, error)
}

// Service is the runner registry.
type Service struct {
	Store Store
	// Now is the clock, a field so expiry is testable.
	Now func() time.Time
	// Changed, when set, is called after a user changed or deleted a runner,
	// so that a connected daemon learns its new desired state at once.
	Changed func(orgID, runnerID string)
	// Gone, when set, is called after a runner was removed or stayed
	// INACTIVE for longer than LostAfter, with the reason its work is lost
	// ("runner deleted", "runner unreachable for more than 10m0s"). A
	// runner that merely went INACTIVE keeps its work: it may come back
	// with it still running.
	Gone func(orgID, runnerID, reason string)
	// LostAfter is how long a runner may stay unreachable before its work
	// is failed for good (Nomad's disconnect.lost_after); zero means
	// DefaultLostAfter.
	LostAfter time.Duration
	// Deleted, when set, is called after a runner was deleted (forced, never
	// connected, or confirmed by its daemon), so that what belongs to it
	// goes too: nothing can run its environments any more. It is called
	// once per runner: deleting a tombstone again calls nothing.
	Deleted func(orgID, runnerID string)
}

// DefaultLostAfter is how long a runner may stay unreachable, by default,
// before its work is failed for good.
const DefaultLostAfter = 10 * time.Minute

// DefaultDeletedRetention is how long a deleted runner stays readable, by
// default, before PurgeDeleted removes it.
const DefaultDeletedRetention = 24 * time.Hour

// NewService returns a Service on store with the real clock.
func NewService(store Store) *Service {
	return &Service{Store: store, Now: time.Now}
}

func (s *Service) changed(orgID, runnerID string) {
	if s.Changed != nil {
		s.Changed(orgID, runnerID)
	}
}

func (s *Service) gone(orgID, runnerID, reason string) {
	if s.Gone != nil {
		s.Gone(orgID, runnerID, reason)
	}
}

// deleted runs the hooks of a runner that was deleted.
func (s *Service) deleted(orgID, runnerID string) {
	s.gone(orgID, runnerID, "runner deleted")
	if s.Deleted != nil {
		s.Deleted(orgID, runnerID)
	}
}

// now is the clock at the storage's precision, so what Create returns equals
// what a later Get reads.
func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Create registers a runner in the caller's organization and returns it with a
// one-time exchange token for its daemon. It needs ScopeRunnersWrite and fails
// with CodeInvalid and CodeConflict.
func (s *Service) Create(ctx context.Context, in CreateInput) (*Runner, string, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersWrite)
	if err != nil {
		return nil, "", err
	}
	if err := in.validate(); err != nil {
		return nil, "", err
	}
	now := s.now()
	r := &Runner{
		ID:              uuid.NewString(),
		OrgID:           c.OrgID,
		Name:            in.Name,
		Kind:            in.Kind,
		Provider:        in.Provider,
		RunnerManagerID: in.RunnerManagerID,
		Spec:            in.Spec,
		Status:          Status{Phase: PhaseCreated},
		Creator:         c.Subject,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	x, secret := identity.NewExchangeToken(c.OrgID, r.ID, now)
	if err := s.Store.CreateRunner(ctx, r, x); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return nil, "", apperr.Conflict("a runner named %q already exists in this organization", in.Name)
		}
		return nil, "", fmt.Errorf("create runner %q: %w", in.Name, err)
	}
	return r, secret, nil
}

// Get returns a runner of the caller's organization, or its tombstone (phase
// DELETED) for a while after it was deleted, so that a client waiting for a
// deletion sees it complete. It needs ScopeRunnersRead and fails with
// CodeInvalid and CodeNotFound.
func (s *Service) Get(ctx context.Context, id string) (*Runner, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("runnerId", id); err != nil {
		return nil, err
	}
	var r *Runner
	if v, ok := s.Store.(Views); ok {
		r, err = v.ViewRunner(ctx, c.OrgID, id)
	} else {
		r, err = s.Store.FindRunnerOrTombstone(ctx, c.OrgID, id)
	}
	if err != nil {
		return nil, notFound(id, err)
	}
	return r, nil
}

// GetBySeq returns a runner by the numeric ID of the REST API (id, as the
// path has it). It needs ScopeRunnersRead and fails with CodeInvalid and
// CodeNotFound.
func (s *Service) GetBySeq(ctx context.Context, id string) (*Runner, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, err
	}
	// The id is parsed here, after the scope check, so that a caller
	// without the scope learns nothing about what it sent.
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil || seq <= 0 {
		return nil, apperr.Invalid("id", "must be a positive integer, got %q", id)
	}
	r, err := s.Store.FindRunnerBySeq(ctx, c.OrgID, seq)
	if err != nil {
		return nil, notFound(id, err)
	}
	return r, nil
}

// GetByName returns a runner by its name, which Kubiya's API routes by;
// field names the name's parameter for errors. It needs ScopeRunnersRead
// and fails with CodeInvalid and CodeNotFound.
func (s *Service) GetByName(ctx context.Context, field, name string) (*Runner, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, err
	}
	if err := ValidateName(field, name); err != nil {
		return nil, err
	}
	r, err := s.Store.FindRunnerByName(ctx, c.OrgID, name)
	if err != nil {
		return nil, notFound(name, err)
	}
	return r, nil
}

// CreateTokenByName is CreateToken for the runner called name (the Kubiya
// API names runners): it needs ScopeRunnersWrite before anything else, so
// that a read-only caller learns nothing more than GetByName tells it. field
// names the name's parameter for errors. It fails with CodeInvalid,
// CodeNotFound and CodeFailedPrecondition.
func (s *Service) CreateTokenByName(ctx context.Context, field, name string) (*Runner, string, error) {
	if _, err := identity.Require(ctx, identity.ScopeRunnersWrite); err != nil {
		return nil, "", err
	}
	r, err := s.GetByName(ctx, field, name)
	if err != nil {
		return nil, "", err
	}
	token, err := s.CreateToken(ctx, r.ID)
	if err != nil {
		return nil, "", err
	}
	return r, token, nil
}

func notFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("runner %q not found", id)
	}
	return fmt.Errorf("runner %q: %w", id, err)
}

// missing is notFound for a change the store refused with CodeNotFound:
// when the runner is a tombstone it is CodeFailedPrecondition instead,
// since Get still shows the runner and "not found" would contradict it.
func (s *Service) missing(ctx context.Context, orgID, id string, err error) error {
	if !apperr.Is(err, apperr.CodeNotFound) {
		return fmt.Errorf("runner %q: %w", id, err)
	}
	r, ferr := s.Store.FindRunnerOrTombstone(ctx, orgID, id)
	switch {
	case ferr == nil && r.Deleted():
		return apperr.FailedPrecondition("runner %q was deleted at %s", id, r.DeletedAt.Format(time.RFC3339))
	case ferr != nil && !apperr.Is(ferr, apperr.CodeNotFound):
		return fmt.Errorf("runner %q: look for its tombstone: %w", id, ferr)
	}
	return apperr.NotFound("runner %q not found", id)
}

// MaxFilterValues bounds each list filter, so one request stays one
// reasonable query on either database.
const MaxFilterValues = 100

// ListFilter selects runners for List.
type ListFilter struct {
	CreatorIDs []string
	Kinds      []Kind
	Providers  []Provider
	// Phases, NameContains and DesiredPhases (ACTIVE or INACTIVE: the
	// runners being drained) are the console's filters, applied by the
	// store so that a page of a large fleet reads one page of rows.
	Phases        []Phase
	NameContains  string
	DesiredPhases []Phase
}

// ListPhases are the phases a list may filter on: those a runner is seen in.
var ListPhases = []Phase{PhaseActive, PhaseDegraded, PhaseInactive, PhaseCreated, PhaseDeleting}

// List returns one page of the caller's organization's runners, oldest first,
// and the token of the next page. It needs ScopeRunnersRead.
func (s *Service) List(ctx context.Context, f ListFilter, page paging.Page) ([]*Runner, string, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, "", err
	}
	if len(f.CreatorIDs) > MaxFilterValues {
		return nil, "", apperr.Invalid("filter.creatorIds", "at most %d values, got %d", MaxFilterValues, len(f.CreatorIDs))
	}
	if len(f.Kinds) > MaxFilterValues {
		return nil, "", apperr.Invalid("filter.kinds", "at most %d values, got %d", MaxFilterValues, len(f.Kinds))
	}
	if len(f.Providers) > MaxFilterValues {
		return nil, "", apperr.Invalid("filter.providers", "at most %d values, got %d", MaxFilterValues, len(f.Providers))
	}
	for i, id := range f.CreatorIDs {
		if err := identity.ValidateUUID(fmt.Sprintf("filter.creatorIds[%d]", i), id); err != nil {
			return nil, "", err
		}
	}
	for i, k := range f.Kinds {
		if !oneOf(k, Kinds) {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.kinds[%d]", i), "unknown value %q", k)
		}
	}
	for i, p := range f.Providers {
		if !oneOf(p, Providers) {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.providers[%d]", i), "unknown value %q", p)
		}
	}
	if len(f.Phases) > MaxFilterValues {
		return nil, "", apperr.Invalid("filter.phases", "at most %d values, got %d", MaxFilterValues, len(f.Phases))
	}
	for i, p := range f.Phases {
		if !oneOf(p, ListPhases) {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.phases[%d]", i), "unknown value %q", p)
		}
	}
	if n := utf8.RuneCountInString(f.NameContains); n > 127 {
		return nil, "", apperr.Invalid("filter.name", "at most 127 characters, got %d", n)
	}
	if len(f.DesiredPhases) > 2 {
		return nil, "", apperr.Invalid("filter.desiredPhases", "at most 2 values, got %d", len(f.DesiredPhases))
	}
	for i, p := range f.DesiredPhases {
		if p != PhaseActive && p != PhaseInactive {
			return nil, "", apperr.Invalid(fmt.Sprintf("filter.desiredPhases[%d]", i), "must be %s or %s, got %q", PhaseActive, PhaseInactive, p)
		}
	}
	find := s.Store.FindRunners
	if v, ok := s.Store.(Views); ok {
		find = v.ViewRunners
	}
	items, err := find(ctx, Filter{
		OrgID: c.OrgID, CreatorIDs: f.CreatorIDs, Kinds: f.Kinds, Providers: f.Providers,
		Phases: f.Phases, NameContains: f.NameContains, DesiredPhases: f.DesiredPhases,
		After: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list runners: %w", err)
	}
	items, next := paging.Trim(page, items, func(r *Runner) int64 { return r.Seq })
	return items, next, nil
}

// Update changes a runner's name, configuration or desired phase. It needs
// ScopeRunnersWrite and fails with CodeInvalid, CodeNotFound, CodeConflict and
// CodeFailedPrecondition (a runner being deleted or deleted).
func (s *Service) Update(ctx context.Context, id string, u Update) (*Runner, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersWrite)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("runnerId", id); err != nil {
		return nil, err
	}
	r, err := s.Store.UpdateRunner(ctx, c.OrgID, id, func(r *Runner) error {
		if r.Status.Phase == PhaseDeleting || r.Status.Phase == PhaseDeleted {
			return apperr.FailedPrecondition("runner %q is being deleted", id)
		}
		if err := u.apply(r); err != nil {
			return err
		}
		r.UpdatedAt = s.now()
		return nil
	})
	if apperr.Is(err, apperr.CodeConflict) && u.Name != nil {
		return nil, apperr.Conflict("a runner named %q already exists in this organization", *u.Name)
	}
	if err != nil {
		return nil, s.missing(ctx, c.OrgID, id, err)
	}
	s.changed(c.OrgID, id)
	return r, nil
}

// Delete deletes a runner. With force, or for a runner whose daemon never
// connected, it is deleted at once; otherwise it goes to DELETING until its
// daemon confirms. A deleted runner is a tombstone; deleting it again
// succeeds and changes nothing. It needs ScopeRunnersWrite and fails with
// CodeNotFound.
func (s *Service) Delete(ctx context.Context, id string, force bool) error {
	c, err := identity.Require(ctx, identity.ScopeRunnersWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("runnerId", id); err != nil {
		return err
	}
	r, err := s.Store.FindRunnerOrTombstone(ctx, c.OrgID, id)
	if err != nil {
		return notFound(id, err)
	}
	if r.Deleted() {
		return nil
	}
	now := s.now()
	if force || !r.Connected() {
		_, err := s.Store.DeleteRunner(ctx, c.OrgID, id, func(r *Runner) error {
			switch {
			case force:
				r.markDeleted(now, "forced, without waiting for its runner to stop its work")
			case !r.Connected():
				r.markDeleted(now, "its runner never connected")
			default:
				// Its daemon connected since the read above: it must stop
				// its work first, like any connected runner's.
				return errConnected
			}
			return nil
		})
		switch {
		case err == nil:
			s.changed(c.OrgID, id)
			s.deleted(c.OrgID, id)
			return nil
		case errors.Is(err, errConnected):
		default:
			return s.deletedMeanwhile(ctx, c.OrgID, id, err)
		}
	}
	_, err = s.Store.UpdateRunner(ctx, c.OrgID, id, func(r *Runner) error {
		r.Spec.DesiredPhase = PhaseDeleted
		r.Status.Phase = PhaseDeleting
		r.Status.Message = "deletion requested: waiting for the runner to stop its work"
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return s.deletedMeanwhile(ctx, c.OrgID, id, err)
	}
	s.changed(c.OrgID, id)
	return nil
}

// errConnected aborts an immediate deletion of a runner whose daemon
// connected meanwhile.
var errConnected = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "runner connected"}

// deletedMeanwhile is the outcome of a deletion whose change the store
// refused with err: success when the runner became a tombstone since it was
// read (its daemon confirmed, or another deletion won), err otherwise.
func (s *Service) deletedMeanwhile(ctx context.Context, orgID, id string, err error) error {
	if !apperr.Is(err, apperr.CodeNotFound) {
		return fmt.Errorf("delete runner %q: %w", id, err)
	}
	r, ferr := s.Store.FindRunnerOrTombstone(ctx, orgID, id)
	if ferr == nil && r.Deleted() {
		return nil
	}
	return notFound(id, err)
}

// PurgeDeleted removes the tombstones of runners deleted more than retention
// ago, in every organization, and returns how many it removed. The server
// calls it periodically; it needs no caller.
func (s *Service) PurgeDeleted(ctx context.Context, retention time.Duration) (int, error) {
	n, err := s.Store.PurgeDeletedRunners(ctx, s.now().Add(-retention))
	if err != nil {
		return 0, fmt.Errorf("purge runners deleted more than %s ago: %w", retention, err)
	}
	return n, nil
}

// CreateToken issues a new one-time exchange token for an existing runner;
// earlier tokens stay valid. It needs ScopeRunnersWrite and fails with
// CodeNotFound and CodeFailedPrecondition (a runner being deleted or
// deleted).
func (s *Service) CreateToken(ctx context.Context, id string) (string, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersWrite)
	if err != nil {
		return "", err
	}
	if err := identity.ValidateUUID("runnerId", id); err != nil {
		return "", err
	}
	r, err := s.Store.FindRunnerByID(ctx, c.OrgID, id)
	if err != nil {
		return "", s.missing(ctx, c.OrgID, id, err)
	}
	if r.Status.Phase == PhaseDeleting || r.Status.Phase == PhaseDeleted {
		return "", apperr.FailedPrecondition("runner %q is being deleted", id)
	}
	x, secret := identity.NewExchangeToken(c.OrgID, id, s.now())
	if err := s.Store.CreateExchangeToken(ctx, x); err != nil {
		// CodeNotFound: deleted since the read above.
		return "", s.missing(ctx, c.OrgID, id, err)
	}
	return secret, nil
}
