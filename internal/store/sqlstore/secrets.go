package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/runyard/runyard/internal/audit"
	"strings"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/secrets"
)

const secretColumns = `seq, id, org_id, name, scope_kind, scope_id, environment_variable, file_path,
	container_registry_basic_auth_host, creator_id, creator_principal, key_id, nonce, ciphertext, created_at, updated_at`

func scanSecret(row interface{ Scan(...any) error }) (*secrets.Secret, error) {
	var s secrets.Secret
	var scopeKind, creatorPrincipal string
	var created, updated int64
	if err := row.Scan(&s.Seq, &s.ID, &s.OrgID, &s.Name, &scopeKind, &s.Scope.ID, &s.EnvironmentVariable, &s.FilePath,
		&s.ContainerRegistryBasicAuthHost, &s.Creator.ID, &creatorPrincipal, &s.Value.KeyID, &s.Value.Nonce, &s.Value.Data, &created, &updated); err != nil {
		return nil, err
	}
	s.Scope.Kind = secrets.ScopeKind(scopeKind)
	s.Creator.Principal = identity.Principal(creatorPrincipal)
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &s, nil
}

func (db *DB) CreateSecret(ctx context.Context, s *secrets.Secret) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_SECRET", s.ID)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.q(`INSERT INTO secrets (id, org_id, name, scope_kind, scope_id, environment_variable,
			file_path, container_registry_basic_auth_host, creator_id, creator_principal, key_id, nonce, ciphertext, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
			s.ID, s.OrgID, s.Name, string(s.Scope.Kind), s.Scope.ID, s.EnvironmentVariable, s.FilePath,
			s.ContainerRegistryBasicAuthHost, s.Creator.ID, string(s.Creator.Principal), s.Value.KeyID, s.Value.Nonce, s.Value.Data,
			micros(s.CreatedAt), micros(s.UpdatedAt)).Scan(&s.Seq)
	})
	return db.translate(err, fmt.Sprintf("secret %q", s.Name))
}

func (db *DB) FindSecretByID(ctx context.Context, orgID, id string) (*secrets.Secret, error) {
	s, err := scanSecret(db.read.QueryRowContext(ctx, db.q(`SELECT `+secretColumns+` FROM secrets WHERE org_id = ? AND id = ?`), orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("secret %q", id))
	}
	return s, nil
}

func (db *DB) FindSecrets(ctx context.Context, f secrets.Filter) ([]*secrets.Secret, error) {
	query := `SELECT ` + secretColumns + ` FROM secrets WHERE org_id = ?`
	args := []any{f.OrgID}
	if f.After > 0 {
		query += ` AND seq > ?`
		args = append(args, f.After)
	}
	if len(f.Scopes) > 0 {
		terms := make([]string, len(f.Scopes))
		for i, sc := range f.Scopes {
			terms[i] = `(scope_kind = ? AND scope_id = ?)`
			args = append(args, string(sc.Kind), sc.ID)
		}
		query += ` AND (` + strings.Join(terms, ` OR `) + `)`
	}
	query, args = appendIn(query, args, "id", f.IDs)
	query += ` ORDER BY seq`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "secrets")
	}
	defer rows.Close()
	var out []*secrets.Secret
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, db.translate(err, "secrets")
		}
		out = append(out, s)
	}
	return out, db.translate(rows.Err(), "secrets")
}

func (db *DB) UpdateSecret(ctx context.Context, orgID, id string, fn func(*secrets.Secret) error) (*secrets.Secret, error) {
	var out *secrets.Secret
	err := db.tx(ctx, func(tx *sql.Tx) error {
		s, err := scanSecret(tx.QueryRowContext(ctx,
			db.q(`SELECT `+secretColumns+` FROM secrets WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
		// Only the value and the time change: name, scope and mount are
		// fixed at creation (the API has no method to change them).
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?
			WHERE org_id = ? AND id = ?`),
			s.Value.KeyID, s.Value.Nonce, s.Value.Data, micros(s.UpdatedAt), orgID, id); err != nil {
			return err
		}
		out = s
		return nil
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("secret %q", id))
	}
	return out, nil
}

func (db *DB) DeleteSecret(ctx context.Context, orgID, id string) error {
	return db.deleteOrgRow(ctx, "secrets", orgID, id, fmt.Sprintf("secret %q", id))
}

// deleteOrgRow deletes the row id of an organization from table, in a
// transaction (with the call's audit entry); no such row is not_found,
// named what.
func (db *DB) deleteOrgRow(ctx context.Context, table, orgID, id, what string) error {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE org_id = ? AND id = ?`), orgID, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = sql.ErrNoRows
	}
	return db.translate(err, what)
}
