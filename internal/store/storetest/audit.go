package storetest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/store"
)

// testAuditLog: a call's draft commits with its first committed
// transaction and only once, a rolled-back transaction writes none, and
// FindAudit filters and pages an organization's entries.
func testAuditLog(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	caller := &identity.Caller{OrgID: org.ID, TokenID: "key-1", Subject: identity.Subject{ID: "sa-1", Principal: identity.PrincipalServiceAccount}}
	call := func(method string) (context.Context, *audit.Draft) {
		c, d := audit.Begin(identity.NewContext(ctx, caller), audit.SurfaceConnect, method, audit.TypeAPIKey, "127.0.0.1", "test")
		return c, d
	}

	// A committed change: one entry, in its transaction, naming the key
	// it created.
	c1, d1 := call("runyard.v1.TokenService/CreateToken")
	tok, _ := newToken(org.ID, "audited")
	must(t, s.CreateToken(c1, tok), "create token")
	second, _ := newToken(org.ID, "second")
	must(t, s.CreateToken(c1, second), "create a second token in the same call")
	if _, ok := d1.Finish(c1, audit.OutcomeOK, base); ok {
		t.Fatal("the draft of a committed call is still pending")
	}

	// A rolled-back change writes nothing; the call's failure is appended.
	c2, d2 := call("runyard.v1.TokenService/CreateToken")
	dup := *tok
	dup.Seq = 0
	if err := s.CreateToken(c2, &dup); apperr.As(err).Code != apperr.CodeConflict {
		t.Fatalf("duplicate token: %v, want conflict", err)
	}
	e, ok := d2.Finish(c2, string(apperr.CodeConflict), base.Add(time.Second))
	if !ok {
		t.Fatal("the draft of a failed call was written")
	}
	must(t, s.AppendAudit(ctx, &e), "append")
	must(t, s.AppendAudit(ctx, &audit.Entry{OrgID: other.ID, Surface: audit.SurfaceREST, Method: "POST /x", Outcome: "ok", CreatedAt: base}), "append other org")

	got, err := s.FindAudit(ctx, audit.Filter{OrgID: org.ID})
	must(t, err, "find")
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2: %+v", len(got), got)
	}
	if g := got[0]; g.ObjectID != tok.ID || g.ObjectType != audit.TypeAPIKey || g.Outcome != audit.OutcomeOK || g.KeyID != "key-1" ||
		g.ActorID != "sa-1" || g.ActorPrincipal != identity.PrincipalServiceAccount || g.ClientIP != "127.0.0.1" || g.UserAgent != "test" || g.Seq == 0 {
		t.Errorf("committed entry: %+v", g)
	}
	if g := got[1]; g.Outcome != "already_exists" || g.ObjectID != tok.ID || !g.CreatedAt.Equal(base.Add(time.Second)) {
		t.Errorf("failed entry: %+v", g)
	}

	for name, tc := range map[string]struct {
		f    audit.Filter
		want int
	}{
		"Method":     {audit.Filter{Methods: []string{"runyard.v1.TokenService/CreateToken"}}, 2},
		"NoMethod":   {audit.Filter{Methods: []string{"x"}}, 0},
		"Actor":      {audit.Filter{ActorIDs: []string{"sa-1"}}, 2},
		"Principal":  {audit.Filter{ActorPrincipals: []identity.Principal{identity.PrincipalRunner}}, 0},
		"Object":     {audit.Filter{ObjectIDs: []string{second.ID}}, 0},
		"ObjectTok":  {audit.Filter{ObjectIDs: []string{tok.ID}}, 2},
		"ObjectType": {audit.Filter{ObjectTypes: []string{audit.TypeAPIKey}}, 2},
		// The committed entry's time is the wall clock's (after base).
		"Since":    {audit.Filter{Since: ptrTime(base.Add(time.Second))}, 2},
		"SinceNow": {audit.Filter{Since: ptrTime(time.Now().Add(time.Hour))}, 0},
		"Until":    {audit.Filter{Until: ptrTime(base.Add(time.Second))}, 0},
		"Page":     {audit.Filter{Limit: 1}, 1},
		"After":    {audit.Filter{After: got[0].Seq}, 1},
	} {
		tc.f.OrgID = org.ID
		res, err := s.FindAudit(ctx, tc.f)
		must(t, err, name)
		if len(res) != tc.want {
			t.Errorf("%s: %d entries, want %d", name, len(res), tc.want)
		}
	}

	// Pruning deletes what is older than the cutoff, nothing else.
	n, err := s.PruneAudit(ctx, base.Add(2*time.Second))
	must(t, err, "prune")
	if n != 2 {
		t.Errorf("pruned %d, want 2 (the failed entry and the other organization's)", n)
	}
	got, err = s.FindAudit(ctx, audit.Filter{OrgID: org.ID})
	must(t, err, "find after prune")
	if len(got) != 1 || got[0].ObjectID != tok.ID {
		t.Errorf("after prune: %+v", got)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

// AuditAppendOnly checks on db, fully migrated, that audit_log refuses
// UPDATE always, DELETE outside the retention prune's transaction (which
// opens the gate sqlstore.PruneAudit opens) and, on PostgreSQL (numbered
// placeholders), TRUNCATE, which fires no row trigger. q adapts ?
// placeholders.
func AuditAppendOnly(t *testing.T, db *sql.DB, q func(string) string, postgres bool) {
	c := context.Background()
	if _, err := db.ExecContext(c, q(`INSERT INTO audit_log (org_id, actor_principal, actor_id, key_id, surface, method,
		object_type, object_id, client_ip, user_agent, outcome, created_at) VALUES ('o', '', '', '', 'connect', 'm', '', '', '', '', 'ok', 1)`)); err != nil {
		t.Fatalf("insert: %v", err)
	}
	refused := func(what, stmt string) {
		t.Helper()
		if _, err := db.ExecContext(c, stmt); err == nil {
			t.Errorf("%s of audit_log succeeded", what)
		} else if !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s of audit_log: %v, want the append-only refusal", what, err)
		}
	}
	refused("UPDATE", `UPDATE audit_log SET outcome = 'forged'`)
	refused("DELETE outside the prune", `DELETE FROM audit_log`)
	refused("DELETE of one row outside the prune", `DELETE FROM audit_log WHERE created_at = 1`)
	if postgres {
		refused("TRUNCATE", `TRUNCATE audit_log`)
		refused("TRUNCATE ... CASCADE", `TRUNCATE TABLE audit_log RESTART IDENTITY CASCADE`)
	}
	var n int
	if err := db.QueryRowContext(c, `SELECT COUNT(*) FROM audit_log`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the refusals audit_log holds %d rows (%v), want 1", n, err)
	}

	tx, err := db.BeginTx(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	open := `INSERT INTO audit_log_prune (open) VALUES (1)`
	if postgres {
		open = `SELECT set_config('runyard.audit_prune', 'on', true)`
	}
	if _, err := tx.ExecContext(c, open); err != nil {
		t.Fatal(err)
	}
	if res, err := tx.ExecContext(c, `DELETE FROM audit_log`); err != nil {
		t.Errorf("the prune's DELETE: %v", err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("the prune deleted %d rows, want 1", n)
	}
	if postgres {
		if _, err := tx.ExecContext(c, `TRUNCATE audit_log`); err == nil {
			t.Error("TRUNCATE inside the prune's transaction succeeded")
		}
	}
}

// testAuditEveryWrite: the writes that once ran outside a transaction
// (pods, agent types) commit the call's audit entry with their change, so
// a crash between the two cannot lose the entry.
func testAuditEveryWrite(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	caller := &identity.Caller{OrgID: org.ID, TokenID: "key-1", Subject: identity.Subject{ID: "sa-1", Principal: identity.PrincipalServiceAccount}}
	agent := &pods.AgentType{ID: "audited-agent", OrgID: org.ID, Name: "Audited", Command: []string{"/bin/true"}, CreatedAt: base}
	for _, tc := range []struct {
		method string
		write  func(ctx context.Context) error
	}{
		{"POST /agents", func(ctx context.Context) error { return s.CreateAgentType(ctx, agent) }},
		{"POST /pods", func(ctx context.Context) error { return s.CreatePod(ctx, newPod(org.ID, 1)) }},
		{"DELETE /agents/{id}", func(ctx context.Context) error { return s.DeleteAgentType(ctx, org.ID, agent.ID) }},
	} {
		c, d := audit.Begin(identity.NewContext(ctx, caller), audit.SurfaceREST, tc.method, "", "127.0.0.1", "test")
		must(t, tc.write(c), tc.method)
		if _, pending := d.Finish(c, audit.OutcomeOK, base); pending {
			t.Errorf("%s: the audit entry was not written with the change", tc.method)
		}
	}
	got, err := s.FindAudit(ctx, audit.Filter{OrgID: org.ID})
	must(t, err, "find")
	if len(got) != 3 {
		t.Errorf("%d entries, want 3: %+v", len(got), got)
	}
}
