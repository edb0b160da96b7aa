package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
)

func (db *DB) CreateOrganization(ctx context.Context, org *identity.Organization) error {
	updated := org.UpdatedAt
	if updated.IsZero() {
		updated = org.CreatedAt
	}
	_, err := db.write.ExecContext(ctx, db.q(`INSERT INTO organizations (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)`),
		org.ID, org.Name, micros(org.CreatedAt), micros(updated))
	return db.translate(err, fmt.Sprintf("organization %q", org.Name))
}

func (db *DB) FindOrganizationByName(ctx context.Context, name string) (*identity.Organization, error) {
	// Prepared once: the REST API reads its organization by name on every
	// call.
	org, err := scanOrganization(db.readRow(ctx, `SELECT `+organizationColumns+` FROM organizations WHERE name = ?`, name))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("organization %q", name))
	}
	return org, nil
}

const tokenColumns = `seq, id, org_id, name, principal, scopes, runner_id, creator_id, creator_principal,
	hash, bootstrap, created_at, expires_at, revoked_at, owner_user_id`

// scanToken scans tokenColumns, then extra columns into extra.
func scanToken(row interface{ Scan(...any) error }, extra ...any) (*identity.Token, error) {
	var t identity.Token
	var scopes, principal, creatorPrincipal string
	var created int64
	var expires, revoked sql.NullInt64
	dest := append([]any{&t.Seq, &t.ID, &t.OrgID, &t.Name, &principal, &scopes, &t.RunnerID, &t.Creator.ID,
		&creatorPrincipal, &t.Hash, &t.Bootstrap, &created, &expires, &revoked, &t.OwnerUserID}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	t.Principal = identity.Principal(principal)
	t.Creator.Principal = identity.Principal(creatorPrincipal)
	for _, s := range strings.Fields(scopes) {
		t.Scopes = append(t.Scopes, identity.Scope(s))
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromNullMicros(expires)
	t.RevokedAt = fromNullMicros(revoked)
	return &t, nil
}

func scopeText(scopes []identity.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, " ")
}

func (db *DB) insertToken(ctx context.Context, ex execer, t *identity.Token) error {
	if t.Principal != identity.PrincipalRunner {
		audit.SetObject(ctx, audit.TypeAPIKey, t.ID)
	}
	err := ex.QueryRowContext(ctx, db.q(`INSERT INTO tokens (id, org_id, name, principal, scopes, runner_id,
		creator_id, creator_principal, hash, bootstrap, created_at, expires_at, revoked_at, owner_user_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		t.ID, t.OrgID, t.Name, string(t.Principal), scopeText(t.Scopes), t.RunnerID, t.Creator.ID,
		string(t.Creator.Principal), t.Hash, t.Bootstrap, micros(t.CreatedAt), nullMicros(t.ExpiresAt),
		nullMicros(t.RevokedAt), t.OwnerUserID).Scan(&t.Seq)
	return db.translate(err, fmt.Sprintf("token %q", t.Name))
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) CreateToken(ctx context.Context, t *identity.Token) error {
	// A transaction, so that the key's audit entry commits with it.
	return db.tx(ctx, func(tx *sql.Tx) error { return db.insertToken(ctx, tx, t) })
}

// qualify prefixes each column of a column list with alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// tokenWithOwnerQuery reads a key with its owner's state in one statement
// (prepared once): the owner's columns are NULL for a key no user owns, and
// disabled_at is NULL too when its owner no longer exists.
var tokenWithOwnerQuery = `SELECT ` + qualify("t", tokenColumns) + `, u.disabled_at, u.installation_admin, m.role
	FROM tokens t LEFT JOIN users u ON u.id = t.owner_user_id
	LEFT JOIN memberships m ON m.user_id = u.id AND m.org_id = t.org_id
	WHERE t.hash = ?`

func (db *DB) FindTokenByHash(ctx context.Context, hash string) (*identity.Token, error) {
	var disabled sql.NullInt64
	var admin sql.NullBool
	var role sql.NullString
	t, err := scanToken(db.readRow(ctx, tokenWithOwnerQuery, hash), &disabled, &admin, &role)
	if err != nil {
		return nil, db.translate(err, "token")
	}
	if t.OwnerUserID != "" && disabled.Valid {
		// The owner's state is read with the key, so that a use of a
		// user's key that reads it sees the owner as they are now.
		t.Owner = &identity.TokenOwner{Disabled: disabled.Int64 != 0, Role: identity.Role(role.String), InstallationAdmin: admin.Bool}
	}
	return t, nil
}

func (db *DB) FindBootstrapToken(ctx context.Context, orgID string) (*identity.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx,
		db.q(`SELECT `+tokenColumns+` FROM tokens WHERE org_id = ? AND bootstrap = ?`), orgID, true))
	if err != nil {
		return nil, db.translate(err, "bootstrap token")
	}
	return t, nil
}

func (db *DB) FindTokens(ctx context.Context, f identity.TokenFilter) ([]*identity.Token, error) {
	query := `SELECT ` + tokenColumns + ` FROM tokens WHERE seq > ?`
	args := []any{f.After}
	if f.OrgID != "" || f.OwnerUserID == "" {
		query += ` AND org_id = ?`
		args = append(args, f.OrgID)
	}
	if f.OwnerUserID != "" {
		query += ` AND owner_user_id = ?`
		args = append(args, f.OwnerUserID)
	}
	if f.ID != "" {
		query += ` AND id = ?`
		args = append(args, f.ID)
	}
	if !f.IncludeRevoked {
		query += ` AND revoked_at IS NULL`
	}
	query += ` ORDER BY seq`
	if f.Limit > 0 {
		query += ` LIMIT ` + fmt.Sprint(f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "tokens")
	}
	defer rows.Close()
	var out []*identity.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, db.translate(err, "tokens")
		}
		out = append(out, t)
	}
	return out, db.translate(rows.Err(), "tokens")
}

func (db *DB) RevokeToken(ctx context.Context, orgID, id string, at time.Time, check identity.RevokeCheck) (*identity.Token, error) {
	var t *identity.Token
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// With a check, the organization's unrevoked API keys are locked
		// first, in one order (seq), and the token after them: two
		// revocations at once then each see the other's effect (they
		// cannot both take the last two admin keys), and neither holds
		// the row the other waits for while waiting for one of its own,
		// which PostgreSQL ends as a deadlock.
		var keys []*identity.Token
		if check != nil {
			rows, err := tx.QueryContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens
				WHERE org_id = ? AND principal = ? AND revoked_at IS NULL ORDER BY seq`+db.dialect.LockRow),
				orgID, string(identity.PrincipalServiceAccount))
			if err != nil {
				return err
			}
			for rows.Next() {
				k, err := scanToken(rows)
				if err != nil {
					rows.Close()
					return err
				}
				keys = append(keys, k)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil || t.RevokedAt != nil {
			return err
		}
		if check != nil {
			if err := check(t, keys); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ? WHERE org_id = ? AND id = ?`),
			micros(at), orgID, id); err != nil {
			return err
		}
		revoked := fromMicros(micros(at))
		t.RevokedAt = &revoked
		return nil
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("token %q", id))
	}
	return t, nil
}

// SetTokenHash replaces the token's secret and makes it active again: not
// revoked, not expiring. Only the bootstrap admin key is rotated this way.
func (db *DB) SetTokenHash(ctx context.Context, orgID, id, hash string) error {
	res, err := db.write.ExecContext(ctx, db.q(`UPDATE tokens SET hash = ?, revoked_at = NULL, expires_at = NULL WHERE org_id = ? AND id = ?`), hash, orgID, id)
	if err != nil {
		return db.translate(err, fmt.Sprintf("token %q", id))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.NotFound("token %q not found", id)
	}
	return nil
}

func (db *DB) insertExchangeToken(ctx context.Context, ex execer, x *identity.ExchangeToken) error {
	_, err := ex.ExecContext(ctx, db.q(`INSERT INTO exchange_tokens (hash, org_id, runner_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?)`),
		x.Hash, x.OrgID, x.RunnerID, micros(x.CreatedAt), micros(x.ExpiresAt), nullMicros(x.UsedAt))
	return db.translate(err, "exchange token")
}

func (db *DB) CreateExchangeToken(ctx context.Context, x *identity.ExchangeToken) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The runner's row, locked, must not be a tombstone: the foreign key
		// alone would accept a token for a deleted runner (its row stays),
		// and a deletion that committed meanwhile has already deleted the
		// runner's exchange tokens. The lock orders this against DeleteRunner
		// on PostgreSQL; SQLite's one writer does the same.
		var one int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM runners WHERE org_id = ? AND id = ?`+live+db.dialect.LockRow),
			x.OrgID, x.RunnerID).Scan(&one); err != nil {
			return err
		}
		return db.insertExchangeToken(ctx, tx, x)
	})
	return db.translate(err, fmt.Sprintf("runner %q", x.RunnerID))
}

func (db *DB) RedeemExchangeToken(ctx context.Context, hash string, at time.Time, issue func(*identity.ExchangeToken) (*identity.Token, error)) ([]*identity.Token, error) {
	var revoked []*identity.Token
	err := db.tx(ctx, func(tx *sql.Tx) error {
		revoked = nil
		x := identity.ExchangeToken{Hash: hash}
		var created, expires int64
		var used sql.NullInt64
		err := tx.QueryRowContext(ctx, db.q(`SELECT org_id, runner_id, created_at, expires_at, used_at, redeemed_key, access_token_id
			FROM exchange_tokens WHERE hash = ?`+db.dialect.LockRow), hash).
			Scan(&x.OrgID, &x.RunnerID, &created, &expires, &used, &x.RedeemedKey, &x.AccessTokenID)
		if err != nil {
			return err
		}
		x.CreatedAt, x.ExpiresAt, x.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
		prevAccess := x.AccessTokenID
		t, err := issue(&x)
		if err != nil {
			return err
		}
		// The call has no caller (the exchange token is its credential):
		// the runner is the actor of its entry.
		if d, ok := audit.FromContext(ctx); ok {
			d.SetCaller(&identity.Caller{OrgID: x.OrgID, TokenID: t.ID,
				Subject: identity.Subject{ID: x.RunnerID, Principal: identity.PrincipalRunner}})
		}
		audit.SetObject(ctx, "RESOURCE_TYPE_RUNNER", x.RunnerID)
		// The guard on the access token seen above makes a concurrent
		// second redemption update nothing, even where the row lock is a
		// no-op. The first use's time stays: it bounds the retry window.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE exchange_tokens SET used_at = COALESCE(used_at, ?), redeemed_key = ?, access_token_id = ?
			WHERE hash = ? AND access_token_id = ?`), micros(at), x.RedeemedKey, t.ID, hash, prevAccess)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return apperr.Unauthenticated("exchange token has already been used")
		}
		// One runner identity, one daemon: the new token supersedes every
		// earlier one of the runner (the one a retried exchange issued
		// too).
		rows, err := tx.QueryContext(ctx, db.q(`SELECT `+tokenColumns+` FROM tokens
			WHERE org_id = ? AND runner_id = ? AND principal = ? AND revoked_at IS NULL`), x.OrgID, x.RunnerID, string(identity.PrincipalRunner))
		if err != nil {
			return err
		}
		for rows.Next() {
			old, err := scanToken(rows)
			if err != nil {
				rows.Close()
				return err
			}
			revoked = append(revoked, old)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, old := range revoked {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE tokens SET revoked_at = ? WHERE id = ?`), micros(at), old.ID); err != nil {
				return err
			}
			old.RevokedAt = &at
		}
		return db.insertToken(ctx, tx, t)
	})
	if err != nil {
		return nil, db.translate(err, "exchange token")
	}
	return revoked, nil
}
