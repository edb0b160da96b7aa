package main

// This file is part 1: from StartTask to the step's process running on the
// runner, beside a bare fork/exec of the same command.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// markerScript writes the execution's ID into the FIFO, the moment the
// step's process is observably running, and ends.
func markerScript(fifo string) string {
	return `echo "$RUNYARD_TASK_EXECUTION_ID" > '` + fifo + `'`
}

// finishPoll is how often the benchmark asks whether an execution finished.
const finishPoll = 2 * time.Millisecond

func runTasks(ctx context.Context, b *bench, cfg config) error {
	fmt.Printf("== StartTask -> step process running: %d executions one after another (each waits until it is SUCCEEDED), each beside a bare fork/exec; %d unrecorded first\n",
		cfg.tasks, cfg.warmup)
	envID, err := b.createEnv(ctx)
	if err != nil {
		return err
	}
	script := markerScript(b.fifo)
	res, err := b.api.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.TaskMetadata{Reference: "marker", Name: "Marker"},
		Spec:          &gitpodv1.TaskSpec{Command: script},
	}))
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	taskID := res.Msg.GetTask().GetId()

	var rpcLat, runLat, doneLat, baseLat []time.Duration
	var before cpuSample
	for i := -cfg.warmup; i < cfg.tasks; i++ {
		if i == 0 {
			b.profile(true)
			before = b.sampleCPU()
		}
		rpc, running, done, err := taskOnce(ctx, b, taskID)
		if err != nil {
			return fmt.Errorf("execution %d: %w", i, err)
		}
		base, err := forkOnce(ctx, b, script, fmt.Sprintf("baseline-%06d", i+cfg.warmup))
		if err != nil {
			return fmt.Errorf("baseline %d: %w", i, err)
		}
		if i >= 0 {
			rpcLat, runLat, doneLat, baseLat = append(rpcLat, rpc), append(runLat, running), append(doneLat, done), append(baseLat, base)
		}
	}
	after := b.sampleCPU()
	b.profile(false)
	// The control plane keeps every execution; a drift from the first
	// tenth to the last shows a cost that grows with the history.
	tenth := max(len(runLat)/10, 1)
	tenths := func(d []time.Duration) string {
		first, last := slices.Clone(d[:tenth]), slices.Clone(d[len(d)-tenth:])
		return fmt.Sprintf("first tenth %s, last tenth %s", latencies(first), latencies(last))
	}
	runTenths, baseTenths := tenths(runLat), tenths(baseLat)
	fmt.Printf("StartTask -> step process running: n=%d %s\n", len(runLat), latencies(runLat))
	fmt.Printf("  %s\n", runTenths)
	fmt.Printf("  StartTask answered:                %s\n", latencies(rpcLat))
	fmt.Printf("  StartTask -> SUCCEEDED seen (poll every %s): %s\n", finishPoll, latencies(doneLat))
	fmt.Printf("bare fork/exec of the same command:  n=%d %s\n", len(baseLat), latencies(baseLat))
	fmt.Printf("  %s\n", baseTenths)
	fmt.Printf("  %s\n", after.since(before, len(runLat), "execution"))
	t := report.AtMost(5)
	report.Emit(report.Figure{Bench: "automations", Name: "StartTask -> step process running, p50", Value: msf(pct(runLat, 0.5)), Unit: "ms",
		Baseline: msf(pct(baseLat, 0.5)), BaselineName: "bare fork/exec"}, &t)
	return nil
}

// taskOnce starts the task, waits for its line in the FIFO and then until
// the control plane has the execution SUCCEEDED. It returns the times from
// just before the StartTask call to its answer, to the line and to the
// SUCCEEDED read.
func taskOnce(ctx context.Context, b *bench, taskID string) (rpc, running, done time.Duration, err error) {
	t0 := time.Now()
	res, err := b.api.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: taskID}))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("start task: %w", err)
	}
	rpc = time.Since(t0)
	id := res.Msg.GetTaskExecution().GetId()
	at, err := b.awaitLine(ctx, id)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("execution %s: %w", id, err)
	}
	if err := b.waitExecution(ctx, id, finishPoll); err != nil {
		return 0, 0, 0, err
	}
	return rpc, at.Sub(t0), time.Since(t0), nil
}

// discard is an io.Writer that is not an *os.File, so that exec.Cmd copies
// the command's output through a pipe, as it does for the runner's logs.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// forkOnce runs the marker command as the runner does (the same shell, a
// session of its own, output through a pipe), waits for its line and for
// its end, and returns the time from just before the start to the line.
func forkOnce(ctx context.Context, b *bench, script, key string) (time.Duration, error) {
	cmd := exec.Command(b.shell, "-c", script)
	cmd.Env = append(os.Environ(), "RUNYARD_TASK_EXECUTION_ID="+key)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = discard{}, discard{}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", b.shell, err)
	}
	at, err := b.awaitLine(ctx, key)
	if err != nil {
		cmd.Process.Kill()
	}
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("%s -c: %w", b.shell, werr)
	}
	return at.Sub(t0), err
}
