package main

import (
	"strings"
	"testing"
)

// TestTokens_CLI_LockOut checks that `runyard tokens revoke` refuses to
// revoke the key making the call or the last admin key unless --force, and
// that a restart with RUNYARD_BOOTSTRAP_TOKEN brings a working admin key
// back after even the last one was forced out.
func TestTokens_CLI_LockOut(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cfg := serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}}
			s := startServer(t, cfg)
			bootstrapID := adminKeyID(t, s, adminToken)

			// Its own key: refused, naming the way out.
			requireOneLineError(t, s.run(t, adminToken, "tokens", "revoke", "--yes", bootstrapID), 7,
				"key making this call", "runyard tokens revoke "+bootstrapID+" --force")
			s.mustRun(t, adminToken, "whoami")

			// A second admin key may revoke the first; then it is the last.
			var second struct {
				Token  tokenJSON
				Secret string
			}
			s.mustJSON(t, adminToken, &second, "tokens", "create", "--name", "second admin", "--scopes", "admin")
			s.mustRun(t, second.Secret, "tokens", "revoke", "--yes", bootstrapID)
			requireOneLineError(t, s.run(t, adminToken, "whoami"), 5)
			requireOneLineError(t, s.run(t, second.Secret, "tokens", "revoke", "--yes", second.Token.TokenID), 7, "--force")
			s.mustRun(t, second.Secret, "whoami")

			// Forced, the last admin key goes: nobody can manage keys.
			if out := s.mustRun(t, second.Secret, "tokens", "revoke", "--yes", second.Token.TokenID, "--force"); !strings.Contains(out, "revoked") {
				t.Errorf("revoke --force printed %q", out)
			}
			requireOneLineError(t, s.run(t, second.Secret, "whoami"), 5)

			// A restart with RUNYARD_BOOTSTRAP_TOKEN restores the admin key.
			s.stop(t)
			s = startServer(t, cfg)
			s.mustRun(t, adminToken, "whoami")
			var list struct{ Tokens []tokenJSON }
			s.mustJSON(t, adminToken, &list, "tokens", "list")
			if len(list.Tokens) != 1 || list.Tokens[0].TokenID != bootstrapID {
				t.Errorf("after the restart the active keys are %+v, want the restored bootstrap key %s alone", list.Tokens, bootstrapID)
			}
			if !strings.Contains(s.Stderr.String(), "restored it with the value of RUNYARD_BOOTSTRAP_TOKEN") {
				t.Errorf("the restart does not log the restore:\n%s", s.Stderr)
			}
		})
	}
}
