package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

// User is short for users.User here.
type User = users.User

const userColumns = `seq, id, email, name, password_hash, disabled_at, created_at, updated_at, installation_admin`

func scanUser(row interface{ Scan(...any) error }) (*users.User, error) {
	var u users.User
	var disabled, created, updated int64
	if err := row.Scan(&u.Seq, &u.ID, &u.Email, &u.Name, &u.PasswordHash, &disabled, &created, &updated, &u.InstallationAdmin); err != nil {
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

func (db *DB) CreateUser(ctx context.Context, u *User) error {
	return db.CreateUserWithMembership(ctx, u, nil)
}

func (db *DB) insertUser(ctx context.Context, ex execer, u *User) error {
	audit.SetObject(ctx, audit.TypeUser, u.ID)
	err := ex.QueryRowContext(ctx, db.q(`INSERT INTO users (id, email, name, password_hash, disabled_at, created_at, updated_at, installation_admin)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		u.ID, u.Email, u.Name, u.PasswordHash, disabledMicros(u), micros(u.CreatedAt), micros(u.UpdatedAt), u.InstallationAdmin).Scan(&u.Seq)
	return db.translate(err, fmt.Sprintf("user %q", u.Email))
}

func (db *DB) CreateUserWithMembership(ctx context.Context, u *User, m *users.Membership) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.insertUser(ctx, tx, u); err != nil {
			return err
		}
		if m == nil {
			return nil
		}
		return db.insertMembership(ctx, tx, m)
	})
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
		audit.SetObject(ctx, audit.TypeUser, id)
		_, err = tx.ExecContext(ctx, db.q(`UPDATE users SET email = ?, name = ?, password_hash = ?, disabled_at = ?, updated_at = ?,
			installation_admin = ? WHERE id = ?`),
			u.Email, u.Name, u.PasswordHash, disabledMicros(u), micros(u.UpdatedAt), u.InstallationAdmin, id)
		return db.translate(err, fmt.Sprintf("user %q", u.Email))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (db *DB) CreateMembership(ctx context.Context, m *users.Membership) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return db.insertMembership(ctx, tx, m) })
}

func (db *DB) insertMembership(ctx context.Context, tx *sql.Tx, m *users.Membership) error {
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
	audit.SetObject(ctx, audit.TypeUser, m.UserID)
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
		m.OrgID, m.UserID, string(m.Role), micros(m.CreatedAt))
	return db.translate(err, fmt.Sprintf("membership of user %s", m.UserID))
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
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?`), string(role), orgID, userID)
		return db.affectedOne(res, err, fmt.Sprintf("membership of user %s", userID))
	})
}

func (db *DB) DeleteMembership(ctx context.Context, orgID, userID string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM memberships WHERE org_id = ? AND user_id = ?`), orgID, userID)
		return db.affectedOne(res, err, fmt.Sprintf("membership of user %s", userID))
	})
}

func (db *DB) DisableUser(ctx context.Context, id string, at time.Time, check func(u *User, admins map[string]int) error) (*User, []*identity.Token, error) {
	var u *User
	var revoked []*identity.Token
	err := db.tx(ctx, func(tx *sql.Tx) error {
		revoked = nil
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, db.q(`SELECT `+userColumns+` FROM users WHERE id = ?`+db.dialect.LockRow), id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("user %s", id))
		}
		audit.SetObject(ctx, audit.TypeUser, id)
		if u.DisabledAt == nil && check != nil {
			admins, err := db.lockAdminCounts(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := check(u, admins); err != nil {
				return err
			}
		}
		if u.DisabledAt == nil {
			t := fromMicros(micros(at))
			u.DisabledAt, u.UpdatedAt = &t, t
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?`), micros(at), micros(at), id); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens WHERE owner_user_id = ? AND revoked_at IS NULL ORDER BY seq`+db.dialect.LockRow), id)
		if err != nil {
			return err
		}
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				rows.Close()
				return err
			}
			r := fromMicros(micros(at))
			t.RevokedAt = &r
			revoked = append(revoked, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ? WHERE owner_user_id = ? AND revoked_at IS NULL`), micros(at), id)
		return err
	})
	if err != nil {
		return nil, nil, db.translate(err, fmt.Sprintf("user %s", id))
	}
	return u, revoked, nil
}

// lockAdminCounts locks the organization row of every organization userID
// is an admin of (in id order, so two callers never wait on each other
// crosswise) and counts each one's enabled admins. UpdateMembership takes
// the same lock, so a disable and a demotion of an organization's last two
// admins go one after the other and the second sees the first.
func (db *DB) lockAdminCounts(ctx context.Context, tx *sql.Tx, userID string) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT org_id FROM memberships WHERE user_id = ? AND role = ? ORDER BY org_id`),
		userID, string(identity.RoleAdmin))
	if err != nil {
		return nil, err
	}
	var orgIDs []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, err
		}
		orgIDs = append(orgIDs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	admins := make(map[string]int, len(orgIDs))
	for _, o := range orgIDs {
		var got string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM organizations WHERE id = ?`+db.dialect.LockRow), o).Scan(&got); err != nil {
			return nil, db.translate(err, fmt.Sprintf("organization %s", o))
		}
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = ? AND m.role = ? AND u.disabled_at = 0`), o, string(identity.RoleAdmin)).Scan(&n); err != nil {
			return nil, err
		}
		admins[o] = n
	}
	return admins, nil
}

func (db *DB) UpdateMembership(ctx context.Context, orgID, userID string, fn func(m *users.Membership, admins int) (bool, error)) (*users.Membership, error) {
	var m users.Membership
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The organization's row is the lock: two changes of one
		// organization's memberships go one after the other, so they cannot
		// both remove one of its last two admins.
		var got string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM organizations WHERE id = ?`+db.dialect.LockRow), orgID).Scan(&got); err != nil {
			return db.translate(err, fmt.Sprintf("membership of user %s", userID))
		}
		var role string
		var created int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = ? AND user_id = ?`),
			orgID, userID).Scan(&m.OrgID, &m.UserID, &role, &created); err != nil {
			return db.translate(err, fmt.Sprintf("membership of user %s", userID))
		}
		m.Role, m.CreatedAt = identity.Role(role), fromMicros(created)
		var admins int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = ? AND m.role = ? AND u.disabled_at = 0`), orgID, string(identity.RoleAdmin)).Scan(&admins); err != nil {
			return err
		}
		audit.SetObject(ctx, audit.TypeUser, userID)
		remove, err := fn(&m, admins)
		if err != nil {
			return err
		}
		if remove {
			_, err = tx.ExecContext(ctx, db.q(`DELETE FROM memberships WHERE org_id = ? AND user_id = ?`), orgID, userID)
		} else {
			_, err = tx.ExecContext(ctx, db.q(`UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?`), string(m.Role), orgID, userID)
		}
		return err
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("membership of user %s", userID))
	}
	return &m, nil
}

const inviteColumns = `hash, id, org_id, role, creator_id, created_at, expires_at, used_at, used_by`

func scanInvite(row interface{ Scan(...any) error }) (*users.Invite, error) {
	var inv users.Invite
	var role string
	var created, expires, used int64
	if err := row.Scan(&inv.Hash, &inv.ID, &inv.OrgID, &role, &inv.CreatorID, &created, &expires, &used, &inv.UsedBy); err != nil {
		return nil, err
	}
	inv.Role, inv.CreatedAt, inv.ExpiresAt = identity.Role(role), fromMicros(created), fromMicros(expires)
	if used != 0 {
		t := fromMicros(used)
		inv.UsedAt = &t
	}
	return &inv, nil
}

func (db *DB) CreateInvite(ctx context.Context, inv *users.Invite) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var got string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM organizations WHERE id = ?`), inv.OrgID).Scan(&got); err != nil {
			return db.translate(err, fmt.Sprintf("organization %s", inv.OrgID))
		}
		audit.SetObject(ctx, audit.TypeInvite, inv.ID)
		used := int64(0)
		if inv.UsedAt != nil {
			used = micros(*inv.UsedAt)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO invites (`+inviteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			inv.Hash, inv.ID, inv.OrgID, string(inv.Role), inv.CreatorID, micros(inv.CreatedAt), micros(inv.ExpiresAt), used, inv.UsedBy)
		return db.translate(err, "invite")
	})
}

func (db *DB) FindPendingInvites(ctx context.Context, orgID string, at time.Time) ([]*users.Invite, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+inviteColumns+` FROM invites
		WHERE org_id = ? AND used_at = 0 AND expires_at > ? ORDER BY created_at, id`), orgID, micros(at))
	if err != nil {
		return nil, db.translate(err, "invites")
	}
	defer rows.Close()
	var out []*users.Invite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, db.translate(err, "invites")
		}
		out = append(out, inv)
	}
	return out, db.translate(rows.Err(), "invites")
}

func (db *DB) DeleteInvite(ctx context.Context, orgID, id string) (*users.Invite, error) {
	var inv *users.Invite
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, db.q(`SELECT `+inviteColumns+` FROM invites WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return db.translate(err, fmt.Sprintf("invite %s", id))
		}
		audit.SetObject(ctx, audit.TypeInvite, id)
		if inv.UsedAt != nil {
			return apperr.FailedPrecondition("invite %s was used already: remove the member instead", id)
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM invites WHERE org_id = ? AND id = ?`), orgID, id)
		return err
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("invite %s", id))
	}
	return inv, nil
}

func (db *DB) FindInviteByHash(ctx context.Context, hash string) (*users.Invite, error) {
	inv, err := scanInvite(db.read.QueryRowContext(ctx, db.q(`SELECT `+inviteColumns+` FROM invites WHERE hash = ?`), hash))
	if err != nil {
		return nil, db.translate(err, "invite")
	}
	return inv, nil
}

func (db *DB) RedeemInvite(ctx context.Context, hash string, at time.Time, fn func(*users.Invite) (*User, *users.Membership, error)) (*users.Invite, error) {
	var inv *users.Invite
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, db.q(`SELECT `+inviteColumns+` FROM invites WHERE hash = ?`+db.dialect.LockRow), hash))
		if err != nil {
			return db.translate(err, "invite")
		}
		audit.SetObject(ctx, audit.TypeInvite, inv.ID)
		u, m, err := fn(inv)
		if err != nil {
			return err
		}
		if u != nil {
			if err := db.insertUser(ctx, tx, u); err != nil {
				return err
			}
		}
		if err := db.insertMembership(ctx, tx, m); err != nil {
			return err
		}
		// The guard makes a concurrent second redemption change nothing
		// where the row lock is a no-op.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE invites SET used_at = ?, used_by = ? WHERE hash = ? AND used_at = 0`), micros(at), m.UserID, hash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return apperr.FailedPrecondition("invite has already been used")
		}
		t := fromMicros(micros(at))
		inv.UsedAt, inv.UsedBy = &t, m.UserID
		return nil
	})
	if err != nil {
		return nil, db.translate(err, "invite")
	}
	return inv, nil
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
