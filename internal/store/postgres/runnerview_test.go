package postgres_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/store/storetest"
	"github.com/runyard/runyard/internal/testutil"
)

// TestRunnerView: two replicas on one database keep runner views of their
// own; a change through one reaches the other's view by the trigger's
// notice (migration 00036) through ListenRunners, within a bounded wait.
// The test fails if the notices are not sent or not applied: an entry is
// trusted for a minute, far longer than the wait.
func TestRunnerView(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := testutil.PostgresURL(t)
	// A second replica: the same database under another address, so that
	// it shares nothing with the first in this process.
	open := func(url string) *sqlstore.DB {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		done := make(chan struct{})
		go func() {
			defer close(done)
			postgres.ListenRunners(ctx, url, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		t.Cleanup(func() { cancel(); <-done })
		deadline := time.Now().Add(30 * time.Second)
		for !db.RunnerViewLive() {
			if time.Now().After(deadline) {
				t.Fatal("the runner view does not listen for notices")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return db
	}
	a, b := open(url), open(url+"&application_name=replica-b")
	storetest.RunnerView(t, storetest.ViewHandles{A: a, B: b, Apart: true,
		Bypass: func(t *testing.T, id, name string) {
			raw, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatalf("open the database without the store: %v", err)
			}
			defer raw.Close()
			conn, err := raw.Conn(ctx)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer conn.Close()
			// Triggers do not fire in this session: no notice, no event.
			if _, err := conn.ExecContext(ctx, `SET session_replication_role = replica`); err != nil {
				t.Fatalf("turn triggers off: %v", err)
			}
			if _, err := conn.ExecContext(ctx, `UPDATE runners SET name = $1 WHERE id = $2`, name, id); err != nil {
				t.Fatalf("rename without the store: %v", err)
			}
		}})
}
