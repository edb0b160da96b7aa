package main

// This file is part 4: task executions of many steps. A dependency chain of
// N tasks and a 1→W→1 fan-out of trivial commands run through the control
// plane and the runner; the figures are the control plane's CPU per step
// (which must not grow with the number of steps) and the time from
// StartTask to SUCCEEDED, beside the same commands forked in the same shape
// by this program and, when --process-compose names a binary, run by
// process-compose.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// shape is a dependency graph of tasks: deps[i] lists the indexes task i
// depends on; the last task is the one started (every other is among its
// transitive dependencies).
type shape struct {
	name string
	deps [][]int
}

func chainShape(n int) shape {
	s := shape{name: fmt.Sprintf("chain %d", n), deps: make([][]int, n)}
	for i := 1; i < n; i++ {
		s.deps[i] = []int{i - 1}
	}
	return s
}

// fanShape is one task, then width tasks that depend on it, then one that
// depends on all of them: width+2 steps in three groups.
func fanShape(width int) shape {
	s := shape{name: fmt.Sprintf("fan-out 1->%d->1", width), deps: make([][]int, width+2)}
	sink := make([]int, 0, width)
	for i := 1; i <= width; i++ {
		s.deps[i] = []int{0}
		sink = append(sink, i)
	}
	s.deps[width+1] = sink
	return s
}

// levels groups the tasks of s the way a planner does: a task runs in the
// group after the last of its dependencies.
func (s shape) levels() [][]int {
	level := make([]int, len(s.deps))
	top := 0
	for i, ds := range s.deps {
		for _, d := range ds {
			level[i] = max(level[i], level[d]+1)
		}
		top = max(top, level[i])
	}
	out := make([][]int, top+1)
	for i, l := range level {
		out[l] = append(out[l], i)
	}
	return out
}

// stepCommand is what every step but the last runs; the last one writes
// its key into the FIFO (markerScript), so that the benchmark learns of the
// end without polling the control plane meanwhile, which would cost it CPU
// in proportion to the run's length.
const stepCommand = "true"

// command returns task i's command in s.
func (s shape) command(i int, fifo string) string {
	if i == len(s.deps)-1 {
		return markerScript(fifo)
	}
	return stepCommand
}

// execFigure is one shape's result, summed over its runs.
type execFigure struct {
	shape       shape
	runs        int
	e2e, base   []time.Duration
	pc          []time.Duration
	serverNS    int64 // control plane CPU over the measured runs, ns
	runnerNS    int64
	serverTicks int64
}

func runExecutions(ctx context.Context, b *bench, cfg config) error {
	var shapes []shape
	for _, n := range cfg.chains {
		shapes = append(shapes, chainShape(n))
	}
	if cfg.fanout > 0 {
		shapes = append(shapes, fanShape(cfg.fanout))
	}
	fmt.Printf("== task executions of many steps (%q each), %d runs per shape after one unrecorded; the control plane's CPU from its threads' schedstat\n",
		stepCommand, cfg.execRuns)
	var figs []*execFigure
	for _, s := range shapes {
		f, err := runShape(ctx, b, cfg, s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		figs = append(figs, f)
	}
	fmt.Println("shape            steps  e2e p50    fork p50   pc p50     e2e/pc  server cpu/step  runner cpu/step")
	var perStep25 float64
	for _, f := range figs {
		steps := len(f.shape.deps)
		per := float64(f.serverNS) / float64(steps*f.runs) / 1e6
		if f.shape.name == "chain 25" {
			perStep25 = per
		}
		e2e, base, pc := median(f.e2e), median(f.base), median(f.pc)
		ratio := "-"
		pcs := "-"
		if pc > 0 {
			ratio = fmt.Sprintf("%.2f", float64(e2e)/float64(pc))
			pcs = ms(pc)
		}
		fmt.Printf("%-16s %5d  %-9s  %-9s  %-9s  %-6s  %7.3fms        %7.3fms\n", f.shape.name, steps, ms(e2e), ms(base), pcs, ratio,
			per, float64(f.runnerNS)/float64(steps*f.runs)/1e6)
	}
	if perStep25 > 0 {
		for _, f := range figs {
			if strings.HasPrefix(f.shape.name, "chain ") {
				per := float64(f.serverNS) / float64(len(f.shape.deps)*f.runs) / 1e6
				fmt.Printf("  server cpu/step, %s vs chain 25: %.2fx (target <= 1.5x)\n", f.shape.name, per/perStep25)
			}
		}
	}
	emitExecutions(figs)
	return nil
}

// emitExecutions reports the control plane's CPU per step of each shape
// beside the shortest chain's (the issue: at most 1.5× from 25 to 200
// steps), and each shape's end to end beside process-compose's (no slower).
func emitExecutions(figs []*execFigure) {
	var first *execFigure // the shortest chain
	for _, f := range figs {
		if strings.HasPrefix(f.shape.name, "chain ") && (first == nil || len(f.shape.deps) < len(first.shape.deps)) {
			first = f
		}
	}
	perStep := func(f *execFigure) float64 { return float64(f.serverNS) / float64(len(f.shape.deps)*f.runs) / 1e6 }
	linear := report.RatioAtMost(1.5)
	pcTarget := report.RatioAtMost(1)
	for _, f := range figs {
		fig := report.Figure{Bench: "automations", Name: f.shape.name + ", control-plane CPU per step", Value: perStep(f), Unit: "ms"}
		var t *report.Target
		if first != nil && f != first {
			fig.Baseline, fig.BaselineName = perStep(first), first.shape.name
			if strings.HasPrefix(f.shape.name, "chain ") {
				t = &linear
			}
		}
		report.Emit(fig, t)
		if pc := median(f.pc); pc > 0 {
			report.Emit(report.Figure{Bench: "automations", Name: f.shape.name + ", end to end", Value: msf(median(f.e2e)), Unit: "ms",
				Baseline: msf(pc), BaselineName: "process-compose"}, &pcTarget)
		} else {
			report.Emit(report.Figure{Bench: "automations", Name: f.shape.name + ", end to end", Value: msf(median(f.e2e)), Unit: "ms",
				Baseline: msf(median(f.base)), BaselineName: "fork/exec"}, nil)
		}
	}
	if len(figs) > 0 && median(figs[0].pc) == 0 {
		report.Skip("automations", "end to end beside process-compose", "no --process-compose (or $RUNYARD_BENCH_PROCESS_COMPOSE) binary")
	}
}

// runShape creates the shape's tasks in an environment of their own and
// runs it cfg.execRuns times after one unrecorded run, each beside a bare
// fork/exec run of the same shape and, when configured, process-compose.
func runShape(ctx context.Context, b *bench, cfg config, s shape) (*execFigure, error) {
	envID, err := b.createEnv(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(s.deps))
	for i, ds := range s.deps {
		var dependsOn []string
		for _, d := range ds {
			dependsOn = append(dependsOn, ids[d])
		}
		res, err := b.api.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
			EnvironmentId: envID,
			Metadata:      &gitpodv1.TaskMetadata{Reference: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("T%d", i)},
			Spec:          &gitpodv1.TaskSpec{Command: s.command(i, b.fifo)},
			DependsOn:     dependsOn,
		}))
		if err != nil {
			return nil, fmt.Errorf("create task %d: %w", i, err)
		}
		ids[i] = res.Msg.GetTask().GetId()
	}
	root := ids[len(ids)-1]
	var pcDir string
	if cfg.processCompose != "" {
		pcDir = filepath.Join(b.dir, "pc-"+strings.NewReplacer(" ", "-", ">", "").Replace(s.name))
		if err := writeComposeFile(pcDir, s, b.fifo); err != nil {
			return nil, err
		}
	}
	f := &execFigure{shape: s, runs: cfg.execRuns}
	for i := -1; i < cfg.execRuns; i++ {
		if i == 0 {
			b.profile(true)
		}
		before := b.sampleCPU()
		bs, bns := schedNS(b.srv.cmd.Process.Pid), schedNS(b.runner.cmd.Process.Pid)
		d, err := executeOnce(ctx, b, root)
		if err != nil {
			return nil, err
		}
		as, ans := schedNS(b.srv.cmd.Process.Pid), schedNS(b.runner.cmd.Process.Pid)
		after := b.sampleCPU()
		base, err := forkShape(ctx, b, s, fmt.Sprintf("fork-%s-%d", s.name, i))
		if err != nil {
			return nil, fmt.Errorf("fork/exec baseline: %w", err)
		}
		var pc time.Duration
		if pcDir != "" {
			if pc, err = runCompose(ctx, b, cfg.processCompose, pcDir, fmt.Sprintf("pc-%s-%d", s.name, i)); err != nil {
				return nil, fmt.Errorf("process-compose: %w", err)
			}
		}
		if i < 0 {
			continue
		}
		f.e2e, f.base = append(f.e2e, d), append(f.base, base)
		if pc > 0 {
			f.pc = append(f.pc, pc)
		}
		f.serverNS += as - bs
		f.runnerNS += ans - bns
		f.serverTicks += after.server - before.server
		fmt.Printf("  %s run %d: StartTask -> SUCCEEDED %s, fork/exec %s, process-compose %s; %s\n", s.name, i+1, ms(d), ms(base), msOr(pc),
			after.since(before, len(s.deps), "step"))
	}
	b.profile(false)
	return f, nil
}

func msOr(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return ms(d)
}

// executeOnce starts the root task, waits for the last step's line in the
// FIFO and then polls until the control plane has the execution finished;
// it returns the time from just before StartTask to SUCCEEDED seen.
func executeOnce(ctx context.Context, b *bench, root string) (time.Duration, error) {
	t0 := time.Now()
	res, err := b.api.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: root}))
	if err != nil {
		return 0, fmt.Errorf("start task: %w", err)
	}
	id := res.Msg.GetTaskExecution().GetId()
	if _, err := b.awaitLine(ctx, id); err != nil {
		return 0, fmt.Errorf("execution %s: %w", id, err)
	}
	if err := b.waitExecution(ctx, id, finishPoll); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// forkShape runs the shape's commands as the runner would, with no control
// plane: each group's commands at once (bash -c, a session each, output
// through a pipe), one group after another. It returns the wall time.
func forkShape(ctx context.Context, b *bench, s shape, key string) (time.Duration, error) {
	t0 := time.Now()
	for _, group := range s.levels() {
		var wg sync.WaitGroup
		errs := make([]error, len(group))
		for j := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(b.shell, "-c", s.command(group[j], b.fifo))
				cmd.Env = append(os.Environ(), "RUNYARD_TASK_EXECUTION_ID="+key)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				cmd.Stdout, cmd.Stderr = discard{}, discard{}
				errs[j] = cmd.Run()
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
	}
	if _, err := b.awaitLine(ctx, key); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// writeComposeFile writes the shape as a process-compose project: every
// process runs once, after its dependencies completed successfully.
func writeComposeFile(dir string, s shape, fifo string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString("version: \"0.5\"\nis_strict: true\nprocesses:\n")
	for i, ds := range s.deps {
		fmt.Fprintf(&sb, "  t%d:\n    command: %q\n    availability:\n      restart: \"no\"\n", i, s.command(i, fifo))
		if len(ds) > 0 {
			sb.WriteString("    depends_on:\n")
			for _, d := range ds {
				fmt.Fprintf(&sb, "      t%d:\n        condition: process_completed_successfully\n", d)
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, "process-compose.yaml"), []byte(sb.String()), 0o600)
}

// runCompose runs the project in dir headless, without its API server, and
// returns the time until process-compose exited (it does once every process
// completed).
func runCompose(ctx context.Context, b *bench, bin, dir, key string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--tui=false", "--no-server", "--config", filepath.Join(dir, "process-compose.yaml"),
		"--log-file", filepath.Join(dir, "pc.log"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RUNYARD_TASK_EXECUTION_ID="+key)
	cmd.Stdout, cmd.Stderr = discard{}, discard{}
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s up: %w (its log: %s)", bin, err, filepath.Join(dir, "pc.log"))
	}
	d := time.Since(t0)
	if _, err := b.awaitLine(ctx, key); err != nil {
		return 0, err
	}
	return d, nil
}

// schedNS returns the CPU time, in ns, of every thread of a process
// (/proc/PID/task/*/schedstat), finer than stat's 10 ms ticks; 0 if it is
// unreadable. Go keeps its threads, so a thread that exits in between
// (rare) loses its time from the figure.
func schedNS(pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		sum += n
	}
	return sum
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	return pct(sorted, 0.5)
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is no positive integer", flagName, p)
		}
		out = append(out, n)
	}
	return out, nil
}
