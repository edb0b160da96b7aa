package main

// This file is part one: pod placement on many simulated runners.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
)

// runnerName names simulated runner i; profileOf gives what it advertises.
func runnerName(i int) string { return fmt.Sprintf("sim-%05d", i) }

// profileOf is simulated runner i. Seven in ten fit the benchmark's pods;
// the others exercise each reason placement has to pass a runner over:
//
//	i%10 == 0: lacks the agent type (it has claude-code only)
//	i%10 == 1: lacks the label zone-a
//	i%10 == 2: draining (its daemon says so)
//	otherwise: fits, with max_pods 2..8 by i/10
func profileOf(i int) profile {
	p := profile{
		MaxPods:    2 + (i/10)%7,
		Labels:     []string{benchLabel, fmt.Sprintf("rack-%02d", i%16)},
		AgentTypes: []string{benchAgent, "claude-code"},
	}
	switch i % 10 {
	case 0:
		p.AgentTypes = []string{"claude-code"}
	case 1:
		p.Labels = []string{"zone-b", fmt.Sprintf("rack-%02d", i%16)}
	case 2:
		p.Draining = true
	}
	return p
}

func fits(i int) bool { return i%10 >= 3 }

// sim is one simulator process.
type sim struct {
	child
	stdin io.WriteCloser
	mu    sync.Mutex
	last  simReport
	done  chan struct{}
}

func (s *sim) report() simReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

type sims []*sim

func (ss sims) total() simReport {
	var t simReport
	for _, s := range ss {
		r := s.report()
		t.Connected += r.Connected
		t.Renewals += r.Renewals
		t.Desired += r.Desired
		t.Pods += r.Pods
		t.OverMax += r.OverMax
		t.Running += r.Running
		t.Errors += r.Errors
		if r.LastError != "" {
			t.LastError = r.LastError
		}
	}
	return t
}

func (ss sims) pids() []int {
	var out []int
	for _, s := range ss {
		out = append(out, s.cmd.Process.Pid)
	}
	return out
}

// stop closes every simulator's stdin, which ends it, and waits.
func (ss sims) stop() {
	for _, s := range ss {
		s.stdin.Close()
	}
	for _, s := range ss {
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			fmt.Fprintln(os.Stderr, "pods: a simulator did not stop: killing it")
			s.cmd.Process.Kill()
			<-s.done
		}
		if s.log != nil {
			s.log.Close()
		}
	}
}

// startSims splits the profiles over n simulator processes, each with its own
// loopback source address.
func startSims(dir, url string, profiles []profile, n int, reportRunning, connectStreams bool) (sims, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	var out sims
	per := (len(profiles) + n - 1) / n
	for k := 0; k < n; k++ {
		lo, hi := k*per, min((k+1)*per, len(profiles))
		if lo >= hi {
			break
		}
		file := filepath.Join(dir, fmt.Sprintf("profiles-%d.jsonl", k))
		var b strings.Builder
		for _, p := range profiles[lo:hi] {
			line, err := json.Marshal(p)
			if err != nil {
				return out, fmt.Errorf("encode profile: %w", err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			return out, fmt.Errorf("write profiles: %w", err)
		}
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("sim-%d.log", k)))
		if err != nil {
			return out, fmt.Errorf("create simulator log: %w", err)
		}
		s := &sim{done: make(chan struct{})}
		s.name, s.log = fmt.Sprintf("simulator %d", k), logf
		s.cmd = exec.Command(self, "simulate", "--server", url, "--profiles", file,
			"--src", fmt.Sprintf("127.0.%d.%d", 1+k/250, 2+k%250), "--report-running="+strconv.FormatBool(reportRunning),
			"--connect-streams="+strconv.FormatBool(connectStreams))
		s.cmd.Stderr = logf
		if s.stdin, err = s.cmd.StdinPipe(); err != nil {
			logf.Close()
			return out, fmt.Errorf("simulator stdin: %w", err)
		}
		so, err := s.cmd.StdoutPipe()
		if err != nil {
			logf.Close()
			return out, fmt.Errorf("simulator stdout: %w", err)
		}
		if err := s.cmd.Start(); err != nil {
			logf.Close()
			return out, fmt.Errorf("start simulator: %w", err)
		}
		go func() {
			dec := json.NewDecoder(so)
			for {
				var r simReport
				if dec.Decode(&r) != nil {
					break
				}
				s.mu.Lock()
				s.last = r
				s.mu.Unlock()
			}
			s.cmd.Wait()
			close(s.done)
		}()
		out = append(out, s)
	}
	return out, nil
}

// waitFor polls cond every 100 ms until it holds, ctx ends or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// creation is the outcome of creating pods from concurrent clients.
type creation struct {
	lat     []time.Duration
	elapsed time.Duration
	placed  int
	pending map[string]int // reason -> count
	errors  int
	first   []string
}

// createPods creates n pods from clients goroutines, each sending its next
// request when the previous one returned.
func createPods(ctx context.Context, api *restClient, n, clients int) *creation {
	body, _ := json.Marshal(map[string]any{
		"agent_type_id": benchAgent, "initial_prompt": "benchmark the placement", "labels": []string{benchLabel}})
	out := &creation{pending: map[string]int{}}
	var mu sync.Mutex
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, n/clients+1)
			placed, errs := 0, 0
			pending := map[string]int{}
			var first []string
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				t := time.Now()
				var res podResponse
				err := api.do(ctx, http.MethodPost, "/pods", body, http.StatusCreated, &res)
				d := time.Since(t)
				if err != nil {
					errs++
					if len(first) < 5 {
						first = append(first, err.Error())
					}
					continue
				}
				lat = append(lat, d)
				if res.Pod.RunnerID != nil {
					placed++
				} else {
					pending[res.Pod.Reason]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.lat = append(out.lat, lat...)
			out.placed += placed
			out.errors += errs
			for k, v := range pending {
				out.pending[k] += v
			}
			out.first = append(out.first, first...)
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

func (c *creation) line(label string, cpu string) string {
	pending := 0
	for _, v := range c.pending {
		pending += v
	}
	n := len(c.lat)
	return fmt.Sprintf("%s: pods=%d placed=%d pending=%d errors=%d in %s: %.0f pods/s %s\n  %s", label, n, c.placed, pending,
		c.errors, c.elapsed.Round(time.Millisecond), float64(n)/c.elapsed.Seconds(), latencies(c.lat), cpu)
}

func (c *creation) failed() error {
	if c.errors == 0 {
		return nil
	}
	return fmt.Errorf("%d creates failed; the first: %s", c.errors, strings.Join(c.first, " | "))
}

func runPlacement(ctx context.Context, cfg config) (err error) {
	backend := "sqlite"
	if cfg.database != "" {
		backend = "postgres"
	}
	fmt.Printf("== placement: %s, %d runners in %d simulators, %d pods from %d clients, runner timeout %s, report-running=%v\n",
		backend, cfg.runners, cfg.sims, cfg.pods, cfg.clients, cfg.runnerTimeout, cfg.reportRunning)
	dir, err := os.MkdirTemp(cfg.tmpBase, "runyard-bench-pods-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	args := []string{"--runner-timeout", cfg.runnerTimeout.String()}
	if cfg.database != "" {
		u, drop, err := postgresSchema(ctx, cfg.database)
		if err != nil {
			return err
		}
		defer drop()
		args = append(args, "--database", u)
	}
	if cfg.cpuprofile != "" {
		abs, err := filepath.Abs(cfg.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile path: %w", err)
		}
		args = append(args, "--cpuprofile", abs)
	}
	srv, base, err := startServer(ctx, dir, args...)
	if err != nil {
		return err
	}
	defer func() {
		srv.stop(30 * time.Second)
		if err != nil {
			srv.tail(20)
		}
	}()
	pid := srv.cmd.Process.Pid
	api := newREST(base, cfg.clients)
	defer api.hc.CloseIdleConnections()

	// The agent type exists before runners connect: creating one pushes a
	// desired state to every connected runner.
	if err := api.createAgentType(ctx, benchAgent, []string{benchAgent}); err != nil {
		return err
	}
	start := time.Now()
	tokens, err := createRunners(ctx, base, cfg.runners, 32, runnerName)
	if err != nil {
		return err
	}
	fmt.Printf("setup: %d runners created in %s\n", cfg.runners, time.Since(start).Round(time.Millisecond))
	profiles := make([]profile, cfg.runners)
	capacity, fitting := 0, 0
	for i := range profiles {
		profiles[i] = profileOf(i)
		profiles[i].Token = tokens[i]
		if fits(i) {
			capacity += profiles[i].MaxPods
			fitting++
		}
	}

	start = time.Now()
	ss, err := startSims(dir, base, profiles, cfg.sims, cfg.reportRunning, cfg.connectStreams)
	defer func() {
		ss.stop()
		if err != nil {
			for _, s := range ss {
				s.tail(10)
			}
		}
	}()
	if err != nil {
		return err
	}
	err = waitFor(ctx, 5*time.Minute, func() (bool, error) {
		t := ss.total()
		if t.Errors > 0 {
			return false, fmt.Errorf("%d simulated runners failed; last error: %s", t.Errors, t.LastError)
		}
		return t.Connected == int64(cfg.runners), nil
	})
	if err != nil {
		return fmt.Errorf("connect runners: %w", err)
	}
	connectTime := time.Since(start)
	list, err := api.runners(ctx)
	if err != nil {
		return err
	}
	online := 0
	for _, r := range list {
		if r.Status == "online" {
			online++
		}
	}
	fmt.Printf("connect: %d runners connected in %s, %d online; %d fit the pods, with room for %d\n",
		cfg.runners, connectTime.Round(time.Millisecond), online, fitting, capacity)
	if online != cfg.runners {
		return fmt.Errorf("%d of %d runners online after connecting", online, cfg.runners)
	}
	rssIdle, _ := rss(pid)

	// The measured phase.
	if cfg.cpuprofile != "" {
		srv.cmd.Process.Signal(syscall.SIGUSR1)
	}
	c0 := sampleCPU(pid, ss.pids())
	meas := createPods(ctx, api, cfg.pods, cfg.clients)
	c1 := sampleCPU(pid, ss.pids())
	if cfg.cpuprofile != "" {
		srv.cmd.Process.Signal(syscall.SIGUSR2)
	}
	fmt.Println(meas.line("place", c1.since(c0, len(meas.lat))))
	{
		db, t := "sqlite", (*report.Target)(nil)
		if cfg.database != "" {
			// The target is PostgreSQL's: 3,000 pods/s placed at
			// 10,000 runners.
			tt := report.AtLeast(3000)
			db, t = "postgres", &tt
		}
		report.Emit(report.Figure{Bench: "pods", Name: fmt.Sprintf("%s placement, %d runners, %d clients", db, cfg.runners, cfg.clients),
			Value: float64(len(meas.lat)) / meas.elapsed.Seconds(), Unit: "pods/s"}, t)
	}
	if err := meas.failed(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if want := min(cfg.pods, capacity); meas.placed != want {
		return fmt.Errorf("placed %d pods, want %d (%d created, room for %d); pending reasons %v", meas.placed, want, cfg.pods, capacity, meas.pending)
	}
	// Least loaded first: a runner gets its k+1-th pod only when every
	// fitting runner with room has k, so no runner with room holds two
	// fewer than the most loaded one.
	list, err = api.runners(ctx)
	if err != nil {
		return err
	}
	lo, hi := -1, 0
	for _, r := range list {
		i, ok := runnerIndex(r.Name)
		if !ok || !fits(i) {
			continue
		}
		hi = max(hi, r.PodCount)
		if r.PodCount < r.MaxPods && (lo < 0 || r.PodCount < lo) {
			lo = r.PodCount
		}
	}
	fmt.Printf("level: after %d pods the fitting runners hold at most %d pods, those with room at least %d\n", meas.placed, hi, lo)
	if lo >= 0 && hi-lo > 1 {
		return fmt.Errorf("not least loaded first: a runner holds %d pods while one with room holds %d", hi, lo)
	}

	// Fill what is left and go beyond: the extra pods must wait with the
	// exact reason.
	left := capacity - meas.placed
	fill := createPods(ctx, api, left+cfg.extra, cfg.clients)
	fmt.Println(fill.line("fill", "(the last "+strconv.Itoa(cfg.extra)+" find every fitting runner full)"))
	if err := fill.failed(); err != nil {
		return err
	}
	wantReason := fmt.Sprintf("all runners that fit are full (%d of %d pods)", capacity, capacity)
	if fill.placed != left || len(fill.pending) > 1 || fill.pending[wantReason] != cfg.extra {
		return fmt.Errorf("fill placed %d (want %d), pending %v (want %d with %q)", fill.placed, left, fill.pending, cfg.extra, wantReason)
	}

	// Every placed pod reaches its runner.
	placed := meas.placed + fill.placed
	err = waitFor(ctx, 2*time.Minute, func() (bool, error) { return ss.total().Pods >= int64(placed), nil })
	t := ss.total()
	fmt.Printf("delivered: %d of %d placed pods reached their runners in %d desired states; %d desired states held more than max_pods; %d running reports\n",
		t.Pods, placed, t.Desired, t.OverMax, t.Running)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	if t.OverMax > 0 || t.Pods != int64(placed) || t.Errors > 0 {
		return fmt.Errorf("delivery: %d pods delivered for %d placed, %d over max_pods, %d simulator errors (last: %s)",
			t.Pods, placed, t.OverMax, t.Errors, t.LastError)
	}

	// The control plane's own counts.
	list, err = api.runners(ctx)
	if err != nil {
		return err
	}
	sum, over, full, unfitHolding := 0, 0, 0, 0
	for _, r := range list {
		i, ok := runnerIndex(r.Name)
		if !ok {
			return fmt.Errorf("unexpected runner %q", r.Name)
		}
		sum += r.PodCount
		if r.PodCount > r.MaxPods || r.MaxPods != profiles[i].MaxPods {
			over++
		}
		if r.PodCount == r.MaxPods {
			full++
		}
		if !fits(i) && r.PodCount > 0 {
			unfitHolding++
		}
	}
	// Pods are pending until their runner reports them running: all placed
	// ones too without --report-running, none of them with it once the
	// reports are recorded.
	wantPending := cfg.pods - meas.placed + cfg.extra
	if !cfg.reportRunning {
		wantPending += placed
	}
	pending := 0
	err = waitFor(ctx, time.Minute, func() (bool, error) {
		var page struct {
			Total int `json:"total"`
		}
		if err := api.do(ctx, http.MethodGet, "/pods?status=pending&limit=1", nil, http.StatusOK, &page); err != nil {
			return false, err
		}
		pending = page.Total
		return pending == wantPending, nil
	})
	if err != nil {
		return fmt.Errorf("%d pods pending, want %d: %w", pending, wantPending, err)
	}
	waiting := cfg.pods - meas.placed + cfg.extra
	fmt.Printf("check: %d runners; %d above max_pods; %d full; %d unfit runners hold pods; pods on runners %d = placed %d = capacity %d; pods without a runner %d\n",
		len(list), over, full, unfitHolding, sum, placed, capacity, waiting)
	if over > 0 || unfitHolding > 0 || sum != placed || placed != capacity {
		return errors.New("check failed")
	}
	cur, peak := rss(pid)
	fmt.Printf("control plane: rss idle %.0f MiB, now %.0f MiB, peak %.0f MiB\n", rssIdle, cur, peak)
	return nil
}

func runnerIndex(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "sim-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}
