package identity

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/paging"
)

// Store is the storage identity needs. Implementations live in
// internal/store; they return *apperr.Error with CodeNotFound and
// CodeConflict where noted.
type Store interface {
	// CreateOrganization fails with CodeConflict on a duplicate name.
	CreateOrganization(ctx context.Context, org *Organization) error
	// FindOrganizationByName fails with CodeNotFound.
	FindOrganizationByName(ctx context.Context, name string) (*Organization, error)
	// FindOrganizationByID fails with CodeNotFound.
	FindOrganizationByID(ctx context.Context, id string) (*Organization, error)

	// CreateToken fails with CodeConflict on a duplicate hash or a second
	// bootstrap token in an organization.
	CreateToken(ctx context.Context, t *Token) error
	// FindTokenByHash fails with CodeNotFound.
	FindTokenByHash(ctx context.Context, hash string) (*Token, error)
	// FindBootstrapToken fails with CodeNotFound.
	FindBootstrapToken(ctx context.Context, orgID string) (*Token, error)
	// FindTokens returns tokens of filter.OrgID by ascending Seq.
	FindTokens(ctx context.Context, filter TokenFilter) ([]*Token, error)
	// RevokeToken sets RevokedAt unless already set and returns the token.
	// Before it revokes an unrevoked token it calls check, when not nil,
	// in the same transaction, and changes nothing if check fails. It fails
	// with CodeNotFound, or check's error.
	RevokeToken(ctx context.Context, orgID, id string, at time.Time, check RevokeCheck) (*Token, error)
	// SetTokenHash replaces a token's secret and makes it active again (not
	// revoked, no expiry). It fails with CodeNotFound.
	SetTokenHash(ctx context.Context, orgID, id, hash string) error

	// RedeemExchangeToken finds the exchange token with hash, lets issue
	// refuse it (used, expired), marks it used (keeping the first use's
	// time), records the RedeemedKey issue set and the access token issue
	// returns, stores that token and revokes every other active token of
	// the runner, all in one transaction; it returns the revoked tokens. It
	// fails with CodeNotFound for an unknown hash and CodeUnauthenticated
	// when a concurrent redemption won.
	RedeemExchangeToken(ctx context.Context, hash string, at time.Time, issue func(*ExchangeToken) (*Token, error)) ([]*Token, error)
}

// RevokeCheck decides whether token t may be revoked, given the
// organization's unrevoked API keys (t among them when it is one); an error
// refuses the revocation. Stores call it with those keys locked, so that
// concurrent revocations see each other.
type RevokeCheck func(t *Token, apiKeys []*Token) error

// TokenFilter selects tokens for FindTokens.
type TokenFilter struct {
	// OrgID selects an organization's tokens; with OwnerUserID set it may
	// be empty, selecting the user's keys in every organization.
	OrgID string
	// OwnerUserID, when set, selects the keys that user owns.
	OwnerUserID string
	// ID, when set, selects the token with that ID alone.
	ID             string
	IncludeRevoked bool
	// After and Limit select a page by Seq; Limit zero means no limit.
	After int64
	Limit int
}

// Service authenticates callers and manages tokens.
type Service struct {
	Store Store
	// Now is the clock, a field so expiry is testable.
	Now func() time.Time
	// Revoked, when set, is called after a token was revoked, so that
	// long-lived streams opened with it end at once.
	Revoked func(orgID, tokenID string)
	// Keys signs ID tokens and logs tokens; without it those fail.
	Keys ServerKeys
	// Issuer returns the control plane's public URL, the iss of ID tokens.
	Issuer func() string

	// ChangesReach, when set, reports whether every change to a key made
	// anywhere reaches KeyChanged in this process now (with several
	// replicas: whether it listens for their change notices). While it
	// does not, a cached key is trusted for a few seconds only.
	ChangesReach func() bool

	keys keyCache
	// serverKeys caches Keys' answers by name.
	serverKeys sync.Map
}

// NewService returns a Service on store with the real clock.
func NewService(store Store) *Service {
	return &Service{Store: store, Now: time.Now}
}

// now is the clock at the storage's precision, so what a method returns
// equals what a later read returns.
func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Authenticate resolves a bearer secret to its caller. It fails with
// CodeUnauthenticated for unknown, revoked or expired secrets.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Caller, error) {
	if secret == "" {
		return nil, apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
	}
	if strings.HasPrefix(secret, LogsTokenPrefix) {
		return s.authenticateLogsToken(ctx, secret)
	}
	hash := HashSecret(secret)
	now := s.Now()
	if c := s.keys.get(hash, now, s.keyTTL()); c != nil {
		// Callers are shared by the requests of a key: each gets its own
		// copy to keep.
		cp := *c
		return &cp, nil
	}
	gen := s.keys.generation()
	t, err := s.Store.FindTokenByHash(ctx, hash)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.Unauthenticated("invalid token")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if t.RevokedAt != nil {
		return nil, apperr.Unauthenticated("token has been revoked")
	}
	if !t.Active(now) {
		return nil, apperr.Unauthenticated("token has expired")
	}
	if t.OwnerUserID != "" {
		// A user's key is checked against its owner when it is read. It is
		// cached like any key: disabling the owner, removing their
		// membership or changing their role calls KeyChanged for each of
		// their keys on every replica (see keyCache).
		switch o := t.Owner; {
		case o == nil:
			return nil, apperr.Unauthenticated("the key's owner no longer exists")
		case o.Disabled:
			return nil, apperr.Unauthenticated("the key's owner is disabled")
		case o.Role == "" && !o.InstallationAdmin:
			return nil, apperr.Unauthenticated("the key's owner is no longer a member of its organization")
		}
	}
	c := callerOf(t)
	cp := *c
	s.keys.put(t, c, now, gen)
	return &cp, nil
}

// keyTTL is how long a cached key is trusted now: see keyCache.
func (s *Service) keyTTL() time.Duration {
	if s.ChangesReach != nil && !s.ChangesReach() {
		return keyCacheUnsureTTL
	}
	return keyCacheTTL
}

// KeyChanged forgets what this process holds in memory of the key with ID
// tokenID, so that its next use reads it, and its owner, from the store.
// Whatever revokes or narrows a key calls it, on every replica (Revoked and
// the users service's TokenRevoked reach it through the change notices).
func (s *Service) KeyChanged(tokenID string) { s.keys.dropID(tokenID) }

// OrganizationKeysChanged forgets what this process holds in memory of the
// keys of organization orgID: another replica deleted the organization (with
// its keys), or changed something of it that may concern them.
func (s *Service) OrganizationKeysChanged(orgID string) { s.keys.dropOrg(orgID) }

// ForgetKeys forgets every key this process holds in memory: changes to
// keys may have been missed (a replica that stopped listening for them).
func (s *Service) ForgetKeys() { s.keys.clear() }

func callerOf(t *Token) *Caller {
	c := &Caller{OrgID: t.OrgID, TokenID: t.ID, Scopes: t.Scopes, RunnerID: t.RunnerID,
		InstallationAdmin: t.Bootstrap && t.Principal == PrincipalServiceAccount}
	switch {
	case t.OwnerUserID != "" && t.Owner != nil:
		// A user's key acts as the user: the user is the subject (the
		// creator of what the key creates), and the key's scopes are cut
		// to what the owner's role grants now. An installation admin
		// outside the organization acts there as its admin.
		role := t.Owner.Role
		if role == "" && t.Owner.InstallationAdmin {
			role = RoleAdmin
		}
		c.UserID, c.Role, c.InstallationAdmin = t.OwnerUserID, role, t.Owner.InstallationAdmin
		c.Subject = Subject{ID: t.OwnerUserID, Principal: PrincipalUser}
		c.Scopes = nil
		for _, sc := range t.Scopes {
			if role.Has(sc) {
				c.Scopes = append(c.Scopes, sc)
			}
		}
	case t.Principal == PrincipalRunner:
		c.Subject = Subject{ID: t.RunnerID, Principal: PrincipalRunner}
	default:
		// An API key is its own service account: its ID is the subject that
		// creates runners and shows up as their creator.
		c.Subject = Subject{ID: t.ID, Principal: t.Principal}
	}
	return c
}

// RequireOrganization returns the caller if name is the name of its
// organization, for APIs that put the organization in the URL. Any other name
// is CodeNotFound, whether or not it exists, so no caller learns which other
// organizations there are.
func (s *Service) RequireOrganization(ctx context.Context, name string) (*Caller, error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	org, err := s.Store.FindOrganizationByName(ctx, name)
	switch {
	case apperr.Is(err, apperr.CodeNotFound) || (err == nil && org.ID != c.OrgID):
		return nil, apperr.NotFound("organization %q not found", name)
	case err != nil:
		return nil, fmt.Errorf("find organization %q: %w", name, err)
	}
	return c, nil
}

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	Org *Organization
	// Created is true when this call created the admin key.
	Created bool
	// Rotated is true when an existing admin key took the value of the
	// bootstrap token.
	Rotated bool
	// Restored is true when the admin key had been revoked and this call,
	// with a value, made it work again.
	Restored bool
	// Revoked is true when the admin key is revoked and stays so: no value
	// was given to restore it with.
	Revoked bool
	// Secret is the generated admin key; empty unless Created and no value was
	// supplied.
	Secret string
}

// MinBootstrapTokenLength keeps a supplied admin key from being trivially
// guessable.
const MinBootstrapTokenLength = 16

// Bootstrap creates organization "default" and its admin key on first start.
// value, when set, is the admin key's secret (RUNYARD_BOOTSTRAP_TOKEN); a later
// start with a different value rotates the same key rather than adding one, so
// there is never a second admin key. A start with a value also restores the
// key when it was revoked: however the keys were revoked, whoever runs the
// control plane can always get a working admin key back.
func (s *Service) Bootstrap(ctx context.Context, value string) (*BootstrapResult, error) {
	if value != "" && len(value) < MinBootstrapTokenLength {
		return nil, apperr.Invalid("RUNYARD_BOOTSTRAP_TOKEN", "must be at least %d characters", MinBootstrapTokenLength)
	}
	org, err := s.ensureOrganization(ctx, DefaultOrganization)
	if err != nil {
		return nil, err
	}
	res := &BootstrapResult{Org: org}
	existing, err := s.Store.FindBootstrapToken(ctx, org.ID)
	switch {
	case err == nil:
		revoked := existing.RevokedAt != nil || !existing.Active(s.Now())
		if value == "" {
			res.Revoked = revoked
			return res, nil
		}
		if HashSecret(value) != existing.Hash || revoked {
			if err := s.Store.SetTokenHash(ctx, org.ID, existing.ID, HashSecret(value)); err != nil {
				return nil, fmt.Errorf("rotate admin key: %w", err)
			}
			s.keys.clear()
			res.Rotated = HashSecret(value) != existing.Hash
			res.Restored = revoked
		}
		return res, nil
	case !apperr.Is(err, apperr.CodeNotFound):
		return nil, fmt.Errorf("find admin key: %w", err)
	}
	secret := value
	if secret == "" {
		secret = NewSecret(PrefixAPIKey)
		res.Secret = secret
	}
	id := uuid.NewString()
	t := &Token{
		ID:        id,
		OrgID:     org.ID,
		Name:      "admin",
		Principal: PrincipalServiceAccount,
		Scopes:    []Scope{ScopeAdmin},
		Creator:   Subject{ID: id, Principal: PrincipalServiceAccount},
		Hash:      HashSecret(secret),
		Bootstrap: true,
		CreatedAt: s.now(),
	}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			// Another replica bootstrapped at the same moment.
			return &BootstrapResult{Org: org}, nil
		}
		return nil, fmt.Errorf("create admin key: %w", err)
	}
	res.Created = true
	return res, nil
}

func (s *Service) ensureOrganization(ctx context.Context, name string) (*Organization, error) {
	org, err := s.Store.FindOrganizationByName(ctx, name)
	if err == nil {
		return org, nil
	}
	if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, fmt.Errorf("find organization %q: %w", name, err)
	}
	now := s.now()
	org = &Organization{ID: uuid.NewString(), Name: name, CreatedAt: now, UpdatedAt: now}
	if err := s.Store.CreateOrganization(ctx, org); err != nil {
		if apperr.Is(err, apperr.CodeConflict) {
			return s.Store.FindOrganizationByName(ctx, name)
		}
		return nil, fmt.Errorf("create organization %q: %w", name, err)
	}
	return org, nil
}

// CreateAPIKeyInput describes a new API key.
type CreateAPIKeyInput struct {
	Name      string
	Scopes    []string
	ExpiresAt *time.Time
	// OrgID, when set to another organization than the caller's, creates
	// the key there; only the installation admin may.
	OrgID string
}

// CreateAPIKey creates an API key in the caller's organization and returns it
// with its secret, which is not stored and cannot be shown again. It needs
// ScopeAdmin.
//
// A user caller (Caller.UserID) needs no scope: the key is the user's own
// (PrincipalUser, the user its owner and creator), and it may carry only
// scopes the user's role grants (CodePermissionDenied naming the first
// other). An installation admin's key for another organization is that
// organization's service-account key, as before users existed.
func (s *Service) CreateAPIKey(ctx context.Context, in CreateAPIKeyInput) (*Token, string, error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, "", err
	}
	otherOrg := in.OrgID != "" && in.OrgID != c.OrgID
	if c.UserID == "" || otherOrg {
		if c, err = Require(ctx, ScopeAdmin); err != nil {
			return nil, "", err
		}
	}
	orgID := c.OrgID
	if otherOrg {
		if err := ValidateUUID("organizationId", in.OrgID); err != nil {
			return nil, "", err
		}
		// To anyone but the installation admin another organization does
		// not exist.
		if !c.InstallationAdmin {
			return nil, "", apperr.NotFound("organization %s not found", in.OrgID)
		}
		if _, err := s.Store.FindOrganizationByID(ctx, in.OrgID); err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				return nil, "", apperr.NotFound("organization %s not found", in.OrgID)
			}
			return nil, "", fmt.Errorf("find organization %s: %w", in.OrgID, err)
		}
		orgID = in.OrgID
	}
	name := strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
		return nil, "", apperr.Invalid("name", "must be 1 to 100 characters, got %d", n)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return nil, "", apperr.Invalid("name", "must not contain control characters")
	}
	scopes, err := ParseScopes("scopes", in.Scopes)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	if in.ExpiresAt != nil {
		exp := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !exp.After(now) {
			return nil, "", apperr.Invalid("expiresAt", "must be in the future")
		}
		in.ExpiresAt = &exp
	}
	secret := NewSecret(PrefixAPIKey)
	t := &Token{
		ID:        uuid.NewString(),
		OrgID:     orgID,
		Name:      name,
		Principal: PrincipalServiceAccount,
		Scopes:    scopes,
		Creator:   c.Subject,
		Hash:      HashSecret(secret),
		CreatedAt: now,
		ExpiresAt: in.ExpiresAt,
	}
	if c.UserID != "" && !otherOrg {
		if err := c.Role.Allows(scopes); err != nil {
			return nil, "", err
		}
		t.Principal, t.OwnerUserID = PrincipalUser, c.UserID
		t.Creator = Subject{ID: c.UserID, Principal: PrincipalUser}
	}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return nil, "", fmt.Errorf("create api key %q: %w", name, err)
	}
	return t, secret, nil
}

// ListTokens lists the tokens of the caller's organization: all of them
// with ScopeAdmin; a user without it lists the API keys they own.
func (s *Service) ListTokens(ctx context.Context, includeRevoked bool, page paging.Page) ([]*Token, string, error) {
	return s.listTokens(ctx, includeRevoked, false, page)
}

// ListOwnTokens lists the API keys the calling user owns in the caller's
// organization, whatever their role: the console's page of one's own keys.
// It fails with CodePermissionDenied for a caller who is not a user.
func (s *Service) ListOwnTokens(ctx context.Context, includeRevoked bool, page paging.Page) ([]*Token, string, error) {
	return s.listTokens(ctx, includeRevoked, true, page)
}

func (s *Service) listTokens(ctx context.Context, includeRevoked, own bool, page paging.Page) ([]*Token, string, error) {
	c, err := requireOwnerOrAdmin(ctx, own)
	if err != nil {
		return nil, "", err
	}
	f := TokenFilter{OrgID: c.OrgID, IncludeRevoked: includeRevoked, After: page.After, Limit: page.Limit + 1}
	if own || !c.Has(ScopeAdmin) {
		f.OwnerUserID = c.UserID
	}
	items, err := s.Store.FindTokens(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	items, next := paging.Trim(page, items, func(t *Token) int64 { return t.Seq })
	return items, next, nil
}

// AuthenticatedToken returns the record of the API key the call is made
// with, and the caller it makes (whose Scopes are what the key holds now).
// Every key may read itself whatever its scopes, since it holds the secret
// anyway: `runyard auth status` of a key without ScopeAdmin, which may not
// list the organization's keys. A session signed in with a key acts as
// that key. A user's browser session and a runner access token are not API
// keys: CodeFailedPrecondition; a logs token reads logs and nothing else:
// CodePermissionDenied. A key revoked since it authenticated (another
// replica's cache) is CodeUnauthenticated, as on its next call.
func (s *Service) AuthenticatedToken(ctx context.Context) (*Token, *Caller, error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case c.Logs != nil:
		return nil, nil, apperr.PermissionDenied("a logs token reads one environment's logs and nothing else")
	case c.Subject.Principal == PrincipalRunner:
		return nil, nil, apperr.FailedPrecondition("the call is made with a runner access token, not an API key")
	case c.TokenID == "":
		return nil, nil, apperr.FailedPrecondition("the call is made with a browser session of a user, not an API key " +
			"(a user's own keys are listed by ListTokens with own)")
	}
	items, err := s.Store.FindTokens(ctx, TokenFilter{OrgID: c.OrgID, ID: c.TokenID, IncludeRevoked: true})
	if err != nil {
		return nil, nil, fmt.Errorf("find token %s: %w", c.TokenID, err)
	}
	if len(items) == 0 {
		// Gone with its organization since it authenticated.
		return nil, nil, apperr.Unauthenticated("invalid token")
	}
	t := items[0]
	if t.RevokedAt != nil {
		return nil, nil, apperr.Unauthenticated("token has been revoked")
	}
	if !t.Active(s.Now()) {
		return nil, nil, apperr.Unauthenticated("token has expired")
	}
	return t, c, nil
}

// requireOwnerOrAdmin returns the caller if it may manage keys: a user
// (their own keys) or, unless own, a holder of ScopeAdmin (the
// organization's). Anyone else gets Require's refusal.
func requireOwnerOrAdmin(ctx context.Context, own bool) (*Caller, error) {
	c, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if c.UserID != "" && c.Logs == nil && c.Subject.Principal != PrincipalRunner {
		return c, nil
	}
	if own {
		return nil, apperr.PermissionDenied("only a user owns API keys (this key is a service account's): list the organization's keys instead")
	}
	return Require(ctx, ScopeAdmin)
}

// RevokeToken revokes a token of the caller's organization at once: any
// with ScopeAdmin; a user without it only an API key they own (another
// is CodeNotFound, as one that does not exist). It fails with
// CodeNotFound. Unless force, it refuses with CodeFailedPrecondition to
// revoke the key making the call or the organization's last active admin
// key: either would lock the caller out.
func (s *Service) RevokeToken(ctx context.Context, id string, force bool) (*Token, error) {
	return s.revokeToken(ctx, id, force, false)
}

// RevokeOwnToken is RevokeToken of an API key the calling user owns,
// whatever their role: another's key is CodeNotFound, even to an admin
// (`runyard keys revoke`). A caller who is not a user gets
// CodePermissionDenied.
func (s *Service) RevokeOwnToken(ctx context.Context, id string, force bool) (*Token, error) {
	return s.revokeToken(ctx, id, force, true)
}

func (s *Service) revokeToken(ctx context.Context, id string, force, own bool) (*Token, error) {
	c, err := requireOwnerOrAdmin(ctx, own)
	if err != nil {
		return nil, err
	}
	if err := ValidateUUID("tokenId", id); err != nil {
		return nil, err
	}
	ownOnly := own || !c.Has(ScopeAdmin)
	now := s.now()
	check := func(t *Token, keys []*Token) error {
		if ownOnly && t.OwnerUserID != c.UserID {
			return apperr.NotFound("token %s not found", id)
		}
		if force {
			return nil
		}
		if t.ID == c.TokenID {
			return apperr.FailedPrecondition("token %s is the key making this call: revoking it would end your access "+
				"(use another admin key, or force it: runyard tokens revoke %s --force)", id, id)
		}
		if !isAdminKey(t, now) {
			return nil
		}
		for _, k := range keys {
			if k.ID != t.ID && isAdminKey(k, now) {
				return nil
			}
		}
		return apperr.FailedPrecondition("token %s is the organization's last active admin key: revoking it would leave no one able to manage keys "+
			"(create another admin key first, or force it: runyard tokens revoke %s --force; "+
			"restarting the control plane with RUNYARD_BOOTSTRAP_TOKEN restores an admin key)", id, id)
	}
	t, err := s.Store.RevokeToken(ctx, c.OrgID, id, now, check)
	if err != nil {
		if apperr.Is(err, apperr.CodeFailedPrecondition) || apperr.Is(err, apperr.CodeNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("revoke token %q: %w", id, err)
	}
	if ownOnly && t.OwnerUserID != c.UserID {
		// Revoked already, so the store did not ask check: it is not the
		// caller's to know about.
		return nil, apperr.NotFound("token %s not found", id)
	}
	s.keys.drop(t.Hash)
	if s.Revoked != nil {
		s.Revoked(c.OrgID, id)
	}
	return t, nil
}

// OrganizationDeleted forgets the keys this process holds in memory, so
// that the keys of a deleted organization stop working at once instead of
// when their cache entries expire.
func (s *Service) OrganizationDeleted(string) { s.keys.clear() }

// isAdminKey reports whether t is an API key that can manage keys at now.
func isAdminKey(t *Token, now time.Time) bool {
	return t.Principal == PrincipalServiceAccount && t.Active(now) && slices.Contains(t.Scopes, ScopeAdmin)
}

// Exchange is ExchangeWithKey without a key: such a redemption cannot be
// retried.
func (s *Service) Exchange(ctx context.Context, exchangeToken string) (string, error) {
	return s.ExchangeWithKey(ctx, exchangeToken, nil)
}

// ExchangeWithKey trades a runner's one-time exchange token for its access
// token. It needs no caller: the exchange token is the credential. publicKey
// is the daemon's X25519 public key (empty from an older daemon).
//
// Redeeming revokes the runner's earlier access tokens and ends the streams
// opened with them (Revoked): one runner identity has one daemon, and the one
// with the newest token wins. The same key pair may redeem the token again
// within ExchangeRetryWindow of its first use, which is how a daemon whose
// exchange answer was lost gets a working token; it fails with
// CodeUnauthenticated for an unknown, used or expired token.
func (s *Service) ExchangeWithKey(ctx context.Context, exchangeToken string, publicKey []byte) (string, error) {
	if exchangeToken == "" {
		return "", apperr.Invalid("exchangeToken", "is required")
	}
	key := ""
	if len(publicKey) > 0 {
		if len(publicKey) != 32 {
			return "", apperr.Invalid("publicKey", "must be a 32-byte X25519 public key, got %d bytes", len(publicKey))
		}
		key = base64.StdEncoding.EncodeToString(publicKey)
	}
	now := s.now()
	secret := NewSecret(PrefixRunnerToken)
	revoked, err := s.Store.RedeemExchangeToken(ctx, HashSecret(exchangeToken), now, func(x *ExchangeToken) (*Token, error) {
		if !now.Before(x.ExpiresAt) {
			return nil, apperr.Unauthenticated("exchange token has expired: create a new one with CreateRunnerToken")
		}
		if x.UsedAt != nil {
			retry := key != "" && x.RedeemedKey == key && now.Before(x.UsedAt.Add(ExchangeRetryWindow))
			if !retry {
				return nil, apperr.Unauthenticated("exchange token has already been used: create a new one with CreateRunnerToken")
			}
		}
		x.RedeemedKey = key
		return &Token{
			ID:        uuid.NewString(),
			OrgID:     x.OrgID,
			Name:      "runner " + x.RunnerID,
			Principal: PrincipalRunner,
			RunnerID:  x.RunnerID,
			Creator:   Subject{ID: x.RunnerID, Principal: PrincipalRunner},
			Hash:      HashSecret(secret),
			CreatedAt: now,
		}, nil
	})
	if apperr.Is(err, apperr.CodeNotFound) {
		return "", apperr.Unauthenticated("exchange token not recognized")
	}
	if err != nil {
		return "", fmt.Errorf("exchange token: %w", err)
	}
	for _, t := range revoked {
		s.keys.drop(t.Hash)
		if s.Revoked != nil {
			s.Revoked(t.OrgID, t.ID)
		}
	}
	return secret, nil
}

// NewExchangeToken returns a fresh exchange token issued at now and its secret.
func NewExchangeToken(orgID, runnerID string, now time.Time) (*ExchangeToken, string) {
	secret := NewSecret(PrefixExchangeToken)
	return &ExchangeToken{
		Hash:      HashSecret(secret),
		OrgID:     orgID,
		RunnerID:  runnerID,
		CreatedAt: now,
		ExpiresAt: now.Add(ExchangeTokenTTL),
	}, secret
}

// ValidateUUID checks that an ID field holds a UUID.
func ValidateUUID(field, id string) error {
	if id == "" {
		return apperr.Invalid(field, "is required")
	}
	if err := uuid.Validate(id); err != nil || len(id) != 36 {
		return apperr.Invalid(field, "must be a UUID, got %q", truncate(id, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
