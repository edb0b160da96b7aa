package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// MigrateRunnerCapacity fills db, migrated to 00008, with runners and pods,
// calls upTo9 and checks runner_capacity (migration 00009): each runner's
// maximum, whether it takes no work, its agent types and labels from its
// report, and its active pods (running, or pending on it; not ended ones,
// not unplaced ones, not another organization's). q adapts a query's ?
// placeholders to the database.
func MigrateRunnerCapacity(t *testing.T, db *sql.DB, q func(string) string, upTo9 func() error) {
	ctx := context.Background()
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
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
			created_at, updated_at, phase, report) VALUES (?, 'o', ?, 'k', 'p', ?, '{}', 'u', 'USER', 1, 2, 'RUNNER_PHASE_ACTIVE', ?)`,
			r.id, "runner-"+r.id, r.spec, r.report)
	}
	for i, p := range []struct{ org, runner, status string }{
		{"o", "a", "running"}, {"o", "a", "pending"}, {"o", "a", "terminated"}, {"o", "", "pending"},
		{"o", "b", "failed"}, {"x", "a", "running"},
	} {
		exec("pod", `INSERT INTO pods (key, org_id, runner_id, status, agent_type_id, created_at) VALUES (?, ?, ?, ?, 'codex', 1)`,
			fmt.Sprintf("pod-%d", i), p.org, p.runner, p.status)
	}
	if err := upTo9(); err != nil {
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

// MigrateAutomationSources fills db, migrated to 00014, with a service and a
// task, calls upTo15 and checks that both got the source 'file' (migration
// 00015): they were made under the rule where the repository's file managed
// everything, so the next explicit file apply manages them, and a runner
// restart none. q adapts a query's ? placeholders to the database.
func MigrateAutomationSources(t *testing.T, db *sql.DB, q func(string) string, upTo15 func() error) {
	ctx := context.Background()
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("organization", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'org', 1)`)
	exec("environment", `INSERT INTO environments (id, org_id, runner_id, runner_kind, name, phase, spec, status,
		creator_id, creator_principal, created_at, updated_at) VALUES ('e', 'o', 'r', 'k', 'env', 'ENVIRONMENT_PHASE_RUNNING',
		'{}', '{}', 'u', 'USER', 1, 1)`)
	exec("service", `INSERT INTO automation_services (id, org_id, environment_id, reference, name, role, spec, status,
		creator_id, creator_principal, created_at, updated_at) VALUES ('s', 'o', 'e', 'web', 'Web', 'SERVICE_ROLE_UNSPECIFIED',
		'{}', '{}', 'u', 'USER', 1, 1)`)
	exec("task", `INSERT INTO automation_tasks (id, org_id, environment_id, reference, name, spec,
		creator_id, creator_principal, created_at, updated_at) VALUES ('t', 'o', 'e', 'build', 'Build', '{}', 'u', 'USER', 1, 1)`)
	if err := upTo15(); err != nil {
		t.Fatalf("migrate to 00015: %v", err)
	}
	for _, table := range []string{"automation_services", "automation_tasks"} {
		var source string
		if err := db.QueryRowContext(ctx, `SELECT source FROM `+table).Scan(&source); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if source != "file" {
			t.Errorf("%s: source %q after the migration, want file", table, source)
		}
	}
}

// MigrateOrganizationUpdates: organizations from before migration 00021
// get their creation time as updated_at, and the bootstrap admin key (the
// installation admin's) is untouched.
func MigrateOrganizationUpdates(t *testing.T, db *sql.DB, q func(string) string, upTo21 func() error) {
	ctx := context.Background()
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("organization", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'default', 1234)`)
	exec("bootstrap key", `INSERT INTO tokens (id, org_id, name, principal, scopes, creator_id, creator_principal, hash, bootstrap, created_at)
		VALUES ('k', 'o', 'admin', 'PRINCIPAL_SERVICE_ACCOUNT', 'admin', 'k', 'PRINCIPAL_SERVICE_ACCOUNT', 'h', ?, 1)`, true)
	if err := upTo21(); err != nil {
		t.Fatalf("migrate to 00021: %v", err)
	}
	var updated int64
	if err := db.QueryRowContext(ctx, `SELECT updated_at FROM organizations WHERE id = 'o'`).Scan(&updated); err != nil {
		t.Fatalf("organization: %v", err)
	}
	if updated != 1234 {
		t.Errorf("updated_at = %d after the migration, want the creation time 1234", updated)
	}
	var bootstrap bool
	if err := db.QueryRowContext(ctx, `SELECT bootstrap FROM tokens WHERE id = 'k'`).Scan(&bootstrap); err != nil || !bootstrap {
		t.Errorf("bootstrap key after the migration: bootstrap=%v, %v", bootstrap, err)
	}
}

// MigrateUserKeys: keys from before migration 00024 (the bootstrap admin
// key, another service account's key, a runner's token) stay as they were
// and belong to no user, so they authenticate as before; existing users
// are no installation admins; invites start empty.
func MigrateUserKeys(t *testing.T, db *sql.DB, q func(string) string, upTo24 func() error) {
	ctx := context.Background()
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("organization", `INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('o', 'default', 1, 1)`)
	for _, k := range []struct {
		id, principal, scopes string
		bootstrap             bool
	}{
		{"boot", "PRINCIPAL_SERVICE_ACCOUNT", "admin", true},
		{"ci", "PRINCIPAL_SERVICE_ACCOUNT", "runners:read", false},
		{"rt", "PRINCIPAL_RUNNER", "", false},
	} {
		exec("key "+k.id, `INSERT INTO tokens (id, org_id, name, principal, scopes, creator_id, creator_principal, hash, bootstrap, created_at)
			VALUES (?, 'o', ?, ?, ?, ?, ?, ?, ?, 1)`, k.id, k.id, k.principal, k.scopes, k.id, k.principal, "hash-"+k.id, k.bootstrap)
	}
	exec("user", `INSERT INTO users (id, email, created_at, updated_at) VALUES ('u', 'u@example.com', 1, 1)`)
	if err := upTo24(); err != nil {
		t.Fatalf("migrate to 00024: %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT id, principal, scopes, bootstrap, owner_user_id, hash FROM tokens ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, principal, scopes, owner, hash string
		var bootstrap bool
		if err := rows.Scan(&id, &principal, &scopes, &bootstrap, &owner, &hash); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %q %v %q %s", id, principal, scopes, bootstrap, owner, hash))
	}
	want := []string{
		`boot PRINCIPAL_SERVICE_ACCOUNT "admin" true "" hash-boot`,
		`ci PRINCIPAL_SERVICE_ACCOUNT "runners:read" false "" hash-ci`,
		`rt PRINCIPAL_RUNNER "" false "" hash-rt`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tokens after the migration:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var admin bool
	if err := db.QueryRowContext(ctx, `SELECT installation_admin FROM users WHERE id = 'u'`).Scan(&admin); err != nil || admin {
		t.Errorf("user after the migration: installation_admin=%v, %v", admin, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM invites`).Scan(&n); err != nil || n != 0 {
		t.Errorf("invites after the migration: %d, %v", n, err)
	}
}
