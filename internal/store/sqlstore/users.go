package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

const userColumns = `seq, id, email, name, password_hash, disabled_at, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (*users.User, error) {
	var u users.User
	var disabled, created, updated int64
	if err := row.Scan(&u.Seq, &u.ID, &u.Email, &u.Name, &u.PasswordHash, &disabled, &created, &updated); err != nil {
		return nil, err
	}
	if disabled != 0 {
		t := fromMicros(disabled)
		u.DisabledAt = &t
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func disabledMicros(u *users.User) int64 {
	if u.DisabledAt == nil {
		return 0
	}
	return micros(*u.DisabledAt)
}

func (db *DB) CreateUser(ctx context.Context, u *users.User) error {
	err := db.write.QueryRowContext(ctx, db.q(`INSERT INTO users (id, email, name, password_hash, disabled_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		u.ID, u.Email, u.Name, u.PasswordHash, disabledMicros(u), micros(u.CreatedAt), micros(u.UpdatedAt)).Scan(&u.Seq)
	return db.translate(err, fmt.Sprintf("user %q", u.Email))
}

func (db *DB) FindUserByID(ctx context.Context, id string) (*users.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("user %s", id))
	}
	return u, nil
}

func (db *DB) FindUserByEmail(ctx context.Context, email string) (*users.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE email = ?`), email))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("user %q", email))
	}
	return u, nil
}

func (db *DB) FindUsers(ctx context.Context, f users.UserFilter) ([]*users.User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE seq > ?`
	args := []any{f.After}
	if f.OrgID != "" {
		q += ` AND id IN (SELECT user_id FROM memberships WHERE org_id = ?)`
		args = append(args, f.OrgID)
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, db.translate(err, "users")
	}
	defer rows.Close()
	var out []*users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, db.translate(err, "users")
		}
		out = append(out, u)
	}
	return out, db.translate(rows.Err(), "users")
}

func (db *DB) UpdateUser(ctx context.Context, id string, fn func(*users.User) error) (*users.User, error) {
	var u *users.User
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE id = ?`+db.dialect.LockRow), id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("user %s", id))
		}
		if err := fn(u); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE users SET email = ?, name = ?, password_hash = ?, disabled_at = ?, updated_at = ? WHERE id = ?`),
			u.Email, u.Name, u.PasswordHash, disabledMicros(u), micros(u.UpdatedAt), id)
		return db.translate(err, fmt.Sprintf("user %q", u.Email))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (db *DB) CreateMembership(ctx context.Context, m *users.Membership) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		// Checked here so that a missing organization or user is not_found,
		// not a foreign key failure.
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT
			(SELECT COUNT(*) FROM organizations WHERE id = ?) + (SELECT COUNT(*) FROM users WHERE id = ?)`),
			m.OrgID, m.UserID).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return apperr.NotFound("organization %s or user %s not found", m.OrgID, m.UserID)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
			m.OrgID, m.UserID, string(m.Role), micros(m.CreatedAt))
		return db.translate(err, fmt.Sprintf("membership of user %s", m.UserID))
	})
}

func (db *DB) FindMemberships(ctx context.Context, orgID, userID string) ([]*users.Membership, error) {
	q := `SELECT org_id, user_id, role, created_at FROM memberships WHERE 1 = 1`
	var args []any
	if orgID != "" {
		q += ` AND org_id = ?`
		args = append(args, orgID)
	}
	if userID != "" {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	rows, err := db.read.QueryContext(ctx, db.q(q+` ORDER BY created_at, org_id, user_id`), args...)
	if err != nil {
		return nil, db.translate(err, "memberships")
	}
	defer rows.Close()
	var out []*users.Membership
	for rows.Next() {
		var m users.Membership
		var role string
		var created int64
		if err := rows.Scan(&m.OrgID, &m.UserID, &role, &created); err != nil {
			return nil, db.translate(err, "memberships")
		}
		m.Role, m.CreatedAt = identity.Role(role), fromMicros(created)
		out = append(out, &m)
	}
	return out, db.translate(rows.Err(), "memberships")
}

func (db *DB) SetMembershipRole(ctx context.Context, orgID, userID string, role identity.Role) error {
	res, err := db.write.ExecContext(ctx, db.q(`UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?`), string(role), orgID, userID)
	return db.affectedOne(res, err, fmt.Sprintf("membership of user %s", userID))
}

func (db *DB) DeleteMembership(ctx context.Context, orgID, userID string) error {
	res, err := db.write.ExecContext(ctx, db.q(`DELETE FROM memberships WHERE org_id = ? AND user_id = ?`), orgID, userID)
	return db.affectedOne(res, err, fmt.Sprintf("membership of user %s", userID))
}

// affectedOne turns a write that matched no row into CodeNotFound.
func (db *DB) affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return db.translate(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return db.translate(err, what)
	}
	if n == 0 {
		return apperr.NotFound("%s not found", what)
	}
	return nil
}
