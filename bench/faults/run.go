package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
)

// errorsAs is errors.As, named apart so that the files read alike.
func errorsAs(err error, target any) bool { return errors.As(err, target) }

// result is what one database's run measured.
type result struct {
	acked                   *acked
	lost                    []string
	duplicates              []string
	restarts                []string
	neverRan                []string
	reconnect               []time.Duration
	runnerBack              []time.Duration
	partitionBack           time.Duration
	phaseInPartition        string
	baseline                []time.Duration
	executionPhases         map[string]int
	podStatuses             map[string]int
	failures                []string
	serviceIDs, executionsN int
}

// missed lists the targets this run missed, named with db.
func (r *result) missed(db string) []string {
	var out []string
	if len(r.lost) > 0 {
		out = append(out, fmt.Sprintf("%s: %d lost writes", db, len(r.lost)))
	}
	if len(r.duplicates) > 0 {
		out = append(out, fmt.Sprintf("%s: %d duplicate starts", db, len(r.duplicates)))
	}
	if len(r.restarts) > 0 {
		out = append(out, fmt.Sprintf("%s: %d needless service restarts", db, len(r.restarts)))
	}
	if len(r.neverRan) > 0 {
		out = append(out, fmt.Sprintf("%s: %d acknowledged starts never ran", db, len(r.neverRan)))
	}
	return out
}

// slow lists the time targets this run missed.
func (r *result) slow(db string) []string {
	if len(r.reconnect) > 0 && slices.Max(r.reconnect) >= time.Second {
		return []string{fmt.Sprintf("%s: reconnect max %v", db, slices.Max(r.reconnect).Round(time.Millisecond))}
	}
	return nil
}

// emit reports the run's counts (each targeted at zero) and its reconnect
// time beside a bare TCP connect.
func (r *result) emit(db string) {
	zero := report.AtMost(0)
	for _, c := range []struct {
		name  string
		items []string
	}{{"lost writes", r.lost}, {"duplicate starts", r.duplicates}, {"needless service restarts", r.restarts}, {"acknowledged starts that never ran", r.neverRan}} {
		report.Emit(report.Figure{Bench: "faults", Name: db + " " + c.name, Value: float64(len(c.items)),
			Count: float64(r.acked.writes), CountUnit: "writes acknowledged"}, &zero)
	}
	if len(r.reconnect) > 0 {
		second := report.AtMost(1000)
		report.Emit(report.Figure{Bench: "faults", Name: db + " reconnect after a control-plane SIGKILL, max", Value: float64(slices.Max(r.reconnect)) / float64(time.Millisecond), Unit: "ms",
			Baseline: float64(pct(r.baseline, 50)) / float64(time.Millisecond), BaselineName: "TCP connect p50"}, &second)
	}
}

func runOne(ctx context.Context, cfg config, dir, database string, linkN int) (*result, error) {
	db := "sqlite"
	if database != "" {
		db = "postgres"
	}
	fmt.Printf("== %s ==\n", db)
	c, err := newCluster(ctx, cfg, dir, database, linkN)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if _, err := c.addRunner(ctx, "faults-host", false); err != nil {
		return nil, err
	}
	if _, err := c.addRunner(ctx, "faults-netns", cfg.partition > 0); err != nil {
		return nil, err
	}
	if err := c.setupLoad(); err != nil {
		return nil, fmt.Errorf("create the agent type: %w", err)
	}
	for _, r := range c.runners {
		if err := c.createEnv(ctx, r); err != nil {
			return nil, err
		}
	}

	res := &result{acked: &acked{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); c.load(loadCtx, res.acked) }()
	defer func() { stopLoad(); <-loadDone }()
	pause := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.between):
			return nil
		}
	}

	// Control-plane SIGKILLs.
	for i := range cfg.cpKills {
		if err := pause(); err != nil {
			return nil, err
		}
		c.killServer()
		if _, err := waitAll(c.runners, func(r *runner) (struct{}, error) {
			return struct{}{}, waitNotReady(ctx, "http://"+r.healthAddr+"/readyz", 30*time.Second)
		}); err != nil {
			return nil, fmt.Errorf("control-plane kill %d: a runner did not notice: %w", i+1, err)
		}
		healthy, err := c.startServer(ctx)
		if err != nil {
			return nil, fmt.Errorf("control-plane kill %d: %w", i+1, err)
		}
		back, err := waitAll(c.runners, func(r *runner) (time.Duration, error) {
			t, err := waitOK(ctx, "http://"+r.healthAddr+"/readyz", 60*time.Second)
			if err != nil {
				return 0, fmt.Errorf("runner %s: %w\n%s", r.name, err, tail(r.log, 2000))
			}
			return max(t.Sub(healthy), 0), nil
		})
		if err != nil {
			return nil, fmt.Errorf("control-plane kill %d: %w", i+1, err)
		}
		res.reconnect = append(res.reconnect, back...)
		fmt.Printf("control-plane SIGKILL %2d: runners back %v after it was healthy\n", i+1, roundAll(back))
	}

	// Runner SIGKILLs, the two in turn.
	for i := range cfg.runnerKills {
		if err := pause(); err != nil {
			return nil, err
		}
		r := c.runners[i%len(c.runners)]
		c.killRunner(r)
		started := time.Now()
		if err := c.startRunner(r); err != nil {
			return nil, err
		}
		t, err := waitOK(ctx, "http://"+r.healthAddr+"/readyz", 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("runner kill %d: %s: %w\n%s", i+1, r.name, err, tail(r.log, 2000))
		}
		res.runnerBack = append(res.runnerBack, t.Sub(started))
		fmt.Printf("runner SIGKILL %d (%s): the new runner process connected %v after it started\n", i+1, r.name, t.Sub(started).Round(time.Millisecond))
	}

	// One partition of the namespaced runner.
	if cfg.partition > 0 {
		if err := pause(); err != nil {
			return nil, err
		}
		r := c.runners[1]
		if err := c.link.Cut(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cfg.partition):
		}
		res.phaseInPartition = c.runnerPhase(r)
		took, err := c.link.Heal()
		if err != nil {
			return nil, err
		}
		healed := time.Now()
		t, err := waitOK(ctx, "http://"+r.healthAddr+"/readyz", 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("after the partition: %s: %w\n%s", r.name, err, tail(r.log, 2000))
		}
		res.partitionBack = t.Sub(healed)
		fmt.Printf("partition of %s: %v (it read %s at the end), runner back %v after the link came back\n",
			r.name, took.Round(time.Millisecond), res.phaseInPartition, res.partitionBack.Round(time.Millisecond))
	}
	if err := pause(); err != nil {
		return nil, err
	}
	stopLoad()
	<-loadDone

	if err := c.verify(ctx, res); err != nil {
		return nil, err
	}
	if res.baseline, err = tcpBaseline(c.url, 200); err != nil {
		return nil, err
	}
	res.print()
	res.emit(db)
	return res, nil
}

// runnerPhase is r's phase as the control plane reads it.
func (c *cluster) runnerPhase(r *runner) string {
	var out struct {
		Runner struct {
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"runner"`
	}
	if err := c.connect("RunnerService/GetRunner", map[string]string{"runnerId": r.id}, &out); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return out.Runner.Status.Phase
}

// verify waits until the acknowledged work settled, then counts what was
// lost, started twice or restarted.
func (c *cluster) verify(ctx context.Context, res *result) error {
	a := res.acked
	type svcJSON struct {
		Service struct {
			Spec struct {
				DesiredPhase string `json:"desiredPhase"`
			} `json:"spec"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"service"`
	}
	type execJSON struct {
		TaskExecution struct {
			Status struct {
				Phase          string `json:"phase"`
				FailureMessage string `json:"failureMessage"`
			} `json:"status"`
		} `json:"taskExecution"`
	}
	type podJSON struct {
		Pod struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"pod"`
	}
	// Settle: every execution ends and every pod ends (their commands
	// last seconds), bounded.
	deadline := time.Now().Add(120 * time.Second)
	for {
		pending := 0
		res.executionPhases, res.podStatuses, res.failures = map[string]int{}, map[string]int{}, nil
		for _, id := range a.executions {
			var x execJSON
			err := c.connect("EnvironmentAutomationService/GetTaskExecution", map[string]string{"id": id}, &x)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return fmt.Errorf("read execution %s: %w", id, err)
			}
			p := strings.TrimPrefix(x.TaskExecution.Status.Phase, "TASK_EXECUTION_PHASE_")
			res.executionPhases[p]++
			if p == "FAILED" || p == "STOPPED" {
				res.failures = append(res.failures, fmt.Sprintf("execution %s %s: %s", id, p, x.TaskExecution.Status.FailureMessage))
			}
			if p != "SUCCEEDED" && p != "FAILED" && p != "STOPPED" {
				pending++
			}
		}
		for _, key := range a.pods {
			var p podJSON
			err := c.rest(http.MethodGet, "/pods/"+key, nil, &p)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return fmt.Errorf("read pod %s: %w", key, err)
			}
			res.podStatuses[p.Pod.Status]++
			if p.Pod.Status == "failed" {
				res.failures = append(res.failures, fmt.Sprintf("pod %s failed: %s", key, p.Pod.Reason))
			}
			if p.Pod.Status == "running" || p.Pod.Status == "pending" {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Lost: acknowledged, and absent or undone now.
	for _, id := range a.services {
		var s svcJSON
		if err := c.connect("EnvironmentAutomationService/GetService", map[string]string{"id": id}, &s); err != nil {
			if !isNotFound(err) {
				return err
			}
			res.lost = append(res.lost, "service "+id+" (created)")
		}
	}
	phases := map[string]string{}
	for _, id := range a.startedSvcs {
		var s svcJSON
		if err := c.connect("EnvironmentAutomationService/GetService", map[string]string{"id": id}, &s); err != nil {
			if !isNotFound(err) {
				return err
			}
			continue // counted above
		}
		phases[id] = s.Service.Status.Phase
		if s.Service.Spec.DesiredPhase != "SERVICE_PHASE_RUNNING" {
			res.lost = append(res.lost, "service "+id+" (started, now desired "+s.Service.Spec.DesiredPhase+")")
		}
	}
	for _, id := range a.tasks {
		if err := c.connect("EnvironmentAutomationService/GetTask", map[string]string{"id": id}, nil); err != nil {
			if !isNotFound(err) {
				return err
			}
			res.lost = append(res.lost, "task "+id)
		}
	}
	for _, id := range a.executions {
		if err := c.connect("EnvironmentAutomationService/GetTaskExecution", map[string]string{"id": id}, nil); err != nil {
			if !isNotFound(err) {
				return err
			}
			res.lost = append(res.lost, "execution "+id)
		}
	}
	for _, key := range a.pods {
		if err := c.rest(http.MethodGet, "/pods/"+key, nil, nil); err != nil {
			if !isNotFound(err) {
				return err
			}
			res.lost = append(res.lost, "pod "+key)
		}
	}

	// Starts: the file has one line per start.
	b, err := os.ReadFile(c.starts)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = append(lines[f[0]], l)
		}
	}
	for _, id := range append(slices.Clone(a.executions), a.pods...) {
		switch n := len(lines[id]); {
		case n > 1:
			res.duplicates = append(res.duplicates, fmt.Sprintf("%s started %d times", id, n))
		case n == 0:
			res.neverRan = append(res.neverRan, id)
		}
	}
	for _, id := range a.startedSvcs {
		ls := lines[id]
		switch {
		case len(ls) > 1:
			res.restarts = append(res.restarts, fmt.Sprintf("service %s started %d times: %q", id, len(ls), ls))
		case len(ls) == 0:
			res.neverRan = append(res.neverRan, "service "+id)
		default:
			f := strings.Fields(ls[0])
			pid, _ := strconv.Atoi(f[len(f)-1])
			if !sleeping(pid) {
				res.restarts = append(res.restarts, fmt.Sprintf("service %s: its process %d is gone (phase %s)", id, pid, phases[id]))
			} else if phases[id] != "SERVICE_PHASE_RUNNING" {
				res.restarts = append(res.restarts, fmt.Sprintf("service %s: its process %d runs, but it reads %s", id, pid, phases[id]))
			}
		}
	}
	return nil
}

// sleeping reports whether pid is a live `sleep` process: a service's.
func sleeping(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.HasPrefix(string(b), "sleep\x00")
}

func (r *result) print() {
	a := r.acked
	fmt.Printf("writes acknowledged: %d (services created %d, started %d; tasks created %d, started %d; pods %d); not acknowledged: %d\n",
		a.writes, len(a.services), len(a.startedSvcs), len(a.tasks), len(a.executions), len(a.pods), a.failed)
	for _, e := range a.firstErrs {
		fmt.Printf("  e.g. %s\n", e)
	}
	fmt.Printf("executions at the end: %v; pods at the end: %v\n", r.executionPhases, r.podStatuses)
	report := func(name string, items []string) {
		fmt.Printf("%s: %d\n", name, len(items))
		for i, it := range items {
			if i == 10 {
				fmt.Printf("  ... %d more\n", len(items)-i)
				break
			}
			fmt.Printf("  %s\n", it)
		}
	}
	report("executions and pods that failed", r.failures)
	report("lost writes", r.lost)
	report("duplicate starts", r.duplicates)
	report("needless service restarts", r.restarts)
	report("acknowledged starts that never ran", r.neverRan)
	if len(r.reconnect) > 0 {
		fmt.Printf("reconnect after a control-plane SIGKILL (from healthy to runner ready): p50 %v max %v (n=%d, polled every 2ms)\n",
			pct(r.reconnect, 50).Round(time.Millisecond), slices.Max(r.reconnect).Round(time.Millisecond), len(r.reconnect))
	}
	if len(r.runnerBack) > 0 {
		fmt.Printf("runner process restarted after SIGKILL, start to ready: p50 %v max %v (n=%d)\n",
			pct(r.runnerBack, 50).Round(time.Millisecond), slices.Max(r.runnerBack).Round(time.Millisecond), len(r.runnerBack))
	}
	fmt.Printf("baseline TCP connect to the control plane: p50 %v max %v (n=%d)\n",
		pct(r.baseline, 50), slices.Max(r.baseline), len(r.baseline))
}

// tcpBaseline times n bare TCP connects to the control plane at u.
func tcpBaseline(u string, n int) ([]time.Duration, error) {
	addr := strings.TrimPrefix(u, "http://")
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		c.Close()
	}
	return out, nil
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
