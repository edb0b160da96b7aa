package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
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
