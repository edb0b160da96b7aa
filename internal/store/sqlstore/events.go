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
		// The statement's snapshot: ids drawn by transactions it does not
		// see as ended are below its xmax.
		query = `SELECT id, org_id, resource_type, resource_id, operation, environment_id, owner, created_at,
			pg_snapshot_xmax(pg_current_snapshot())::text
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
			xmax    string
		)
		if err := rows.Scan(&e.ID, &e.OrgID, &e.ResourceType, &e.ResourceID, &e.Operation,
			&e.EnvironmentID, &e.Owner, &created, &xmax); err != nil {
			return nil, 0, db.translate(fmt.Errorf("read events: %w", err), "events")
		}
		if xmax != "" && fence == 0 {
			if fence, err = strconv.ParseUint(xmax, 10, 64); err != nil {
				return nil, 0, fmt.Errorf("read events: snapshot xmax %q: %w", xmax, err)
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

// EventsSettled implements events.Store: every transaction below fence has
// ended once the oldest one still running is at or above it.
func (db *DB) EventsSettled(ctx context.Context, fence uint64) (bool, error) {
	if fence == 0 || db.dialect.Name != "postgres" {
		return true, nil
	}
	var xmin string
	if err := db.read.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xmin); err != nil {
		return false, db.translate(fmt.Errorf("events settled: %w", err), "events")
	}
	v, err := strconv.ParseUint(xmin, 10, 64)
	if err != nil {
		return false, fmt.Errorf("events settled: snapshot xmin %q: %w", xmin, err)
	}
	return v >= fence, nil
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
