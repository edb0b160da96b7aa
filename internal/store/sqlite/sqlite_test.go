package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "runyard.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return db
	})
}

// TestReopen checks that migrations are idempotent and data survives.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runyard.db")
	for i := range 2 {
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if err := db.Ping(context.Background()); err != nil {
			t.Fatalf("ping #%d: %v", i+1, err)
		}
		db.Close()
	}
}

// TestWAL checks that Open puts the database in WAL mode, so readers never
// wait for the writer. The journal mode is a property of the database file:
// a second, plain connection that sets no pragma of its own reads what Open
// left there, while the store is open and after it is closed.
func TestWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runyard.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	journalMode := func(what string) string {
		t.Helper()
		plain, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatalf("%s: open a plain connection: %v", what, err)
		}
		defer plain.Close()
		var mode string
		if err := plain.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatalf("%s: PRAGMA journal_mode: %v", what, err)
		}
		return mode
	}
	if got := journalMode("store open"); got != "wal" {
		t.Errorf("journal_mode with the store open = %q, want wal", got)
	}
	// The migrations Open applied wrote through the write-ahead log.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log next to the database: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := journalMode("store closed"); got != "wal" {
		t.Errorf("journal_mode after the store closed = %q, want wal", got)
	}
}

// TestAuditAppendOnly: the audit log refuses UPDATE and DELETE but the
// retention prune's.
func TestAuditAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runyard.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.AuditAppendOnly(t, db, func(s string) string { return s }, false)
}
