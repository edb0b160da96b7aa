// Package sqlstore implements store.Store on database/sql. SQLite and
// PostgreSQL differ only in what Dialect captures (bind parameters, row locks,
// unique violations) and in their migrations, so the queries live here once.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// Dialect is what differs between the SQL databases.
type Dialect struct {
	Name string
	// Numbered reports whether bind parameters are $1, $2, ... instead of ?.
	Numbered bool
	// LockRow is appended to a SELECT that reads a row it will update.
	LockRow string
	// IsUniqueViolation reports a unique constraint violation.
	IsUniqueViolation func(error) bool
}

// DB is a store.Store on a SQL database.
type DB struct {
	// read serves queries outside transactions; write serves transactions.
	// SQLite uses one writer connection so writers queue in Go instead of
	// spinning on the database lock; PostgreSQL uses one pool for both.
	read, write *sql.DB
	// feed serves the event hub's reads of the events table (events.go):
	// read unless UseFeedPool gave it a pool of its own.
	feed    *sql.DB
	dialect Dialect
	queries sync.Map // query text with ? -> dialect's form
	stmts   sync.Map // query text -> *sql.Stmt on read
	// placements keeps placement indexes between placements (SQLite).
	placements placementCache
	// batches queues the pods to place together (placebatch.go,
	// PostgreSQL); placeOneByOne turns that off, for the benchmark's
	// baseline.
	batches       placeQueues
	placeOneByOne bool
	// committed wakes the event hub after a write transaction commits
	// (events.go).
	committed chan struct{}
	// view is the read model of runners for the API (runnerview.go); nil
	// reads the store.
	view *runnerView
}

// New returns a DB. read and write may be the same pool.
func New(read, write *sql.DB, d Dialect) *DB {
	return &DB{read: read, write: write, feed: read, dialect: d, committed: make(chan struct{}, 1)}
}

// UseFeedPool makes the event hub read the events table through p, a pool
// the writers do not share, and closes p with db. On PostgreSQL one pool
// serves reads and write transactions; under a write load that holds every
// connection, the hub's read waited for one among the queued writers (a
// random pick), tens of milliseconds per read and hundreds at p99
// (bench/events), which every event it delivered waited too.
func (db *DB) UseFeedPool(p *sql.DB) { db.feed = p }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect.Name, err)
	}
	return nil
}

// Close closes the pools.
func (db *DB) Close() error {
	db.releaseView()
	db.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	if db.feed != db.read && db.feed != db.write {
		err = errors.Join(err, db.feed.Close())
	}
	return err
}

// q rewrites ? placeholders into the dialect's form, once per query text.
func (db *DB) q(query string) string {
	if !db.dialect.Numbered {
		return query
	}
	if v, ok := db.queries.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	db.queries.Store(query, b.String())
	return b.String()
}

// readRow runs a hot single-row read through a statement prepared once:
// parsing and planning the query again was a seventh of a GetRunner's CPU.
func (db *DB) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	q := db.q(query)
	if v, ok := db.stmts.Load(q); ok {
		return v.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	stmt, err := db.read.PrepareContext(ctx, q)
	if err != nil {
		// The row reports the same error when scanned.
		return db.read.QueryRowContext(ctx, q, args...)
	}
	if prev, loaded := db.stmts.LoadOrStore(q, stmt); loaded {
		stmt.Close()
		stmt = prev.(*sql.Stmt)
	}
	return stmt.QueryRowContext(ctx, args...)
}

// tx runs fn in a write transaction and commits unless fn fails.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	// The audit entry of the call goes in with its change (internal/audit).
	draft, err := db.writeDraft(ctx, tx)
	if err != nil {
		return db.translate(err, "audit entry")
	}
	if err := tx.Commit(); err != nil {
		return db.translate(fmt.Errorf("commit: %w", err), "")
	}
	if draft != nil {
		draft.MarkWritten()
	}
	db.signalCommit()
	return nil
}

// translate turns driver errors into apperr codes. what names the object
// for messages, e.g. `runner "x"`.
func (db *DB) translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return apperr.NotFound("%s not found", what)
	case db.dialect.IsUniqueViolation(err):
		return &apperr.Error{Code: apperr.CodeConflict, Message: what + " already exists", Err: err}
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return apperr.Internal(err, "%s", db.dialect.Name)
}

// in returns "(?, ?, ...)" for n values.
func in(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// micros stores times as microseconds since the epoch, the precision both
// databases keep, in a BIGINT column that reads the same in each.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}
