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

// TestRunnerNoticeColumns checks that the runner view's trigger fires for an
// update of every column of runners but last_seen (migration 00046): a
// column added to the table and not to the trigger would change rows that
// other replicas keep in their views without telling them.
func TestRunnerNoticeColumns(t *testing.T) {
	ctx := context.Background()
	_, db := migrated(t)
	columns := func(query string) map[string]bool {
		t.Helper()
		rows, err := db.QueryContext(ctx, query)
		testutil.MustNoErr(t, err, "%s", query)
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var c string
			testutil.MustNoErr(t, rows.Scan(&c), "scan")
			out[c] = true
		}
		testutil.MustNoErr(t, rows.Err(), "%s", query)
		return out
	}
	table := columns(`SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'runners'`)
	fired := columns(`SELECT event_object_column FROM information_schema.triggered_update_columns
		WHERE trigger_schema = current_schema() AND trigger_name = 'runners_view_notice'`)
	if len(table) < 10 {
		t.Fatalf("runners has %d columns: %v", len(table), table)
	}
	for c := range table {
		if want := c != "last_seen"; fired[c] != want {
			t.Errorf("column %s: the trigger fires on its update: %v, want %v", c, fired[c], want)
		}
	}
	for c := range fired {
		if !table[c] {
			t.Errorf("the trigger names column %s, which runners does not have", c)
		}
	}
}
