package main

// This file is part two: from POST /pods to the agent process running on a
// real runner, beside a bare fork/exec of the same command.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
)

// markerAgent is the agent type of part two.
const markerAgent = "bench-marker"

// ready is a line read from the FIFO: the key a process wrote, and when.
type ready struct {
	key string
	at  time.Time
}

// markerScript writes the pod's key into the FIFO, the moment the agent
// process is observably running, then sleeps until it is stopped.
func markerScript(fifo string) string {
	return `echo "$RUNYARD_POD_KEY" > '` + fifo + `'; exec sleep 86400`
}

func runAgentStart(ctx context.Context, cfg config) (err error) {
	fmt.Printf("== agent start: one real runner (--max-pods %d), %d pods one after another, each beside a bare fork/exec\n",
		cfg.runnerMaxPods, cfg.agentPods)
	dir, err := os.MkdirTemp(cfg.tmpBase, "runyard-bench-agent-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	fifo := filepath.Join(dir, "ready.fifo")
	if strings.ContainsAny(fifo, `'"\$`+"`") {
		return fmt.Errorf("temp dir %q holds characters the marker script cannot quote", dir)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("make fifo: %w", err)
	}
	// Read and write, so that the open does not wait for a writer and the
	// reads do not end when a writer closes.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open fifo: %w", err)
	}
	defer f.Close()
	lines := make(chan ready, 64)
	go func() {
		rd := bufio.NewReader(f)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			lines <- ready{key: strings.TrimSpace(l), at: time.Now()}
		}
	}()

	bin := cfg.runyard
	if bin == "" {
		bin = filepath.Join(dir, "runyard")
		start := time.Now()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/runyard")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/runyard (run from the repository root, or pass --runyard): %w", err)
		}
		fmt.Printf("built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	}

	srv, base, err := startServer(ctx, dir)
	if err != nil {
		return err
	}
	defer func() {
		srv.stop(30 * time.Second)
		if err != nil {
			srv.tail(20)
		}
	}()
	api := newREST(base, 2)
	defer api.hc.CloseIdleConnections()
	script := markerScript(fifo)
	if err := api.createAgentType(ctx, markerAgent, []string{"sh", "-c", script}); err != nil {
		return err
	}
	tokens, err := createRunners(ctx, base, 1, 1, func(int) string { return "bench-runner" })
	if err != nil {
		return err
	}
	stateDir := filepath.Join(dir, "runner-state")
	runner, err := startRunner(dir, bin, base, tokens[0], stateDir, cfg.runnerMaxPods)
	if err != nil {
		return err
	}
	defer func() {
		// SIGTERM makes the runner stop its pods (SIGTERM to each session)
		// before it exits; whatever survives a kill is swept from its pid
		// files.
		runner.stop(30 * time.Second)
		if n := sweepPods(stateDir); n > 0 {
			fmt.Fprintf(os.Stderr, "pods: killed %d pod sessions the runner left\n", n)
		}
		if err != nil {
			runner.tail(20)
		}
	}()

	// The runner advertises the agent type once it learned the type's
	// binary from its desired state; until then pods wait. Warm-up pods
	// (not recorded) wait for that and open the connections.
	warm := 0
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		_, _, placed, err := podOnce(ctx, api, lines)
		if err != nil {
			return false, err
		}
		if placed {
			warm++
		}
		return warm >= 5, nil
	})
	if err != nil {
		return fmt.Errorf("warm-up: the runner did not take pods: %w", err)
	}

	var createLat, readyLat, baseLat []time.Duration
	for i := range cfg.agentPods {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		created, ready, placed, err := podOnce(ctx, api, lines)
		if err != nil {
			return fmt.Errorf("pod %d: %w", i, err)
		}
		if !placed {
			return fmt.Errorf("pod %d was not placed on the runner", i)
		}
		createLat, readyLat = append(createLat, created), append(readyLat, ready)
		d, err := forkOnce(ctx, script, fmt.Sprintf("baseline-%06d", i), lines)
		if err != nil {
			return fmt.Errorf("baseline %d: %w", i, err)
		}
		baseLat = append(baseLat, d)
	}
	fmt.Printf("pod create -> agent running: n=%d %s\n", len(readyLat), latencies(readyLat))
	fmt.Printf("  of which POST /pods answered: %s\n", latencies(createLat))
	fmt.Printf("bare fork/exec of the same command: n=%d %s\n", len(baseLat), latencies(baseLat))
	report.Emit(report.Figure{Bench: "pods", Name: "pod create -> agent running, p50", Value: msf(median(readyLat)), Unit: "ms",
		Baseline: msf(median(baseLat)), BaselineName: "bare fork/exec"}, nil)
	return nil
}

// startRunner starts `runyard runner` with its log in dir.
func startRunner(dir, bin, server, token, stateDir string, maxPods int) (*child, error) {
	logf, err := os.Create(filepath.Join(dir, "runner.log"))
	if err != nil {
		return nil, fmt.Errorf("create runner log: %w", err)
	}
	cmd := exec.Command(bin, "runner", "--server", server, "--exchange-token", token, "--state-dir", stateDir,
		"--name", "bench-runner", "--max-pods", strconv.Itoa(maxPods), "--stop-grace", "5s")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start runner: %w", err)
	}
	return &child{cmd: cmd, name: "runner", log: logf}, nil
}

// podOnce creates a marker pod, waits for its line in the FIFO, terminates
// it and waits until the control plane has it finished, so the next pod
// finds the runner as empty as this one did. It returns the time to the
// POST's answer and to the line. A pod that was not placed is terminated at
// once and reported with placed false.
func podOnce(ctx context.Context, api *restClient, lines <-chan ready) (created, running time.Duration, placed bool, err error) {
	body := map[string]any{"agent_type_id": markerAgent, "initial_prompt": "benchmark the agent start"}
	t0 := time.Now()
	var res podResponse
	if err := api.do(ctx, http.MethodPost, "/pods", body, http.StatusCreated, &res); err != nil {
		return 0, 0, false, err
	}
	created = time.Since(t0)
	key := res.Pod.Key
	if res.Pod.RunnerID != nil {
		placed = true
		if running, err = awaitLine(ctx, lines, key, t0); err != nil {
			return 0, 0, false, fmt.Errorf("pod %s: %w", key, err)
		}
	}
	if err := api.do(ctx, http.MethodPost, "/pods/"+key+"/terminate", nil, http.StatusOK, nil); err != nil {
		return 0, 0, false, err
	}
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		var got podResponse
		if err := api.do(ctx, http.MethodGet, "/pods/"+key, nil, http.StatusOK, &got); err != nil {
			return false, err
		}
		return got.Pod.Status == "terminated" || got.Pod.Status == "failed", nil
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("pod %s did not finish after terminate: %w", key, err)
	}
	return created, running, placed, nil
}

// awaitLine waits for key's line in the FIFO and returns its time since t0;
// lines of other keys (none expected) are skipped.
func awaitLine(ctx context.Context, lines <-chan ready, key string, t0 time.Time) (time.Duration, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if l.key == key {
				return l.at.Sub(t0), nil
			}
		case <-timeout:
			return 0, errors.New("no line in the FIFO within 30s")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// forkOnce starts the marker command directly, waits for its line and stops
// it.
func forkOnce(ctx context.Context, script, key string, lines <-chan ready) (time.Duration, error) {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "RUNYARD_POD_KEY="+key)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start sh: %w", err)
	}
	d, err := awaitLine(ctx, lines, key, t0)
	cmd.Process.Kill()
	cmd.Wait()
	return d, err
}

// sweepPods kills the sessions of pods a runner left running, from the pid
// files in its state dir: each names a session leader and its start time, so
// a recycled pid is left alone. It returns how many it killed.
func sweepPods(stateDir string) int {
	files, _ := filepath.Glob(filepath.Join(stateDir, "pods", "*", "pid"))
	n := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var rec struct {
			Session    int    `json:"session"`
			StartTicks uint64 `json:"startTicks"`
		}
		if json.Unmarshal(b, &rec) != nil || rec.Session <= 1 {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rec.Session))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		// starttime is field 22 of /proc/PID/stat, the 20th after the name.
		if len(f) < 20 || f[19] != strconv.FormatUint(rec.StartTicks, 10) {
			continue
		}
		if syscall.Kill(-rec.Session, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
