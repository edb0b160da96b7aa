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
func (db *DB) ReadEvents(ctx context.Context, after int64, limit int) ([]events.Event, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT id, org_id, resource_type, resource_id, operation, environment_id, owner, created_at
		FROM events WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, db.translate(fmt.Errorf("read events: %w", err), "events")
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var (
			e       events.Event
			created int64
		)
		if err := rows.Scan(&e.ID, &e.OrgID, &e.ResourceType, &e.ResourceID, &e.Operation,
			&e.EnvironmentID, &e.Owner, &created); err != nil {
			return nil, db.translate(fmt.Errorf("read events: %w", err), "events")
		}
		e.CreatedAt = fromMicros(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.translate(fmt.Errorf("read events: %w", err), "events")
	}
	return out, nil
}

// EventsFence implements events.Store. On PostgreSQL a transaction draws an
// event id (nextval, in the trigger's INSERT) only once it holds its
// RowExclusiveLock on events, which it keeps until it ends: the
// transactions that may still commit an id drawn before now are those
// holding that lock now, named by their transaction ids. (A time-based
// fence, every transaction started before the read, made a busy feed wait
// for transactions that began after it; a snapshot's xmax misses running
// transactions whose xid is above it.)
func (db *DB) EventsFence(ctx context.Context) (events.Fence, error) {
	if db.dialect.Name != "postgres" {
		return nil, nil
	}
	// One look at the lock table (pg_locks twice would be two).
	rows, err := db.read.QueryContext(ctx, `WITH l AS MATERIALIZED (SELECT * FROM pg_locks WHERE granted)
		SELECT DISTINCT x.transactionid::text::bigint
		FROM l JOIN l x ON x.pid = l.pid
		WHERE l.locktype = 'relation' AND l.relation = 'events'::regclass AND l.mode = 'RowExclusiveLock'
			AND l.pid <> pg_backend_pid()
			AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock'`)
	if err != nil {
		return nil, db.translate(fmt.Errorf("events fence: %w", err), "events")
	}
	defer rows.Close()
	var fence events.Fence
	for rows.Next() {
		var xid int64
		if err := rows.Scan(&xid); err != nil {
			return nil, db.translate(fmt.Errorf("events fence: %w", err), "events")
		}
		fence = append(fence, uint64(xid))
	}
	if err := rows.Err(); err != nil {
		return nil, db.translate(fmt.Errorf("events fence: %w", err), "events")
	}
	return fence, nil
}

// EventsSettled implements events.Store: none of fence's transactions
// holds its transaction id any more (each holds it until it ends).
func (db *DB) EventsSettled(ctx context.Context, fence events.Fence) (bool, error) {
	if len(fence) == 0 || db.dialect.Name != "postgres" {
		return true, nil
	}
	ids := make([]string, len(fence))
	for i, x := range fence {
		ids[i] = strconv.FormatUint(x, 10)
	}
	var busy bool
	err := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND transactionid::text = ANY($1::text[]))`,
		ids).Scan(&busy)
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
