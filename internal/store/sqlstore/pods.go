package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/runyard/runyard/internal/audit"
	"slices"

	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

// podColumns reads a pod as p, with the numeric id of its runner: a scalar
// subquery rather than a join, so that a locking read (FOR UPDATE) locks
// the pod's row alone.
const podColumns = `p.seq, p.key, p.org_id, p.runner_id, p.status, p.agent_type_id, p.initial_prompt, p.labels,
	p.workdir, p.reason, p.exit_code, p.created_at, p.started_at, p.finished_at, p.env, p.spec, p.desired_status,
	COALESCE((SELECT r.seq FROM runners r WHERE r.org_id = p.org_id AND r.id = p.runner_id), 0)`

func scanPod(row interface{ Scan(...any) error }) (*pods.Pod, error) {
	var p pods.Pod
	var status, labels, env, spec, desired string
	var exit sql.NullInt64
	var created int64
	var started, finished sql.NullInt64
	if err := row.Scan(&p.Seq, &p.Key, &p.OrgID, &p.RunnerID, &status, &p.AgentTypeID, &p.InitialPrompt, &labels,
		&p.Workdir, &p.Reason, &exit, &created, &started, &finished, &env, &spec, &desired, &p.RunnerSeq); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
		return nil, fmt.Errorf("decode labels of pod %q: %w", p.Key, err)
	}
	if err := json.Unmarshal([]byte(env), &p.Env); err != nil {
		return nil, fmt.Errorf("decode env of pod %q: %w", p.Key, err)
	}
	if err := json.Unmarshal([]byte(spec), &p.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of pod %q: %w", p.Key, err)
	}
	p.Status, p.DesiredStatus = pods.Status(status), pods.Status(desired)
	if exit.Valid {
		code := int(exit.Int64)
		p.ExitCode = &code
	}
	p.CreatedAt, p.StartedAt, p.FinishedAt = fromMicros(created), fromNullMicros(started), fromNullMicros(finished)
	return &p, nil
}

// podDocs encodes a pod's JSON columns.
func podDocs(p *pods.Pod) (labels, env, spec string, err error) {
	l, err := json.Marshal(p.Labels)
	if err != nil {
		return "", "", "", fmt.Errorf("encode labels: %w", err)
	}
	e, err := json.Marshal(p.Env)
	if err != nil {
		return "", "", "", fmt.Errorf("encode env: %w", err)
	}
	s, err := json.Marshal(p.Spec)
	if err != nil {
		return "", "", "", fmt.Errorf("encode spec: %w", err)
	}
	return string(l), string(e), string(s), nil
}

func nullInt(v *int) sql.NullInt64 {
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*v), Valid: true}
}

// insertPodQuery stores a pod and returns its seq.
const insertPodQuery = `INSERT INTO pods (key, org_id, runner_id, status, agent_type_id,
	initial_prompt, labels, workdir, reason, exit_code, created_at, started_at, finished_at, env, spec, desired_status)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`

// insertPod stores p with queryRow and assigns p.Seq. An empty desired
// status is running.
func insertPod(queryRow func(query string, args ...any) *sql.Row, p *pods.Pod) error {
	if p.DesiredStatus == "" {
		p.DesiredStatus = pods.StatusRunning
	}
	labels, env, spec, err := podDocs(p)
	if err != nil {
		return err
	}
	return queryRow(insertPodQuery,
		p.Key, p.OrgID, p.RunnerID, string(p.Status), p.AgentTypeID, p.InitialPrompt, labels, p.Workdir,
		p.Reason, nullInt(p.ExitCode), micros(p.CreatedAt), nullMicros(p.StartedAt), nullMicros(p.FinishedAt),
		env, spec, string(p.DesiredStatus)).Scan(&p.Seq)
}

// txRow runs single-row statements in tx.
func (db *DB) txRow(ctx context.Context, tx *sql.Tx) func(query string, args ...any) *sql.Row {
	return func(query string, args ...any) *sql.Row { return db.txQueryRow(ctx, tx, query, args...) }
}

func (db *DB) CreatePod(ctx context.Context, p *pods.Pod) error {
	audit.SetObject(ctx, audit.TypePod, p.Key)
	// In a transaction, so the call's audit entry commits with the pod.
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return insertPod(db.txRow(ctx, tx), p)
	})
	return db.translate(err, fmt.Sprintf("pod %q", p.Key))
}

func (db *DB) FindPods(ctx context.Context, f pods.Filter) ([]*pods.Pod, int, error) {
	where := ` WHERE p.org_id = ?`
	args := []any{f.OrgID}
	if f.RunnerID != "" {
		where += ` AND p.runner_id = ?`
		args = append(args, f.RunnerID)
	}
	if f.RunnerSeq != 0 {
		where += ` AND p.runner_id = (SELECT r.id FROM runners r WHERE r.org_id = p.org_id AND r.seq = ?)`
		args = append(args, f.RunnerSeq)
	}
	if f.Status != "" {
		where += ` AND p.status = ?`
		args = append(args, string(f.Status))
	}
	query := `SELECT ` + podColumns + ` FROM pods p` + where + ` ORDER BY p.seq DESC`
	if f.Limit <= 0 {
		// Every match is returned, so they are the total: no count needed
		// (the runner's desired state reads its pods so on every push).
		out, err := db.scanPods(db.readQuery(ctx, query, args...))
		if err != nil {
			return nil, 0, err
		}
		return out, len(out), nil
	}
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM pods p`+where, args...).Scan(&total); err != nil {
		return nil, 0, db.translate(err, "pods")
	}
	query += ` LIMIT ? OFFSET ?`
	out, err := db.scanPods(db.readQuery(ctx, query, append(args, f.Limit, f.Offset)...))
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

func (db *DB) queryPods(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]*pods.Pod, error) {
	return db.scanPods(q.QueryContext(ctx, db.q(query), args...))
}

// scanPods reads the pods of a query's result.
func (db *DB) scanPods(rows *sql.Rows, err error) ([]*pods.Pod, error) {
	if err != nil {
		return nil, db.translate(err, "pods")
	}
	defer rows.Close()
	var out []*pods.Pod
	for rows.Next() {
		p, err := scanPod(rows)
		if err != nil {
			return nil, db.translate(err, "pods")
		}
		out = append(out, p)
	}
	return out, db.translate(rows.Err(), "pods")
}

// activeCountsQuery reads the pods that hold a place on each runner of an
// organization (pods.Pod.Active: pending ones placed on a runner and running
// ones) as the triggers on pods count them (migration 00009).
const activeCountsQuery = `SELECT runner_id, active_pods FROM runner_capacity WHERE org_id = ? AND active_pods > 0`

func (db *DB) CountActivePods(ctx context.Context, orgID string) (map[string]int, error) {
	return db.countActivePods(ctx, db.read, orgID)
}

func (db *DB) countActivePods(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, orgID string) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, db.q(activeCountsQuery), orgID)
	if err != nil {
		return nil, db.translate(err, "pods")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, db.translate(err, "pods")
		}
		out[id] = n
	}
	return out, db.translate(rows.Err(), "pods")
}

// placementLockClass is the first key of the PostgreSQL advisory lock that
// serializes the placements of one organization; the second is a hash of
// the organization's ID.
const placementLockClass = 0x52590005

// candidates serializes the placements of f.OrgID for the rest of tx
// (lockPlacements) and then reads the candidate runners with their active
// pod counts.
func (db *DB) candidates(ctx context.Context, tx *sql.Tx, f pods.CandidateFilter) ([]*pods.Candidate, error) {
	if err := db.lockPlacements(ctx, tx, f.OrgID); err != nil {
		return nil, err
	}
	return db.loadCandidates(ctx, tx, f.OrgID, `SELECT `+runnerColumns+` FROM runners
		WHERE org_id = ? AND ((phase IN (?, ?) AND last_seen > ?) OR seq = ?) ORDER BY seq`,
		f.OrgID, string(runners.PhaseActive), string(runners.PhaseDegraded), micros(f.LiveAfter), f.Seq)
}

// lockPlacements serializes the placements of orgID for the rest of tx.
//
// On SQLite the transaction began IMMEDIATE and holds the database's write
// lock, which already serializes every writer. On PostgreSQL it takes a
// transaction-scoped advisory lock per organization: it does not block the
// fleet's renewals and reports, which write runner rows all the time, and
// it is one lock however many runners the organization has. Under READ
// COMMITTED, the count read after the lock is granted sees every placement
// committed before, so two placements never both see the last free place.
// (A hash collision between two organizations only makes them wait for
// each other.)
func (db *DB) lockPlacements(ctx context.Context, tx *sql.Tx, orgID string) error {
	if db.dialect.Name != "postgres" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, placementLockClass, orgID); err != nil {
		return fmt.Errorf("lock placements: %w", err)
	}
	return nil
}

func (db *DB) CreatePlacedPod(ctx context.Context, p *pods.Pod, f pods.CandidateFilter, place pods.PlaceFunc) error {
	audit.SetObject(ctx, audit.TypePod, p.Key)
	if f.Indexed != nil && db.tracked() {
		return db.createIndexed(ctx, p, f)
	}
	if f.Counted != nil && db.counted() {
		if f.Seq == 0 && db.batched() {
			return db.createBatched(ctx, p, f)
		}
		return db.createCounted(ctx, p, f)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		cands, err := db.candidates(ctx, tx, f)
		if err != nil {
			return err
		}
		if err := place(p, cands); err != nil {
			return err
		}
		return insertPod(db.txRow(ctx, tx), p)
	})
	return db.translate(err, fmt.Sprintf("pod %q", p.Key))
}

// maxPendingPerPass bounds the pods one PlacePendingPods transaction reads;
// the rest wait for the next pass.
const maxPendingPerPass = 1000

func (db *DB) PlacePendingPods(ctx context.Context, f pods.CandidateFilter, place pods.PlaceFunc) ([]*pods.Pod, error) {
	var placed []*pods.Pod
	var err error
	if f.Indexed != nil && db.tracked() {
		err = db.trackedTx(ctx, func(tx *sql.Tx, indexes func() map[string]*pods.Index) error {
			idx := indexes()
			x, err := db.index(ctx, tx, idx, f.OrgID)
			if err != nil {
				return err
			}
			placed, err = db.placePending(ctx, tx, f, func(p *pods.Pod) error { return f.Indexed(p, x, nil) },
				func(p *pods.Pod) { x.Adjust(p.RunnerID, -1) })
			if err != nil {
				delete(idx, f.OrgID)
			}
			return err
		}, func(map[string]*pods.Index) {})
	} else if f.Counted != nil && db.counted() {
		placed, err = db.placePendingCounted(ctx, f)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			cands, err := db.candidates(ctx, tx, f)
			if err != nil {
				return err
			}
			// A pod that could not be stored gives its place back, as the
			// index does, so that both decide alike on the next pods.
			placed, err = db.placePending(ctx, tx, f, func(p *pods.Pod) error { return place(p, cands) },
				func(p *pods.Pod) {
					if i := slices.IndexFunc(cands, func(c *pods.Candidate) bool { return c.Runner.ID == p.RunnerID }); i >= 0 {
						cands[i].Pods--
					}
				})
			return err
		})
	}
	if err != nil {
		return nil, db.translate(err, "pending pods")
	}
	return placed, nil
}

// placePendingQuery gives a pending pod its runner, unless it was
// terminated or placed meanwhile.
const placePendingQuery = `UPDATE pods SET runner_id = ?, reason = ? WHERE seq = ? AND status = ? AND runner_id = ''`

// placePending offers the pending pods without a runner, oldest first, to
// place, stores what it decided and returns the pods it placed. lost is
// called for a pod place gave a runner that could not be stored.
func (db *DB) placePending(ctx context.Context, tx *sql.Tx, f pods.CandidateFilter, place func(*pods.Pod) error, lost func(*pods.Pod)) ([]*pods.Pod, error) {
	pending, err := db.queryPods(ctx, tx, `SELECT `+podColumns+` FROM pods p
		WHERE p.org_id = ? AND p.status = ? AND p.runner_id = '' ORDER BY p.seq LIMIT `+fmt.Sprint(maxPendingPerPass),
		f.OrgID, string(pods.StatusPending))
	if err != nil {
		return nil, err
	}
	var placed []*pods.Pod
	for _, p := range pending {
		reason := p.Reason
		if err := place(p); err != nil {
			return nil, err
		}
		if p.RunnerID == "" && p.Reason == reason {
			continue
		}
		// The pod was read without a lock: a user may have terminated it
		// since, and then it stays as the user left it.
		res, err := db.txExec(ctx, tx, placePendingQuery, p.RunnerID, p.Reason, p.Seq, string(pods.StatusPending))
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		switch {
		case n == 1 && p.RunnerID != "":
			placed = append(placed, p)
		case n == 0 && p.RunnerID != "":
			lost(p)
		}
	}
	return placed, nil
}

// createIndexed is CreatePlacedPod on the organization's placement index.
func (db *DB) createIndexed(ctx context.Context, p *pods.Pod, f pods.CandidateFilter) error {
	err := db.trackedTx(ctx, func(tx *sql.Tx, indexes func() map[string]*pods.Index) error {
		idx := indexes()
		x, err := db.index(ctx, tx, idx, f.OrgID)
		if err != nil {
			return err
		}
		requested, err := db.requested(ctx, tx, x, f)
		if err != nil {
			return err
		}
		// A refusal leaves the index as it was.
		if err := f.Indexed(p, x, requested); err != nil {
			return err
		}
		if err := insertPod(db.txRow(ctx, tx), p); err != nil {
			delete(idx, f.OrgID)
			return err
		}
		return nil
	}, func(map[string]*pods.Index) {})
	return db.translate(err, fmt.Sprintf("pod %q", p.Key))
}

func (db *DB) FindOrgsWithPendingPods(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT DISTINCT org_id FROM pods WHERE status = ? AND runner_id = ''`),
		string(pods.StatusPending))
	if err != nil {
		return nil, db.translate(err, "pods")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, db.translate(err, "pods")
		}
		out = append(out, id)
	}
	return out, db.translate(rows.Err(), "pods")
}

func (db *DB) FindPodByKey(ctx context.Context, orgID, key string) (*pods.Pod, error) {
	p, err := scanPod(db.readRow(ctx, selectPodByKey, orgID, key))
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("pod %q", key))
	}
	return p, nil
}

// selectPodByKey reads one pod; UpdatePod appends the dialect's row lock.
const selectPodByKey = `SELECT ` + podColumns + ` FROM pods p WHERE p.org_id = ? AND p.key = ?`

const updatePodQuery = `UPDATE pods SET runner_id = ?, status = ?, desired_status = ?, labels = ?,
	reason = ?, exit_code = ?, started_at = ?, finished_at = ?, env = ?, spec = ? WHERE org_id = ? AND key = ?`

func (db *DB) UpdatePod(ctx context.Context, orgID, key string, fn func(*pods.Pod) error) (*pods.Pod, error) {
	var out *pods.Pod
	// What the update does to the active pods of runners, for the
	// placement indexes.
	var was, is string
	update := func(tx *sql.Tx) error {
		p, err := scanPod(db.txQueryRow(ctx, tx, selectPodByKey+db.dialect.LockRow, orgID, key))
		if err != nil {
			return err
		}
		was, is = "", ""
		if p.Active() {
			was = p.RunnerID
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.Active() {
			is = p.RunnerID
		}
		labels, env, spec, err := podDocs(p)
		if err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, updatePodQuery,
			p.RunnerID, string(p.Status), string(p.DesiredStatus), labels, p.Reason, nullInt(p.ExitCode),
			nullMicros(p.StartedAt), nullMicros(p.FinishedAt), env, spec, orgID, key)
		if err != nil {
			return err
		}
		out = p
		return nil
	}
	var err error
	if db.tracked() {
		err = db.trackedTx(ctx, func(tx *sql.Tx, _ func() map[string]*pods.Index) error { return update(tx) },
			func(indexes map[string]*pods.Index) {
				if x := indexes[orgID]; x != nil && was != is {
					x.Adjust(was, -1)
					x.Adjust(is, 1)
				}
			})
	} else {
		err = db.tx(ctx, update)
	}
	if err != nil {
		return nil, db.translate(err, fmt.Sprintf("pod %q", key))
	}
	return out, nil
}
