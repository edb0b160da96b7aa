// Package secrets holds secrets: named values that environments receive as
// environment variables or files, and that automations reference by ID
// (spec.env[].valueFrom.secretRef.id).
//
// A value goes in through the API and never comes out of it. The control
// plane keeps it encrypted at rest (AES-256-GCM with its own key, key.go) and
// decrypts it only to seal it to one runner's X25519 public key (seal.go)
// when it builds that runner's desired state, so neither the database, the
// API, the runner protocol nor a log ever holds a plaintext value.
//
// Scopes follow the gitpod.v1 SecretScope: a secret belongs to its
// organization, or to one user or service account in it. runyard has no
// projects, so the project scope is refused. An environment receives the
// secrets of its organization and those of its creator; a creator's secret
// overrides an organization secret of the same name.
package secrets

import (
	"context"
	"log/slog"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// ScopeKind says what a secret belongs to.
type ScopeKind string

const (
	ScopeOrganization   ScopeKind = "organization"
	ScopeUser           ScopeKind = "user"
	ScopeServiceAccount ScopeKind = "service_account"
	// ScopeProject exists only so that validation can name the field a
	// client set: runyard has no projects, and refuses this scope.
	ScopeProject ScopeKind = "project"
)

// Scope is who a secret belongs to: the organization (ID is the
// organization's ID) or one subject in it (ID is the subject's ID).
type Scope struct {
	Kind ScopeKind
	ID   string
}

// Secret is a named, encrypted value. It never holds the plaintext.
type Secret struct {
	ID string
	// Seq is the list order.
	Seq   int64
	OrgID string
	Name  string
	Scope Scope
	// EnvironmentVariable makes the secret an environment variable named
	// Name in the environments that receive it.
	EnvironmentVariable bool
	// FilePath, when set, is the absolute path of the file the secret is
	// written to instead, inside the environment: a runner roots it at the
	// environment's workspace (runyard.runner.v1.SecretFile). At most one of
	// the two mounts is set; with neither the secret is only reachable
	// through a secretRef.
	FilePath string
	// ContainerRegistryBasicAuthHost, when set, is the third mount: the
	// value is the basic-auth credentials (user:password) of that container
	// registry host. runyard records it; runners do not write a docker
	// config from it yet.
	ContainerRegistryBasicAuthHost string
	Creator                        identity.Subject
	CreatedAt                      time.Time
	UpdatedAt                      time.Time
	// Value is the encrypted value.
	Value Ciphertext
}

// Ciphertext is a value encrypted with a control-plane key: what the store
// keeps instead of the value.
type Ciphertext struct {
	// KeyID names the key that encrypted Data, so that a changed key is
	// reported as such instead of as corrupt data.
	KeyID string
	// Nonce is the AES-GCM nonce, random per encryption.
	Nonce []byte
	// Data is the encrypted value followed by the GCM tag.
	Data []byte
}

// Value is a secret's plaintext on its way in. It formats as [redacted], so
// that logging an input or an error built from one cannot leak it.
type Value string

const redacted = "[redacted]"

func (Value) String() string               { return redacted }
func (Value) GoString() string             { return redacted }
func (Value) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Filter selects secrets for Store.FindSecrets.
type Filter struct {
	OrgID string
	// Scopes keeps secrets in any of these scopes; empty means all.
	Scopes []Scope
	// IDs keeps only these secrets; empty means all.
	IDs []string
	// After and Limit select a page by ascending Seq: only secrets with a
	// Seq above After. Limit zero means no limit.
	After int64
	Limit int
}

// Store is the storage secrets need. Implementations live in internal/store.
type Store interface {
	// CreateSecret stores s and assigns s.Seq. It fails with CodeConflict
	// when s's scope already has a secret named s.Name.
	CreateSecret(ctx context.Context, s *Secret) error
	// FindSecretByID fails with CodeNotFound, also for another
	// organization's secret.
	FindSecretByID(ctx context.Context, orgID, id string) (*Secret, error)
	// FindSecrets returns the secrets matching f by ascending Seq.
	FindSecrets(ctx context.Context, f Filter) ([]*Secret, error)
	// UpdateSecret loads a secret, applies fn and stores its value and
	// UpdatedAt in one transaction; an error from fn changes nothing. It
	// fails with CodeNotFound.
	UpdateSecret(ctx context.Context, orgID, id string, fn func(*Secret) error) (*Secret, error)
	// DeleteSecret fails with CodeNotFound.
	DeleteSecret(ctx context.Context, orgID, id string) error
}
