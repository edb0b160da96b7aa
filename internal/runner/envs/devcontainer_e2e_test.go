package envs_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// TestEnvironments_PostDevcontainerStartAfterRebuild: postDevcontainerStart
// fires on the first start and again only when the environment's content
// is made anew (runyard builds no devcontainer: spec.devcontainer.session
// is refused, and the workspace is what a rebuild makes again), exactly
// once for that start; a stop and start, a reload of the automations file
// (ReloadAutomationsFile) and a restart of the runner daemon do not fire it,
// while postEnvironmentStart fires on every start. Each step ends with a
// stop and start, so that a trigger the step wrongly fired would show in
// that start's executions.
func TestEnvironments_PostDevcontainerStartAfterRebuild(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ctx := context.Background()
			state := t.TempDir()
			c, class, cfg, stopRunner := setup(t, backend, state)
			repo := gitRepo(t, map[string]string{".runyard/automations.yaml": `tasks:
  env:
    command: echo env >> env.log
    triggeredBy: [postEnvironmentStart]
  dev:
    command: echo dev >> dev.log
    triggeredBy: [postDevcontainerStart]
`})
			id := c.createEnv(t, class, repo)
			c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			want := func(t *testing.T, env, dev int) {
				t.Helper()
				eventually(t, fmt.Sprintf("executions: %d postEnvironmentStart, %d postDevcontainerStart", env, dev), func() string {
					got := map[string]int{}
					for _, x := range c.executions(t, id) {
						got[x.GetMetadata().GetStartedBy()]++
					}
					if got["postEnvironmentStart"] != env || got["postDevcontainerStart"] != dev {
						return fmt.Sprint(got)
					}
					return ""
				})
			}
			stop := func(t *testing.T) {
				t.Helper()
				must[gitpodv1.StopEnvironmentResponse](t, "stop")(c.envs.StopEnvironment(ctx, req(&gitpodv1.StopEnvironmentRequest{EnvironmentId: id})))
				c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED)
			}
			start := func(t *testing.T) {
				t.Helper()
				must[gitpodv1.StartEnvironmentResponse](t, "start")(c.envs.StartEnvironment(ctx, req(&gitpodv1.StartEnvironmentRequest{EnvironmentId: id})))
				c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			}
			want(t, 1, 1)
			// The runners a step starts outlive the step.
			parent := t

			for _, step := range []struct {
				name     string
				do       func(t *testing.T)
				env, dev int // the totals after the step and a stop and start
			}{
				{"StopAndStart", func(*testing.T) {}, 2, 1},
				{"ReloadAutomationsFile", func(t *testing.T) {
					content := c.env(t, id).GetStatus().GetContent().GetContentLocationInMachine()
					f := filepath.Join(content, ".runyard", "automations.yaml")
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					b = append(b, "  added:\n    command: echo added\n"...)
					if err := os.WriteFile(f, b, 0o644); err != nil {
						t.Fatal(err)
					}
					reload := runyardv1connect.NewAutomationsServiceClient(http.DefaultClient, c.url)
					must[runyardv1.ReloadAutomationsFileResponse](t, "reload")(reload.ReloadAutomationsFile(ctx, req(&runyardv1.ReloadAutomationsFileRequest{EnvironmentId: id})))
					eventually(t, "the reloaded file is applied", func() string {
						ts := must[gitpodv1.ListTasksResponse](t, "list tasks")(c.autos.ListTasks(ctx, req(&gitpodv1.ListTasksRequest{
							Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{id}, References: []string{"added"}},
						}))).GetTasks()
						if len(ts) != 1 {
							return fmt.Sprintf("%d tasks named added", len(ts))
						}
						return ""
					})
				}, 3, 1},
				{"RunnerRestart", func(t *testing.T) {
					stopRunner()
					stopRunner = testutil.StartRunner(parent, cfg)
					c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
				}, 4, 1},
				{"ContentMadeAnew", func(t *testing.T) {
					// The runner loses the environment's workspace and
					// record (a new disk, say): its next start clones the
					// repository again, which is runyard's rebuild.
					stop(t)
					stopRunner()
					if err := os.RemoveAll(filepath.Join(state, "environments", id)); err != nil {
						t.Fatal(err)
					}
					stopRunner = testutil.StartRunner(parent, cfg)
				}, 5, 2},
				{"StopAndStartAfterRebuild", func(*testing.T) {}, 6, 2},
			} {
				t.Run(step.name, func(t *testing.T) {
					step.do(t)
					if c.env(t, id).GetStatus().GetPhase() == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
						stop(t)
					}
					start(t)
					want(t, step.env, step.dev)
				})
			}
		})
	}
}
