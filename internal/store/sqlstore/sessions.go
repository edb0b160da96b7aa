package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordRunnerSession records that replica holds the stream of runnerID.
func (db *DB) RecordRunnerSession(ctx context.Context, orgID, runnerID, replica string, since time.Time) error {
	_, err := db.write.ExecContext(ctx, db.q(`INSERT INTO runner_sessions (runner_id, org_id, replica, since) VALUES (?, ?, ?, ?)
		ON CONFLICT (runner_id) DO UPDATE SET org_id = excluded.org_id, replica = excluded.replica, since = excluded.since`),
		runnerID, orgID, replica, micros(since))
	return db.translate(err, fmt.Sprintf("session of runner %q", runnerID))
}

// EndRunnerSession forgets the stream of runnerID if replica still holds
// it: a newer stream on another replica stays recorded.
func (db *DB) EndRunnerSession(ctx context.Context, runnerID, replica string) error {
	_, err := db.write.ExecContext(ctx, db.q(`DELETE FROM runner_sessions WHERE runner_id = ? AND replica = ?`), runnerID, replica)
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
