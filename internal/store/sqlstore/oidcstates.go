package sqlstore

import (
	"context"
	"database/sql"

	"github.com/runyard/runyard/internal/sso"
)

// CreateLoginState stores a started sign-in and drops the expired ones in
// the same transaction, so the table stays as small as the sign-ins in
// flight without a sweeper.
func (db *DB) CreateLoginState(ctx context.Context, st *sso.LoginState) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM oidc_login_states WHERE expires_at < ?`), micros(st.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO oidc_login_states (state_hash, browser_hash, nonce, verifier, return_to, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			st.StateHash, st.BrowserHash, st.Nonce, st.Verifier, st.ReturnTo, micros(st.CreatedAt), micros(st.ExpiresAt))
		return err
	})
	return db.translate(err, "login state")
}

// TakeLoginState deletes the row and returns it in one statement: of two
// callbacks with the same state, on any replicas, one gets it.
func (db *DB) TakeLoginState(ctx context.Context, stateHash string) (*sso.LoginState, error) {
	var st sso.LoginState
	var created, expires int64
	err := db.write.QueryRowContext(ctx, db.q(`DELETE FROM oidc_login_states WHERE state_hash = ?
		RETURNING state_hash, browser_hash, nonce, verifier, return_to, created_at, expires_at`), stateHash).
		Scan(&st.StateHash, &st.BrowserHash, &st.Nonce, &st.Verifier, &st.ReturnTo, &created, &expires)
	if err != nil {
		return nil, db.translate(err, "login state")
	}
	st.CreatedAt, st.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &st, nil
}
