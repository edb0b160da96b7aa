// Command runnermetrics measures what runner metrics cost. It builds
// runyard, starts a control plane (`runyard server`, its own process, on
// SQLite in a temporary directory) on loopback, and prints figures, each
// beside its baseline from the same run:
//
//  1. runner idle: RSS and CPU of one `runyard runner` process with no work
//     (baseline), with 100 services and 20 pods running (push off), and the
//     same with metrics pushed by remote write every --push-interval to a
//     loopback sink (push on).
//  2. control plane per runner: CPU of the control plane process while
//     --runners simulated runners renew (baseline: the same process with no
//     runner), and while they also report managed metrics
//     (ReportRunnerMetrics) every --push-interval.
//
// All traffic stays on 127.0.0.1; the run stops by itself.
//
//	go run ./bench/runnermetrics --window 20s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/runner/holder"
)

const adminToken = "ryd_bench_runnermetrics_admin_token_0123456789"

func main() {
	window := flag.Duration("window", 20*time.Second, "measured time per figure")
	services := flag.Int("services", 100, "services on the measured runner")
	podsN := flag.Int("pods", 20, "pods on the measured runner")
	runners := flag.Int("runners", 200, "simulated runners for the control plane figures")
	push := flag.Duration("push-interval", 10*time.Second, "metrics push interval (runner and simulated runners)")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		*window, *services, *podsN, *runners, *push = time.Second, 3, 1, 10, time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *window, *services, *podsN, *runners, *push); err != nil {
		fmt.Fprintln(os.Stderr, "runnermetrics:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, window time.Duration, nServices, nPods, nRunners int, push time.Duration) error {
	dir, err := os.MkdirTemp("", "runnermetrics-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := report.RunyardBinary(dir)
	if err != nil {
		return err
	}
	addr := freeAddr()
	base := "http://" + addr
	srv := exec.CommandContext(ctx, bin, "server", "--listen", addr, "--data-dir", filepath.Join(dir, "cp"))
	srv.Env = append(os.Environ(), "RUNYARD_BOOTSTRAP_TOKEN="+adminToken)
	srvLog, _ := os.Create(filepath.Join(dir, "server.log"))
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitOK(ctx, base+"/healthz"); err != nil {
		return err
	}
	fmt.Printf("machine: %d CPUs; window %s per figure; push interval %s\n", numCPU(), window, push)

	// Part 2 first: the control plane's baseline is with no runner at all.
	cpIdle := measure(srv.Process.Pid, window)
	fmt.Printf("control plane, 0 runners (baseline):                   CPU %6.2f ms/s  RSS %6d KiB\n", cpIdle.cpuMsPerSec, cpIdle.rssKiB)
	sims, err := simulate(ctx, base, nRunners, push)
	if err != nil {
		return err
	}
	sims.waitConnected(ctx, nRunners)
	renew := measure(srv.Process.Pid, window)
	fmt.Printf("control plane, %d runners renewing:                   CPU %6.2f ms/s  RSS %6d KiB  (%.3f ms/s per runner above baseline)\n",
		nRunners, renew.cpuMsPerSec, renew.rssKiB, (renew.cpuMsPerSec-cpIdle.cpuMsPerSec)/float64(nRunners))
	report.Emit(report.Figure{Bench: "runnermetrics", Name: fmt.Sprintf("control plane CPU, %d runners renewing", nRunners), Value: renew.cpuMsPerSec, Unit: "ms/s",
		Baseline: cpIdle.cpuMsPerSec, BaselineName: "no runner", Count: float64(renew.rssKiB), CountUnit: "KiB RSS"}, nil)
	sims.metrics.Store(true)
	time.Sleep(push) // every simulated runner reported once before measuring
	withMetrics := measure(srv.Process.Pid, window)
	fmt.Printf("control plane, %d runners renewing + managed metrics: CPU %6.2f ms/s  RSS %6d KiB  (%.3f ms/s per runner above baseline; %d reports, %d bytes each, %d errors)\n",
		nRunners, withMetrics.cpuMsPerSec, withMetrics.rssKiB, (withMetrics.cpuMsPerSec-cpIdle.cpuMsPerSec)/float64(nRunners),
		sims.reports.Load(), sims.reportSize, sims.errors.Load())
	report.Emit(report.Figure{Bench: "runnermetrics", Name: fmt.Sprintf("control plane CPU, %d runners + managed metrics", nRunners), Value: withMetrics.cpuMsPerSec, Unit: "ms/s",
		Baseline: renew.cpuMsPerSec, BaselineName: "renewing only", Count: float64(sims.reportSize), CountUnit: "B/report"}, nil)
	sims.stop()
	// The stopped simulated runners stay ACTIVE until their timeout: the
	// pods of part 1 could be placed on one and never reach the real
	// runner. They go.
	for _, id := range sims.ids {
		rpc(ctx, base, "RunnerService/DeleteRunner", `{"runnerId":"`+id+`","force":true}`)
	}

	// Part 1: one real runner daemon.
	res := rpc(ctx, base, "RunnerService/CreateRunner", `{"name":"bench-runner","provider":"RUNNER_PROVIDER_LINUX_HOST"}`)
	id := dig(res, "runner", "runnerId")
	health := freeAddr()
	rn := exec.CommandContext(ctx, bin, "runner", "--server", base, "--exchange-token", dig(res, "exchangeToken"),
		"--state-dir", filepath.Join(dir, "runner"), "--max-pods", strconv.Itoa(nPods), "--health-addr", health,
		"--metrics-interval", push.String(), "--stop-grace", "1s")
	rnLog, _ := os.Create(filepath.Join(dir, "runner.log"))
	rn.Stdout, rn.Stderr = rnLog, rnLog
	if err := rn.Start(); err != nil {
		return err
	}
	defer func() {
		rn.Process.Kill()
		rn.Wait()
		// Its services and pods outlive it under their holders, by
		// design: whoever removes the state directory ends them.
		holder.KillUnder(filepath.Join(dir, "runner"))
	}()
	if err := waitOK(ctx, "http://"+health+"/readyz"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	idle := measure(rn.Process.Pid, window)
	fmt.Printf("runner, no work (baseline):                        CPU %6.2f ms/s  RSS %6d KiB\n", idle.cpuMsPerSec, idle.rssKiB)

	classes := rpc(ctx, base, "EnvironmentService/ListEnvironmentClasses", `{"filter":{"runnerIds":["`+id+`"]}}`)
	class := classes["environmentClasses"].([]any)[0].(map[string]any)["id"].(string)
	env := dig(rpc(ctx, base, "EnvironmentService/CreateEnvironment", `{"spec":{"machine":{"class":"`+class+`"}}}`), "environment", "id")
	for i := range nServices {
		svc := rpc(ctx, base, "EnvironmentAutomationService/CreateService", fmt.Sprintf(
			`{"environmentId":%q,"metadata":{"reference":"svc%d","name":"svc%d"},"spec":{"commands":{"start":"exec sleep 3600"}}}`, env, i, i))
		rpc(ctx, base, "EnvironmentAutomationService/StartService", `{"id":"`+dig(svc, "service", "id")+`"}`)
	}
	call(ctx, http.MethodPost, base+"/api/v1/orgs/default/agents", `{"id":"sleep-agent","name":"Sleep","command":["sh","-c","exec sleep 3600"]}`)
	for range nPods {
		call(ctx, http.MethodPost, base+"/api/v1/orgs/default/pods", `{"agent_type_id":"sleep-agent","initial_prompt":"x"}`)
	}
	want := fmt.Sprintf("%d", nServices+nPods)
	deadline := time.Now().Add(3 * time.Minute)
	for scrape("http://"+health+"/metrics", "runyard_runner_work_holders") != want {
		if time.Now().After(deadline) {
			// What the control plane says of each, to tell a service that
			// did not start from a pod placed elsewhere.
			services := rpc(ctx, base, "EnvironmentAutomationService/ListServices", `{"filter":{"environmentIds":["`+env+`"]}}`)
			_, pods := call(ctx, http.MethodGet, base+"/api/v1/orgs/default/pods", "")
			return fmt.Errorf("the runner holds %s of %s services and pods after 3 minutes; services: %v; pods: %s",
				scrape("http://"+health+"/metrics", "runyard_runner_work_holders"), want, services["services"], pods)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	off := measure(rn.Process.Pid, window)
	fmt.Printf("runner, %d services + %d pods, push off:            CPU %6.2f ms/s  RSS %6d KiB\n", nServices, nPods, off.cpuMsPerSec, off.rssKiB)
	report.Emit(report.Figure{Bench: "runnermetrics", Name: fmt.Sprintf("runner RSS, %d services + %d pods", nServices, nPods), Value: float64(off.rssKiB) / 1024, Unit: "MiB",
		Baseline: float64(idle.rssKiB) / 1024, BaselineName: "no work"}, nil)

	var received, bodies atomic.Int64
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(1)
		bodies.Add(n)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go sink.Serve(ln)
	defer sink.Close()
	rpc(ctx, base, "RunnerService/UpdateRunner", `{"runnerId":"`+id+`","spec":{"configuration":{"metrics":{"enabled":true,"url":"http://`+ln.Addr().String()+`/api/v1/write","username":"bench","password":"bench-password"}}}}`)
	for received.Load() == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	on := measure(rn.Process.Pid, window)
	n := received.Load()
	fmt.Printf("runner, %d services + %d pods, push on:             CPU %6.2f ms/s  RSS %6d KiB  (%+.2f ms/s vs push off; %d pushes, %d bytes each)\n",
		nServices, nPods, on.cpuMsPerSec, on.rssKiB, on.cpuMsPerSec-off.cpuMsPerSec, n, bodies.Load()/max(n, 1))
	report.Emit(report.Figure{Bench: "runnermetrics", Name: fmt.Sprintf("runner CPU, %d services + %d pods, push on", nServices, nPods), Value: on.cpuMsPerSec, Unit: "ms/s",
		Baseline: off.cpuMsPerSec, BaselineName: "push off", Count: float64(bodies.Load() / max(n, 1)), CountUnit: "B/push"}, nil)
	return nil
}

type usage struct {
	cpuMsPerSec float64
	rssKiB      int64
}

// measure is the CPU a process used over window (ms per second) and its
// RSS at the end.
func measure(pid int, window time.Duration) usage {
	t0, start := cpuTicks(pid), time.Now()
	time.Sleep(window)
	t1, el := cpuTicks(pid), time.Since(start)
	return usage{cpuMsPerSec: float64(t1-t0) * 10 / el.Seconds(), rssKiB: rssKiB(pid)}
}

func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssKiB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// sims are simulated runners: one stream each, renewals at the interval
// the control plane gives, and, once metrics is set, a managed metrics
// report every push interval with a real runner-sized registry.
type sims struct {
	metrics         atomic.Bool
	connected       atomic.Int64
	reports, errors atomic.Int64
	reportSize      int
	cancel          context.CancelFunc
	wg              sync.WaitGroup
	ids             []string
}

func simulate(ctx context.Context, base string, n int, push time.Duration) (*sims, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &sims{cancel: cancel}
	payload, err := samplePayload()
	if err != nil {
		cancel()
		return nil, err
	}
	s.reportSize = len(payload)
	identity := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, base)
	for i := range n {
		res := rpc(ctx, base, "RunnerService/CreateRunner", fmt.Sprintf(`{"name":"sim-%d","provider":"RUNNER_PROVIDER_LINUX_HOST"}`, i))
		s.ids = append(s.ids, dig(res, "runner", "runnerId"))
		ex, err := identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: dig(res, "exchangeToken")}))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("exchange: %w", err)
		}
		token := ex.Msg.GetAccessToken()
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		client := runnerv1connect.NewRunnerControlServiceClient(&http.Client{Transport: &http.Transport{Protocols: p}}, base)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			stream := client.Connect(ctx)
			stream.RequestHeader().Set("Authorization", "Bearer "+token)
			if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{
				Version: "bench", Os: "linux", Arch: "amd64", Hostname: "sim", PublicKey: make([]byte, 32),
				Components: []*runnerv1.Component{{Name: "runner", Health: runnerv1.Health_HEALTH_HEALTHY}},
			}}}); err != nil {
				s.errors.Add(1)
				return
			}
			m, err := stream.Receive()
			if err != nil {
				s.errors.Add(1)
				return
			}
			interval := m.GetWelcome().GetRenewInterval().AsDuration()
			s.connected.Add(1)
			go func() {
				for {
					if _, err := stream.Receive(); err != nil {
						return
					}
				}
			}()
			renew := time.NewTicker(interval)
			report := time.NewTicker(push)
			defer renew.Stop()
			defer report.Stop()
			for {
				select {
				case <-ctx.Done():
					stream.CloseRequest()
					return
				case <-renew.C:
					if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Renewal{Renewal: &runnerv1.Renewal{SentAt: timestamppb.Now()}}}); err != nil {
						s.errors.Add(1)
						return
					}
				case <-report.C:
					if !s.metrics.Load() {
						continue
					}
					req := connect.NewRequest(&runnerv1.ReportRunnerMetricsRequest{MetricFamilies: payload})
					req.Header().Set("Authorization", "Bearer "+token)
					if _, err := client.ReportRunnerMetrics(ctx, req); err != nil {
						if ctx.Err() == nil {
							s.errors.Add(1)
						}
						continue
					}
					s.reports.Add(1)
				}
			}
		}()
	}
	return s, nil
}

func (s *sims) waitConnected(ctx context.Context, n int) {
	for s.connected.Load() < int64(n) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *sims) stop() { s.cancel(); s.wg.Wait() }

// samplePayload is a runner-sized report: the families a runner with a few
// services exposes (process collector and the runner's own gauges).
func samplePayload() ([]byte, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "runyard_runner"}))
	for _, name := range []string{"pods", "environments", "services", "executions"} {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runyard_runner_" + name, Help: name + " by phase"}, []string{"phase"})
		for _, p := range []string{"running", "stopped", "failed", "starting"} {
			g.WithLabelValues(p).Set(3)
		}
		reg.MustRegister(g)
	}
	for _, name := range []string{"work_processes", "work_holders", "work_cpu_seconds", "work_resident_memory_bytes", "stream_connected", "stream_latency_seconds"} {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runyard_runner_" + name, Help: name})
		g.Set(42)
		reg.MustRegister(g)
	}
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func call(ctx context.Context, method, u, body string) (int, []byte) {
	r, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+adminToken)
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		panic(fmt.Sprintf("%s %s: %v", method, u, err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		panic(fmt.Sprintf("%s %s: %d %s", method, u, res.StatusCode, b))
	}
	return res.StatusCode, b
}

func rpc(ctx context.Context, base, method, body string) map[string]any {
	_, b := call(ctx, http.MethodPost, base+"/gitpod.v1."+method, body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func dig(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	s, _ := v.(string)
	return s
}

func scrape(u, series string) string {
	res, err := http.Get(u)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			return rest
		}
	}
	return ""
}

func waitOK(ctx context.Context, u string) error {
	for ctx.Err() == nil {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200", u)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
