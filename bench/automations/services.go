package main

// This file is part 3: many services with ready probes on one runner, the
// time until they all run and the runner's CPU while they idle.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// serviceCommands returns service i's start command, which marks itself
// ready with a file and then sleeps as a process named by a path in dir
// (so that the benchmark can count and sweep them), and its ready probe,
// which tests for the file.
func serviceCommands(dir string, i int) (start, ready string) {
	flag := filepath.Join(dir, fmt.Sprintf("ready-%04d", i))
	name := filepath.Join(dir, fmt.Sprintf("svc-%04d", i))
	return fmt.Sprintf(`: > '%s'; exec -a '%s' sleep 86400`, flag, name), fmt.Sprintf(`test -e '%s'`, flag)
}

func runServices(ctx context.Context, b *bench, cfg config) error {
	n := cfg.services
	fmt.Printf("== %d services with ready probes on one runner: StartService each (%d concurrent calls), ListServices every %s until all are RUNNING, then the runner idles for %s\n",
		n, cfg.startClients, servicePoll, cfg.idle)
	envID, err := b.createEnv(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "svc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	ids := make([]string, n)
	t0 := time.Now()
	err = parallel(ctx, n, cfg.startClients, func(i int) error {
		start, ready := serviceCommands(dir, i)
		res, err := b.api.autos.CreateService(ctx, req(&gitpodv1.CreateServiceRequest{
			EnvironmentId: envID,
			Metadata:      &gitpodv1.ServiceMetadata{Reference: fmt.Sprintf("svc-%04d", i), Name: fmt.Sprintf("Service %d", i)},
			Spec:          &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: start, Ready: ready}},
		}))
		if err != nil {
			return fmt.Errorf("create service %d: %w", i, err)
		}
		ids[i] = res.Msg.GetService().GetId()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("created %d services (stopped) in %s\n", n, time.Since(t0).Round(time.Millisecond))
	// The runner hears of every creation; let its desired states settle
	// before the clock starts.
	time.Sleep(2 * time.Second)

	rss0, _, threads0 := rss(b.runner.cmd.Process.Pid)
	b.profile(true)
	before := b.sampleCPU()
	t0 = time.Now()
	err = parallel(ctx, n, cfg.startClients, func(i int) error {
		if _, err := b.api.autos.StartService(ctx, req(&gitpodv1.StartServiceRequest{Id: ids[i]})); err != nil {
			return fmt.Errorf("start service %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	calls := time.Since(t0)
	var half, most time.Duration
	var counts map[gitpodv1.ServicePhase]int
	err = waitFor(ctx, 5*time.Minute, servicePoll, func() (bool, error) {
		var err error
		if counts, err = b.servicePhases(ctx, envID); err != nil {
			return false, err
		}
		if f := counts[gitpodv1.ServicePhase_SERVICE_PHASE_FAILED]; f > 0 {
			return false, fmt.Errorf("%d services FAILED", f)
		}
		running := counts[gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING]
		if half == 0 && running*2 >= n {
			half = time.Since(t0)
		}
		if most == 0 && running*10 >= n*9 {
			most = time.Since(t0)
		}
		return running == n, nil
	})
	if err != nil {
		return fmt.Errorf("not all services RUNNING (%v): %w", counts, err)
	}
	all := time.Since(t0)
	started := b.sampleCPU()
	b.profile(false)
	fmt.Printf("StartService x%d -> all RUNNING: %s (the calls took %s; half RUNNING at %s, 90%% at %s)\n",
		n, ms(all), ms(calls), ms(half), ms(most))
	fmt.Printf("  %s\n", started.since(before, n, "service"))
	if got := countProcs(filepath.Join(dir, "svc-")); got != n {
		return fmt.Errorf("%d service processes run, want %d", got, n)
	}

	// Idle: nothing asks the control plane anything; the runner holds its
	// stream and the services' sessions.
	b.profile(true)
	idleStart := b.sampleCPU()
	prev := idleStart
	var peak float64
	for time.Since(idleStart.at) < cfg.idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		s := b.sampleCPU()
		_, r, _, _ := s.cores(prev)
		peak = max(peak, r)
		prev = s
	}
	_, runnerCores, _, _ := prev.cores(idleStart)
	b.profile(false)
	rcur, _, rthreads := rss(b.runner.cmd.Process.Pid)
	scur, _, _ := rss(b.srv.cmd.Process.Pid)
	fmt.Printf("runner CPU while %d services idle for %s: %.2f%% of a core (busiest second %.1f%%); %s\n",
		n, prev.at.Sub(idleStart.at).Round(time.Millisecond), runnerCores*100, peak*100, prev.since(idleStart, 0, ""))
	fmt.Printf("  runner: RSS %.1f MiB, %d threads (before the services: %.1f MiB, %d threads); control plane RSS %.1f MiB; service processes running: %d\n",
		rcur, rthreads, rss0, threads0, scur, countProcs(filepath.Join(dir, "svc-")))
	report.Emit(report.Figure{Bench: "automations", Name: fmt.Sprintf("%d x StartService -> all RUNNING", n), Value: msf(all), Unit: "ms",
		Count: float64(rthreads), CountUnit: "runner threads"}, nil)
	idle := report.AtMost(2)
	report.Emit(report.Figure{Bench: "automations", Name: fmt.Sprintf("runner CPU, %d services idle", n), Value: runnerCores * 100, Unit: "% of a core"}, &idle)
	return nil
}

// servicePoll is how often part 3 lists the services.
const servicePoll = 100 * time.Millisecond

// servicePhases counts the services of an environment by phase, paging
// through ListServices.
func (b *bench) servicePhases(ctx context.Context, envID string) (map[gitpodv1.ServicePhase]int, error) {
	counts := map[gitpodv1.ServicePhase]int{}
	token := ""
	for {
		res, err := b.api.autos.ListServices(ctx, req(&gitpodv1.ListServicesRequest{
			Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
			Filter:     &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{envID}},
		}))
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		for _, s := range res.Msg.GetServices() {
			counts[s.GetStatus().GetPhase()]++
		}
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return counts, nil
		}
	}
}

// countProcs counts the processes whose command line starts with prefix.
func countProcs(prefix string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), prefix) {
			n++
		}
	}
	return n
}

// parallel calls fn(0..n-1) from workers goroutines and returns the first
// error; the others stop taking work after it.
func parallel(ctx context.Context, n, workers int, fn func(int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err; failed.Store(true) })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
