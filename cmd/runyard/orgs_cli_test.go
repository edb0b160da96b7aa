package main

import (
	"strings"
	"testing"
)

type orgJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// TestOrgs_CLI: the installation admin creates, lists, renames and deletes
// organizations by name, gives a new one its first admin key, and a
// deletion is refused with the count while a runner remains; an
// organization's own admin cannot manage organizations.
func TestOrgs_CLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DataDir: t.TempDir(), DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})

			if out := s.mustRun(t, adminToken, "orgs", "create", "acme"); !strings.Contains(out, "Created organization acme") {
				t.Errorf("create printed %q", out)
			}
			requireOneLineError(t, s.run(t, adminToken, "orgs", "create", "acme"), 4, "already exists")
			requireOneLineError(t, s.run(t, adminToken, "orgs", "create", ""), 2, "NAME:")
			requireOneLineError(t, s.run(t, adminToken, "orgs", "create"), 2, "NAME")

			var list struct{ Organizations []orgJSON }
			s.mustJSON(t, adminToken, &list, "orgs", "list")
			if len(list.Organizations) != 2 || list.Organizations[0].Name != "acme" || list.Organizations[1].Name != "default" {
				t.Fatalf("orgs list = %+v", list.Organizations)
			}
			if out := s.mustRun(t, adminToken, "orgs", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "acme") {
				t.Errorf("orgs list table: %q", out)
			}

			var key struct {
				Token  tokenJSON
				Secret string
			}
			s.mustJSON(t, adminToken, &key, "tokens", "create", "--org", "acme", "--name", "acme admin", "--scopes", "admin")
			requireOneLineError(t, s.run(t, key.Secret, "orgs", "list"), 6, "installation admin")
			requireOneLineError(t, s.run(t, key.Secret, "orgs", "delete", "--yes", list.Organizations[1].ID), 3, "not found")

			s.mustRun(t, key.Secret, "runners", "create", "--name", "box", "--provider", "linux-host")
			requireOneLineError(t, s.run(t, adminToken, "orgs", "delete", "--yes", "acme"), 7, "1 runner")

			if out := s.mustRun(t, adminToken, "orgs", "rename", "acme", "acme-corp"); !strings.Contains(out, "acme-corp") {
				t.Errorf("rename printed %q", out)
			}
			requireOneLineError(t, s.run(t, adminToken, "orgs", "rename", "acme", "x"), 3, "not found")

			var runners struct{ Runners []runnerJSON }
			s.mustJSON(t, key.Secret, &runners, "runners", "list")
			if len(runners.Runners) != 1 {
				t.Fatalf("acme's runners: %+v", runners.Runners)
			}
			s.mustRun(t, key.Secret, "runners", "delete", "--yes", runners.Runners[0].RunnerID, "--force")
			if out := s.mustRun(t, adminToken, "orgs", "delete", "--yes", "acme-corp"); !strings.Contains(out, "deleted") {
				t.Errorf("delete printed %q", out)
			}
			requireOneLineError(t, s.run(t, key.Secret, "whoami"), 5)
			s.mustJSON(t, adminToken, &list, "orgs", "list")
			if len(list.Organizations) != 1 || list.Organizations[0].Name != "default" {
				t.Fatalf("orgs list after delete = %+v", list.Organizations)
			}
		})
	}
}
