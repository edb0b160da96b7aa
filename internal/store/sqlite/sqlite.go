// Package sqlite opens the control plane's embedded SQLite database (pure Go,
// WAL mode) and applies its migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"runtime"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*sqlstore.DB)(nil)

var dialect = sqlstore.Dialect{
	Name: "sqlite",
	// BEGIN IMMEDIATE (see dsn) already holds the write lock for the whole
	// transaction, so rows need no extra lock.
	LockRow: "",
	IsUniqueViolation: func(err error) bool {
		var se *sqlite.Error
		if errors.As(err, &se) {
			code := se.Code()
			return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
		return false
	},
}

func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		// Take the write lock when a transaction begins, not when it first
		// writes: a read-then-write transaction can then never fail with
		// SQLITE_BUSY half way through.
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	wc, err := newCachingConnector(dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write := sql.OpenDB(wc)
	// One writer: SQLite serializes writers anyway, and queueing them in the
	// pool is cheaper than spinning on the busy timeout.
	write.SetMaxOpenConns(1)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	rc, err := newCachingConnector(dsn(path, false))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read := sql.OpenDB(rc)
	n := max(4, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db := sqlstore.New(read, write, dialect)
	// One control-plane process writes the file: every change reaches the
	// view of runners through the handles of this process, which share it.
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	db.UseRunnerView("sqlite:"+key, false)
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}
