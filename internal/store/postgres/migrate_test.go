package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

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

// TestMigrateRunnerCapacity fills a schema at migration 00008 with runners
// and pods and migrates to 00009: runner_capacity must hold each runner's
// maximum, whether it takes no work, its agent types and labels from its
// report, and its active pods (running, or pending on it; not ended ones,
// not unplaced ones, not another organization's).
func TestMigrateRunnerCapacity(t *testing.T) {
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
	if _, err := provider.UpTo(ctx, 8); err != nil {
		t.Fatalf("migrate to 00008: %v", err)
	}
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("organizations", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'org', 1), ('x', 'other', 1)`)
	for _, r := range []struct{ id, spec, report string }{
		{"a", `{"desiredPhase":"RUNNER_PHASE_ACTIVE"}`, `{"maxPods":3,"agentTypes":["codex"],"labels":["gpu","arm"]}`},
		{"b", `{"desiredPhase":"RUNNER_PHASE_ACTIVE"}`, `{"draining":true,"maxPods":2}`},
		{"c", `{"desiredPhase":"RUNNER_PHASE_INACTIVE"}`, `{}`},
	} {
		exec("runner "+r.id, `INSERT INTO runners (id, org_id, name, kind, provider, spec, status, creator_id, creator_principal,
			created_at, updated_at, phase, report) VALUES ($1, 'o', $2, 'k', 'p', $3, '{}', 'u', 'USER', 1, 2, 'RUNNER_PHASE_ACTIVE', $4)`,
			r.id, "runner-"+r.id, r.spec, r.report)
	}
	for i, p := range []struct{ org, runner, status string }{
		{"o", "a", "running"}, {"o", "a", "pending"}, {"o", "a", "terminated"}, {"o", "", "pending"},
		{"o", "b", "failed"}, {"x", "a", "running"},
	} {
		exec("pod", `INSERT INTO pods (key, org_id, runner_id, status, agent_type_id, created_at) VALUES ($1, $2, $3, $4, 'codex', 1)`,
			fmt.Sprintf("pod-%d", i), p.org, p.runner, p.status)
	}
	if _, err := provider.UpTo(ctx, 9); err != nil {
		t.Fatalf("migrate to 00009: %v", err)
	}
	type capacity struct {
		maxPods, active    int
		draining           bool
		agentTypes, labels string
	}
	want := map[string]capacity{
		"a": {3, 2, false, `["codex"]`, `["gpu", "arm"]`},
		"b": {2, 0, true, `[]`, `[]`},
		"c": {0, 0, true, `[]`, `[]`},
	}
	rows, err := db.QueryContext(ctx, `SELECT runner_id, max_pods, active_pods, draining, agent_types, labels FROM runner_capacity`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]capacity{}
	for rows.Next() {
		var id string
		var c capacity
		if err := rows.Scan(&id, &c.maxPods, &c.active, &c.draining, &c.agentTypes, &c.labels); err != nil {
			t.Fatal(err)
		}
		c.agentTypes, c.labels = strings.ReplaceAll(c.agentTypes, " ", ""), strings.ReplaceAll(c.labels, " ", "")
		got[id] = c
	}
	for id, w := range want {
		w.agentTypes, w.labels = strings.ReplaceAll(w.agentTypes, " ", ""), strings.ReplaceAll(w.labels, " ", "")
		if got[id] != w {
			t.Errorf("runner_capacity of %s = %+v, want %+v", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("runner_capacity has %d rows, want %d", len(got), len(want))
	}
}
