package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/runyard/runyard/internal/events"
)

// The events table is written by triggers (migration 00020) in the
// transaction of each change; this file numbers (PostgreSQL, migration
// 00039), reads and prunes it.

// Committed is signalled after every write transaction commits.
func (db *DB) Committed() <-chan struct{} { return db.committed }

// signalCommit wakes the event hub without ever waiting for it.
func (db *DB) signalCommit() {
	select {
	case db.committed <- struct{}{}:
	default:
	}
}

// sequencerLockClass is the first key of the PostgreSQL advisory lock
// under which runyard_read_events gives committed events their positions
// (migration 00039); the second is 0.
const sequencerLockClass = 0x52590006

// ReadEvents implements events.Store. An event's ID is its position: on
// SQLite its id (its one writer commits ids in order), on PostgreSQL the
// position runyard_read_events gives it after it committed, in the order
// events became visible, before it reads; so no position below one read
// ever appears later, on either.
func (db *DB) ReadEvents(ctx context.Context, after int64, limit int) ([]events.Event, error) {
	query, args := db.q(`SELECT id, org_id, resource_type, resource_id, operation, environment_id, owner, created_at
		FROM events WHERE id > ? ORDER BY id LIMIT ?`), []any{after, limit}
	if db.dialect.Name == "postgres" {
		query = `SELECT pos, org_id, resource_type, resource_id, operation, environment_id, owner, created_at
			FROM runyard_read_events($1, $2, $3)`
		args = []any{sequencerLockClass, after, limit}
	}
	rows, err := db.feed.QueryContext(ctx, query, args...)
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

// EventsFence implements events.Store: empty, since no position is ever
// missing below one read (ReadEvents). (PostgreSQL drew ids before commit,
// and the feed waited at each gap for the transactions that held a lock on
// events, read from pg_locks, to end.)
func (db *DB) EventsFence(context.Context) (events.Fence, error) { return nil, nil }

// EventsSettled implements events.Store; no fence is ever waited for.
func (db *DB) EventsSettled(context.Context, events.Fence) (bool, error) { return true, nil }

// EventBounds implements events.Store.
func (db *DB) EventBounds(ctx context.Context) (oldest, latest int64, err error) {
	query := `SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM events`
	if db.dialect.Name == "postgres" {
		// The events committed so far get their positions first, so
		// that "from now" is after all of them.
		if _, err := db.read.ExecContext(ctx, `SELECT FROM runyard_read_events($1, 9223372036854775807, 0)`, sequencerLockClass); err != nil {
			return 0, 0, db.translate(fmt.Errorf("number events: %w", err), "events")
		}
		query = `SELECT COALESCE(MIN(pos), 0), COALESCE(MAX(pos), 0) FROM events`
	}
	err = db.read.QueryRowContext(ctx, query).Scan(&oldest, &latest)
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
