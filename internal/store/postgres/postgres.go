// Package postgres opens a PostgreSQL database through pgx and applies the
// control plane's migrations. Several control-plane replicas may share one
// database; migrations take a session lock so they run once.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*sqlstore.DB)(nil)

var dialect = sqlstore.Dialect{
	Name:     "postgres",
	Numbered: true,
	LockRow:  " FOR UPDATE",
	IsUniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
}

// feedConns is the size of the event hub's pool (sqlstore.DB.UseFeedPool),
// beside the 32 of the store's.
const feedConns = 2

// Open connects to the database at url (postgres://...) and migrates it.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	cfg, err := pgxConfig(url)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	st := sqlstore.New(db, db, dialect)
	// The event hub reads through connections of its own (UseFeedPool):
	// one for its tail, one for a watcher catching up from the table.
	feed := stdlib.OpenDB(*cfg)
	feed.SetMaxOpenConns(feedConns)
	feed.SetMaxIdleConns(feedConns)
	st.UseFeedPool(feed)
	// Other replicas write the database too: the view of runners is used
	// while ListenRunners hears their changes.
	st.UseRunnerView("postgres:"+url, true)
	return st, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}
