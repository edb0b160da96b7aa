// Command fleet measures the control plane under many connected runners. It
// starts a control plane in a child process (so its RSS is its own), creates
// N runners through the API, and starts several simulator processes, each
// holding its share of the runners: one TCP connection and one stream per
// runner, a status snapshot on connect, renewals at the interval the control
// plane gives. While they renew, it measures GetRunner and ListRunners from a
// separate client, and prints a bare loopback HTTP round trip from the same
// run as the baseline. All traffic stays on 127.0.0.0/8; the run stops by
// itself.
//
//	go run ./bench/fleet --runners 19000 --sims 4 --duration 30s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/runyard/runyard/bench/internal/report"
	"github.com/runyard/runyard/bench/internal/simstream"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/server"
)

const adminToken = "ryd_bench_fleet_admin_token_0123456789"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			must(serve(os.Args[2:]))
			return
		case "simulate":
			must(simulate(os.Args[2:]))
			return
		}
	}
	must(run(os.Args[1:]))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// serve runs the control plane until SIGTERM and prints its URL first.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("data-dir", "", "data dir")
	timeout := fs.Duration("runner-timeout", 30*time.Second, "runner timeout")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address")
	fs.Parse(args)
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil) // DefaultServeMux has pprof's handlers
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: *dir, BootstrapToken: adminToken, RunnerTimeout: *timeout,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	fmt.Println(s.URL())
	return s.Serve(ctx)
}

// simReport is what a simulator prints, one JSON line per second.
type simReport struct {
	Connected int64  `json:"connected"`
	Renewals  int64  `json:"renewals"`
	Acks      int64  `json:"acks"`
	Errors    int64  `json:"errors"`
	LastError string `json:"lastError,omitempty"`
	// AckLatency counts acks by the time from the renewal's sending to its
	// ack (ackBucket), since the start: reports subtract.
	AckLatency [ackBuckets]int64 `json:"ackLatency"`
}

// ackBuckets are the latency buckets of renewal acks: bucket i holds
// latencies up to ackBound(i), four buckets per doubling from 16 µs (a
// quantile is read to within 19 %).
const ackBuckets = 80

func ackBound(i int) time.Duration {
	return time.Duration(16e3 * math.Pow(2, float64(i+1)/4))
}

// ackBucket is computed, not searched: the simulators call it for every
// ack, on the cores the control plane is measured on.
func ackBucket(d time.Duration) int {
	if d <= ackBound(0) {
		return 0
	}
	i := min(int(math.Ceil(4*math.Log2(float64(d)/16e3)))-1, ackBuckets-1)
	// Rounding at a bound: the first bucket whose bound holds d.
	for i < ackBuckets-1 && d > ackBound(i) {
		i++
	}
	for i > 0 && d <= ackBound(i-1) {
		i--
	}
	return i
}

// ackQuantile is the upper bound of the bucket that holds quantile q of h.
func ackQuantile(h [ackBuckets]int64, q float64) time.Duration {
	var n int64
	for _, c := range h {
		n += c
	}
	want := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i, c := range h {
		if seen += c; seen >= want && n > 0 {
			return ackBound(i)
		}
	}
	return 0
}

// simulate holds one stream per exchange token read from a file until stdin
// closes.
func simulate(args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ExitOnError)
	url := fs.String("server", "", "control plane URL")
	tokens := fs.String("tokens", "", "file with one exchange token per line")
	srcIP := fs.String("src", "127.0.0.1", "source address, so that many runners do not run out of ports")
	onConnect := fs.Bool("connect-streams", false, "hold each stream on the Connect procedure (HTTP/2), not on a connection of its own")
	fs.Parse(args)
	b, err := os.ReadFile(*tokens)
	if err != nil {
		return err
	}
	list := strings.Fields(string(b))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()

	var rep struct {
		connected, renewals, acks, errors atomic.Int64
		ackLatency                        [ackBuckets]atomic.Int64
		mu                                sync.Mutex
		last                              string
	}
	fail := func(err error) {
		rep.errors.Add(1)
		rep.mu.Lock()
		rep.last = err.Error()
		rep.mu.Unlock()
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*srcIP)}, Timeout: 30 * time.Second}
	identity := gitpodv1connect.NewIdentityServiceClient(&http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 16}}, *url)
	sem := make(chan struct{}, 32) // bounds the connect storm at start
	var wg sync.WaitGroup
	for _, x := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			res, err := identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: x}))
			if err != nil {
				<-sem
				fail(fmt.Errorf("exchange: %w", err))
				return
			}
			stream, err := simstream.Open(ctx, dialer, *url, res.Msg.GetAccessToken(), *onConnect)
			if err != nil {
				<-sem
				fail(fmt.Errorf("connect: %w", err))
				return
			}
			err = stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{
				Version: "bench", Os: "linux", Arch: "amd64", Hostname: "sim", MaxPods: 4,
				Components: []*runnerv1.Component{{Name: "runner", Health: runnerv1.Health_HEALTH_HEALTHY}},
			}}})
			var interval time.Duration
			if err == nil {
				var m *runnerv1.ConnectResponse
				if m, err = stream.Receive(); err == nil {
					interval = m.GetWelcome().GetRenewInterval().AsDuration()
				}
			}
			<-sem
			if err != nil || interval <= 0 {
				fail(fmt.Errorf("connect: %v", err))
				return
			}
			rep.connected.Add(1)
			defer rep.connected.Add(-1)
			go func() {
				for {
					m, err := stream.Receive()
					if err != nil {
						if ctx.Err() == nil {
							fail(fmt.Errorf("receive: %w", err))
						}
						return
					}
					if a := m.GetRenewalAck(); a != nil {
						rep.acks.Add(1)
						rep.ackLatency[ackBucket(time.Since(a.GetSentAt().AsTime()))].Add(1)
					}
				}
			}()
			// Spread renewals over the interval, as real runners started at
			// different times do.
			select {
			case <-time.After(rand.N(interval)):
			case <-ctx.Done():
				return
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Renewal{
					Renewal: &runnerv1.Renewal{SentAt: timestamppb.Now()}}}); err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("renew: %w", err))
					}
					return
				}
				rep.renewals.Add(1)
				select {
				case <-t.C:
				case <-ctx.Done():
					stream.CloseRequest()
					return
				}
			}
		}()
	}
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rep.mu.Lock()
		var h [ackBuckets]int64
		for i := range h {
			h[i] = rep.ackLatency[i].Load()
		}
		r := simReport{Connected: rep.connected.Load(), Renewals: rep.renewals.Load(), Acks: rep.acks.Load(), AckLatency: h,
			Errors: rep.errors.Load(), LastError: rep.last}
		rep.mu.Unlock()
		enc.Encode(r)
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
	}
}

type sim struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	last  simReport
}

func run(args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ExitOnError)
	n := fs.Int("runners", 19000, "simulated runners (this sandbox allows 20,000 open files per process, server included)")
	sims := fs.Int("sims", 4, "simulator processes")
	duration := fs.Duration("duration", 30*time.Second, "measured time with all runners connected")
	timeout := fs.Duration("runner-timeout", 30*time.Second, "the control plane's --runner-timeout (runners renew every third)")
	clients := fs.Int("clients", 4, "concurrent API clients during the load")
	pprofAddr := fs.String("pprof", "", "serve the control plane's net/http/pprof on this loopback address, e.g. 127.0.0.1:6060")
	hold := fs.Duration("hold", 0, "keep the runners connected this long after the figures, e.g. to take profiles")
	connectStreams := fs.Bool("connect-streams", false, "runners hold their streams on the Connect procedure (HTTP/2, what a runner behind a proxy does), not on connections of their own")
	deadline := fs.Duration("max-time", 15*time.Minute, "the whole run stops after this")
	short := report.ShortSet(fs)
	fs.Parse(args)
	if *short {
		*n, *sims, *duration, *clients = 50, 1, time.Second, 2
	}
	if *pprofAddr == "" {
		// The goroutine count per runner comes from the control plane's pprof.
		*pprofAddr = freeAddr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm" // the setup writes 2N transactions; keep them off the disk
	}
	dir, err := os.MkdirTemp(base, "runyard-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The control plane.
	srv := exec.CommandContext(ctx, self, "serve", "--data-dir", filepath.Join(dir, "data"), "--runner-timeout", timeout.String(), "--pprof", *pprofAddr)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("control plane did not start: %w", err)
	}
	url := strings.TrimSpace(line)
	fmt.Printf("control plane %s (pid %d), %d runners in %d simulators, runner timeout %s\n", url, srv.Process.Pid, *n, *sims, *timeout)
	rssIdle := rssKiB(srv.Process.Pid)
	idleLive, idleStacks, _ := memAfterGC("http://" + *pprofAddr)

	// Runners, through the API.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	auth := connect.WithInterceptors(bearer(adminToken))
	runnersAPI := gitpodv1connect.NewRunnerServiceClient(hc, url, auth)
	start := time.Now()
	tokens := make([]string, *n)
	ids := make([]string, *n)
	var next atomic.Int64
	var setupErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || ctx.Err() != nil {
					return
				}
				res, err := runnersAPI.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{
					Name: fmt.Sprintf("sim-%06d", i), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
				if err != nil {
					setupErr.Store(err)
					return
				}
				tokens[i], ids[i] = res.Msg.GetExchangeToken(), res.Msg.GetRunner().GetRunnerId()
			}
		}()
	}
	wg.Wait()
	if err, _ := setupErr.Load().(error); err != nil {
		return fmt.Errorf("create runners: %w", err)
	}
	fmt.Printf("setup: created %d runners in %s\n", *n, time.Since(start).Round(time.Millisecond))

	// Simulators, each with its own source address.
	start = time.Now()
	var simList []*sim
	per := (*n + *sims - 1) / *sims
	for k := 0; k < *sims; k++ {
		lo, hi := k*per, min((k+1)*per, *n)
		if lo >= hi {
			break
		}
		file := filepath.Join(dir, fmt.Sprintf("tokens-%d", k))
		if err := os.WriteFile(file, []byte(strings.Join(tokens[lo:hi], "\n")), 0o600); err != nil {
			return err
		}
		s := &sim{cmd: exec.CommandContext(ctx, self, "simulate", "--server", url, "--tokens", file, "--src", fmt.Sprintf("127.0.%d.%d", 1+k/250, 2+k%250),
			"--connect-streams="+strconv.FormatBool(*connectStreams))}
		s.cmd.Stderr = os.Stderr
		if s.stdin, err = s.cmd.StdinPipe(); err != nil {
			return err
		}
		so, err := s.cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := s.cmd.Start(); err != nil {
			return err
		}
		go func() {
			dec := json.NewDecoder(so)
			for {
				var r simReport
				if dec.Decode(&r) != nil {
					return
				}
				s.mu.Lock()
				s.last = r
				s.mu.Unlock()
			}
		}()
		simList = append(simList, s)
	}
	defer func() {
		for _, s := range simList {
			s.stdin.Close()
		}
		for _, s := range simList {
			s.cmd.Wait()
		}
	}()
	total := func() simReport {
		var t simReport
		for _, s := range simList {
			s.mu.Lock()
			t.Connected += s.last.Connected
			t.Renewals += s.last.Renewals
			t.Acks += s.last.Acks
			for i, c := range s.last.AckLatency {
				t.AckLatency[i] += c
			}
			t.Errors += s.last.Errors
			if s.last.LastError != "" {
				t.LastError = s.last.LastError
			}
			s.mu.Unlock()
		}
		return t
	}
	for {
		t := total()
		if t.Connected+t.Errors >= int64(*n) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d runners connected (%d errors, last: %s)", t.Connected, *n, t.Errors, t.LastError)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t0 := total()
	fmt.Printf("connect: %d runners connected in %s (%d failed%s)\n", t0.Connected, time.Since(start).Round(time.Millisecond),
		t0.Errors, suffix(t0.LastError))

	// The load: renewals flow while API clients measure.
	baseline := measureBaseline(*clients, min(5*time.Second, *duration))
	lat := map[string]*[]time.Duration{"GetRunner": new([]time.Duration), "ListRunners": new([]time.Duration)}
	var apiErrors atomic.Int64
	lctx, lcancel := context.WithTimeout(ctx, *duration)
	l0 := total()
	r0, w0 := l0.Renewals, time.Now()
	var mu sync.Mutex
	for c := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local = map[string][]time.Duration{}
			for i := 0; lctx.Err() == nil; i++ {
				name := "GetRunner"
				t := time.Now()
				var err error
				if (i+c)%5 == 4 {
					name = "ListRunners"
					_, err = runnersAPI.ListRunners(lctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{
						Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
				} else {
					_, err = runnersAPI.GetRunner(lctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: ids[rand.N(len(ids))]}))
				}
				if err != nil {
					if lctx.Err() == nil {
						apiErrors.Add(1)
					}
					continue
				}
				local[name] = append(local[name], time.Since(t))
			}
			mu.Lock()
			for k, v := range local {
				*lat[k] = append(*lat[k], v...)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	lcancel()
	elapsed := time.Since(w0)
	t1 := total()
	rss := rssKiB(srv.Process.Pid)
	goroutines := goroutineCount("http://" + *pprofAddr)
	fmt.Printf("runners connected=%d (failed %d) renewals/s=%.0f acks=%d\n", t1.Connected, t1.Errors, float64(t1.Renewals-r0)/elapsed.Seconds(), t1.Acks)
	// The acks of the renewals sent while the API was measured.
	var acked [ackBuckets]int64
	for i := range acked {
		acked[i] = t1.AckLatency[i] - l0.AckLatency[i]
	}
	ackP50, ackP99 := ackQuantile(acked, 0.50), ackQuantile(acked, 0.99)
	fmt.Printf("renewal to its ack (within 19%%): p50=%s p99=%s\n", ackP50, ackP99)
	fmt.Printf("control plane RSS idle=%.1fMiB loaded=%.1fMiB per-runner=%.1fKiB\n", float64(rssIdle)/1024, float64(rss)/1024,
		float64(rss-rssIdle)/float64(max(t1.Connected, 1)))
	for _, name := range []string{"GetRunner", "ListRunners"} {
		d := *lat[name]
		fmt.Printf("during load %s clients=%d n=%d p50=%s p99=%s\n", name, *clients, len(d), pct(d, 50), pct(d, 99))
	}
	fmt.Printf("baseline http clients=%d n=%d p50=%s p99=%s\n", *clients, len(baseline), pct(baseline, 50), pct(baseline, 99))
	perRunner := float64(rss-rssIdle) / float64(max(t1.Connected, 1))
	// The target is set at 20,000 runners; below a thousand the RSS of the
	// process's own churn outweighs the runners'.
	var memTarget *report.Target
	if t1.Connected >= 1000 {
		t := report.AtMost(50)
		memTarget = &t
	}
	report.Emit(report.Figure{Bench: "fleet", Name: fmt.Sprintf("control-plane memory per connected runner (%d runners)", t1.Connected),
		Value: perRunner, Unit: "KiB", Count: float64(goroutines) / float64(max(t1.Connected, 1)), CountUnit: "goroutines/runner"}, memTarget)
	// After forced collections the heap and stacks move little with the
	// machine's load or the moment of the reading, unlike RSS.
	if live, stacks, ok := memAfterGC("http://" + *pprofAddr); ok {
		n := float64(max(t1.Connected, 1))
		report.Emit(report.Figure{Bench: "fleet", Name: "live heap + goroutine stacks per connected runner, after GC", Value: float64(live+stacks-idleLive-idleStacks) / 1024 / n, Unit: "KiB",
			Count: float64(stacks-idleStacks) / 1024 / n, CountUnit: "KiB of stacks/runner"}, nil)
	}
	report.Emit(report.Figure{Bench: "fleet", Name: "renewal to its ack, p99 (within 19 %)", Value: float64(ackP99.Microseconds()) / 1000, Unit: "ms",
		Count: float64(ackP50.Microseconds()) / 1000, CountUnit: "ms p50"}, nil)
	report.Emit(report.Figure{Bench: "fleet", Name: "renewals per second", Value: float64(t1.Renewals-r0) / elapsed.Seconds(), Unit: "/s",
		Count: float64(t1.Acks), CountUnit: "acks"}, nil)
	p99Target := report.AtMost(50)
	for _, name := range []string{"GetRunner", "ListRunners"} {
		if len(*lat[name]) == 0 {
			report.Skip("fleet", name+" p99 during the renewals", "no call completed within --duration")
			continue
		}
		report.Emit(report.Figure{Bench: "fleet", Name: name + " p99 during the renewals", Value: ms(pct(*lat[name], 99)), Unit: "ms",
			Baseline: ms(pct(baseline, 99)), BaselineName: "bare HTTP"}, &p99Target)
	}
	if n := apiErrors.Load(); n > 0 {
		return fmt.Errorf("%d API requests failed during the load", n)
	}
	if *hold > 0 {
		fmt.Printf("holding the runners for %s\n", *hold)
		select {
		case <-time.After(*hold):
		case <-ctx.Done():
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// memAfterGC forces a collection in the control plane (through its pprof)
// and returns its live heap and goroutine stacks in bytes.
func memAfterGC(base string) (live, stacks int64, ok bool) {
	for range 3 { // a stack shrinks by half at each collection at most
		res, err := http.Get(base + "/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			return 0, 0, false
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if v, found := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); found {
				live, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, found := strings.CutPrefix(sc.Text(), "# Stack = "); found {
				v, _, _ = strings.Cut(v, " ")
				stacks, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		res.Body.Close()
	}
	return live, stacks, live > 0
}

// goroutineCount reads the total of the goroutine profile at base's pprof.
func goroutineCount(base string) int {
	res, err := http.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	_, total, _ := strings.Cut(strings.TrimSpace(line), "total ")
	n, _ := strconv.Atoi(total)
	return n
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return "; last error: " + s
}

func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// measureBaseline times bare loopback HTTP round trips to a trivial handler.
func measureBaseline(clients int, d time.Duration) []time.Duration {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ts.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for ctx.Err() == nil {
				t := time.Now()
				res, err := hc.Get(ts.URL)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				local = append(local, time.Since(t))
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}
