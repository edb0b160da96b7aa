package secrets

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// Service creates, lists, updates and deletes secrets for API callers, and
// hands their values, sealed, to the control plane's runner protocol.
type Service struct {
	Store Store
	// Key encrypts values at rest.
	Key *Key
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Changed, when set, is called after a secret of orgID was created,
	// changed or deleted, so that connected runners get their desired state
	// again at once: a file mount must follow its secret while the
	// environment runs, not only when a command next starts.
	Changed func(orgID string)
}

func (s *Service) changed(orgID string) {
	if s.Changed != nil {
		s.Changed(orgID)
	}
}

// NewService returns a Service on store with key and the real clock.
func NewService(store Store, key *Key) *Service {
	return &Service{Store: store, Key: key, Now: time.Now}
}

// now is the clock at the storage's precision, so what Create returns equals
// what a later List reads.
func (s *Service) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func notFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("secret %q not found", id)
	}
	return fmt.Errorf("secret %q: %w", id, err)
}

// CreateInput is what CreateSecret takes.
type CreateInput struct {
	Name  string
	Value Value
	// EnvironmentVariable and FilePath are the mount; at most one is set.
	EnvironmentVariable bool
	FilePath            string
	// ContainerRegistryBasicAuthHost is the registry mount (host[:port]).
	ContainerRegistryBasicAuthHost string
	// ProjectID is the vendor's deprecated project_id; runyard has no
	// projects and refuses it when set.
	ProjectID string
	// Scope nil means the caller's organization.
	Scope *Scope
}

// Create stores a new secret with its value encrypted. It needs
// ScopeSecretsWrite and fails with CodeInvalid (naming the field),
// CodeNotFound (a scope naming another organization) and CodeConflict (the
// scope has a secret of that name).
func (s *Service) Create(ctx context.Context, in CreateInput) (*Secret, error) {
	c, err := identity.Require(ctx, identity.ScopeSecretsWrite)
	if err != nil {
		return nil, err
	}
	if in.ProjectID != "" {
		return nil, apperr.Invalid("projectId", "runyard has no projects: use scope.organizationId, scope.userId or scope.serviceAccountId")
	}
	scope := Scope{Kind: ScopeOrganization, ID: c.OrgID}
	if in.Scope != nil {
		if err := validateScope("scope", c.OrgID, *in.Scope); err != nil {
			return nil, err
		}
		scope = *in.Scope
	}
	if err := validateName(in.Name, in.EnvironmentVariable); err != nil {
		return nil, err
	}
	if in.FilePath != "" {
		if in.EnvironmentVariable {
			return nil, apperr.Invalid("filePath", "cannot be combined with environmentVariable: a secret has one mount")
		}
		if err := validateFilePath(in.FilePath); err != nil {
			return nil, err
		}
	}
	if h := in.ContainerRegistryBasicAuthHost; h != "" {
		if in.EnvironmentVariable || in.FilePath != "" {
			return nil, apperr.Invalid("containerRegistryBasicAuthHost", "cannot be combined with environmentVariable or filePath: a secret has one mount")
		}
		if err := validateRegistryHost(h); err != nil {
			return nil, err
		}
	}
	if err := validateValue(in.Value, in.EnvironmentVariable); err != nil {
		return nil, err
	}
	if in.FilePath != "" {
		if err := s.checkPathFree(ctx, c.OrgID, scope, in.FilePath); err != nil {
			return nil, err
		}
	}
	now := s.now()
	sec := &Secret{
		ID:                             uuid.NewString(),
		OrgID:                          c.OrgID,
		Name:                           in.Name,
		Scope:                          scope,
		EnvironmentVariable:            in.EnvironmentVariable,
		FilePath:                       in.FilePath,
		ContainerRegistryBasicAuthHost: in.ContainerRegistryBasicAuthHost,
		Creator:                        c.Subject,
		CreatedAt:                      now,
		UpdatedAt:                      now,
	}
	if sec.Value, err = s.Key.encrypt(sec.OrgID, sec.ID, []byte(in.Value)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateSecret(ctx, sec); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return nil, apperr.Conflict("a secret named %q already exists in this scope", in.Name)
		}
		return nil, fmt.Errorf("create secret: %w", err)
	}
	s.changed(c.OrgID)
	return sec, nil
}

// checkPathFree refuses a second file mount of one path in one scope. Two
// creations racing past it both succeed; FilesFor then lets the newer win.
func (s *Service) checkPathFree(ctx context.Context, orgID string, scope Scope, path string) error {
	found, err := s.Store.FindSecrets(ctx, Filter{OrgID: orgID, Scopes: []Scope{scope}})
	if err != nil {
		return fmt.Errorf("create secret: %w", err)
	}
	for _, sec := range found {
		if sec.FilePath == path {
			return apperr.Conflict("secret %q already mounts the file %q in this scope", sec.Name, path)
		}
	}
	return nil
}

// List returns one page of the caller's organization's secrets, oldest
// first, and the token of the next page. scope nil lists every scope. It
// needs ScopeSecretsRead and fails with CodeInvalid and CodeNotFound (a
// scope naming another organization).
func (s *Service) List(ctx context.Context, scope *Scope, page paging.Page) ([]*Secret, string, error) {
	c, err := identity.Require(ctx, identity.ScopeSecretsRead)
	if err != nil {
		return nil, "", err
	}
	f := Filter{OrgID: c.OrgID, After: page.After, Limit: page.Limit + 1}
	if scope != nil {
		if err := validateScope("filter.scope", c.OrgID, *scope); err != nil {
			return nil, "", err
		}
		f.Scopes = []Scope{*scope}
	}
	items, err := s.Store.FindSecrets(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list secrets: %w", err)
	}
	items, next := paging.Trim(page, items, func(sec *Secret) int64 { return sec.Seq })
	return items, next, nil
}

// UpdateValue replaces a secret's value. It needs ScopeSecretsWrite and
// fails with CodeInvalid and CodeNotFound.
func (s *Service) UpdateValue(ctx context.Context, id string, value Value) error {
	c, err := identity.Require(ctx, identity.ScopeSecretsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("secretId", id); err != nil {
		return err
	}
	_, err = s.Store.UpdateSecret(ctx, c.OrgID, id, func(sec *Secret) error {
		// The rules depend on the mount, which only the stored secret knows.
		if err := validateValue(value, sec.EnvironmentVariable); err != nil {
			return err
		}
		v, err := s.Key.encrypt(sec.OrgID, sec.ID, []byte(value))
		if err != nil {
			return err
		}
		sec.Value, sec.UpdatedAt = v, s.now()
		return nil
	})
	if err != nil {
		if apperr.Is(err, apperr.CodeInvalid) {
			return err
		}
		return notFound(id, err)
	}
	s.changed(c.OrgID)
	return nil
}

// Delete removes a secret. Automations that still reference it fail with a
// message naming it when they next start. It needs ScopeSecretsWrite and
// fails with CodeInvalid and CodeNotFound.
func (s *Service) Delete(ctx context.Context, id string) error {
	c, err := identity.Require(ctx, identity.ScopeSecretsWrite)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("secretId", id); err != nil {
		return err
	}
	if err := s.Store.DeleteSecret(ctx, c.OrgID, id); err != nil {
		return notFound(id, err)
	}
	s.changed(c.OrgID)
	return nil
}

// The methods below are for the control plane itself, which calls them when
// it builds a runner's desired state. They check no caller: the runner
// protocol has authenticated the runner, and orgID must be that runner's
// organization. No API may expose them.

// SealedForRunner returns the values of the secrets ids of orgID, each
// decrypted and sealed to runnerPublicKey (see Seal), by secret ID. An ID
// that names no secret of orgID (deleted, another organization's, not a
// UUID) is absent from the map, so that the caller can fail only what
// referenced it. It fails with CodeFailedPrecondition when the runner has
// not reported a 32-byte public key yet; other errors are internal.
func (s *Service) SealedForRunner(ctx context.Context, orgID string, runnerPublicKey []byte, ids []string) (map[string][]byte, error) {
	if len(runnerPublicKey) != PublicKeySize {
		return nil, apperr.FailedPrecondition("the runner has not reported its %d-byte public key yet (got %d bytes)", PublicKeySize, len(runnerPublicKey))
	}
	var want []string
	for _, id := range ids {
		if uuid.Validate(id) == nil && !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	out := make(map[string][]byte, len(want))
	if len(want) == 0 {
		return out, nil
	}
	found, err := s.Store.FindSecrets(ctx, Filter{OrgID: orgID, IDs: want})
	if err != nil {
		return nil, fmt.Errorf("find secrets to seal: %w", err)
	}
	for _, sec := range found {
		value, err := s.Key.decrypt(sec)
		if err != nil {
			return nil, apperr.Internal(err, "decrypt secret %q", sec.ID)
		}
		sealed, err := Seal(value, runnerPublicKey)
		clear(value)
		if err != nil {
			return nil, apperr.Internal(err, "seal secret %q", sec.ID)
		}
		out[sec.ID] = sealed
	}
	return out, nil
}

// EnvVar is a secret an environment receives as a variable.
type EnvVar struct {
	// Name is the variable's name: the secret's name.
	Name     string
	SecretID string
}

// File is a secret an environment receives as a file.
type File struct {
	// Path is the absolute path of the file inside the environment.
	Path     string
	SecretID string
}

// EnvVarsFor returns the environment variables of an environment of orgID
// created by owner (the environment's creator): the organization's
// environmentVariable secrets and owner's own, where owner's override the
// organization's of the same name. They are sorted by name. Pass the IDs to
// SealedForRunner for the values.
func (s *Service) EnvVarsFor(ctx context.Context, orgID string, owner identity.Subject) ([]EnvVar, error) {
	mounted, err := s.mountedFor(ctx, orgID, owner, func(sec *Secret) string {
		if sec.EnvironmentVariable {
			return sec.Name
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("environment variables: %w", err)
	}
	out := make([]EnvVar, len(mounted))
	for i, m := range mounted {
		out[i] = EnvVar{Name: m.key, SecretID: m.id}
	}
	return out, nil
}

// FilesFor is EnvVarsFor for the secrets with a file mount, by path.
func (s *Service) FilesFor(ctx context.Context, orgID string, owner identity.Subject) ([]File, error) {
	mounted, err := s.mountedFor(ctx, orgID, owner, func(sec *Secret) string { return sec.FilePath })
	if err != nil {
		return nil, fmt.Errorf("secret files: %w", err)
	}
	out := make([]File, len(mounted))
	for i, m := range mounted {
		out[i] = File{Path: m.key, SecretID: m.id}
	}
	return out, nil
}

type mounted struct{ key, id string }

// mountedFor returns, by key, the secrets of orgID and owner for which key
// returns a non-empty key (a variable name, a path): owner's win over the
// organization's, and within one scope the newest wins.
func (s *Service) mountedFor(ctx context.Context, orgID string, owner identity.Subject, key func(*Secret) string) ([]mounted, error) {
	scopes := []Scope{{Kind: ScopeOrganization, ID: orgID}}
	var own Scope
	switch owner.Principal {
	case identity.PrincipalUser:
		own = Scope{Kind: ScopeUser, ID: owner.ID}
	case identity.PrincipalServiceAccount:
		own = Scope{Kind: ScopeServiceAccount, ID: owner.ID}
	}
	if own.Kind != "" && owner.ID != "" {
		scopes = append(scopes, own)
	}
	found, err := s.Store.FindSecrets(ctx, Filter{OrgID: orgID, Scopes: scopes})
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Secret{}
	for _, sec := range found {
		k := key(sec)
		if k == "" {
			continue
		}
		if prev, ok := byKey[k]; ok && prev.Scope.Kind != ScopeOrganization {
			continue
		}
		byKey[k] = sec
	}
	out := make([]mounted, 0, len(byKey))
	for k, sec := range byKey {
		out = append(out, mounted{key: k, id: sec.ID})
	}
	slices.SortFunc(out, func(a, b mounted) int { return cmp.Compare(a.key, b.key) })
	return out, nil
}
