package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/runyard/runyard/internal/store/storetest"
	"github.com/runyard/runyard/internal/testutil"
)

// TestMigrateTombstones upgrades a schema with runners from migration 00009
// through 00010 and checks what it changes: a tombstone's name is free, two
// live runners still cannot share one, and rows and foreign keys are kept.
// Then down, which drops the tombstones and restores the table constraint,
// and up again.
func TestMigrateTombstones(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", testutil.PostgresURL(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatalf("goose: %v", err)
	}
	if _, err := provider.UpTo(ctx, 9); err != nil {
		t.Fatalf("migrate to 00009: %v", err)
	}
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	insertRunner := func(id, name string) error {
		_, err := db.ExecContext(ctx, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id,
			creator_principal, created_at, updated_at) VALUES ($1, 'o', $2, 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2)`, id, name)
		return err
	}
	exec("organization", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'org', 1)`)
	for _, r := range []struct{ id, name string }{{"a", "alpha"}, {"b", "beta"}} {
		if err := insertRunner(r.id, r.name); err != nil {
			t.Fatalf("runner %s: %v", r.id, err)
		}
	}
	exec("exchange token", `INSERT INTO exchange_tokens (hash, org_id, runner_id, created_at, expires_at) VALUES ('h', 'o', 'a', 1, 2)`)

	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("migrate to the latest: %v", err)
	}
	if n := count(`SELECT COUNT(*) FROM runners WHERE deleted_at = 0`); n != 2 {
		t.Fatalf("%d live runners after the migration, want 2", n)
	}
	if err := insertRunner("c", "alpha"); err == nil {
		t.Fatal("two live runners share a name")
	}
	exec("tombstone a", `UPDATE runners SET deleted_at = 5, phase = 'RUNNER_PHASE_DELETED' WHERE id = 'a'`)
	if err := insertRunner("c", "alpha"); err != nil {
		t.Fatalf("reuse a tombstone's name: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO exchange_tokens (hash, org_id, runner_id, created_at, expires_at)
		VALUES ('h2', 'o', 'nobody', 1, 2)`); err == nil {
		t.Fatal("an exchange token for a missing runner was stored")
	}

	if _, err := provider.DownTo(ctx, 9); err != nil {
		t.Fatalf("migrate down to 00009: %v", err)
	}
	if n := count(`SELECT COUNT(*) FROM runners`); n != 2 {
		t.Fatalf("%d runners after migrating down, want 2 (b and c; a was a tombstone)", n)
	}
	if err := insertRunner("d", "alpha"); err == nil {
		t.Fatal("after migrating down, two runners share a name")
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if n := count(`SELECT COUNT(*) FROM runners WHERE deleted_at = 0`); n != 2 {
		t.Fatalf("%d live runners after down and up, want 2", n)
	}
}

// TestMigrateData fills a schema at a migration with data and migrates one
// step up: each row's check (in storetest, shared with the other database)
// says what the data must become.
//   - RunnerCapacity (00008 -> 00009): runner_capacity holds each runner's
//     maximum, whether it takes no work, its agent types and labels from its
//     report, and its active pods (running, or pending on it; not ended
//     ones, not unplaced ones, not another organization's).
//   - AutomationSources (00014 -> 00015): services and tasks from before get
//     the source 'file'.
//   - OrganizationUpdates (00020 -> 00021): see
//     storetest.MigrateOrganizationUpdates.
//   - UserKeys (00023 -> 00024): see storetest.MigrateUserKeys.
//   - ExecutionSteps (00026 -> 00027): see storetest.MigrateExecutionSteps.
//   - ReleaseChunks (00042 -> 00043): see storetest.MigrateReleaseChunks.
func TestMigrateData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  int64
		check func(t *testing.T, db *sql.DB, q func(string) string, up func() error)
	}{
		{"RunnerCapacity", 8, storetest.MigrateRunnerCapacity},
		{"AutomationSources", 14, storetest.MigrateAutomationSources},
		{"OrganizationUpdates", 20, storetest.MigrateOrganizationUpdates},
		{"UserKeys", 23, storetest.MigrateUserKeys},
		{"ExecutionSteps", 26, storetest.MigrateExecutionSteps},
		{"ReleaseChunks", 42, storetest.MigrateReleaseChunks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sql.Open("pgx", testutil.PostgresURL(t))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer db.Close()
			provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
			if err != nil {
				t.Fatalf("goose: %v", err)
			}
			if _, err := provider.UpTo(ctx, tc.from); err != nil {
				t.Fatalf("migrate to %05d: %v", tc.from, err)
			}
			tc.check(t, db, numbered, func() error { _, err := provider.UpTo(ctx, tc.from+1); return err })
		})
	}
}

// numbered turns ? placeholders into PostgreSQL's $1, $2, ...
func numbered(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestAuditAppendOnly: the audit log refuses UPDATE, TRUNCATE and DELETE
// but the retention prune's, for the role the control plane connects as.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", testutil.PostgresURL(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatalf("goose: %v", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	storetest.AuditAppendOnly(t, db, numbered, true)
}
