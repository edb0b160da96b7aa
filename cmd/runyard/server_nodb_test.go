package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServer_UnreachableDatabaseWritesNothing: a server whose PostgreSQL
// cannot be reached fails with one line and creates nothing: no data
// directory (./.runyard by default), no secrets key.
func TestServer_UnreachableDatabaseWritesNothing(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), ".runyard")
	code, s := runServerToExit(t, serverConfig{DataDir: dataDir, DatabaseURL: "postgres://runyard@" + freePort(t) + "/runyard?sslmode=disable"})
	if code == 0 {
		t.Fatalf("server on an unreachable database exited 0")
	}
	requireServerError(t, "unreachable database", s.Stderr.String(), "connect to postgres")
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dataDir)
		t.Errorf("the data directory exists after the failed start (%v): %v", err, entries)
	}
}
