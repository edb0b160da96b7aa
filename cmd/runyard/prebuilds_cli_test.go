package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// cliPrebuild is a prebuild as `runyard prebuilds ... -o json` prints it.
type cliPrebuild struct {
	ID       string `json:"id"`
	Metadata struct {
		ContextURL string `json:"contextUrl"`
		RunnerID   string `json:"runnerId"`
	} `json:"metadata"`
	Status struct {
		Phase             string `json:"phase"`
		Commit            string `json:"commit"`
		SnapshotSizeBytes string `json:"snapshotSizeBytes"`
		FailureMessage    string `json:"failureMessage"`
	} `json:"status"`
}

// TestPrebuildsCLI drives `runyard prebuilds` against a real server and
// runner binary on both databases: create --wait by runner name, list and
// get in tables and JSON, a bad flag named, delete asking for --yes.
func TestPrebuildsCLI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, serverConfig{DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			runnerID, exchange := registerRunner(t, s, "cli-prebuild-host")
			startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
			eventually(t, "the runner is ACTIVE", func() bool {
				r, _ := phaseOf(t, s, runnerID)
				return r.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
			})
			repo := makeGitRepo(t, map[string]string{
				"README":                   "hi\n",
				".gitpod/automations.yaml": "tasks:\n  install:\n    command: echo built > built.txt\n    triggeredBy: [prebuild]\n",
			})

			var p cliPrebuild
			s.mustJSON(t, adminToken, &p, "prebuilds", "create", "--context-url", repo, "--runner", "cli-prebuild-host", "--wait")
			if p.Status.Phase != "PREBUILD_PHASE_COMPLETED" || len(p.Status.Commit) != 40 || p.Status.SnapshotSizeBytes == "" || p.Metadata.RunnerID != runnerID {
				t.Fatalf("create --wait: %+v", p)
			}
			out := s.mustRun(t, adminToken, "prebuilds", "list")
			if row := rowWith(out, 0, p.ID); row == nil || row[2] != "COMPLETED" || row[3] != p.Status.Commit[:12] {
				t.Fatalf("list:\n%s", out)
			}
			var list struct {
				Prebuilds []cliPrebuild `json:"prebuilds"`
			}
			s.mustJSON(t, adminToken, &list, "prebuilds", "list", "--phase", "failed")
			if len(list.Prebuilds) != 0 {
				t.Fatalf("list --phase failed: %+v", list.Prebuilds)
			}
			out = s.mustRun(t, adminToken, "prebuilds", "get", p.ID, "-o", "wide")
			if !strings.Contains(out, runnerID) || !strings.Contains(out, repo) {
				t.Fatalf("get -o wide:\n%s", out)
			}

			r := s.run(t, adminToken, "prebuilds", "create", "--context-url", "", "--runner", "cli-prebuild-host")
			if r.Code == 0 || !strings.Contains(r.Stderr, "--context-url") {
				t.Fatalf("create with an empty --context-url: exit %d, stderr %q", r.Code, r.Stderr)
			}
			r = s.run(t, adminToken, "prebuilds", "create", "--context-url", repo, "--runner", "cli-prebuild-host", "--timeout", "3h")
			if r.Code == 0 || !strings.Contains(r.Stderr, "--timeout") {
				t.Fatalf("create with --timeout 3h: exit %d, stderr %q", r.Code, r.Stderr)
			}
			r = s.run(t, adminToken, "prebuilds", "delete", p.ID)
			if r.Code == 0 || !strings.Contains(r.Stderr, "--yes") {
				t.Fatalf("delete without --yes: exit %d, stderr %q", r.Code, r.Stderr)
			}
			s.mustRun(t, adminToken, "prebuilds", "delete", p.ID, "--yes")

			r = s.run(t, adminToken, "prebuilds", "schedules", "create", "--context-url", repo, "--runner", "cli-prebuild-host", "--every", "10s")
			if r.Code == 0 || !strings.Contains(r.Stderr, "--every") {
				t.Fatalf("schedule every 10s: exit %d, stderr %q", r.Code, r.Stderr)
			}
			out = s.mustRun(t, adminToken, "prebuilds", "schedules", "create", "--context-url", repo, "--runner", "cli-prebuild-host", "--every", "6h")
			id := uuidRe.FindString(out)
			if id == "" || !strings.Contains(out, "6h0m0s") {
				t.Fatalf("schedule create:\n%s", out)
			}
			if out := s.mustRun(t, adminToken, "prebuilds", "schedules", "list"); rowWith(out, 0, id) == nil {
				t.Fatalf("schedules list:\n%s", out)
			}
			s.mustRun(t, adminToken, "prebuilds", "schedules", "delete", id, "--yes")
			if r := s.run(t, adminToken, "prebuilds", "get", p.ID); r.Code == 0 {
				t.Fatalf("get after delete: exit 0:\n%s", r.Stdout)
			}
		})
	}
}
