package postgres_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/store/storetest"
	"github.com/runyard/runyard/internal/testutil"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := postgres.Open(context.Background(), testutil.PostgresURL(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return db
	})
}

func TestOpenBadURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:hunter2@[bad")
	if err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

// migrated opens a store on a fresh schema (which migrates it) and a plain
// connection pool to the same schema, for what a test checks beneath the
// store; both close when the test ends.
func migrated(t *testing.T) (*sqlstore.DB, *sql.DB) {
	t.Helper()
	url := testutil.PostgresURL(t)
	st, err := postgres.Open(context.Background(), url)
	testutil.MustNoErr(t, err, "open the store")
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("pgx", url)
	testutil.MustNoErr(t, err, "open the database")
	t.Cleanup(func() { db.Close() })
	return st, db
}
