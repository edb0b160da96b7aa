package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/store/storetest"
)

// TestRunnerView: two handles on one SQLite file in one process share the
// runner view, so a change through either shows through both at once.
func TestRunnerView(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runyard.db")
	open := func() *sqlstore.DB {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	h := storetest.ViewHandles{A: open(), B: open()}
	h.Bypass = func(t *testing.T, id, name string) {
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatalf("open the file without the store: %v", err)
		}
		defer raw.Close()
		if _, err := raw.ExecContext(ctx, `UPDATE runners SET name = ? WHERE id = ?`, name, id); err != nil {
			t.Fatalf("rename without the store: %v", err)
		}
	}
	storetest.RunnerView(t, h)
}
