package sessions

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

// Defaults of `runyard server --session-idle-timeout` and
// `--session-max-age`.
const (
	DefaultIdleTimeout = 12 * time.Hour
	DefaultMaxAge      = 7 * 24 * time.Hour
)

// Limits bound password and key sign-in attempts.
type Limits struct {
	// MaxFailures consecutive failed password sign-ins lock the account
	// for LockoutDuration (recorded in the database: every replica and
	// every restart sees it).
	MaxFailures     int
	LockoutDuration time.Duration
	// Each client IP may try PerIPBurst sign-ins at once, then one more
	// every PerIPInterval (held in this replica's memory).
	PerIPBurst    int
	PerIPInterval time.Duration
}

// DefaultLimits are the limits a server runs with.
var DefaultLimits = Limits{MaxFailures: 10, LockoutDuration: 15 * time.Minute, PerIPBurst: 30, PerIPInterval: 2 * time.Second}

// Audit object types of sign-in entries: a session, and the email typed in
// a failed password sign-in (never the password).
const (
	ObjectTypeSession = "session"
	ObjectTypeEmail   = "email"
)

// Users is what sessions read of the users' store (users.Store has it).
type Users interface {
	FindUserByID(ctx context.Context, id string) (*users.User, error)
	FindUserByEmail(ctx context.Context, email string) (*users.User, error)
	FindMemberships(ctx context.Context, orgID, userID string) ([]*users.Membership, error)
}

// Keys authenticates API keys (identity.Service).
type Keys interface {
	Authenticate(ctx context.Context, secret string) (*identity.Caller, error)
}

// Service signs browsers in and authenticates their sessions.
type Service struct {
	Store Store
	Users Users
	Keys  Keys
	// Now is the clock, a field so expiry is testable.
	Now func() time.Time
	// IdleTimeout ends a session nobody used for that long; MaxAge ends
	// any session that long after its sign-in.
	IdleTimeout time.Duration
	MaxAge      time.Duration
	Limits      Limits

	cache   cache
	perIP   limiter
	dummyPW string
}

// NewService returns a Service with the default timeouts and limits.
func NewService(st Store, us Users, keys Keys) *Service {
	// A wrong email costs as much as a wrong password: both check a hash.
	dummy, err := users.HashPassword("runyard: no such account")
	if err != nil {
		panic(err)
	}
	return &Service{Store: st, Users: us, Keys: keys, Now: time.Now,
		IdleTimeout: DefaultIdleTimeout, MaxAge: DefaultMaxAge, Limits: DefaultLimits, dummyPW: dummy}
}

// ValidateTimeouts checks the two timeouts; the errors name the flags.
func ValidateTimeouts(idle, maxAge time.Duration) error {
	if idle < time.Second {
		return apperr.Invalid("--session-idle-timeout", "must be at least 1s, got %s", idle)
	}
	if maxAge < time.Second {
		return apperr.Invalid("--session-max-age", "must be at least 1s, got %s", maxAge)
	}
	if idle > maxAge {
		return apperr.Invalid("--session-idle-timeout", "%s must not exceed --session-max-age %s", idle, maxAge)
	}
	return nil
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// wrongCredentials is the one answer to a wrong email or password, so the
// answer never tells whether an account exists.
func wrongCredentials() error {
	return apperr.Unauthenticated("wrong email or password")
}

// SignInPassword signs a user in with their email and password, into their
// first organization. It fails with CodeInvalid for an empty field,
// CodeUnauthenticated for a wrong email or password (one message for both)
// or a disabled account, CodeResourceExhausted (RetryAfter says how long)
// when the client's IP is over its rate or the account is locked, and
// CodeFailedPrecondition when the account belongs to no organization.
func (s *Service) SignInPassword(ctx context.Context, email, password string, meta Meta) (*Issued, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	iss, err := s.signInPassword(ctx, email, password, meta)
	if err != nil && email != "" {
		// The audit entry of a failed sign-in names the email typed.
		audit.SetObject(ctx, ObjectTypeEmail, truncate(email, 256))
	}
	return iss, err
}

func (s *Service) signInPassword(ctx context.Context, email, password string, meta Meta) (*Issued, error) {
	switch {
	case email == "":
		return nil, apperr.Invalid("email", "is required")
	case password == "":
		return nil, apperr.Invalid("password", "is required")
	case len(password) > 4*users.MaxPasswordLength:
		// Longer than any password could be; refused before hashing it.
		return nil, wrongCredentials()
	}
	if err := s.allow(meta.ClientIP); err != nil {
		return nil, err
	}
	u, err := s.Users.FindUserByEmail(ctx, email)
	if apperr.Is(err, apperr.CodeNotFound) {
		users.CheckPassword(s.dummyPW, password)
		return nil, wrongCredentials()
	}
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	ms, err := s.Users.FindMemberships(ctx, "", u.ID)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if len(ms) > 0 {
		// A failed sign-in is recorded in the account's organization, so
		// its admins see who tries their members' accounts.
		if d, ok := audit.FromContext(ctx); ok {
			d.SetCaller(&identity.Caller{OrgID: ms[0].OrgID})
		}
	}
	now := s.now()
	lock, err := s.Store.FindSignInLockout(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if lock.LockedUntil != nil && now.Before(*lock.LockedUntil) {
		return nil, locked(*lock.LockedUntil, now)
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = s.dummyPW // an account without a password: same work, no match
	}
	if !users.CheckPassword(hash, password) || u.PasswordHash == "" {
		if _, err := s.Store.RecordSignInFailure(audit.Detach(ctx), u.ID, now, s.Limits.MaxFailures, s.Limits.LockoutDuration); err != nil {
			return nil, fmt.Errorf("record failed sign-in: %w", err)
		}
		return nil, wrongCredentials()
	}
	if u.DisabledAt != nil {
		return nil, apperr.Unauthenticated("this account is disabled: ask an administrator")
	}
	if lock.Failures > 0 || lock.LockedUntil != nil {
		if err := s.Store.ClearSignInFailures(ctx, u.ID); err != nil {
			return nil, fmt.Errorf("clear failed sign-ins: %w", err)
		}
	}
	if len(ms) == 0 {
		return nil, apperr.FailedPrecondition("account %s belongs to no organization: ask an administrator to add it to one", email)
	}
	return s.issue(ctx, &Session{OrgID: ms[0].OrgID, UserID: u.ID}, meta, userCaller(u, ms[0]), "")
}

func locked(until, now time.Time) error {
	wait := until.Sub(now)
	return tooMany(wait, "account locked after too many failed sign-ins: try again after %s (in %s)",
		until.UTC().Format(time.RFC3339), roundUp(wait))
}

// SignInKey signs the browser in as an API key: the session acts exactly
// as the key (its organization, scopes and principal) and ends when the key
// is revoked or expires. It fails with CodeInvalid for an empty key,
// CodeUnauthenticated for a key that does not authenticate or is not an API
// key, and CodeResourceExhausted when the client's IP is over its rate.
func (s *Service) SignInKey(ctx context.Context, apiKeySecret string, meta Meta) (*Issued, error) {
	apiKeySecret = strings.TrimSpace(apiKeySecret)
	if apiKeySecret == "" {
		return nil, apperr.Invalid("key", "is required")
	}
	if err := s.allow(meta.ClientIP); err != nil {
		return nil, err
	}
	c, err := s.Keys.Authenticate(ctx, apiKeySecret)
	if apperr.Is(err, apperr.CodeUnauthenticated) {
		return nil, apperr.Unauthenticated("invalid API key")
	}
	if err != nil {
		return nil, fmt.Errorf("sign in with a key: %w", err)
	}
	if c.TokenID == "" || c.Logs != nil || c.Subject.Principal == identity.PrincipalRunner {
		return nil, apperr.Unauthenticated("only an API key can sign in to the console")
	}
	if d, ok := audit.FromContext(ctx); ok {
		d.SetCaller(c)
	}
	return s.issue(ctx, &Session{OrgID: c.OrgID, TokenID: c.TokenID}, meta, c, apiKeySecret)
}

// SignInUser signs in a user someone else has authenticated (OpenID
// Connect), into orgID, or their first organization when orgID is empty.
// It fails with CodeNotFound for an unknown user, CodeUnauthenticated for a
// disabled one, CodeFailedPrecondition for a user with no organization,
// and CodeNotFound when they are not a member of orgID.
func (s *Service) SignInUser(ctx context.Context, userID, orgID string, meta Meta) (*Issued, error) {
	u, err := s.Users.FindUserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.DisabledAt != nil {
		return nil, apperr.Unauthenticated("this account is disabled: ask an administrator")
	}
	ms, err := s.Users.FindMemberships(ctx, orgID, u.ID)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if len(ms) == 0 {
		if orgID != "" {
			return nil, apperr.NotFound("organization %q not found", orgID)
		}
		return nil, apperr.FailedPrecondition("account %s belongs to no organization: ask an administrator to add it to one", u.Email)
	}
	return s.issue(ctx, &Session{OrgID: ms[0].OrgID, UserID: u.ID}, meta, userCaller(u, ms[0]), "")
}

func userCaller(u *users.User, m *users.Membership) *identity.Caller {
	return &identity.Caller{
		OrgID:   m.OrgID,
		Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser},
		UserID:  u.ID,
		Role:    m.Role,
		Scopes:  m.Role.Scopes(),
		// A user flagged installation admin manages organizations from the
		// console as the bootstrap key does (docs/ARCHITECTURE.md).
		InstallationAdmin: u.InstallationAdmin,
	}
}

// issue stores a new session for c, with a fresh secret, and revokes the
// session whose cookie came along (rotation). apiKey, when set, is sealed
// into the session.
func (s *Service) issue(ctx context.Context, sess *Session, meta Meta, c *identity.Caller, apiKey string) (*Issued, error) {
	secret := identity.NewSecret(SecretPrefix)
	now := s.now()
	sess.ID = uuid.NewString()
	sess.Hash = identity.HashSecret(secret)
	sess.ClientIP = truncate(meta.ClientIP, 64)
	sess.UserAgent = truncate(meta.UserAgent, 256)
	sess.CreatedAt, sess.LastSeenAt = now, now
	if sess.ExpiresAt.IsZero() {
		sess.ExpiresAt = now.Add(s.MaxAge)
	}
	sess.IdleExpiresAt = minTime(now.Add(s.IdleTimeout), sess.ExpiresAt)
	if apiKey != "" {
		sealed, err := seal(secret, apiKey)
		if err != nil {
			return nil, err
		}
		sess.SealedKey = sealed
	}
	caller := *c
	caller.SessionID = sess.ID
	audit.SetObject(ctx, ObjectTypeSession, sess.ID)
	if err := s.Store.CreateSession(identity.NewContext(ctx, &caller), sess); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	s.revokePrevious(ctx, meta.PreviousSecret, sess.ID)
	return &Issued{Session: sess, Secret: secret, CSRFToken: CSRFToken(secret), Caller: &caller}, nil
}

// revokePrevious ends the session of the cookie a sign-in came with; a
// cookie that names no session is ignored.
func (s *Service) revokePrevious(ctx context.Context, secret, newID string) {
	if secret == "" {
		return
	}
	prev, err := s.Store.FindSessionByHash(ctx, identity.HashSecret(secret))
	if err != nil || prev.ID == newID || prev.RevokedAt != nil {
		return
	}
	// The sign-in's audit entry is written already; this is part of it.
	if err := s.Store.RevokeSession(context.WithoutCancel(ctx), prev.ID, s.now()); err == nil {
		s.cache.dropSession(prev.ID)
	}
}

// Authenticate returns the caller of a session cookie's secret. It fails
// with CodeUnauthenticated when the session is unknown, revoked, expired
// (idle or absolute), its user disabled or no longer a member of its
// organization, or the API key of a key session no longer works. The
// session's record is read at most every few seconds per replica; a
// revocation on this replica applies at once.
func (s *Service) Authenticate(ctx context.Context, secret string) (*identity.Caller, error) {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return nil, apperr.Unauthenticated("invalid session: sign in again")
	}
	hash := identity.HashSecret(secret)
	now := s.Now()
	e := s.cache.get(hash, now)
	if e == nil {
		sess, err := s.Store.FindSessionByHash(ctx, hash)
		if apperr.Is(err, apperr.CodeNotFound) {
			return nil, apperr.Unauthenticated("invalid session: sign in again")
		}
		if err != nil {
			return nil, fmt.Errorf("authenticate session: %w", err)
		}
		e = &cacheEntry{sess: sess}
		if sess.RevokedAt == nil && sess.UserID != "" {
			if e.caller, err = s.memberCaller(ctx, sess); err != nil {
				return nil, err
			}
		}
		s.cache.put(hash, e, now)
	}
	sess := e.sess
	switch {
	case sess.RevokedAt != nil:
		return nil, apperr.Unauthenticated("session has ended (signed out or revoked): sign in again")
	case !now.Before(sess.ExpiresAt):
		return nil, apperr.Unauthenticated("session has expired: sign in again")
	case !now.Before(sess.IdleExpiresAt):
		return nil, apperr.Unauthenticated("session has expired after %s without use: sign in again", s.IdleTimeout)
	}
	var caller identity.Caller
	if sess.TokenID != "" {
		c, err := s.keyCaller(ctx, sess, secret)
		if err != nil {
			return nil, err
		}
		caller = *c
	} else {
		caller = *e.caller
	}
	caller.SessionID = sess.ID
	if now.Sub(sess.LastSeenAt) >= s.touchEvery() {
		s.touch(ctx, hash, sess, now)
	}
	return &caller, nil
}

// touchEvery is how often a used session's last-seen time is written: at
// most once a minute, so requests do not each cost a write, and often
// enough that a short idle timeout does not end a session in use.
func (s *Service) touchEvery() time.Duration {
	return min(time.Minute, s.IdleTimeout/10)
}

func (s *Service) touch(ctx context.Context, hash string, sess *Session, now time.Time) {
	now = now.UTC().Truncate(time.Microsecond)
	next := *sess
	next.LastSeenAt = now
	next.IdleExpiresAt = minTime(now.Add(s.IdleTimeout), sess.ExpiresAt)
	if err := s.Store.TouchSession(ctx, sess.ID, next.LastSeenAt, next.IdleExpiresAt); err != nil {
		return // the next request tries again; the session stays valid
	}
	s.cache.replace(hash, sess, &next)
}

// memberCaller is the caller of a user's session: the role is read from
// the membership now, so a role change or a removal applies.
func (s *Service) memberCaller(ctx context.Context, sess *Session) (*identity.Caller, error) {
	u, err := s.Users.FindUserByID(ctx, sess.UserID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.Unauthenticated("the account of this session no longer exists: sign in again")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate session: %w", err)
	}
	if u.DisabledAt != nil {
		return nil, apperr.Unauthenticated("this account is disabled: ask an administrator")
	}
	ms, err := s.Users.FindMemberships(ctx, sess.OrgID, u.ID)
	if err != nil {
		return nil, fmt.Errorf("authenticate session: %w", err)
	}
	if len(ms) == 0 {
		return nil, apperr.Unauthenticated("the account of this session is no longer a member of its organization: sign in again")
	}
	return userCaller(u, ms[0]), nil
}

// keyCaller authenticates the API key a key session signed in with, every
// time: the key's own checks (revocation, expiry, its cache) decide.
func (s *Service) keyCaller(ctx context.Context, sess *Session, secret string) (*identity.Caller, error) {
	key, err := unseal(secret, sess.SealedKey)
	if err != nil {
		return nil, apperr.Unauthenticated("invalid session: sign in again")
	}
	c, err := s.Keys.Authenticate(ctx, key)
	if apperr.Is(err, apperr.CodeUnauthenticated) {
		return nil, apperr.Unauthenticated("the API key this session signed in with no longer works (revoked or expired): sign in again")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate session: %w", err)
	}
	if c.TokenID != sess.TokenID {
		return nil, apperr.Unauthenticated("invalid session: sign in again")
	}
	return c, nil
}

// Get returns a live session by id. It fails with CodeUnauthenticated for
// one that is unknown or has ended.
func (s *Service) Get(ctx context.Context, sessionID string) (*Session, error) {
	sess, err := s.Store.FindSessionByID(ctx, sessionID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.Unauthenticated("invalid session: sign in again")
	}
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if !sess.Live(s.Now()) {
		return nil, apperr.Unauthenticated("session has ended: sign in again")
	}
	return sess, nil
}

// SwitchOrganization moves a user's session to another organization they
// belong to, rotating it: the old secret stops working and the returned one
// replaces it (the absolute expiry stays). It fails with
// CodeUnauthenticated for a session that has ended, CodeInvalid for an
// empty orgID, CodeFailedPrecondition for a key session (it acts in the
// key's organization), and CodeNotFound when the user is not a member of
// orgID.
func (s *Service) SwitchOrganization(ctx context.Context, sessionID, orgID string, meta Meta) (*Issued, error) {
	if strings.TrimSpace(orgID) == "" {
		return nil, apperr.Invalid("organizationId", "is required")
	}
	old, err := s.Get(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if old.UserID == "" {
		return nil, apperr.FailedPrecondition("a session signed in with an API key acts in the key's organization: sign in with another key instead")
	}
	u, err := s.Users.FindUserByID(ctx, old.UserID)
	if err != nil {
		return nil, fmt.Errorf("switch organization: %w", err)
	}
	if u.DisabledAt != nil {
		return nil, apperr.Unauthenticated("this account is disabled: ask an administrator")
	}
	ms, err := s.Users.FindMemberships(ctx, orgID, u.ID)
	if err != nil {
		return nil, fmt.Errorf("switch organization: %w", err)
	}
	if len(ms) == 0 {
		return nil, apperr.NotFound("organization %q not found", orgID)
	}
	secret := identity.NewSecret(SecretPrefix)
	now := s.now()
	next := &Session{
		ID: uuid.NewString(), Hash: identity.HashSecret(secret), OrgID: orgID, UserID: u.ID,
		ClientIP: truncate(meta.ClientIP, 64), UserAgent: truncate(meta.UserAgent, 256),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: old.ExpiresAt,
		IdleExpiresAt: minTime(now.Add(s.IdleTimeout), old.ExpiresAt),
	}
	caller := userCaller(u, ms[0])
	caller.SessionID = next.ID
	audit.SetObject(ctx, ObjectTypeSession, next.ID)
	if err := s.Store.RotateSession(identity.NewContext(ctx, caller), old.ID, now, next); err != nil {
		return nil, err
	}
	s.cache.dropSession(old.ID)
	return &Issued{Session: next, Secret: secret, CSRFToken: CSRFToken(secret), Caller: caller}, nil
}

// Revoke ends a session (sign-out). It fails with CodeNotFound.
func (s *Service) Revoke(ctx context.Context, sessionID string) error {
	err := s.Store.RevokeSession(ctx, sessionID, s.now())
	s.cache.dropSession(sessionID)
	return err
}

// RevokeUser ends every session of a user (a disabled or removed user)
// and returns how many were live.
func (s *Service) RevokeUser(ctx context.Context, userID string) (int64, error) {
	n, err := s.Store.RevokeUserSessions(ctx, userID, s.now())
	s.cache.dropUser(userID)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return n, nil
}

// RevokeOtherSessions ends every session of a user but keepID (a user who
// changed their password stays signed in where they did it, and nowhere
// else) and returns how many were live.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keepID string) (int64, error) {
	n, err := s.Store.RevokeOtherUserSessions(ctx, userID, keepID, s.now())
	s.cache.drop(func(sess *Session) bool { return sess.UserID == userID && sess.ID != keepID })
	if err != nil {
		return 0, fmt.Errorf("revoke other sessions of user %s: %w", userID, err)
	}
	return n, nil
}

// AllowSignIn spends one sign-in attempt of the client address ip, from the
// same per-IP budget password and key sign-ins spend, or fails with
// CodeResourceExhausted (RetryAfter says how long to wait). Single
// sign-on's start calls it: each start costs the server a stored state.
func (s *Service) AllowSignIn(ip string) error { return s.allow(ip) }

// ClearLockout forgets a user's failed sign-ins and unlocks the account (an
// admin's password reset calls it).
func (s *Service) ClearLockout(ctx context.Context, userID string) error {
	return s.Store.ClearSignInFailures(ctx, userID)
}

// Prune deletes sessions that expired more than a day ago.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	return s.Store.DeleteExpiredSessions(ctx, s.Now().Add(-24*time.Hour))
}

func (s *Service) allow(ip string) error {
	if wait, ok := s.perIP.take(ip, s.Now(), s.Limits.PerIPBurst, s.Limits.PerIPInterval); !ok {
		return tooMany(wait, "too many sign-in attempts from %s: try again in %s", ip, roundUp(wait))
	}
	return nil
}

func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sealKey derives the key that seals a key session's API key from the
// session cookie's secret.
func sealKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("runyard session key seal v1"))
	return m.Sum(nil)
}

func seal(secret, plaintext string) (string, error) {
	block, err := aes.NewCipher(sealKey(secret))
	if err != nil {
		return "", fmt.Errorf("seal key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", fmt.Errorf("seal key: %w", err)
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal key: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plaintext), nil)), nil
}

func unseal(secret, sealed string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	block, err := aes.NewCipher(sealKey(secret))
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	if len(b) < gcm.NonceSize() {
		return "", fmt.Errorf("sealed key too short")
	}
	out, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], nil)
	return string(out), err
}
