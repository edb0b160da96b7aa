package main

// This file is part 2: a task writes as fast as it can and a client follows
// its log through the control plane (GET status.logUrl?follow=1), beside
// the same command read straight from a pipe.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// logLine is what the writer repeats: 64 bytes with the newline.
const logLine = "runyard log throughput benchmark 0123456789abcdefghijklmnopqrst"

// writerScript waits for a line on the go FIFO, then writes n bytes to
// stdout as fast as `yes` and `head` can; with done set it then writes
// "done-$RUNYARD_TASK_EXECUTION_ID" into the ready FIFO.
func writerScript(goFIFO, fifo string, n int64, done bool) string {
	s := `read -r _ < '` + goFIFO + `'; yes '` + logLine + `' | head -c ` + strconv.FormatInt(n, 10)
	if done {
		s += `; echo "done-$RUNYARD_TASK_EXECUTION_ID" > '` + fifo + `'`
	}
	return s
}

// logResult is one run through the control plane.
type logResult struct {
	attach   time.Duration // StartTask to the follower's first line
	writer   time.Duration // go to the writer's end, as its FIFO line says
	follower time.Duration // go to the follower holding every payload byte
	eof      time.Duration // go to the end of the followed stream
	bytes    int64         // bytes the follower read after the step's header
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func runLogs(ctx context.Context, b *bench, cfg config) error {
	fmt.Printf("== log throughput: a task writes %d bytes (%d-byte lines) as fast as it can, a client follows GET status.logUrl?follow=1; %d runs, each beside a pipe read of the same command; MB = 10^6 bytes\n",
		cfg.logBytes, len(logLine)+1, cfg.logRuns)
	envID, err := b.createEnv(ctx)
	if err != nil {
		return err
	}
	res, err := b.api.autos.CreateTask(ctx, req(&gitpodv1.CreateTaskRequest{
		EnvironmentId: envID,
		Metadata:      &gitpodv1.TaskMetadata{Reference: "writer", Name: "Writer"},
		Spec:          &gitpodv1.TaskSpec{Command: writerScript(b.goFIFO, b.fifo, cfg.logBytes, true)},
	}))
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	taskID := res.Msg.GetTask().GetId()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	defer hc.CloseIdleConnections()

	// One unrecorded run opens the connections and warms the caches.
	if _, err := logOnce(ctx, b, hc, taskID, cfg.logBytes); err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	var runs []logResult
	var base, alone, stalled []time.Duration
	b.profile(true)
	before := b.sampleCPU()
	for i := range cfg.logRuns {
		r, err := logOnce(ctx, b, hc, taskID, cfg.logBytes)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		runs = append(runs, r)
		d, err := pipeOnce(ctx, b, cfg.logBytes)
		if err != nil {
			return fmt.Errorf("baseline %d: %w", i, err)
		}
		base = append(base, d)
		d, err = writerOnce(ctx, b, taskID)
		if err != nil {
			return fmt.Errorf("writer alone %d: %w", i, err)
		}
		alone = append(alone, d)
	}
	after := b.sampleCPU()
	b.profile(false)
	// Outside the CPU figures, which are per MiB followed.
	for i := range cfg.logRuns {
		d, err := stalledOnce(ctx, b, hc, taskID)
		if err != nil {
			return fmt.Errorf("writer with a stalled follower %d: %w", i, err)
		}
		stalled = append(stalled, d)
	}
	var total int64
	for i, r := range runs {
		total += r.bytes
		fmt.Printf("run %d: follower %.1f MB/s (%s for %d bytes; stream ended after %s), writer into the runner's log %.1f MB/s (%s), follower attached %s after StartTask; pipe baseline %.1f MB/s (%s)\n",
			i+1, mbps(cfg.logBytes, r.follower), ms(r.follower), cfg.logBytes, ms(r.eof),
			mbps(cfg.logBytes, r.writer), ms(r.writer), ms(r.attach), mbps(cfg.logBytes, base[i]), ms(base[i]))
		fmt.Printf("  the same task with no follower: writer into the runner's log %.1f MB/s (%s); with a follower that reads nothing after the first line: %.1f MB/s (%s)\n",
			mbps(cfg.logBytes, alone[i]), ms(alone[i]), mbps(cfg.logBytes, stalled[i]), ms(stalled[i]))
	}
	fmt.Printf("  %s\n", after.since(before, int(total>>20), "MiB followed"))
	// Medians over the runs, each beside the pipe of the same runs: the
	// issue asks the follower for 60% of a pipe, and that it never slows
	// the writer.
	var follower, writer []time.Duration
	for _, r := range runs {
		follower, writer = append(follower, r.follower), append(writer, r.writer)
	}
	pipe := mbps(cfg.logBytes, median(base))
	sixty := report.RatioAtLeast(0.6)
	report.Emit(report.Figure{Bench: "automations", Name: "followed log, follower", Value: mbps(cfg.logBytes, median(follower)), Unit: "MB/s",
		Baseline: pipe, BaselineName: "pipe"}, &sixty)
	unslowed := report.RatioAtLeast(0.9)
	report.Emit(report.Figure{Bench: "automations", Name: "followed log, writer into the runner's log", Value: mbps(cfg.logBytes, median(writer)), Unit: "MB/s",
		Baseline: mbps(cfg.logBytes, median(alone)), BaselineName: "the writer with no follower"}, &unslowed)
	report.Emit(report.Figure{Bench: "automations", Name: "followed log, writer with a follower that reads nothing", Value: mbps(cfg.logBytes, median(stalled)), Unit: "MB/s",
		Baseline: mbps(cfg.logBytes, median(alone)), BaselineName: "the writer with no follower"}, &unslowed)
	report.Emit(report.Figure{Bench: "automations", Name: "log with no follower, writer into the runner's log", Value: mbps(cfg.logBytes, median(alone)), Unit: "MB/s",
		Baseline: pipe, BaselineName: "pipe"}, nil)
	return nil
}

// startWithLog starts the writer task and waits until its execution has a
// log URL.
func startWithLog(ctx context.Context, b *bench, taskID string) (id, logURL string, err error) {
	res, err := b.api.autos.StartTask(ctx, req(&gitpodv1.StartTaskRequest{Id: taskID}))
	if err != nil {
		return "", "", fmt.Errorf("start task: %w", err)
	}
	id = res.Msg.GetTaskExecution().GetId()
	err = waitFor(ctx, time.Minute, 5*time.Millisecond, func() (bool, error) {
		res, err := b.api.autos.GetTaskExecution(ctx, req(&gitpodv1.GetTaskExecutionRequest{Id: id}))
		if err != nil {
			return false, err
		}
		logURL = res.Msg.GetTaskExecution().GetStatus().GetLogUrl()
		return logURL != "", nil
	})
	if err != nil {
		return "", "", fmt.Errorf("execution %s has no log URL: %w", id, err)
	}
	return id, logURL, nil
}

// follow GETs logURL?follow=1 with the admin token and reads the step's
// header line; the caller closes the response.
func follow(ctx context.Context, hc *http.Client, logURL string) (*http.Response, *bufio.Reader, error) {
	if !strings.HasPrefix(logURL, "http://127.0.0.1:") {
		return nil, nil, fmt.Errorf("log URL %q is not on loopback", logURL)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, logURL+"?follow=1", nil)
	if err != nil {
		return nil, nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", logURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, nil, fmt.Errorf("GET %s: status %d: %s", logURL, resp.StatusCode, body)
	}
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	header, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "=== step ") {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("followed log: want the step's header first, got %q (%v)", header, err)
	}
	return resp, br, nil
}

// logOnce starts the writer task, follows its log from the control plane,
// releases the writer once the follower holds the step's header, and
// waits until the execution SUCCEEDED.
func logOnce(ctx context.Context, b *bench, hc *http.Client, taskID string, n int64) (logResult, error) {
	var r logResult
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	id, logURL, err := startWithLog(ctx, b, taskID)
	if err != nil {
		return r, err
	}
	resp, br, err := follow(ctx, hc, logURL)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	r.attach = time.Since(t0)

	go0 := time.Now()
	if _, err := b.goFile.Write([]byte("go\n")); err != nil {
		return r, fmt.Errorf("release the writer: %w", err)
	}
	type readEnd struct {
		all, eof time.Time
		n        int64
		tail     []byte
		err      error
	}
	ended := make(chan readEnd, 1)
	go func() {
		var e readEnd
		buf := make([]byte, 256<<10)
		var tail []byte
		for {
			k, err := br.Read(buf)
			if k > 0 {
				e.n += int64(k)
				if e.all.IsZero() && e.n >= n {
					e.all = time.Now()
				}
				tail = append(tail, buf[:k]...)
				if len(tail) > 8192 {
					tail = append(tail[:0], tail[len(tail)-4096:]...)
				}
			}
			if err != nil {
				e.eof, e.tail = time.Now(), tail
				if !errors.Is(err, io.EOF) {
					e.err = err
				}
				ended <- e
				return
			}
		}
	}()
	at, err := b.awaitLine(ctx, "done-"+id)
	if err != nil {
		return r, fmt.Errorf("the writer did not finish: %w", err)
	}
	r.writer = at.Sub(go0)
	var e readEnd
	select {
	case e = <-ended:
	case <-ctx.Done():
		return r, fmt.Errorf("the followed log did not end: %w", ctx.Err())
	}
	if e.err != nil {
		return r, fmt.Errorf("follow %s: %w", logURL, e.err)
	}
	if e.all.IsZero() {
		return r, fmt.Errorf("the follower read %d bytes after the header, want at least %d; the stream ended with %q", e.n, n, e.tail)
	}
	if bytes.Contains(e.tail, []byte("reached its cap")) || !bytes.Contains(e.tail, []byte("the command ended")) {
		return r, fmt.Errorf("the followed log does not end as expected: %q", e.tail[max(0, len(e.tail)-300):])
	}
	r.follower, r.eof, r.bytes = e.all.Sub(go0), e.eof.Sub(go0), e.n
	if err := b.waitExecution(ctx, id, 5*time.Millisecond); err != nil {
		return r, err
	}
	return r, nil
}

// writerOnce runs the log task with no follower: released once it waits on
// the go FIFO, it returns the time from the release to the writer's end.
func writerOnce(ctx context.Context, b *bench, taskID string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, _, err := startWithLog(ctx, b, taskID)
	if err != nil {
		return 0, err
	}
	// Long enough for the step to block on the go FIFO, as pipeOnce waits.
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	go0 := time.Now()
	if _, err := b.goFile.Write([]byte("go\n")); err != nil {
		return 0, fmt.Errorf("release the writer: %w", err)
	}
	at, err := b.awaitLine(ctx, "done-"+id)
	if err != nil {
		return 0, fmt.Errorf("the writer did not finish: %w", err)
	}
	if err := b.waitExecution(ctx, id, 5*time.Millisecond); err != nil {
		return 0, err
	}
	return at.Sub(go0), nil
}

// stalledOnce runs the log task with a follower that reads the step's
// header and then nothing until the writer ended: the runner and the
// control plane then hold what they could not pass on, and the writer
// must not wait for them. It returns the time from the release to the
// writer's end.
func stalledOnce(ctx context.Context, b *bench, hc *http.Client, taskID string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, logURL, err := startWithLog(ctx, b, taskID)
	if err != nil {
		return 0, err
	}
	resp, _, err := follow(ctx, hc, logURL)
	if err != nil {
		return 0, err
	}
	go0 := time.Now()
	if _, err := b.goFile.Write([]byte("go\n")); err != nil {
		resp.Body.Close()
		return 0, fmt.Errorf("release the writer: %w", err)
	}
	at, err := b.awaitLine(ctx, "done-"+id)
	// The follower leaves without reading the rest.
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("the writer did not finish: %w", err)
	}
	if err := b.waitExecution(ctx, id, 5*time.Millisecond); err != nil {
		return 0, err
	}
	return at.Sub(go0), nil
}

// pipeOnce runs the same writer with its stdout on a pipe this process
// reads with the same buffer, releases it the same way once it waits on
// the go FIFO, and returns the time from the release to the last byte.
func pipeOnce(ctx context.Context, b *bench, n int64) (time.Duration, error) {
	cmd := exec.Command(b.shell, "-c", writerScript(b.goFIFO, b.fifo, n, false))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", b.shell, err)
	}
	defer cmd.Wait()
	// Long enough for the shell to block on the go FIFO, as the task did
	// before its follower attached.
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		cmd.Process.Kill()
		return 0, ctx.Err()
	}
	go0 := time.Now()
	if _, err := b.goFile.Write([]byte("go\n")); err != nil {
		cmd.Process.Kill()
		return 0, fmt.Errorf("release the writer: %w", err)
	}
	buf := make([]byte, 256<<10)
	var got int64
	var all time.Time
	for {
		k, err := out.Read(buf)
		got += int64(k)
		if all.IsZero() && got >= n {
			all = time.Now()
		}
		if err != nil {
			break
		}
	}
	if got != n {
		return 0, fmt.Errorf("read %d bytes from the pipe, want %d", got, n)
	}
	return all.Sub(go0), nil
}
