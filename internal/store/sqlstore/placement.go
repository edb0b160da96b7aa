package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/runyard/runyard/internal/pods"
)

// This file keeps, on SQLite, the placement index of each organization
// (pods.Index) between placements, so that placing a pod does not read and
// decode every runner of the organization and count all its pods again: at
// 10,000 runners that was 40 ms of CPU per pod.
//
// The index must hold exactly what the database holds when a placement
// runs. On SQLite every write goes through the one writer connection of
// this process, or through another connection, and SQLite says which:
//
//   - total_changes() counts the rows this connection inserted, updated or
//     deleted since it opened (rolled back ones included);
//   - PRAGMA data_version changes when another connection committed.
//
// Each write that keeps the index right (a placement, a pod update) reads
// both marks when it begins and before it commits, and after the commit
// hands the index its changes. When the marks at the beginning are the ones
// the last such write left, nothing else wrote in between and the index is
// exact; otherwise (a renewal batch, a runner report, any other write) every
// index is dropped and the next placement rebuilds its organization's from
// the database, in its transaction. The marks are those of one driver
// connection, so a different connection never matches.
//
// PostgreSQL keeps no index in the process: other replicas write to the
// same database, and nothing in it says cheaply what they changed. It
// finds the runner with a query instead (counted.go).

// placementCache is the indexes and the marks they are exact at.
type placementCache struct {
	mu    sync.Mutex
	marks marks
	orgs  map[string]*pods.Index
}

// marks identify the state of the database as one writer connection sees
// it.
type marks struct {
	conn             any // the driver connection; nil when unknown
	changes, version int64
}

// reset drops every index; the cache is then exact at m.
func (c *placementCache) reset(m marks) {
	c.marks = m
	clear(c.orgs)
}

// begin returns the cache's indexes if the database is still at the marks
// they are exact at, after dropping them otherwise. The caller holds c.mu.
func (c *placementCache) begin(m marks) map[string]*pods.Index {
	if c.orgs == nil {
		c.orgs = map[string]*pods.Index{}
	}
	if m.conn == nil || c.marks != m {
		c.reset(m)
	}
	return c.orgs
}

// tracked reports whether this store keeps placement indexes.
func (db *DB) tracked() bool { return db.dialect.Name == "sqlite" }

// trackedTx runs fn in a write transaction on one connection of the write
// pool, with the marks of that connection before fn. fn may take the
// indexes that are exact at those marks (indexes drops them first if the
// database is no longer there) and use them, building missing ones in tx.
// If fn succeeds, trackedTx reads the marks again, commits, and calls done
// with the indexes, in which done records fn's writes; the cache is then
// exact at the new marks. If fn fails, it must have dropped every index it
// changed: the transaction rolls back, so the others stay exact. Whatever
// else goes wrong (a failed commit or rollback, a panic in fn) drops the
// whole cache.
func (db *DB) trackedTx(ctx context.Context, fn func(tx *sql.Tx, indexes func() map[string]*pods.Index) error,
	done func(indexes map[string]*pods.Index)) error {
	db.prepareWrites(ctx)
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	defer conn.Close()
	var id any
	if err := conn.Raw(func(dc any) error { id = dc; return nil }); err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	start, err := readMarks(db.txRow(ctx, tx), id)
	if err != nil {
		return err
	}
	c := &db.placements
	c.mu.Lock()
	defer c.mu.Unlock()
	// Every way out that does not set kept leaves indexes fn may have
	// changed for a transaction that did not commit.
	kept := false
	defer func() {
		if !kept {
			c.reset(marks{})
		}
	}()
	// The indexes are used under the write lock (BEGIN IMMEDIATE), so no
	// other write comes between the marks and their use.
	indexes := func() map[string]*pods.Index { return c.begin(start) }
	if err := fn(tx, indexes); err != nil {
		c.begin(start)
		if tx.Rollback() != nil {
			return err
		}
		// Rolled back, the database is as it was at start, and so are the
		// indexes fn left; only the connection's counter moved. The write
		// lock is released, though: if another connection committed since,
		// data_version says so and the cache is dropped.
		m, merr := readMarks(func(q string, args ...any) *sql.Row { return conn.QueryRowContext(ctx, q, args...) }, id)
		if merr == nil && m.version == start.version {
			c.marks, kept = m, true
		}
		return err
	}
	end, err := readMarks(db.txRow(ctx, tx), id)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return db.translate(fmt.Errorf("commit: %w", err), "")
	}
	done(c.begin(start))
	c.marks, kept = end, true
	// A placement changes pods, which the console's feed carries.
	db.signalCommit()
	return nil
}

// marksQuery reads the marks of the connection it runs on.
const marksQuery = `SELECT total_changes(), data_version FROM pragma_data_version`

// readMarks reads the marks with row, which runs a query on conn.
func readMarks(row func(query string, args ...any) *sql.Row, conn any) (marks, error) {
	m := marks{conn: conn}
	if err := row(marksQuery).Scan(&m.changes, &m.version); err != nil {
		return marks{}, fmt.Errorf("read the connection's change marks: %w", err)
	}
	return m, nil
}

// index returns org's placement index from indexes, building it from the
// database in tx when missing.
func (db *DB) index(ctx context.Context, tx *sql.Tx, indexes map[string]*pods.Index, orgID string) (*pods.Index, error) {
	if x := indexes[orgID]; x != nil {
		return x, nil
	}
	args := []any{orgID}
	for _, ph := range pods.IndexCandidates {
		args = append(args, string(ph))
	}
	cands, err := db.loadCandidates(ctx, tx, orgID, `SELECT `+runnerColumns+` FROM runners
		WHERE org_id = ? AND phase IN `+in(len(pods.IndexCandidates))+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	x := pods.NewIndex(cands)
	indexes[orgID] = x
	return x, nil
}

// requested returns the candidate with numeric id f.Seq when x lacks it, nil
// when x has it or the organization has no such runner.
func (db *DB) requested(ctx context.Context, tx *sql.Tx, x *pods.Index, f pods.CandidateFilter) (*pods.Candidate, error) {
	if f.Seq == 0 || x.Has(f.Seq) {
		return nil, nil
	}
	return db.candidateBySeq(ctx, tx, f.OrgID, f.Seq)
}

// candidateBySeq returns the runner of orgID with numeric id seq and its
// count of active pods, nil when the organization has none.
func (db *DB) candidateBySeq(ctx context.Context, tx *sql.Tx, orgID string, seq int64) (*pods.Candidate, error) {
	c := &pods.Candidate{}
	r, err := scanRunner(withExtra(tx.QueryRowContext(ctx, db.q(`SELECT `+qualifiedRunnerColumns+`, c.active_pods
		FROM runners r JOIN runner_capacity c ON c.runner_id = r.id WHERE r.org_id = ? AND r.seq = ?`), orgID, seq), &c.Pods))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Runner = r
	return c, nil
}

// withExtra scans the columns that follow a runner's into extra.
func withExtra(row interface{ Scan(...any) error }, extra ...any) interface{ Scan(...any) error } {
	return extraScan{row, extra}
}

type extraScan struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (e extraScan) Scan(dest ...any) error { return e.row.Scan(append(dest, e.extra...)...) }

// loadCandidates reads the runners query selects, with their active pod
// counts.
func (db *DB) loadCandidates(ctx context.Context, tx *sql.Tx, orgID, query string, args ...any) ([]*pods.Candidate, error) {
	rows, err := tx.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*pods.Candidate
	for rows.Next() {
		r, err := scanRunner(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, &pods.Candidate{Runner: r})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	counts, err := db.countActivePods(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		c.Pods = counts[c.Runner.ID]
	}
	return out, nil
}
