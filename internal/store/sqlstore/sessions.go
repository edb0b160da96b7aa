package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordRunnerSession records that replica holds the stream of runnerID
// since since, unless a stream that started later is recorded already (its
// record arrived first).
func (db *DB) RecordRunnerSession(ctx context.Context, orgID, runnerID, replica string, since time.Time) error {
	_, err := db.write.ExecContext(ctx, db.q(`INSERT INTO runner_sessions (runner_id, org_id, replica, since) VALUES (?, ?, ?, ?)
		ON CONFLICT (runner_id) DO UPDATE SET org_id = excluded.org_id, replica = excluded.replica, since = excluded.since
		WHERE runner_sessions.since <= excluded.since`),
		runnerID, orgID, replica, micros(since))
	return db.translate(err, fmt.Sprintf("session of runner %q", runnerID))
}

// EndRunnerSession forgets the stream of runnerID that replica started at
// since: a newer stream, on this replica or another, stays recorded.
func (db *DB) EndRunnerSession(ctx context.Context, runnerID, replica string, since time.Time) error {
	_, err := db.write.ExecContext(ctx, db.q(`DELETE FROM runner_sessions WHERE runner_id = ? AND replica = ? AND since = ?`),
		runnerID, replica, micros(since))
	return db.translate(err, fmt.Sprintf("session of runner %q", runnerID))
}

// FindRunnerSession returns the replica holding the stream of runnerID of
// orgID, "" when none does.
func (db *DB) FindRunnerSession(ctx context.Context, orgID, runnerID string) (string, error) {
	var replica string
	err := db.read.QueryRowContext(ctx, db.q(`SELECT replica FROM runner_sessions WHERE org_id = ? AND runner_id = ?`),
		orgID, runnerID).Scan(&replica)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", db.translate(err, fmt.Sprintf("session of runner %q", runnerID))
	}
	return replica, nil
}
