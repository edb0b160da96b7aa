package envs_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

// TestPrebuilds_ConcurrentStartsFromSnapshot: environments of the same
// repository and commit created together, right after the prebuild made
// its snapshot (its spare workspace is being extracted then, and each
// start that takes the spare has the next one extracted), all start from
// the snapshot, each with the whole workspace (every one of the prebuild's
// files), none failing and none with a half-extracted tree; and no
// temporary extraction is left on the runner afterwards.
func TestPrebuilds_ConcurrentStartsFromSnapshot(t *testing.T) {
	const nfiles = 3000
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ctx := context.Background()
			c, pb := startPrebuildServer(t, backend, 1)
			stateDir := t.TempDir()
			class, _, _, _ := c.addRunner(t, "concurrent-host", stateDir, testutil.StartRunner)
			repo := gitRepo(t, map[string]string{
				"README": "hello\n",
				".gitpod/automations.yaml": fmt.Sprintf(`tasks:
  install:
    command: |
      mkdir -p deps && cd deps
      for d in $(seq 0 9); do mkdir d$d; done
      for i in $(seq 0 %d); do echo "dep $i" > d$((i %% 10))/f$i; done
      echo done > ../installed.txt
    triggeredBy: [prebuild]
`, nfiles-1),
			})
			p := must[gitpodv1.CreatePrebuildResponse](t, "create prebuild")(pb.CreatePrebuild(ctx, req(&gitpodv1.CreatePrebuildRequest{
				ContextUrl: repo, EnvironmentClassId: class,
			}))).GetPrebuild()
			waitPrebuild(t, pb, p.GetId(), gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED)

			// Created back to back (each create is one quick call): the
			// runner starts each environment in a goroutine of its own, so
			// their starts overlap.
			const n = 4
			ids := make([]string, n)
			for i := range n {
				ids[i] = c.createFromContextURL(t, class, repo)
			}
			for _, id := range ids {
				e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
				if got := e.GetMetadata().GetPrebuildId(); got != p.GetId() {
					t.Errorf("environment %s: metadata.prebuildId %q, want %q (started from the snapshot)", id, got, p.GetId())
				}
				dir := e.GetStatus().GetContent().GetContentLocationInMachine()
				if b, err := os.ReadFile(filepath.Join(dir, "installed.txt")); string(b) != "done\n" {
					t.Errorf("environment %s: installed.txt %q, %v", id, b, err)
				}
				files := 0
				err := filepath.WalkDir(filepath.Join(dir, "deps"), func(_ string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						files++
					}
					return err
				})
				if err != nil || files != nfiles {
					t.Errorf("environment %s: %d files of the prebuild's %d (%v)", id, files, nfiles, err)
				}
			}
			// The last start's spare is extracted in the background: once
			// it is in place, nothing temporary is left.
			spare := filepath.Join(stateDir, "snapshots", p.GetId()+".spare")
			eventually(t, "the next spare in place and no temporary extraction left", func() string {
				if _, err := os.Stat(spare); err != nil {
					return err.Error()
				}
				if _, err := os.Stat(spare + ".tmp"); err == nil {
					return "a temporary extraction is left"
				}
				return ""
			})
		})
	}
}
