// Package sessions signs people into the web console (issue 12, item 5): a
// server-side session record per sign-in, found by the hash of the secret the
// browser holds in its HttpOnly cookie, with idle and absolute expiry,
// revocation, rotation on every sign-in, a CSRF token per session, and the
// rate limit and lockout that guard password sign-in. It knows nothing of
// HTTP: internal/api/authhttp is its adapter, and the server's guard turns a
// session cookie into a caller through Authenticate.
//
// A session's life:
//
//	SignInPassword / SignInKey / SignInUser ──► live ──(request)──► live (last seen moves, at most once a minute)
//	                                              │
//	            idle timeout, max age, Revoke, RevokeUser, SwitchOrganization (rotates),
//	            a new sign-in from the same browser (rotates), the user disabled or
//	            removed from the organization, the key of a key session revoked
//	                                              ▼
//	                                           dead (CodeUnauthenticated)
package sessions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Session is one sign-in of a browser. Only the hash of its secret is kept.
type Session struct {
	ID string
	// Hash is identity.HashSecret of the cookie's secret.
	Hash  string
	OrgID string
	// UserID is set for a person's session, TokenID for a session that acts
	// as an API key (SignInKey); never both.
	UserID  string
	TokenID string
	// SealedKey is, for a key session, the API key encrypted with a key
	// derived from the cookie's secret: the session acts through the key
	// itself (its scopes, its revocation), and the database row alone
	// opens nothing.
	SealedKey string
	ClientIP  string
	UserAgent string
	CreatedAt time.Time
	// LastSeenAt moves at most once a minute; IdleExpiresAt is LastSeenAt
	// plus the idle timeout, ExpiresAt the absolute end.
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	RevokedAt     *time.Time
}

// Live reports whether the session may authenticate at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
}

// Lockout is an account's record of consecutive failed password sign-ins.
type Lockout struct {
	UserID   string
	Failures int
	// LockedUntil is set while (and after) the account is locked; a lock
	// that has passed counts as none.
	LockedUntil *time.Time
}

// Store is the storage sessions need; internal/store implements it.
type Store interface {
	// CreateSession stores a new session. It fails with CodeConflict on a
	// duplicate id or hash.
	CreateSession(ctx context.Context, s *Session) error
	// FindSessionByHash and FindSessionByID fail with CodeNotFound.
	FindSessionByHash(ctx context.Context, hash string) (*Session, error)
	FindSessionByID(ctx context.Context, id string) (*Session, error)
	// TouchSession moves a live session's LastSeenAt and IdleExpiresAt; a
	// revoked or unknown session is left alone without error.
	TouchSession(ctx context.Context, id string, lastSeen, idleExpires time.Time) error
	// RevokeSession sets RevokedAt unless set already. It fails with
	// CodeNotFound.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RotateSession revokes session oldID and creates next in one
	// transaction. It fails with CodeUnauthenticated when oldID is revoked
	// already (a concurrent rotation won) and CodeNotFound when it is
	// missing.
	RotateSession(ctx context.Context, oldID string, at time.Time, next *Session) error
	// RevokeUserSessions revokes every live session of a user and returns
	// how many it revoked.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int64, error)
	// RevokeOtherUserSessions revokes every live session of a user but
	// keepID and returns how many it revoked.
	RevokeOtherUserSessions(ctx context.Context, userID, keepID string, at time.Time) (int64, error)
	// DeleteExpiredSessions deletes sessions whose absolute expiry is
	// before cutoff.
	DeleteExpiredSessions(ctx context.Context, cutoff time.Time) (int64, error)

	// FindSignInLockout returns the user's record, with zero Failures when
	// there is none.
	FindSignInLockout(ctx context.Context, userID string) (*Lockout, error)
	// RecordSignInFailure counts one more failure of userID at at: a lock
	// that has passed starts the count again; the count reaching max locks
	// the account until at+lockFor. It returns the record after the change.
	RecordSignInFailure(ctx context.Context, userID string, at time.Time, max int, lockFor time.Duration) (*Lockout, error)
	// ClearSignInFailures deletes the user's record (a successful sign-in,
	// an admin's password reset).
	ClearSignInFailures(ctx context.Context, userID string) error
}

// Meta is what a sign-in knows of the browser.
type Meta struct {
	ClientIP  string
	UserAgent string
	// PreviousSecret is the session cookie the browser sent along with the
	// sign-in, if any: that session is revoked once the new one exists, so
	// a sign-in always rotates.
	PreviousSecret string
}

// Issued is what a sign-in returns: the session and the two secrets the
// browser needs, shown this once (Secret goes into the HttpOnly cookie,
// CSRFToken into the X-CSRF-Token header of every write).
type Issued struct {
	Session   *Session
	Secret    string
	CSRFToken string
	// Caller is who the session acts as now.
	Caller *identity.Caller
}

// SecretPrefix starts every session cookie's secret, so a leaked one is
// recognisable in a paste or a log.
const SecretPrefix = "ryd_se_"

// CSRFToken returns the CSRF token of the session whose cookie holds secret.
// It is derived (HMAC-SHA256 keyed with the secret), never stored: the
// server recomputes it from the cookie on each write, GET /auth/session can
// hand it out again after a reload, and knowing it reveals nothing of the
// cookie.
func CSRFToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("runyard csrf token v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether token is the CSRF token of the session whose
// cookie holds secret, in constant time. It fails with
// CodePermissionDenied, naming the header the client must send.
func CheckCSRF(secret, token string) error {
	if token == "" {
		return apperr.PermissionDenied("missing CSRF token: a request authenticated by the session cookie that changes something must send the header %s with the csrfToken of POST /auth/password or GET /auth/session", CSRFHeader)
	}
	if !hmac.Equal([]byte(token), []byte(CSRFToken(secret))) {
		return apperr.PermissionDenied("wrong CSRF token in header %s: send the csrfToken of this session (GET /auth/session)", CSRFHeader)
	}
	return nil
}

// Names the HTTP adapters share.
const (
	// CookieName is the session cookie.
	CookieName = "runyard_session"
	// CSRFHeader carries the session's CSRF token on writes.
	CSRFHeader = "X-CSRF-Token"
)

// RetryAfterError is the cause of a CodeResourceExhausted sign-in refusal
// (rate limit, locked account): the HTTP adapter turns After into a
// Retry-After header.
type RetryAfterError struct {
	After time.Duration
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("retry after %s", e.After) }

// RetryAfter returns how long a refused sign-in must wait, if err says.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

func tooMany(after time.Duration, format string, args ...any) error {
	if after < time.Second {
		after = time.Second
	}
	return &apperr.Error{Code: apperr.CodeResourceExhausted, Message: fmt.Sprintf(format, args...), Err: &RetryAfterError{After: after}}
}
