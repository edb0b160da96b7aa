package sqlstore

import (
	"context"
	"database/sql"
)

// PlaceOneByOne makes db place each pod in its own transaction, as before
// placements were batched, for the benchmark's baseline.
func PlaceOneByOne(db *DB) { db.placeOneByOne = true }

// QueryRow runs a query on db's read pool.
func QueryRow(db *DB, ctx context.Context, query string, args ...any) *sql.Row {
	return db.read.QueryRowContext(ctx, query, args...)
}

// HoldPlacements queues the pods created in orgID without placing them
// until release is called, when they are placed in batches in the order
// they came. queued counts the pods waiting.
func HoldPlacements(db *DB, orgID string) (queued func() int, release func()) {
	q := &db.batches
	q.mu.Lock()
	if q.orgs == nil {
		q.orgs = map[string][]*placeRequest{}
	}
	q.orgs[orgID] = nil
	q.mu.Unlock()
	queued = func() int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.orgs[orgID])
	}
	return queued, func() { go db.drainPlacements(orgID) }
}
