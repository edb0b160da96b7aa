package sqlite_test

import (
	"context"
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
