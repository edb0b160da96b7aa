// Package orgs manages the installation's organizations: create, read,
// list, rename and delete. Organizations isolate everything else; this
// package decides who may see and change them: the installation admin
// manages every organization, an organization's own callers see it and its
// admins rename it, and to anyone else another organization does not exist
// (CodeNotFound).
package orgs

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Contents counts what an organization still holds when it is to be
// deleted.
type Contents struct {
	// Runners counts runners that are not deleted (tombstones go with the
	// organization).
	Runners      int
	Environments int
}

// Store is the storage organizations need; internal/store implements it.
type Store interface {
	// CreateOrganization fails with CodeConflict on a duplicate name.
	CreateOrganization(ctx context.Context, org *identity.Organization) error
	// FindOrganizationByID fails with CodeNotFound.
	FindOrganizationByID(ctx context.Context, id string) (*identity.Organization, error)
	// FindOrganizations returns every organization by name.
	FindOrganizations(ctx context.Context) ([]*identity.Organization, error)
	// UpdateOrganization loads the organization in a transaction, lets fn
	// change it (an error from fn changes nothing) and writes it back. It
	// fails with CodeNotFound, CodeConflict on a duplicate name, or fn's
	// error.
	UpdateOrganization(ctx context.Context, id string, fn func(*identity.Organization) error) (*identity.Organization, error)
	// DeleteOrganization locks the organization, counts its contents, lets
	// check refuse, and otherwise deletes it with everything left in it
	// (API keys, runner tombstones, agent types, secrets), in one
	// transaction. It fails with CodeNotFound or check's error.
	DeleteOrganization(ctx context.Context, id string, check func(Contents) error) error
}

// Service manages organizations.
type Service struct {
	Store Store
	// Now is the clock, a field so tests can fix it.
	Now func() time.Time
	// Deleted, when set, is called after an organization was deleted, so
	// that what authenticates from memory forgets its keys.
	Deleted func(orgID string)
}

// NewService returns a Service on store with the real clock.
func NewService(store Store) *Service { return &Service{Store: store, Now: time.Now} }

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// ValidateName checks an organization's name: 1 to 100 characters after
// trimming, no control characters and no slash (the REST API puts the name
// in its paths).
func ValidateName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
		return "", apperr.Invalid(field, "must be 1 to 100 characters, got %d", n)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", apperr.Invalid(field, "must not contain control characters")
	}
	if strings.Contains(name, "/") {
		return "", apperr.Invalid(field, "must not contain '/'")
	}
	return name, nil
}

// Create creates an organization. Only the installation admin may; the new
// organization is empty: the installation admin gives it its first admin
// key (TokenService.CreateToken with its organizationId).
func (s *Service) Create(ctx context.Context, name string) (*identity.Organization, error) {
	if _, err := identity.RequireInstallationAdmin(ctx); err != nil {
		return nil, err
	}
	name, err := ValidateName("name", name)
	if err != nil {
		return nil, err
	}
	now := s.now()
	org := &identity.Organization{ID: uuid.NewString(), Name: name, CreatedAt: now, UpdatedAt: now}
	if err := s.Store.CreateOrganization(ctx, org); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return nil, apperr.Conflict("an organization named %q already exists", name)
		}
		return nil, fmt.Errorf("create organization %q: %w", name, err)
	}
	return org, nil
}

// Get returns an organization the caller may see: its own, or any for the
// installation admin. Any other is CodeNotFound, whether or not it exists;
// a logs token is CodePermissionDenied.
func (s *Service) Get(ctx context.Context, id string) (*identity.Organization, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.Logs != nil {
		// A logs token reads one environment's logs and nothing else.
		return nil, apperr.PermissionDenied("a logs token reads logs only")
	}
	if err := identity.ValidateUUID("organizationId", id); err != nil {
		return nil, err
	}
	return s.find(ctx, c, id)
}

func (s *Service) find(ctx context.Context, c *identity.Caller, id string) (*identity.Organization, error) {
	if c.OrgID != id && !c.InstallationAdmin {
		return nil, apperr.NotFound("organization %s not found", id)
	}
	org, err := s.Store.FindOrganizationByID(ctx, id)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.NotFound("organization %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find organization %s: %w", id, err)
	}
	return org, nil
}

// mayChange decides, before the request is looked at, whether c may change
// organization id: the installation admin goes on; for anyone else another
// organization (or no valid id at all) is CodeNotFound, as for an id that
// does not exist, and their own needs what allow says, so a caller who may
// not change it learns nothing about what it sent.
func (s *Service) mayChange(ctx context.Context, c *identity.Caller, id string, allow func() error) error {
	switch {
	case c.InstallationAdmin:
		return nil
	case id != c.OrgID:
		return apperr.NotFound("organization %s not found", id)
	}
	return allow()
}

// List returns every organization, by name. Only the installation admin may.
func (s *Service) List(ctx context.Context) ([]*identity.Organization, error) {
	if _, err := identity.RequireInstallationAdmin(ctx); err != nil {
		return nil, err
	}
	items, err := s.Store.FindOrganizations(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return items, nil
}

// Rename renames an organization: the installation admin any, an admin of
// the organization (ScopeAdmin) its own. CodeConflict on a taken name.
func (s *Service) Rename(ctx context.Context, id, name string) (*identity.Organization, error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.mayChange(ctx, c, id, func() error {
		_, err := identity.Require(ctx, identity.ScopeAdmin)
		return err
	}); err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("organizationId", id); err != nil {
		return nil, err
	}
	name, err = ValidateName("name", name)
	if err != nil {
		return nil, err
	}
	if _, err := s.find(ctx, c, id); err != nil {
		return nil, err
	}
	now := s.now()
	org, err := s.Store.UpdateOrganization(ctx, id, func(o *identity.Organization) error {
		if o.Name != name {
			o.Name = name
			o.UpdatedAt = now
		}
		return nil
	})
	switch {
	case apperr.Is(err, apperr.CodeConflict):
		return nil, apperr.Conflict("an organization named %q already exists", name)
	case apperr.Is(err, apperr.CodeNotFound):
		return nil, apperr.NotFound("organization %s not found", id)
	case err != nil:
		return nil, fmt.Errorf("rename organization %s: %w", id, err)
	}
	return org, nil
}

// Delete deletes an organization. Only the installation admin may, and not
// the installation's own organization (it holds the bootstrap admin key).
// An organization that still has runners or environments is refused with
// CodeFailedPrecondition saying how many: their work would be cut off
// silently otherwise.
func (s *Service) Delete(ctx context.Context, id string) error {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return err
	}
	if err := s.mayChange(ctx, c, id, func() error {
		_, err := identity.RequireInstallationAdmin(ctx)
		return err
	}); err != nil {
		return err
	}
	if err := identity.ValidateUUID("organizationId", id); err != nil {
		return err
	}
	org, err := s.find(ctx, c, id)
	if err != nil {
		return err
	}
	if id == c.OrgID {
		return apperr.FailedPrecondition("organization %q is the installation's own: it holds the installation admin's key and cannot be deleted", org.Name)
	}
	err = s.Store.DeleteOrganization(ctx, id, func(n Contents) error {
		if n.Runners == 0 && n.Environments == 0 {
			return nil
		}
		return apperr.FailedPrecondition("organization %q still has %s and %s: delete them first",
			org.Name, plural(n.Runners, "runner"), plural(n.Environments, "environment"))
	})
	switch {
	case apperr.Is(err, apperr.CodeNotFound):
		return apperr.NotFound("organization %s not found", id)
	case apperr.Is(err, apperr.CodeFailedPrecondition):
		return err
	case err != nil:
		return fmt.Errorf("delete organization %s: %w", id, err)
	}
	if s.Deleted != nil {
		s.Deleted(id)
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
