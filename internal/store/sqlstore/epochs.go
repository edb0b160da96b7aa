package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/pods"
)

// This file holds the fencing of runner streams: every stream the control
// plane accepts for a runner gets the next epoch, reports are checked
// against the current one, and a pod remembers the epoch of the stream it
// was first handed to (internal/fleet).

// AcceptRunnerStream increments the epoch of a live runner and returns it.
// It fails with CodeNotFound for a missing or deleted runner.
func (db *DB) AcceptRunnerStream(ctx context.Context, orgID, runnerID string) (int64, error) {
	var epoch int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if db.dialect.Name == "postgres" {
			// The runner's stream lock orders this against a claim
			// (runyard_claim_pods, migration 00045).
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, streamLockClass, runnerID); err != nil {
				return fmt.Errorf("lock the runner's streams: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, db.q(`UPDATE runners SET epoch = epoch + 1 WHERE org_id = ? AND id = ?`+live), orgID, runnerID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return sql.ErrNoRows
		}
		return tx.QueryRowContext(ctx, db.q(`SELECT epoch FROM runners WHERE org_id = ? AND id = ?`), orgID, runnerID).Scan(&epoch)
	})
	if err != nil {
		return 0, db.translate(err, fmt.Sprintf("runner %q", runnerID))
	}
	return epoch, nil
}

// RunnerEpochs returns the current epoch of each runner in ids that exists
// (deleted ones included: their streams are ended otherwise).
func (db *DB) RunnerEpochs(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := db.read.QueryContext(ctx, db.q(`SELECT id, epoch FROM runners WHERE id IN (?`+strings.Repeat(`, ?`, len(part)-1)+`)`), args...)
		if err != nil {
			return nil, db.translate(err, "runner epochs")
		}
		for rows.Next() {
			var id string
			var epoch int64
			if err := rows.Scan(&id, &epoch); err != nil {
				rows.Close()
				return nil, db.translate(err, "runner epochs")
			}
			out[id] = epoch
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, db.translate(err, "runner epochs")
		}
	}
	return out, nil
}

// ClaimRunnerPods gives the active pods placed on a runner that no stream
// was handed yet to the stream of epoch and returns the epoch each active
// pod of the runner is bound to. It fails with CodeAborted when epoch is no
// longer the runner's current one (claiming nothing), and CodeNotFound for
// a missing runner. A stream accepted meanwhile (AcceptRunnerStream)
// orders before or after the whole claim: the claim locks first the
// runner's stream lock (PostgreSQL, claimAtOnce) or its row, which the
// acceptance's update of the epoch locks too.
func (db *DB) ClaimRunnerPods(ctx context.Context, orgID, runnerID string, epoch int64) (map[string]int64, error) {
	if _, _, pending := pendingAudit(ctx); db.dialect.Name == "postgres" && !pending {
		return db.claimAtOnce(ctx, orgID, runnerID, epoch)
	}
	var out map[string]int64
	err := db.placementNeutralTx(ctx, func(tx *sql.Tx) error {
		var current int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT epoch FROM runners WHERE org_id = ? AND id = ?`+db.dialect.LockRow),
			orgID, runnerID).Scan(&current); err != nil {
			return err
		}
		if current != epoch {
			return &apperr.Error{Code: apperr.CodeAborted, Message: fmt.Sprintf("stream epoch %d of runner %q was superseded by %d", epoch, runnerID, current)}
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE pods SET started_epoch = ?
			WHERE org_id = ? AND runner_id = ? AND started_epoch = 0 AND status IN ('pending', 'running')`),
			epoch, orgID, runnerID); err != nil {
			return err
		}
		var err error
		out, err = db.runnerPodEpochs(ctx, tx, orgID, runnerID)
		return err
	})
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("runner %q", runnerID))
	}
	return out, nil
}

// streamLockClass is the first key of the PostgreSQL advisory lock that
// orders a runner's claims and stream acceptances (the second is the hash
// of the runner's id).
const streamLockClass = 0x52590007

// claimAtOnce is ClaimRunnerPods on PostgreSQL: one statement
// (runyard_claim_pods, migration 00045) instead of a transaction of three.
func (db *DB) claimAtOnce(ctx context.Context, orgID, runnerID string, epoch int64) (map[string]int64, error) {
	what := fmt.Sprintf("runner %q", runnerID)
	rows, err := db.write.QueryContext(ctx, `SELECT pod_key, pod_epoch FROM runyard_claim_pods($1, $2, $3, $4)`, streamLockClass, orgID, runnerID, epoch)
	if err != nil {
		return nil, db.translate(fmt.Errorf("claim pods: %w", err), what)
	}
	defer rows.Close()
	var (
		current int64
		found   bool
		out     = map[string]int64{}
	)
	for rows.Next() {
		var key sql.NullString
		var e int64
		if err := rows.Scan(&key, &e); err != nil {
			return nil, db.translate(fmt.Errorf("claim pods: %w", err), what)
		}
		if !key.Valid {
			current, found = e, true
			continue
		}
		out[key.String] = e
	}
	if err := rows.Err(); err != nil {
		return nil, db.translate(fmt.Errorf("claim pods: %w", err), what)
	}
	if !found {
		return nil, db.translate(sql.ErrNoRows, what)
	}
	if current != epoch {
		return nil, &apperr.Error{Code: apperr.CodeAborted, Message: fmt.Sprintf("stream epoch %d of runner %q was superseded by %d", epoch, runnerID, current)}
	}
	db.signalCommit()
	return out, nil
}

// runnerPodEpochs returns the epoch each active pod of a runner is bound to.
func (db *DB) runnerPodEpochs(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, orgID, runnerID string) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, db.q(`SELECT key, started_epoch FROM pods
		WHERE org_id = ? AND runner_id = ? AND status IN ('pending', 'running')`), orgID, runnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var key string
		var e int64
		if err := rows.Scan(&key, &e); err != nil {
			return nil, err
		}
		out[key] = e
	}
	return out, rows.Err()
}

// placementNeutralTx runs fn, a write that changes nothing the placement
// indexes hold (placement.go), in a write transaction. On SQLite it goes
// through trackedTx, so that the indexes stay valid: any other write drops
// them, and a claim after every placement then made every placement rebuild
// its organization's index (bench/pods fell from 513 to about 17 pods/s).
func (db *DB) placementNeutralTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if !db.tracked() {
		return db.tx(ctx, fn)
	}
	return db.trackedTx(ctx, func(tx *sql.Tx, _ func() map[string]*pods.Index) error { return fn(tx) },
		func(map[string]*pods.Index) {})
}
