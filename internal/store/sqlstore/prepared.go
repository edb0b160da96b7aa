package sqlstore

import (
	"context"
	"database/sql"
)

// This file prepares the statements of the pod path once: with 10,000
// runners connected, every placed pod costs a placement transaction and a
// desired state pushed to its runner, and SQLite parsing and planning each
// statement again (modernc's one-shot queries prepare on every call) was a
// fifth of the control plane's CPU.

// readQuery runs a hot multi-row read through a statement prepared once on
// the read pool, as readRow does for single rows.
func (db *DB) readQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := db.q(query)
	if v, ok := db.stmts.Load(q); ok {
		return v.(*sql.Stmt).QueryContext(ctx, args...)
	}
	stmt, err := db.read.PrepareContext(ctx, q)
	if err != nil {
		return db.read.QueryContext(ctx, q, args...)
	}
	if prev, loaded := db.stmts.LoadOrStore(q, stmt); loaded {
		stmt.Close()
		stmt = prev.(*sql.Stmt)
	}
	return stmt.QueryContext(ctx, args...)
}

// writeKey is the key of a statement prepared on the write pool in
// db.stmts, apart from the same text prepared on the read pool.
func writeKey(q string) string { return "\x00write\x00" + q }

// trackedStatements are the statements of the tracked transactions
// (trackedTx), prepared on the write pool before one begins.
var trackedStatements = []string{marksQuery, insertPodQuery, selectPodByKey, updatePodQuery, placePendingQuery}

// prepareWrites prepares the tracked statements on the write pool (used on
// SQLite only, whose row lock is empty: selectPodByKey needs none). It must
// run outside a transaction: the SQLite write pool has one connection, and
// preparing on the pool waits for it. A statement that fails to prepare is
// run unprepared.
func (db *DB) prepareWrites(ctx context.Context) {
	for _, query := range trackedStatements {
		key := writeKey(db.q(query))
		if _, ok := db.stmts.Load(key); ok {
			continue
		}
		stmt, err := db.write.PrepareContext(ctx, db.q(query))
		if err != nil {
			continue
		}
		if _, loaded := db.stmts.LoadOrStore(key, stmt); loaded {
			stmt.Close()
		}
	}
}

// txStmt returns query as a statement of tx: the one prepared on the write
// pool when there is one (database/sql then reuses its preparation on the
// transaction's connection), or nil.
func (db *DB) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if v, ok := db.stmts.Load(writeKey(q)); ok {
		return tx.StmtContext(ctx, v.(*sql.Stmt))
	}
	return nil
}

func (db *DB) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	q := db.q(query)
	if s := db.txStmt(ctx, tx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (db *DB) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	q := db.q(query)
	if s := db.txStmt(ctx, tx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}
