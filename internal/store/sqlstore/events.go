package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/runyard/runyard/internal/events"
)

// The events table is written by triggers (migration 00020) in the
// transaction of each change; this file only reads and prunes it.

// Committed is signalled after every write transaction commits.
func (db *DB) Committed() <-chan struct{} { return db.committed }

// signalCommit wakes the event hub without ever waiting for it.
func (db *DB) signalCommit() {
	select {
	case db.committed <- struct{}{}:
	default:
	}
}

// ReadEvents implements events.Store.
func (db *DB) ReadEvents(ctx context.Context, after int64, limit int) ([]events.Event, uint64, error) {
	query := `SELECT id, org_id, resource_type, resource_id, operation, environment_id, owner, created_at, ''
		FROM events WHERE id > ? ORDER BY id LIMIT ?`
	if db.dialect.Name == "postgres" {
		// When the statement ran (its snapshot was taken before): a
		// transaction that drew an id this read does not see started
		// before it, and holds its lock on events until it ends.
		query = `SELECT id, org_id, resource_type, resource_id, operation, environment_id, owner, created_at,
			(extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text
			FROM events WHERE id > ? ORDER BY id LIMIT ?`
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), after, limit)
	if err != nil {
		return nil, 0, db.translate(fmt.Errorf("read events: %w", err), "events")
	}
	defer rows.Close()
	var (
		out   []events.Event
		fence uint64
	)
	for rows.Next() {
		var (
			e       events.Event
			created int64
			at      string
		)
		if err := rows.Scan(&e.ID, &e.OrgID, &e.ResourceType, &e.ResourceID, &e.Operation,
			&e.EnvironmentID, &e.Owner, &created, &at); err != nil {
			return nil, 0, db.translate(fmt.Errorf("read events: %w", err), "events")
		}
		if at != "" && fence == 0 {
			if fence, err = strconv.ParseUint(at, 10, 64); err != nil {
				return nil, 0, fmt.Errorf("read events: read time %q: %w", at, err)
			}
		}
		e.CreatedAt = fromMicros(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, db.translate(fmt.Errorf("read events: %w", err), "events")
	}
	return out, fence, nil
}

// EventsSettled implements events.Store. On PostgreSQL fence is the time
// of the read (microseconds): a transaction that drew an event id before
// that read holds a RowExclusiveLock on events from its insert until it
// ends, and started before the read. Once no such transaction is left, the
// ids missing below what the read saw were rolled back. The 100 ms margin
// only makes the wait longer, against clock steps. (A snapshot's xmax is
// not enough: a running transaction may have an xid above it.)
func (db *DB) EventsSettled(ctx context.Context, fence uint64) (bool, error) {
	if fence == 0 || db.dialect.Name != "postgres" {
		return true, nil
	}
	var busy bool
	err := db.read.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'relation' AND l.relation = 'events'::regclass AND l.mode = 'RowExclusiveLock'
			AND l.pid <> pg_backend_pid()
			AND (a.xact_start IS NULL OR a.xact_start <= to_timestamp($1::double precision / 1000000) + interval '100 milliseconds'))`,
		int64(fence)).Scan(&busy)
	if err != nil {
		return false, db.translate(fmt.Errorf("events settled: %w", err), "events")
	}
	return !busy, nil
}

// EventBounds implements events.Store.
func (db *DB) EventBounds(ctx context.Context) (oldest, latest int64, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM events`).Scan(&oldest, &latest)
	if err != nil {
		return 0, 0, db.translate(fmt.Errorf("event bounds: %w", err), "events")
	}
	return oldest, latest, nil
}

// PruneEvents implements events.Store.
func (db *DB) PruneEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM events WHERE created_at < ?`), micros(cutoff))
		if err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, db.translate(err, "events")
}
