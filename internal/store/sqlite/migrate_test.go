package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/runyard/runyard/internal/store/storetest"
)

// TestMigrateTombstones upgrades a database with runners, their tokens,
// capacity and pods from migration 00009 through 00010, which rebuilds the
// runners table, and checks that nothing is lost: rows, the capacity the
// triggers counted, the foreign keys (on again, and pointing at the new
// table), the numeric ids already given out. Then down and up again.
func TestMigrateTombstones(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "runyard.db"), true))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
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
	exec("organization", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'org', 1)`)
	for _, r := range []struct{ id, name string }{{"a", "alpha"}, {"b", "beta"}, {"c", "gone"}} {
		exec("runner "+r.id, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id, creator_principal,
			created_at, updated_at, phase, last_seen, report) VALUES (?, 'o', ?, 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2,
			'RUNNER_PHASE_ACTIVE', 3, '{"maxPods":2}')`, r.id, r.name)
		exec("capacity "+r.id, `INSERT INTO runner_capacity (runner_id, org_id, seq, phase, max_pods)
			SELECT id, org_id, seq, phase, 2 FROM runners WHERE id = ?`, r.id)
	}
	exec("exchange token", `INSERT INTO exchange_tokens (hash, org_id, runner_id, created_at, expires_at) VALUES ('h', 'o', 'a', 1, 2)`)
	exec("running pod", `INSERT INTO pods (key, org_id, runner_id, status, agent_type_id, created_at) VALUES ('p1', 'o', 'a', 'running', 'x', 1)`)
	// The runner with the highest numeric id was deleted before the
	// upgrade: its id must not come back.
	exec("delete c", `DELETE FROM runners WHERE id = 'c'`)

	if err := migrate(ctx, db); err != nil {
		t.Fatalf("migrate to the latest: %v", err)
	}
	if n := count(`PRAGMA foreign_keys`); n != 1 {
		t.Fatal("foreign keys are off after the migrations")
	}
	if n := count(`SELECT COUNT(*) FROM pragma_foreign_key_check`); n != 0 {
		t.Fatalf("%d foreign key violations after the migrations", n)
	}
	if n := count(`SELECT COUNT(*) FROM sqlite_schema WHERE sql LIKE '%runners_new%'`); n != 0 {
		t.Fatal("the schema still names runners_new")
	}
	if n := count(`SELECT COUNT(*) FROM runners WHERE deleted_at = 0 AND last_seen = 3 AND report = '{"maxPods":2}'`); n != 2 {
		t.Fatalf("%d runners kept with their columns, want 2", n)
	}
	if n := count(`SELECT active_pods FROM runner_capacity WHERE runner_id = 'a'`); n != 1 {
		t.Fatalf("runner a's active pods = %d after the migration, want 1", n)
	}
	if n := count(`SELECT COUNT(*) FROM exchange_tokens WHERE runner_id = 'a'`); n != 1 {
		t.Fatal("runner a's exchange token is gone")
	}
	// The triggers still count on the kept capacity rows.
	exec("second pod", `INSERT INTO pods (key, org_id, runner_id, status, agent_type_id, created_at) VALUES ('p2', 'o', 'a', 'running', 'x', 1)`)
	if n := count(`SELECT active_pods FROM runner_capacity WHERE runner_id = 'a'`); n != 2 {
		t.Fatalf("runner a's active pods = %d after a second pod, want 2", n)
	}
	// Foreign keys to the rebuilt table hold and cascade.
	if _, err := db.ExecContext(ctx, `INSERT INTO exchange_tokens (hash, org_id, runner_id, created_at, expires_at)
		VALUES ('h2', 'o', 'nobody', 1, 2)`); err == nil {
		t.Fatal("an exchange token for a missing runner was stored")
	}
	exec("delete b", `DELETE FROM runners WHERE id = 'b'`)
	if n := count(`SELECT COUNT(*) FROM runner_capacity WHERE runner_id = 'b'`); n != 0 {
		t.Fatal("deleting a runner left its capacity row")
	}
	// A tombstone frees its name; the numeric ids keep growing.
	exec("tombstone a", `UPDATE runners SET deleted_at = 5, phase = 'RUNNER_PHASE_DELETED' WHERE id = 'a'`)
	exec("reuse a's name", `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id, creator_principal,
		created_at, updated_at) VALUES ('d', 'o', 'alpha', 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2)`)
	if n := count(`SELECT seq FROM runners WHERE id = 'd'`); n != 4 {
		t.Fatalf("the runner created after the upgrade has seq %d, want 4 (1 to 3 were given out)", n)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id,
		creator_principal, created_at, updated_at) VALUES ('e', 'o', 'alpha', 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2)`); err == nil {
		t.Fatal("two live runners share a name")
	}

	// Down drops the tombstones and restores the table constraint.
	if _, err := provider.DownTo(ctx, 9); err != nil {
		t.Fatalf("migrate down to 00009: %v", err)
	}
	if n := count(`PRAGMA foreign_keys`); n != 1 {
		t.Fatal("foreign keys are off after migrating down")
	}
	if n := count(`SELECT COUNT(*) FROM pragma_foreign_key_check`); n != 0 {
		t.Fatalf("%d foreign key violations after migrating down", n)
	}
	if n := count(`SELECT COUNT(*) FROM runners`); n != 1 {
		t.Fatalf("%d runners after migrating down, want 1 (d; a was a tombstone)", n)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id,
		creator_principal, created_at, updated_at) VALUES ('f', 'o', 'alpha', 'k', 'p', '{}', '{}', 'u', 'USER', 1, 2)`); err == nil {
		t.Fatal("after migrating down, two runners share a name")
	}
	if err := migrate(ctx, db); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if n := count(`SELECT COUNT(*) FROM runners WHERE id = 'd' AND deleted_at = 0`); n != 1 {
		t.Fatal("runner d did not survive down and up")
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
			db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "runyard.db"), true))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			sub, err := fs.Sub(migrations, "migrations")
			if err != nil {
				t.Fatal(err)
			}
			provider, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
			if err != nil {
				t.Fatalf("goose: %v", err)
			}
			if _, err := provider.UpTo(ctx, tc.from); err != nil {
				t.Fatalf("migrate to %05d: %v", tc.from, err)
			}
			tc.check(t, db, func(q string) string { return q }, func() error { _, err := provider.UpTo(ctx, tc.from+1); return err })
		})
	}
}
