// Package identity holds organizations, principals, scopes and tokens: who is
// calling, on behalf of which organization, and what they may do. Every domain
// service asks this package for the caller before it touches anything.
package identity

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// Principal names the kind of subject, with the values of the gitpod.v1 API.
type Principal string

const (
	PrincipalUser           Principal = "PRINCIPAL_USER"
	PrincipalServiceAccount Principal = "PRINCIPAL_SERVICE_ACCOUNT"
	PrincipalRunner         Principal = "PRINCIPAL_RUNNER"
	PrincipalEnvironment    Principal = "PRINCIPAL_ENVIRONMENT"
)

// Subject identifies who did something, e.g. the creator of a runner.
type Subject struct {
	ID        string
	Principal Principal
}

// Scope is a permission an API key carries.
type Scope string

const (
	// ScopeAdmin grants every other scope and token management.
	ScopeAdmin             Scope = "admin"
	ScopeRunnersRead       Scope = "runners:read"
	ScopeRunnersWrite      Scope = "runners:write"
	ScopeEnvironmentsRead  Scope = "environments:read"
	ScopeEnvironmentsWrite Scope = "environments:write"
	ScopePodsRead          Scope = "pods:read"
	ScopePodsWrite         Scope = "pods:write"
	ScopeSecretsRead       Scope = "secrets:read"
	ScopeSecretsWrite      Scope = "secrets:write"
	// ScopeAuditRead reads the audit log (ListAuditLogs, runyard audit list).
	ScopeAuditRead Scope = "audit:read"
)

// KnownScopes lists the scopes an API key may carry.
var KnownScopes = []Scope{
	ScopeAdmin,
	ScopeRunnersRead, ScopeRunnersWrite,
	ScopeEnvironmentsRead, ScopeEnvironmentsWrite,
	ScopePodsRead, ScopePodsWrite,
	ScopeSecretsRead, ScopeSecretsWrite,
	ScopeAuditRead,
}

// ParseScopes validates scope names; field names the request field for errors.
func ParseScopes(field string, names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, apperr.Invalid(field, "at least one scope is required (known: %s)", knownScopeList())
	}
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		s := Scope(strings.TrimSpace(n))
		if !slices.Contains(KnownScopes, s) {
			return nil, apperr.Invalid(field, "unknown scope %q (known: %s)", n, knownScopeList())
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

func knownScopeList() string {
	names := make([]string, len(KnownScopes))
	for i, s := range KnownScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Organization isolates everything: no caller sees another organization's
// objects.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultOrganization is the organization the first start creates.
const DefaultOrganization = "default"

// Token is a bearer credential: an API key (PrincipalServiceAccount) or a
// runner access token (PrincipalRunner). Only the SHA-256 hash of its secret
// is stored.
type Token struct {
	ID        string
	Seq       int64
	OrgID     string
	Name      string
	Principal Principal
	Scopes    []Scope
	// RunnerID is set for runner access tokens.
	RunnerID string
	Creator  Subject
	Hash     string
	// Bootstrap marks the admin key created at first start, so a restart finds
	// it instead of creating a second one.
	Bootstrap bool
	// OwnerUserID is the user an API key belongs to (PrincipalUser); empty
	// for a service account's key and a runner's token.
	OwnerUserID string
	// Owner is the owner's current state, filled by FindTokenByHash for a
	// user's key: what authentication checks on every use.
	Owner     *TokenOwner
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// TokenOwner is the state of a key's owner that decides what the key may
// do now.
type TokenOwner struct {
	// Disabled is set while the user is disabled.
	Disabled bool
	// Role is the owner's role in the key's organization; empty when the
	// owner is no longer a member.
	Role Role
	// InstallationAdmin is the owner's installation-admin flag.
	InstallationAdmin bool
}

// Active reports whether the token may authenticate at now.
func (t *Token) Active(now time.Time) bool {
	if t.RevokedAt != nil {
		return false
	}
	return t.ExpiresAt == nil || now.Before(*t.ExpiresAt)
}

// ExchangeToken is a one-time credential that a runner daemon trades for its
// access token.
type ExchangeToken struct {
	Hash      string
	OrgID     string
	RunnerID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	// RedeemedKey is the public key (base64) of the daemon that redeemed
	// the token, and AccessTokenID the access token it got; both empty
	// before the first redemption.
	RedeemedKey   string
	AccessTokenID string
}

// ExchangeTokenTTL is how long an exchange token stays valid.
const ExchangeTokenTTL = 24 * time.Hour

// PublicKeyHeader carries a daemon's public key (base64) on ExchangeToken.
const PublicKeyHeader = "Runyard-Public-Key"

// ExchangeRetryWindow is how long after its redemption an exchange token may
// be redeemed again by the same key pair: a daemon whose exchange was
// interrupted (the control plane crashed after the commit, before the
// answer arrived) can then start again with the same token.
const ExchangeRetryWindow = time.Minute

// Caller is the authenticated identity of one request.
type Caller struct {
	OrgID   string
	Subject Subject
	TokenID string
	Scopes  []Scope
	// RunnerID is set when the caller is a runner daemon.
	RunnerID string
	// Logs is set when the caller presents a logs token: it may read that
	// environment's logs and nothing else (it holds no scopes).
	Logs *LogsGrant
	// InstallationAdmin is set for the installation's admin, who manages
	// organizations: today the holder of the bootstrap admin key (the key
	// RUNYARD_BOOTSTRAP_TOKEN restores), which is why it cannot be lost.
	InstallationAdmin bool
	// UserID is set when a person calls: through a browser session or an
	// API key a user owns. Subject is then that user (PrincipalUser).
	UserID string
	// Role is the user's role in OrgID; Scopes never exceed it.
	Role Role
	// SessionID is set when the credential is a browser session cookie,
	// which is also when writes must carry the session's CSRF token.
	SessionID string
}

// Has reports whether the caller holds scope. Runner tokens hold no user
// scopes: a runner acts only through the methods meant for runners.
func (c *Caller) Has(scope Scope) bool {
	if c.Subject.Principal == PrincipalRunner {
		return false
	}
	return slices.Contains(c.Scopes, ScopeAdmin) || slices.Contains(c.Scopes, scope)
}

type callerKey struct{}

// NewContext returns ctx carrying the caller.
func NewContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller of ctx, if any.
func FromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// Require returns the caller if it holds scope. It fails with
// CodeUnauthenticated without a caller and CodePermissionDenied without the
// scope.
func Require(ctx context.Context, scope Scope) (*Caller, error) {
	c, ok := FromContext(ctx)
	if !ok {
		return nil, apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
	}
	if !c.Has(scope) {
		if c.Subject.Principal == PrincipalRunner {
			return nil, apperr.PermissionDenied("runner tokens cannot call this method")
		}
		return nil, apperr.PermissionDenied("token lacks scope %q", scope)
	}
	return c, nil
}

// RequireInstallationAdmin returns the caller if it is the installation's
// admin. It fails with CodeUnauthenticated without a caller and
// CodePermissionDenied for anyone else.
func RequireInstallationAdmin(ctx context.Context) (*Caller, error) {
	c, ok := FromContext(ctx)
	if !ok {
		return nil, apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
	}
	if !c.InstallationAdmin {
		return nil, apperr.PermissionDenied("only the installation admin (the bootstrap admin key) can manage organizations")
	}
	return c, nil
}

// RequireAuthenticated returns any authenticated caller.
func RequireAuthenticated(ctx context.Context) (*Caller, error) {
	c, ok := FromContext(ctx)
	if !ok {
		return nil, apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
	}
	return c, nil
}

// RequireRunner returns the caller if it is a runner daemon.
func RequireRunner(ctx context.Context) (*Caller, error) {
	c, ok := FromContext(ctx)
	if !ok {
		return nil, apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
	}
	if c.Subject.Principal != PrincipalRunner || c.RunnerID == "" {
		return nil, apperr.PermissionDenied("only runner tokens can call this method")
	}
	return c, nil
}
