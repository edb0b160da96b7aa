package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/sessions"
)

// The browser sessions of the web console (internal/sessions) and the
// failed sign-ins that lock an account.

const browserSessionColumns = `id, hash, org_id, COALESCE(user_id, ''), COALESCE(token_id, ''), sealed_key,
	client_ip, user_agent, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at`

func scanBrowserSession(row interface{ Scan(...any) error }) (*sessions.Session, error) {
	var s sessions.Session
	var created, seen, idle, expires, revoked int64
	if err := row.Scan(&s.ID, &s.Hash, &s.OrgID, &s.UserID, &s.TokenID, &s.SealedKey,
		&s.ClientIP, &s.UserAgent, &created, &seen, &idle, &expires, &revoked); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(idle), fromMicros(expires)
	if revoked != 0 {
		t := fromMicros(revoked)
		s.RevokedAt = &t
	}
	return &s, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (db *DB) insertBrowserSession(ctx context.Context, tx *sql.Tx, s *sessions.Session) error {
	var revoked int64
	if s.RevokedAt != nil {
		revoked = micros(*s.RevokedAt)
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO browser_sessions (id, hash, org_id, user_id, token_id, sealed_key,
		client_ip, user_agent, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		s.ID, s.Hash, s.OrgID, nullString(s.UserID), nullString(s.TokenID), s.SealedKey,
		s.ClientIP, s.UserAgent, micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.IdleExpiresAt), micros(s.ExpiresAt), revoked)
	return db.translate(err, "session")
}

// CreateSession implements sessions.Store.
func (db *DB) CreateSession(ctx context.Context, s *sessions.Session) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return db.insertBrowserSession(ctx, tx, s) })
}

// FindSessionByHash implements sessions.Store.
func (db *DB) FindSessionByHash(ctx context.Context, hash string) (*sessions.Session, error) {
	s, err := scanBrowserSession(db.readRow(ctx, `SELECT `+browserSessionColumns+` FROM browser_sessions WHERE hash = ?`, hash))
	if err != nil {
		return nil, db.translate(err, "session")
	}
	return s, nil
}

// FindSessionByID implements sessions.Store.
func (db *DB) FindSessionByID(ctx context.Context, id string) (*sessions.Session, error) {
	s, err := scanBrowserSession(db.read.QueryRowContext(ctx, db.q(`SELECT `+browserSessionColumns+` FROM browser_sessions WHERE id = ?`), id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("session %s", id))
	}
	return s, nil
}

// TouchSession implements sessions.Store.
func (db *DB) TouchSession(ctx context.Context, id string, lastSeen, idleExpires time.Time) error {
	_, err := db.write.ExecContext(ctx, db.q(`UPDATE browser_sessions SET last_seen_at = ?, idle_expires_at = ?
		WHERE id = ? AND revoked_at = 0 AND last_seen_at < ?`), micros(lastSeen), micros(idleExpires), id, micros(lastSeen))
	return db.translate(err, fmt.Sprintf("session %s", id))
}

// RevokeSession implements sessions.Store.
func (db *DB) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE browser_sessions SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), micros(at), id)
		if err != nil {
			return db.translate(err, "session")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var got string
		return db.translate(tx.QueryRowContext(ctx, db.q(`SELECT id FROM browser_sessions WHERE id = ?`), id).Scan(&got), fmt.Sprintf("session %s", id))
	})
}

// RotateSession implements sessions.Store.
func (db *DB) RotateSession(ctx context.Context, oldID string, at time.Time, next *sessions.Session) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE browser_sessions SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), micros(at), oldID)
		if err != nil {
			return db.translate(err, "session")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var got string
			if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM browser_sessions WHERE id = ?`), oldID).Scan(&got); err != nil {
				return db.translate(err, fmt.Sprintf("session %s", oldID))
			}
			return apperr.Unauthenticated("session has ended: sign in again")
		}
		return db.insertBrowserSession(ctx, tx, next)
	})
}

// RevokeUserSessions implements sessions.Store.
func (db *DB) RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE browser_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`), micros(at), userID)
		if err != nil {
			return db.translate(err, "sessions")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// RevokeOtherUserSessions implements sessions.Store.
func (db *DB) RevokeOtherUserSessions(ctx context.Context, userID, keepID string, at time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE browser_sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at = 0`),
			micros(at), userID, keepID)
		if err != nil {
			return db.translate(err, "sessions")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// DeleteExpiredSessions implements sessions.Store.
func (db *DB) DeleteExpiredSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, db.q(`DELETE FROM browser_sessions WHERE expires_at < ?`), micros(cutoff))
	if err != nil {
		return 0, db.translate(err, "sessions")
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func scanLockout(userID string, row *sql.Row) (*sessions.Lockout, error) {
	l := &sessions.Lockout{UserID: userID}
	var until int64
	if err := row.Scan(&l.Failures, &until); err != nil {
		return nil, err
	}
	if until != 0 {
		t := fromMicros(until)
		l.LockedUntil = &t
	}
	return l, nil
}

// FindSignInLockout implements sessions.Store.
func (db *DB) FindSignInLockout(ctx context.Context, userID string) (*sessions.Lockout, error) {
	l, err := scanLockout(userID, db.read.QueryRowContext(ctx, db.q(`SELECT failures, locked_until FROM sign_in_failures WHERE user_id = ?`), userID))
	if err == sql.ErrNoRows {
		return &sessions.Lockout{UserID: userID}, nil
	}
	if err != nil {
		return nil, db.translate(err, "failed sign-ins")
	}
	return l, nil
}

// RecordSignInFailure implements sessions.Store. The count goes up in one
// statement, so concurrent failures on several replicas all count.
func (db *DB) RecordSignInFailure(ctx context.Context, userID string, at time.Time, max int, lockFor time.Duration) (*sessions.Lockout, error) {
	var l *sessions.Lockout
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := micros(at)
		var err error
		l, err = scanLockout(userID, tx.QueryRowContext(ctx, db.q(`INSERT INTO sign_in_failures (user_id, failures, locked_until, updated_at)
			VALUES (?, 1, 0, ?)
			ON CONFLICT (user_id) DO UPDATE SET
				failures = CASE WHEN sign_in_failures.locked_until <> 0 AND sign_in_failures.locked_until <= excluded.updated_at
					THEN 1 ELSE sign_in_failures.failures + 1 END,
				locked_until = CASE WHEN sign_in_failures.locked_until <= excluded.updated_at
					THEN 0 ELSE sign_in_failures.locked_until END,
				updated_at = excluded.updated_at
			RETURNING failures, locked_until`), userID, now))
		if err != nil {
			return db.translate(err, fmt.Sprintf("failed sign-ins of user %s", userID))
		}
		if max > 0 && l.Failures >= max && l.LockedUntil == nil {
			until := at.Add(lockFor).UTC().Truncate(time.Microsecond)
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE sign_in_failures SET locked_until = ? WHERE user_id = ?`), micros(until), userID); err != nil {
				return db.translate(err, "failed sign-ins")
			}
			l.LockedUntil = &until
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ClearSignInFailures implements sessions.Store.
func (db *DB) ClearSignInFailures(ctx context.Context, userID string) error {
	_, err := db.write.ExecContext(ctx, db.q(`DELETE FROM sign_in_failures WHERE user_id = ?`), userID)
	return db.translate(err, "failed sign-ins")
}
