package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"time"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
)

const auditColumns = `seq, org_id, actor_principal, actor_id, key_id, user_id, surface, method,
	object_type, object_id, client_ip, user_agent, outcome, created_at`

const insertAudit = `INSERT INTO audit_log (org_id, actor_principal, actor_id, key_id, user_id, surface, method,
	object_type, object_id, client_ip, user_agent, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func auditArgs(e *audit.Entry) []any {
	return []any{e.OrgID, string(e.ActorPrincipal), e.ActorID, e.KeyID, e.UserID, e.Surface, e.Method,
		e.ObjectType, e.ObjectID, e.ClientIP, e.UserAgent, e.Outcome, micros(e.CreatedAt)}
}

// pendingAudit returns the audit entry of ctx's call that is still to be
// written with its change, and the draft it belongs to.
func pendingAudit(ctx context.Context) (*audit.Draft, audit.Entry, bool) {
	d, ok := audit.FromContext(ctx)
	if !ok {
		return nil, audit.Entry{}, false
	}
	e, ok := d.Pending(ctx, time.Now())
	return d, e, ok
}

// writeDraft writes the audit entry of ctx's call, if it has one not yet
// written, in tx: the entry commits or rolls back with the change.
func (db *DB) writeDraft(ctx context.Context, tx *sql.Tx) (*audit.Draft, error) {
	d, e, ok := pendingAudit(ctx)
	if !ok {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, db.q(insertAudit), auditArgs(&e)...); err != nil {
		return nil, fmt.Errorf("record audit entry: %w", err)
	}
	return d, nil
}

// AppendAudit implements audit.Store.
func (db *DB) AppendAudit(ctx context.Context, e *audit.Entry) error {
	_, err := db.write.ExecContext(ctx, db.q(insertAudit), auditArgs(e)...)
	return db.translate(err, "audit entry")
}

// FindAudit implements audit.Store.
func (db *DB) FindAudit(ctx context.Context, f audit.Filter) ([]*audit.Entry, error) {
	query := `SELECT ` + auditColumns + ` FROM audit_log WHERE org_id = ? AND seq > ?`
	args := []any{f.OrgID, f.After}
	if f.Since != nil {
		query += ` AND created_at >= ?`
		args = append(args, micros(*f.Since))
	}
	if f.Until != nil {
		query += ` AND created_at < ?`
		args = append(args, micros(*f.Until))
	}
	anyOf := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		query += ` AND ` + col + ` IN ` + in(len(vals))
		for _, v := range vals {
			args = append(args, v)
		}
	}
	principals := make([]string, len(f.ActorPrincipals))
	for i, p := range f.ActorPrincipals {
		principals[i] = string(p)
	}
	anyOf("actor_id", f.ActorIDs)
	anyOf("actor_principal", principals)
	anyOf("object_id", f.ObjectIDs)
	anyOf("object_type", f.ObjectTypes)
	anyOf("method", f.Methods)
	query += ` ORDER BY seq`
	if f.Limit > 0 {
		query += ` LIMIT ` + fmt.Sprint(f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "audit log")
	}
	defer rows.Close()
	var out []*audit.Entry
	for rows.Next() {
		var e audit.Entry
		var principal string
		var at int64
		if err := rows.Scan(&e.Seq, &e.OrgID, &principal, &e.ActorID, &e.KeyID, &e.UserID, &e.Surface, &e.Method,
			&e.ObjectType, &e.ObjectID, &e.ClientIP, &e.UserAgent, &e.Outcome, &at); err != nil {
			return nil, db.translate(err, "audit log")
		}
		e.ActorPrincipal = identity.Principal(principal)
		e.CreatedAt = fromMicros(at)
		out = append(out, &e)
	}
	return out, db.translate(rows.Err(), "audit log")
}

// PruneAudit implements audit.Store. The table's triggers refuse every
// DELETE but one in a transaction that opened the prune's gate: on
// PostgreSQL the local setting runyard.audit_prune, on SQLite a row of
// audit_log_prune that is gone again before the commit.
func (db *DB) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		open, shut := `INSERT INTO audit_log_prune (open) VALUES (1)`, `DELETE FROM audit_log_prune`
		if db.dialect.Numbered {
			open, shut = `SELECT set_config('runyard.audit_prune', 'on', true)`, ""
		}
		if _, err := tx.ExecContext(ctx, open); err != nil {
			return fmt.Errorf("prune audit log: open the gate: %w", err)
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM audit_log WHERE created_at < ?`), micros(cutoff))
		if err != nil {
			return fmt.Errorf("prune audit log: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if shut != "" {
			if _, err := tx.ExecContext(ctx, shut); err != nil {
				return fmt.Errorf("prune audit log: close the gate: %w", err)
			}
		}
		return nil
	})
	return n, db.translate(err, "audit log")
}
