// Command prebuilds measures an environment's start from a prebuild's
// snapshot against a fresh clone followed by the same install task, on a
// repository of --files files. A control plane (SQLite, temporary directory)
// and a runner daemon run in this process on 127.0.0.1.
//
//   - fresh: CreateEnvironment (a clone) until RUNNING, then StartTask
//     install until SUCCEEDED;
//   - snapshot: after one prebuild (whose prebuild-triggered install task
//     ran once), CreateEnvironment of the same commit until RUNNING: the
//     workspace, install output included, is restored from the archive.
//
// Each is run --runs times, taking turns (fresh then snapshot, then the
// other way round), so that both meet the same file system: every run
// deletes its environment's 40,000 files, and on some file systems (ext4
// without a journal skips recently deleted inodes when it allocates one)
// creating files gets slower for minutes after a delete. The fresh path
// clones an identical copy of the repository at another URL, which no
// snapshot serves. The median and every run are printed, with the
// prebuild's own time and the archive's size, and reported to bench/all
// through bench/internal/report. The target (from the issue): the start
// from the snapshot takes less than the fresh clone plus install, on a
// repository of 20,000 files.
//
//	go run ./bench/prebuilds
//	go run ./bench/prebuilds --files 20000 --runs 5
//	go run ./bench/prebuilds --short      # 300 files, 1 run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/server"
)

const adminToken = "ryd_bench_prebuilds_admin_token_0123456"

// install is the task both paths run: a build step that writes as many
// files as the repository has (a dependency directory, say).
const install = `mkdir -p deps && cp -r src/. deps/ && echo done > deps/.installed`

func main() {
	files := flag.Int("files", 20000, "files in the repository")
	runs := flag.Int("runs", 3, "environments started per path")
	maxTime := flag.Duration("max-time", 15*time.Minute, "give up after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		*files, *runs = 300, 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxTime)
	defer cancel()
	if err := run(ctx, *files, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "prebuilds:", err)
		os.Exit(1)
	}
}

func auth[T any](m *T) *connect.Request[T] {
	r := connect.NewRequest(m)
	r.Header().Set("Authorization", "Bearer "+adminToken)
	return r
}

func run(ctx context.Context, nfiles, runs int) error {
	dir, err := os.MkdirTemp("", "runyard-bench-prebuilds-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	repo, err := makeRepo(filepath.Join(dir, "repo"), nfiles)
	if err != nil {
		return err
	}
	// The same repository and commit at another URL: no snapshot serves
	// it, so its environments are cloned however many snapshots exist.
	freshRepo := "file://" + filepath.Join(dir, "fresh")
	if out, err := exec.Command("git", "clone", "--quiet", "--bare", repo, filepath.Join(dir, "fresh")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the repository: %v: %s", err, out)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.Open(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "server"),
		BootstrapToken: adminToken, ShutdownTimeout: 5 * time.Second, Logger: quiet})
	if err != nil {
		return err
	}
	sctx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() { stopServer(); <-served }()
	url := srv.URL()
	for i := 0; ; i++ {
		if res, err := http.Get(url + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		if i > 100 {
			return errors.New("the server does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	runnersC := gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, url)
	envs := gitpodv1connect.NewEnvironmentServiceClient(http.DefaultClient, url)
	autos := gitpodv1connect.NewEnvironmentAutomationServiceClient(http.DefaultClient, url)
	pbs := gitpodv1connect.NewPrebuildServiceClient(http.DefaultClient, url)
	cr, err := runnersC.CreateRunner(ctx, auth(&gitpodv1.CreateRunnerRequest{Name: "bench", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
	if err != nil {
		return err
	}
	d, err := runner.New(ctx, runner.Config{Server: url, ExchangeToken: cr.Msg.GetExchangeToken(), StateDir: filepath.Join(dir, "runner"),
		Name: "bench", StopGrace: 2 * time.Second, Logger: quiet})
	if err != nil {
		return err
	}
	rctx, stopRunner := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	defer func() { stopRunner(); <-ran; d.Close() }()
	var class string
	for class == "" {
		res, err := envs.ListEnvironmentClasses(ctx, auth(&gitpodv1.ListEnvironmentClassesRequest{
			Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{cr.Msg.GetRunner().GetRunnerId()}}}))
		if err != nil {
			return err
		}
		if cs := res.Msg.GetEnvironmentClasses(); len(cs) > 0 {
			class = cs[0].GetId()
		}
	}
	for {
		res, err := runnersC.GetRunner(ctx, auth(&gitpodv1.GetRunnerRequest{RunnerId: cr.Msg.GetRunner().GetRunnerId()}))
		if err != nil {
			return err
		}
		if res.Msg.GetRunner().GetStatus().GetPhase() == gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	create := func(repo string) (string, error) {
		res, err := envs.CreateEnvironment(ctx, auth(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
			Machine: &gitpodv1.EnvironmentSpec_Machine{Class: class},
			Content: &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
				Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_ContextUrl{
					ContextUrl: &gitpodv1.ContextURLInitializer{Url: repo}}}}}},
		}}))
		if err != nil {
			return "", err
		}
		id := res.Msg.GetEnvironment().GetId()
		for {
			g, err := envs.GetEnvironment(ctx, auth(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
			if err != nil {
				return "", err
			}
			if g.Msg.GetEnvironment().GetStatus().GetPhase() == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
				return id, nil
			}
			if f := g.Msg.GetEnvironment().GetStatus().GetFailureMessage(); len(f) > 0 {
				return "", fmt.Errorf("environment failed: %v", f)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	remove := func(id string) {
		_, _ = envs.DeleteEnvironment(ctx, auth(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id}))
		for {
			if _, err := envs.GetEnvironment(ctx, auth(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id})); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var fresh, snap []time.Duration
	runFresh := func() error {
		start := time.Now()
		id, err := create(freshRepo)
		if err != nil {
			return err
		}
		tasks, err := autos.ListTasks(ctx, auth(&gitpodv1.ListTasksRequest{Filter: &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{id}}}))
		if err != nil || len(tasks.Msg.GetTasks()) != 1 {
			return fmt.Errorf("tasks of the environment: %v %v", tasks, err)
		}
		x, err := autos.StartTask(ctx, auth(&gitpodv1.StartTaskRequest{Id: tasks.Msg.GetTasks()[0].GetId()}))
		if err != nil {
			return err
		}
		for {
			g, err := autos.GetTaskExecution(ctx, auth(&gitpodv1.GetTaskExecutionRequest{Id: x.Msg.GetTaskExecution().GetId()}))
			if err != nil {
				return err
			}
			p := g.Msg.GetTaskExecution().GetStatus().GetPhase()
			if p == gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED {
				break
			}
			if p == gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED {
				return errors.New("install failed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		fresh = append(fresh, time.Since(start))
		g, err := envs.GetEnvironment(ctx, auth(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
		if err != nil {
			return err
		}
		if g.Msg.GetEnvironment().GetMetadata().GetPrebuildId() != "" {
			return errors.New("the fresh environment was restored from a snapshot")
		}
		remove(id)
		return nil
	}
	runSnapshot := func() error {
		start := time.Now()
		id, err := create(repo)
		if err != nil {
			return err
		}
		snap = append(snap, time.Since(start))
		g, err := envs.GetEnvironment(ctx, auth(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
		if err != nil {
			return err
		}
		e := g.Msg.GetEnvironment()
		if e.GetMetadata().GetPrebuildId() == "" {
			return errors.New("the environment was not restored from the snapshot")
		}
		if _, err := os.Stat(filepath.Join(e.GetStatus().GetContent().GetContentLocationInMachine(), "deps", ".installed")); err != nil {
			return fmt.Errorf("restored environment lacks the install output: %w", err)
		}
		remove(id)
		return nil
	}

	start := time.Now()
	pb, err := pbs.CreatePrebuild(ctx, auth(&gitpodv1.CreatePrebuildRequest{ContextUrl: repo, EnvironmentClassId: class}))
	if err != nil {
		return err
	}
	var prebuilt *gitpodv1.Prebuild
	for {
		g, err := pbs.GetPrebuild(ctx, auth(&gitpodv1.GetPrebuildRequest{PrebuildId: pb.Msg.GetPrebuild().GetId()}))
		if err != nil {
			return err
		}
		prebuilt = g.Msg.GetPrebuild()
		if prebuilt.GetStatus().GetPhase() == gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED {
			break
		}
		if prebuilt.GetStatus().GetPhase() == gitpodv1.PrebuildPhase_PREBUILD_PHASE_FAILED {
			return fmt.Errorf("prebuild failed: %s", prebuilt.GetStatus().GetFailureMessage())
		}
		time.Sleep(20 * time.Millisecond)
	}
	prebuildTime := time.Since(start)
	for i := range runs {
		order := []func() error{runFresh, runSnapshot}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
	}
	fmt.Printf("repository: %d files; install: %s; runs take turns\n", nfiles, install)
	fmt.Printf("prebuild (clone + install + archive): %s, archive %.1f MB (tar + zstd)\n", ms(prebuildTime), float64(prebuilt.GetStatus().GetSnapshotSizeBytes())/1e6)
	fmt.Printf("fresh clone + install    median %s  runs %s\n", ms(median(fresh)), list(fresh))
	fmt.Printf("start from snapshot      median %s  runs %s\n", ms(median(snap)), list(snap))
	fmt.Printf("ratio fresh/snapshot     %.1fx\n", float64(median(fresh))/float64(median(snap)))

	// The snapshot's start should beat the fresh clone plus install it
	// replaces; the archive's size is the count other load does not move.
	faster := report.RatioAtMost(1)
	report.Emit(report.Figure{Bench: "prebuilds", Name: fmt.Sprintf("start from snapshot, %d files, median of %d", nfiles, runs),
		Value: msf(median(snap)), Unit: "ms", Baseline: msf(median(fresh)), BaselineName: "fresh clone + install",
		Count: float64(prebuilt.GetStatus().GetSnapshotSizeBytes()) / 1e6, CountUnit: "MB archive"}, &faster)
	report.Emit(report.Figure{Bench: "prebuilds", Name: fmt.Sprintf("prebuild (clone + install + archive), %d files", nfiles),
		Value: msf(prebuildTime), Unit: "ms", Baseline: msf(median(fresh)), BaselineName: "fresh clone + install"}, nil)
	return nil
}

func makeRepo(dir string, n int) (string, error) {
	for i := range n {
		p := filepath.Join(dir, "src", fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, "file %d\n%s\n", i, "some source text of a typical small file"), 0o644); err != nil {
			return "", err
		}
	}
	auto := "tasks:\n  install:\n    name: Install\n    command: " + install + "\n    triggeredBy: [prebuild]\n"
	if err := os.MkdirAll(filepath.Join(dir, ".gitpod"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitpod", "automations.yaml"), []byte(auto), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"}, {"add", "."},
		{"-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "--quiet", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %v: %v: %s", args, err, out)
		}
	}
	return "file://" + dir, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func list(ds []time.Duration) string {
	out := ""
	for _, d := range ds {
		out += ms(d) + " "
	}
	return out
}
