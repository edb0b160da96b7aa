package envs_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// bootIDs is a host's boot id the test changes, as a reboot would.
type bootIDs struct{ v atomic.Value }

func (b *bootIDs) get() string  { return b.v.Load().(string) }
func (b *bootIDs) set(s string) { b.v.Store(s) }

// startWithBoot starts runners whose boot id is boot's.
func startWithBoot(boot *bootIDs) func(testing.TB, runner.Config) func() {
	return func(tb testing.TB, cfg runner.Config) func() {
		cfg.BootID = boot.get
		return testutil.StartRunner(tb, cfg)
	}
}

// startPrebuildServer is startServer with snapshot retention keep.
func startPrebuildServer(t *testing.T, backend testutil.Backend, keep int) (*client, gitpodv1connect.PrebuildServiceClient) {
	t.Helper()
	ts := testutil.StartServerWith(t, backend, testutil.Options{PrebuildKeep: keep})
	c := &client{
		envs:    gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, ts.URL),
		autos:   gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, ts.URL),
		runners: gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL),
		secrets: gitpodv1connect.NewSecretServiceClient(http.DefaultClient, ts.URL),
		url:     ts.URL,
	}
	return c, gitpodv1connect.NewPrebuildServiceClient(http.DefaultClient, ts.URL)
}

func waitPrebuild(t *testing.T, pb gitpodv1connect.PrebuildServiceClient, id string, want gitpodv1.PrebuildPhase) *gitpodv1.Prebuild {
	t.Helper()
	var p *gitpodv1.Prebuild
	eventually(t, "prebuild "+id+" is "+want.String(), func() string {
		p = must[gitpodv1.GetPrebuildResponse](t, "get prebuild")(pb.GetPrebuild(context.Background(), req(&gitpodv1.GetPrebuildRequest{PrebuildId: id}))).GetPrebuild()
		if p.GetStatus().GetPhase() != want {
			return fmt.Sprintf("phase %s, failure %q", p.GetStatus().GetPhase(), p.GetStatus().GetFailureMessage())
		}
		return ""
	})
	return p
}

func gitHead(t *testing.T, repo string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", strings.TrimPrefix(repo, "file://"), "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestPrebuilds_EndToEnd runs prebuilds of a local repository on a real
// runner: the prebuild task runs, a beforeSnapshot task runs after it, the
// workspace is archived on the runner and the prebuild's environment is
// deleted; a new environment of the repository's commit starts from the
// snapshot (the prebuild's files are there, its task did not run again,
// metadata.prebuildId says so); a second prebuild with retention 1 retires
// the first snapshot, whose archive leaves the runner; a new commit is
// cloned, not restored.
func TestPrebuilds_EndToEnd(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ctx := context.Background()
			c, pb := startPrebuildServer(t, backend, 1)
			stateDir := t.TempDir()
			boot := &bootIDs{}
			boot.set("boot-1")
			class, _, _, _ := c.addRunner(t, "prebuild-host", stateDir, startWithBoot(boot))
			flag := filepath.Join(t.TempDir(), "go")
			repo := gitRepo(t, map[string]string{
				"README": "hello\n",
				".gitpod/automations.yaml": fmt.Sprintf(`tasks:
  install:
    name: Install
    command: |
      for i in $(seq 600); do [ -f %s ] && break; sleep 0.1; done
      echo built >> built.txt
    triggeredBy: [prebuild]
  greet:
    name: Greet
    command: echo hi >> greeted.txt
    triggeredBy: [postEnvironmentStart]
`, flag),
			})
			head := gitHead(t, repo)

			// Bad requests name the field and change nothing.
			for _, tc := range []struct {
				in    *gitpodv1.CreatePrebuildRequest
				field string
			}{
				{&gitpodv1.CreatePrebuildRequest{EnvironmentClassId: class}, "contextUrl"},
				{&gitpodv1.CreatePrebuildRequest{ContextUrl: repo, EnvironmentClassId: "nope"}, "environmentClassId"},
				{&gitpodv1.CreatePrebuildRequest{ContextUrl: repo, EnvironmentClassId: class, ProjectId: "p"}, "projectId"},
				{&gitpodv1.CreatePrebuildRequest{ContextUrl: repo, EnvironmentClassId: class, Spec: &gitpodv1.PrebuildSpec{Timeout: "3h"}}, "spec.timeout"},
			} {
				_, err := pb.CreatePrebuild(ctx, req(tc.in))
				if err == nil || !strings.Contains(err.Error(), tc.field) {
					t.Errorf("create %v: %v, want an error naming %s", tc.in, err, tc.field)
				}
			}
			if got := must[gitpodv1.ListPrebuildsResponse](t, "list")(pb.ListPrebuilds(ctx, req(&gitpodv1.ListPrebuildsRequest{}))); len(got.GetPrebuilds()) != 0 {
				t.Fatalf("refused creates left prebuilds: %v", got.GetPrebuilds())
			}

			first := must[gitpodv1.CreatePrebuildResponse](t, "create prebuild")(pb.CreatePrebuild(ctx, req(&gitpodv1.CreatePrebuildRequest{
				ContextUrl: repo, EnvironmentClassId: class,
			}))).GetPrebuild()
			envID := first.GetStatus().GetEnvironmentId()
			if envID == "" || first.GetMetadata().GetContextUrl() != repo {
				t.Fatalf("created prebuild: %v", first)
			}
			waitPrebuild(t, pb, first.GetId(), gitpodv1.PrebuildPhase_PREBUILD_PHASE_RUNNING)
			// A beforeSnapshot task (the API's trigger; a file cannot name
			// it), made while the prebuild task waits.
			must[gitpodv1.CreateTaskResponse](t, "create beforeSnapshot task")(c.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
				EnvironmentId: envID,
				Metadata: &gitpodv1.TaskMetadata{Reference: "snap", Name: "Snap", TriggeredBy: []*gitpodv1.AutomationTrigger{
					{Trigger: &gitpodv1.AutomationTrigger_BeforeSnapshot{BeforeSnapshot: true}},
				}},
				Spec: &gitpodv1.TaskSpec{Command: "test -f built.txt && echo snap > snap.txt"},
			})))
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			done := waitPrebuild(t, pb, first.GetId(), gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED)
			if st := done.GetStatus(); st.GetCommit() != head || st.GetSnapshotSizeBytes() <= 0 || st.GetCompletionTime() == nil || st.GetSnapshotDeleted() {
				t.Fatalf("completed prebuild status: %v (want commit %s)", st, head)
			}
			archive := filepath.Join(stateDir, "snapshots", first.GetId()+".tar.zst")
			if _, err := os.Stat(archive); err != nil {
				t.Fatalf("snapshot archive: %v", err)
			}
			eventually(t, "the prebuild's environment is deleted", func() string {
				_, err := c.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: envID}))
				if err == nil || !strings.Contains(err.Error(), string(apperr.CodeNotFound)) {
					return fmt.Sprint(err)
				}
				return ""
			})

			// A new environment of the same repository and commit starts
			// from the snapshot.
			id := c.createFromContextURL(t, class, repo)
			e := c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			if got := e.GetMetadata().GetPrebuildId(); got != first.GetId() {
				t.Fatalf("metadata.prebuildId = %q, want %q (restored from the snapshot)", got, first.GetId())
			}
			dir := e.GetStatus().GetContent().GetContentLocationInMachine()
			for name, want := range map[string]string{"built.txt": "built\n", "snap.txt": "snap\n", "README": "hello\n"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
					t.Errorf("%s = %q (%v), want %q", name, b, err, want)
				}
			}
			if out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output(); err != nil || strings.TrimSpace(string(out)) != head {
				t.Errorf("restored checkout HEAD = %q (%v), want %s", out, err, head)
			}
			eventually(t, "the start task ran in the restored environment", func() string {
				for _, x := range c.executions(t, id) {
					if x.GetMetadata().GetStartedBy() == "prebuild" {
						t.Fatalf("the prebuild task ran again: %v", x)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "greeted.txt")); err != nil {
					return err.Error()
				}
				return ""
			})

			// The next start's spare workspace is extracted meanwhile.
			spare := filepath.Join(stateDir, "snapshots", first.GetId()+".spare")
			eventually(t, "a spare workspace of the snapshot", func() string {
				if _, err := os.Stat(filepath.Join(spare, filepath.Base(dir), "snap.txt")); err != nil {
					return err.Error()
				}
				return ""
			})

			// Retention 1: a second prebuild retires the first snapshot,
			// and the runner deletes its archive.
			second := must[gitpodv1.CreatePrebuildResponse](t, "create second prebuild")(pb.CreatePrebuild(ctx, req(&gitpodv1.CreatePrebuildRequest{
				ContextUrl: repo, EnvironmentClassId: class,
			}))).GetPrebuild()
			waitPrebuild(t, pb, second.GetId(), gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED)
			// Retention runs after the second's completion is recorded, in
			// a transaction of its own.
			eventually(t, "the first prebuild's snapshot is retired", func() string {
				old := must[gitpodv1.GetPrebuildResponse](t, "get first")(pb.GetPrebuild(ctx, req(&gitpodv1.GetPrebuildRequest{PrebuildId: first.GetId()}))).GetPrebuild()
				if !old.GetStatus().GetSnapshotDeleted() {
					return fmt.Sprintf("not retired: %v", old.GetStatus())
				}
				return ""
			})
			eventually(t, "the retired archive and its spare leave the runner", func() string {
				for _, p := range []string{archive, spare} {
					if _, err := os.Stat(p); err == nil {
						return p + " still there"
					}
				}
				return ""
			})
			if _, err := os.Stat(filepath.Join(stateDir, "snapshots", second.GetId()+".tar.zst")); err != nil {
				t.Fatalf("newest archive: %v", err)
			}
			list := must[gitpodv1.ListPrebuildsResponse](t, "list")(pb.ListPrebuilds(ctx, req(&gitpodv1.ListPrebuildsRequest{
				Filter: &gitpodv1.ListPrebuildsRequestFilter{Phases: []gitpodv1.PrebuildPhase{gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED}},
			})))
			if n := len(list.GetPrebuilds()); n != 2 || list.GetPrebuilds()[0].GetId() != second.GetId() {
				t.Fatalf("list: %d prebuilds, want the two, newest first", n)
			}

			// A new commit has no snapshot: the environment is cloned.
			work := strings.TrimPrefix(repo, "file://")
			if err := os.WriteFile(filepath.Join(work, "NEW"), []byte("new\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "new"}} {
				if out, err := exec.Command("git", append([]string{"-C", work}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			fresh := c.waitEnvPhase(t, c.createFromContextURL(t, class, repo), gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			if got := fresh.GetMetadata().GetPrebuildId(); got != "" {
				t.Fatalf("an environment of a new commit was restored from %s", got)
			}
			if _, err := os.Stat(filepath.Join(fresh.GetStatus().GetContent().GetContentLocationInMachine(), "built.txt")); err == nil {
				t.Fatal("a cloned environment has the prebuild's built.txt")
			}

			// Deleting a prebuild deletes its archive.
			must[gitpodv1.DeletePrebuildResponse](t, "delete prebuild")(pb.DeletePrebuild(ctx, req(&gitpodv1.DeletePrebuildRequest{PrebuildId: second.GetId()})))
			eventually(t, "the deleted prebuild's archive leaves the runner", func() string {
				if _, err := os.Stat(filepath.Join(stateDir, "snapshots", second.GetId()+".tar.zst")); err == nil {
					return "still there"
				}
				return ""
			})
		})
	}
}

// TestEnvironments_StartTriggers: postDevcontainerStart fires on the first
// start only, postMachineStart on the first start and after the host's
// boot id changed, postEnvironmentStart on every start.
func TestEnvironments_StartTriggers(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ctx := context.Background()
			c := startServer(t, backend)
			boot := &bootIDs{}
			boot.set("boot-1")
			class, _, _, _ := c.addRunner(t, "trigger-host", t.TempDir(), startWithBoot(boot))
			repo := gitRepo(t, map[string]string{".gitpod/automations.yaml": `tasks:
  env:
    command: echo env >> env.log
    triggeredBy: [postEnvironmentStart]
  dev:
    command: echo dev >> dev.log
    triggeredBy: [postDevcontainerStart]
`})
			id := c.createEnv(t, class, repo)
			c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			// postMachineStart is the API's: a task of it made now fires
			// at the next start that follows a reboot.
			must[gitpodv1.CreateTaskResponse](t, "create machine task")(c.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
				EnvironmentId: id,
				Metadata: &gitpodv1.TaskMetadata{Reference: "machine", TriggeredBy: []*gitpodv1.AutomationTrigger{
					{Trigger: &gitpodv1.AutomationTrigger_PostMachineStart{PostMachineStart: true}},
				}},
				Spec: &gitpodv1.TaskSpec{Command: "echo machine >> machine.log"},
			})))
			counts := func() map[string]int {
				out := map[string]int{}
				for _, x := range c.executions(t, id) {
					out[x.GetMetadata().GetStartedBy()]++
				}
				return out
			}
			restart := func() {
				t.Helper()
				must[gitpodv1.StopEnvironmentResponse](t, "stop")(c.envs.StopEnvironment(ctx, req(&gitpodv1.StopEnvironmentRequest{EnvironmentId: id})))
				c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED)
				must[gitpodv1.StartEnvironmentResponse](t, "start")(c.envs.StartEnvironment(ctx, req(&gitpodv1.StartEnvironmentRequest{EnvironmentId: id})))
				c.waitEnvPhase(t, id, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING)
			}
			want := func(env, dev, machine int) {
				t.Helper()
				eventually(t, fmt.Sprintf("executions: %d env, %d dev, %d machine", env, dev, machine), func() string {
					got := counts()
					if got["postEnvironmentStart"] != env || got["postDevcontainerStart"] != dev || got["postMachineStart"] != machine {
						return fmt.Sprint(got)
					}
					return ""
				})
			}
			want(1, 1, 0)
			restart()
			want(2, 1, 0) // same boot, same content: only postEnvironmentStart
			boot.set("boot-2")
			restart()
			want(3, 1, 1) // the host rebooted since the environment last ran
			restart()
			want(4, 1, 1)
		})
	}
}

// TestPrebuilds_ScheduleAndTimeout: a schedule's first prebuild comes at the
// next sweep and completes (triggered by SCHEDULED, as the schedule's
// creator); a prebuild whose task outlives its timeout fails, and its
// environment is deleted.
func TestPrebuilds_ScheduleAndTimeout(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ctx := context.Background()
			ts := testutil.StartServerWith(t, backend, testutil.Options{PrebuildSweep: 200 * time.Millisecond})
			c := &client{
				envs:    gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, ts.URL),
				autos:   gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, ts.URL),
				runners: gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL),
				url:     ts.URL,
			}
			pb := gitpodv1connect.NewPrebuildServiceClient(http.DefaultClient, ts.URL)
			schedules := runyardv1connect.NewPrebuildScheduleServiceClient(http.DefaultClient, ts.URL)
			class, _, _, _ := c.addRunner(t, "schedule-host", t.TempDir(), testutil.StartRunner)
			quick := gitRepo(t, map[string]string{".gitpod/automations.yaml": "tasks:\n  install:\n    command: echo ok > ok.txt\n    triggeredBy: [prebuild]\n"})

			if _, err := schedules.CreatePrebuildSchedule(ctx, req(&runyardv1.CreatePrebuildScheduleRequest{
				ContextUrl: quick, EnvironmentClassId: class, Interval: durationpb.New(time.Second),
			})); err == nil || !strings.Contains(err.Error(), "interval") {
				t.Fatalf("a 1s interval: %v, want an error naming interval", err)
			}
			sc := must[runyardv1.CreatePrebuildScheduleResponse](t, "create schedule")(schedules.CreatePrebuildSchedule(ctx, req(&runyardv1.CreatePrebuildScheduleRequest{
				ContextUrl: quick, EnvironmentClassId: class, Interval: durationpb.New(time.Hour),
			}))).GetSchedule()
			var last string
			eventually(t, "the schedule made a prebuild", func() string {
				res := must[runyardv1.ListPrebuildSchedulesResponse](t, "list schedules")(schedules.ListPrebuildSchedules(ctx, req(&runyardv1.ListPrebuildSchedulesRequest{})))
				if len(res.GetSchedules()) != 1 || res.GetSchedules()[0].GetLastPrebuildId() == "" {
					return fmt.Sprint(res.GetSchedules())
				}
				last = res.GetSchedules()[0].GetLastPrebuildId()
				if !res.GetSchedules()[0].GetNextRunAt().AsTime().After(sc.GetNextRunAt().AsTime().Add(59 * time.Minute)) {
					t.Fatalf("next run not an interval later: %v", res.GetSchedules()[0])
				}
				return ""
			})
			p := waitPrebuild(t, pb, last, gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED)
			if p.GetMetadata().GetTriggeredBy() != gitpodv1.PrebuildTrigger_PREBUILD_TRIGGER_SCHEDULED || p.GetMetadata().GetCreator().GetId() == "" {
				t.Fatalf("scheduled prebuild metadata: %v", p.GetMetadata())
			}
			list := must[gitpodv1.ListPrebuildsResponse](t, "list")(pb.ListPrebuilds(ctx, req(&gitpodv1.ListPrebuildsRequest{})))
			if len(list.GetPrebuilds()) != 1 {
				t.Fatalf("%d prebuilds after the first run of an hourly schedule, want 1", len(list.GetPrebuilds()))
			}
			must[runyardv1.DeletePrebuildScheduleResponse](t, "delete schedule")(schedules.DeletePrebuildSchedule(ctx, req(&runyardv1.DeletePrebuildScheduleRequest{ScheduleId: sc.GetId()})))

			slow := gitRepo(t, map[string]string{".gitpod/automations.yaml": "tasks:\n  install:\n    command: sleep 300\n    triggeredBy: [prebuild]\n"})
			timed := must[gitpodv1.CreatePrebuildResponse](t, "create prebuild")(pb.CreatePrebuild(ctx, req(&gitpodv1.CreatePrebuildRequest{
				ContextUrl: slow, EnvironmentClassId: class, Spec: &gitpodv1.PrebuildSpec{Timeout: "3s"},
			}))).GetPrebuild()
			failed := waitPrebuild(t, pb, timed.GetId(), gitpodv1.PrebuildPhase_PREBUILD_PHASE_FAILED)
			if !strings.Contains(failed.GetStatus().GetFailureMessage(), "timed out") {
				t.Fatalf("failure message %q", failed.GetStatus().GetFailureMessage())
			}
			eventually(t, "the timed-out prebuild's environment is deleted", func() string {
				_, err := c.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: timed.GetStatus().GetEnvironmentId()}))
				if err == nil {
					return "still there"
				}
				return ""
			})
		})
	}
}
