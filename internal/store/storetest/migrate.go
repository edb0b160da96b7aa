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
