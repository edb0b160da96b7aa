package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/runyard/runyard/internal/audit"
	"time"

	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
)

const environmentColumns = `seq, id, org_id, runner_id, runner_kind, name, context_url, phase, spec, status,
	creator_id, creator_principal, created_at, updated_at, last_started_at, last_activity_at, activity_source`

func scanEnvironment(row interface{ Scan(...any) error }) (*environments.Environment, error) {
	var e environments.Environment
	var kind, phase, spec, status, creatorPrincipal string
	var created, updated int64
	var lastStarted, lastActivity sql.NullInt64
	var activitySource string
	if err := row.Scan(&e.Seq, &e.ID, &e.OrgID, &e.RunnerID, &kind, &e.Name, &e.ContextURL, &phase, &spec, &status,
		&e.Creator.ID, &creatorPrincipal, &created, &updated, &lastStarted, &lastActivity, &activitySource); err != nil {
		return nil, err
	}
	if lastActivity.Valid {
		e.Activity = &environments.Activity{Source: activitySource, At: fromMicros(lastActivity.Int64)}
	}
	if err := json.Unmarshal([]byte(spec), &e.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of environment %q: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(status), &e.Status); err != nil {
		return nil, fmt.Errorf("decode status of environment %q: %w", e.ID, err)
	}
	e.RunnerKind = runners.Kind(kind)
	e.Status.Phase = environments.Phase(phase)
	e.Creator.Principal = identity.Principal(creatorPrincipal)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	e.LastStartedAt = fromNullMicros(lastStarted)
	return &e, nil
}

func environmentDocs(e *environments.Environment) (spec, status string, err error) {
	s, err := json.Marshal(e.Spec)
	if err != nil {
		return "", "", fmt.Errorf("encode spec: %w", err)
	}
	st, err := json.Marshal(e.Status)
	if err != nil {
		return "", "", fmt.Errorf("encode status: %w", err)
	}
	return string(s), string(st), nil
}

func (db *DB) CreateEnvironment(ctx context.Context, e *environments.Environment) error {
	audit.SetObject(ctx, "RESOURCE_TYPE_ENVIRONMENT", e.ID)
	spec, status, err := environmentDocs(e)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.q(`INSERT INTO environments (id, org_id, runner_id, runner_kind, name, context_url,
			phase, spec, status, creator_id, creator_principal, created_at, updated_at, last_started_at,
			last_activity_at, activity_source, stop_after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
			e.ID, e.OrgID, e.RunnerID, string(e.RunnerKind), e.Name, e.ContextURL, string(e.Status.Phase), spec, status,
			e.Creator.ID, string(e.Creator.Principal), micros(e.CreatedAt), micros(e.UpdatedAt),
			nullMicros(e.LastStartedAt), nullMicros(activityAt(e)), activitySource(e), nullMicros(e.StopAfter())).Scan(&e.Seq)
	})
	return db.translate(err, fmt.Sprintf("environment %q", e.ID))
}

func (db *DB) FindEnvironmentByID(ctx context.Context, orgID, id string) (*environments.Environment, error) {
	e, err := scanEnvironment(db.readRow(ctx, `SELECT `+environmentColumns+` FROM environments WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("environment %q", id))
	}
	return e, nil
}

// appendIn adds "AND column IN (...)" for a non-empty set of values.
func appendIn[T ~string](query string, args []any, column string, vals []T) (string, []any) {
	if len(vals) == 0 {
		return query, args
	}
	query += ` AND ` + column + ` IN ` + in(len(vals))
	for _, v := range vals {
		args = append(args, string(v))
	}
	return query, args
}

func (db *DB) FindEnvironments(ctx context.Context, f environments.Filter) ([]*environments.Environment, error) {
	query := `SELECT ` + environmentColumns + ` FROM environments WHERE org_id = ?`
	args := []any{f.OrgID}
	if f.Before > 0 {
		query += ` AND seq < ?`
		args = append(args, f.Before)
	}
	query, args = appendIn(query, args, "runner_id", f.RunnerIDs)
	query, args = appendIn(query, args, "phase", f.Phases)
	query, args = appendIn(query, args, "creator_id", f.CreatorIDs)
	query, args = appendIn(query, args, "runner_kind", f.RunnerKinds)
	query += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.translate(err, "environments")
	}
	defer rows.Close()
	var out []*environments.Environment
	for rows.Next() {
		e, err := scanEnvironment(rows)
		if err != nil {
			return nil, db.translate(err, "environments")
		}
		out = append(out, e)
	}
	return out, db.translate(rows.Err(), "environments")
}

// lockEnvironment reads an environment in tx for an update of it or of its
// automations: on PostgreSQL the row lock serializes every change to one
// environment's automations, so reference checks and cycle checks see every
// committed change.
func (db *DB) lockEnvironment(ctx context.Context, tx *sql.Tx, orgID, id string) (*environments.Environment, error) {
	return scanEnvironment(tx.QueryRowContext(ctx,
		db.q(`SELECT `+environmentColumns+` FROM environments WHERE org_id = ? AND id = ?`+db.dialect.LockRow), orgID, id))
}

func (db *DB) UpdateEnvironment(ctx context.Context, orgID, id string, fn func(*environments.Environment) error) (*environments.Environment, error) {
	var out *environments.Environment
	err := db.tx(ctx, func(tx *sql.Tx) error {
		e, err := db.lockEnvironment(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		spec, status, err := environmentDocs(e)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE environments SET name = ?, phase = ?, spec = ?, status = ?,
			updated_at = ?, last_started_at = ?, last_activity_at = ?, activity_source = ?, stop_after = ?
			WHERE org_id = ? AND id = ?`),
			e.Name, string(e.Status.Phase), spec, status, micros(e.UpdatedAt), nullMicros(e.LastStartedAt),
			nullMicros(activityAt(e)), activitySource(e), nullMicros(e.StopAfter()), orgID, id)
		if err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("environment %q", id))
	}
	return out, nil
}

func (db *DB) DeleteEnvironment(ctx context.Context, orgID, id string, keep func(*environments.Environment) error) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		e, err := db.lockEnvironment(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if keep != nil {
			if err := keep(e); err != nil {
				return err
			}
		}
		return db.deleteEnvironments(ctx, tx, `org_id = ? AND id = ?`, orgID, id)
	})
	return db.translate(err, fmt.Sprintf("environment %q", id))
}

func (db *DB) DeleteRunnerEnvironments(ctx context.Context, orgID, runnerID string) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM environments WHERE org_id = ? AND runner_id = ?`),
			orgID, runnerID).Scan(&n); err != nil {
			return err
		}
		return db.deleteEnvironments(ctx, tx, `org_id = ? AND runner_id = ?`, orgID, runnerID)
	})
	return int(n), db.translate(err, fmt.Sprintf("environments of runner %q", runnerID))
}

// environmentChildren are the tables whose rows belong to an environment,
// emptied before it goes (their foreign keys forbid the other order).
var environmentChildren = []string{}

// deleteEnvironments removes the environments matching where (on the
// environments table, with args) and every row that belongs to them.
func (db *DB) deleteEnvironments(ctx context.Context, tx *sql.Tx, where string, args ...any) error {
	for _, table := range environmentChildren {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+table+` WHERE environment_id IN (SELECT id FROM environments WHERE `+where+`)`), args...); err != nil {
			return fmt.Errorf("delete from %s: %w", table, err)
		}
	}
	_, err := tx.ExecContext(ctx, db.q(`DELETE FROM environments WHERE `+where), args...)
	return err
}

func activityAt(e *environments.Environment) *time.Time {
	if e.Activity == nil {
		return nil
	}
	return &e.Activity.At
}

func activitySource(e *environments.Environment) string {
	if e.Activity == nil {
		return ""
	}
	return e.Activity.Source
}

func (db *DB) FindEnvironmentsToStop(ctx context.Context, now time.Time, limit int) ([]environments.EnvironmentRef, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT org_id, id FROM environments
		WHERE stop_after IS NOT NULL AND stop_after < ? ORDER BY stop_after LIMIT ?`), micros(now), limit)
	if err != nil {
		return nil, db.translate(err, "environments")
	}
	defer rows.Close()
	var out []environments.EnvironmentRef
	for rows.Next() {
		var r environments.EnvironmentRef
		if err := rows.Scan(&r.OrgID, &r.ID); err != nil {
			return nil, db.translate(err, "environments")
		}
		out = append(out, r)
	}
	return out, db.translate(rows.Err(), "environments")
}

func (db *DB) EnvironmentBusy(ctx context.Context, orgID, id string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM (SELECT 1 FROM task_executions
		WHERE org_id = ? AND environment_id = ? AND `+unfinishedPhases+` LIMIT 1) AS unfinished`), orgID, id).Scan(&n)
	if err != nil {
		return false, db.translate(err, fmt.Sprintf("environment %q", id))
	}
	return n > 0, nil
}
