package main

import (
	"strings"
	"testing"
)

// TestAudit_CLI: `runyard audit list` shows the changes made through the
// CLI with their method, actor and outcome, filters by --method, --actor
// and --since, and is refused to a key without audit:read.
func TestAudit_CLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			var key struct {
				Token  tokenJSON
				Secret string
			}
			s.mustJSON(t, adminToken, &key, "tokens", "create", "--name", "runners only", "--scopes", "runners:read,runners:write")
			s.mustRun(t, key.Secret, "runners", "create", "--name", "audited-box", "--provider", "linux-host")
			s.mustRun(t, key.Secret, "runners", "list")

			type entry struct {
				ActorID, KeyID, Action, Outcome, SubjectID string
			}
			var all struct{ Entries []entry }
			s.mustJSON(t, adminToken, &all, "audit", "list")
			if len(all.Entries) != 2 || all.Entries[0].Action != "runyard.v1.TokenService/CreateToken" ||
				all.Entries[1].Action != "gitpod.v1.RunnerService/CreateRunner" || all.Entries[1].KeyID != key.Token.TokenID ||
				all.Entries[1].Outcome != "ok" || all.Entries[1].SubjectID == "" {
				t.Fatalf("audit list: %+v", all.Entries)
			}
			var byMethod struct{ Entries []entry }
			s.mustJSON(t, adminToken, &byMethod, "audit", "list", "--method", "gitpod.v1.RunnerService/CreateRunner", "--since", "1h")
			if len(byMethod.Entries) != 1 {
				t.Errorf("--method: %+v", byMethod.Entries)
			}
			var byActor struct{ Entries []entry }
			s.mustJSON(t, adminToken, &byActor, "audit", "list", "--actor", all.Entries[1].ActorID)
			if len(byActor.Entries) != 1 {
				t.Errorf("--actor: %+v", byActor.Entries)
			}
			if out := s.mustRun(t, adminToken, "audit", "list"); !strings.Contains(out, "gitpod.v1.RunnerService/CreateRunner") {
				t.Errorf("table:\n%s", out)
			}
			requireOneLineError(t, s.run(t, key.Secret, "audit", "list"), 6, "audit:read")
			requireOneLineError(t, s.run(t, adminToken, "audit", "list", "--since", "yesterday"), 2, "--since")
		})
	}
}
