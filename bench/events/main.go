// Command events measures the change feed: N concurrent WatchEvents streams
// on loopback while changes are made one per millisecond through the API
// (UpdateRunner, each renaming one of a set of runners). It prints the
// delivery latency (change request sent -> event received by a watcher,
// over every watcher and event) and the control plane's CPU per event.
//
// The control plane runs in a child process, so that its CPU time is its
// own. CPU per event is the CPU of a phase with the watchers minus that of
// the same changes without watchers, over the events made: what the feed
// costs, not what the changes cost.
//
// The baseline, from the same run and the same child: the same fan-out over
// bare HTTP chunked streams fed by an in-process channel per watcher (a
// change is one POST that the child hands to every stream; no database, no
// Connect), measured the same way.
//
//	go run ./bench/events                       # SQLite, 1000 watchers, 5 s per phase
//	go run ./bench/events --database-url postgres://...
//	go run ./bench/events --h2c                 # streams share HTTP/2 connections
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/server"
)

const adminToken = "ryd_bench_events_admin_token_0123456789"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		must(serve(os.Args[2:]))
		return
	}
	must(run())
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/events:", err)
		os.Exit(1)
	}
}

// child is what the child prints once it listens.
type child struct {
	URL  string `json:"url"`
	Bare string `json:"bare"`
}

// serve runs the control plane and the baseline's bare fan-out.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("data-dir", "", "data dir")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (empty: SQLite)")
	profile := fs.String("cpuprofile", "", "write the control plane's CPU profile here")
	fs.Parse(args)
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: *dir, BootstrapToken: adminToken, DatabaseURL: *dbURL,
		// A thousand streams open at once from one address; on a loaded
		// machine some send their request after the guard's grace.
		MaxUnauthenticatedPerIP: 1 << 20,
		Logger:                  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b := &bare{subs: map[chan []byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /watch", b.watch)
	mux.HandleFunc("POST /change", b.change)
	bareSrv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
	bareSrv.Protocols.SetHTTP1(true)
	bareSrv.Protocols.SetUnencryptedHTTP2(true)
	go bareSrv.Serve(ln)
	out, _ := json.Marshal(child{URL: s.URL(), Bare: "http://" + ln.Addr().String()})
	fmt.Println(string(out))
	return s.Serve(ctx)
}

// bare is the baseline: a channel per watcher, a chunked HTTP stream each.
type bare struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func (b *bare) watch(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 1024)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case line := <-ch:
			if _, err := w.Write(line); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

func (b *bare) change(w http.ResponseWriter, r *http.Request) {
	line, _ := io.ReadAll(r.Body)
	line = append(line, '\n')
	b.mu.Lock()
	for ch := range b.subs {
		select {
		case ch <- line:
		default:
		}
	}
	b.mu.Unlock()
}

func run() error {
	watchers := flag.Int("watchers", 1000, "concurrent WatchEvents streams")
	every := flag.Duration("every", time.Millisecond, "one change per this interval")
	duration := flag.Duration("duration", 5*time.Second, "length of each phase")
	runnersN := flag.Int("runners", 64, "runners the changes rename in turn (each one's changes in order)")
	dbURL := flag.String("database-url", "", "PostgreSQL URL (empty: SQLite)")
	profile := flag.String("cpuprofile", "", "write the control plane's CPU profile (all phases) here")
	h2c := flag.Bool("h2c", false, "HTTP/2 without TLS (streams share connections) instead of HTTP/1.1 (a connection per stream)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "bench-events-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0], "serve", "--data-dir", dir, "--database-url", *dbURL, "--cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	// The control plane ends with this process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the control plane did not start: %w", err)
	}
	var c child
	if err := json.Unmarshal([]byte(line), &c); err != nil {
		return fmt.Errorf("child: %q: %w", line, err)
	}

	tr := &http.Transport{MaxIdleConnsPerHost: 2 * *watchers, MaxConnsPerHost: 0}
	if *h2c {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	hc := &http.Client{Transport: tr}
	auth := func(h http.Header) { h.Set("Authorization", "Bearer "+adminToken) }
	rs := gitpodv1connect.NewRunnerServiceClient(hc, c.URL)
	ids := make([]string, *runnersN)
	for i := range ids {
		req := connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: fmt.Sprintf("bench-%d", i), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
		auth(req.Header())
		res, err := rs.CreateRunner(context.Background(), req)
		if err != nil {
			return fmt.Errorf("create runner: %w", err)
		}
		ids[i] = res.Msg.GetRunner().GetRunnerId()
	}
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
	}

	fmt.Printf("bench/events: %d watchers, one change per %s, %s per phase, %s, %s, GOMAXPROCS=%d\n",
		*watchers, *every, *duration, map[bool]string{true: "PostgreSQL", false: "SQLite"}[*dbURL != ""],
		map[bool]string{true: "h2c", false: "HTTP/1.1"}[*h2c], numCPU())

	type phase struct {
		name     string
		watchers int
		change   func(i, j int) error
		watch    func(ctx context.Context, ready func(), rec *recorder) error
	}
	rename := func(i, j int) error {
		req := connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: ids[i], Name: ptr(fmt.Sprintf("bench-%d-%d", i, j))})
		auth(req.Header())
		_, err := rs.UpdateRunner(context.Background(), req)
		return err
	}
	post := func(i, j int) error {
		res, err := hc.Post(c.Bare+"/change", "text/plain", strings.NewReader(fmt.Sprintf("%d %d", i, j)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	}
	es := gitpodv1connect.NewEventServiceClient(hc, c.URL)
	watchEvents := func(ctx context.Context, ready func(), rec *recorder) error {
		req := connect.NewRequest(&gitpodv1.WatchEventsRequest{Scope: &gitpodv1.WatchEventsRequest_Organization{Organization: true}})
		auth(req.Header())
		stream, err := es.WatchEvents(ctx, req)
		if err != nil {
			return err
		}
		defer stream.Close()
		if stream.ResponseHeader().Get("Runyard-Watch-Started") == "" {
			stream.Receive()
			return fmt.Errorf("watch refused: %v", stream.Err())
		}
		ready()
		seen := make([]int, len(ids))
		for stream.Receive() {
			i, ok := index[stream.Msg().GetResourceId()]
			if !ok {
				continue
			}
			rec.got(i, seen[i])
			seen[i]++
		}
		return stream.Err()
	}
	watchBare := func(ctx context.Context, ready func(), rec *recorder) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Bare+"/watch", nil)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		ready()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			a, b, _ := strings.Cut(sc.Text(), " ")
			i, _ := strconv.Atoi(a)
			j, _ := strconv.Atoi(b)
			rec.got(i, j)
		}
		return sc.Err()
	}
	phases := []phase{
		{"bare fan-out, no watchers", 0, post, watchBare},
		{"bare fan-out (baseline)", *watchers, post, watchBare},
		{"WatchEvents, no watchers", 0, rename, watchEvents},
		{"WatchEvents", *watchers, rename, watchEvents},
	}
	idle := map[string]float64{}
	for k, p := range phases {
		rec := newRecorder(len(ids), p.watchers)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var watchErr atomic.Pointer[error]
		for range p.watchers {
			wg.Go(func() {
				var once sync.Once
				ready := func() { once.Do(rec.ready) }
				if err := p.watch(ctx, ready, rec); err != nil && ctx.Err() == nil {
					watchErr.Store(&err)
				}
				ready()
			})
		}
		rec.waitReady()
		if err := watchErr.Load(); err != nil {
			cancel()
			return fmt.Errorf("%s: %w", p.name, *err)
		}
		r, err := drive(ids, *every, *duration, cmd.Process.Pid, rec, p.change)
		n, cpu := r.n, r.cpu
		if err != nil {
			cancel()
			return fmt.Errorf("%s: %w", p.name, err)
		}
		// Let the last events arrive (bounded), then stop the watchers.
		for deadline := time.Now().Add(10 * time.Second); rec.count() < int64(n*p.watchers) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		fanout := rec.span()
		cancel()
		wg.Wait()
		perChange := cpu / time.Duration(max(n, 1))
		if p.watchers == 0 {
			idle[strings.Split(p.name, ",")[0]] = float64(perChange)
			fmt.Printf("%-28s changes=%d (%.0f/s written)  server cpu per change=%s\n", p.name, n, float64(n)/r.wrote.Seconds(), perChange.Round(time.Microsecond))
			continue
		}
		base := time.Duration(idle[strings.Split(phases[k-1].name, ",")[0]])
		d, a := rec.latencies()
		fmt.Printf("%-28s changes=%d (%.0f/s written, %.0f/s delivered to each watcher) delivered=%d/%d  latency from request p50=%s p99=%s max=%s, from answer p50=%s p99=%s  server cpu per change=%s, for the feed=%s (%.1fµs per delivery), watchers' cpu %.1fµs per delivery\n",
			p.name, n, float64(n)/r.wrote.Seconds(), float64(len(d))/float64(p.watchers)/max(fanout.Seconds(), 1e-9), len(d), n*p.watchers,
			pct(d, .50), pct(d, .99), pct(d, 1), pct(a, .50), pct(a, .99), perChange.Round(time.Microsecond), (perChange - base).Round(time.Microsecond),
			float64(perChange-base)/float64(time.Microsecond)/float64(p.watchers), float64(r.self)/float64(time.Microsecond)/float64(max(len(d), 1)))
	}
	return nil
}

// drive makes one change per interval for d, each runner's in order (a
// worker per runner), recording when each was sent. It returns how many
// were made, how long they took to be answered, and the CPU time of the
// child and of this process meanwhile.
func drive(ids []string, every, d time.Duration, pid int, rec *recorder, change func(i, j int) error) (result, error) {
	work := make([]chan int, len(ids))
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range work {
		work[i] = make(chan int, 1<<16)
		wg.Go(func() {
			for j := range work[i] {
				rec.sent(i, j)
				if err := change(i, j); err != nil {
					failed.Store(err)
				}
				rec.acked(i, j)
			}
		})
	}
	before, selfBefore := pidTicks(pid), pidTicks(os.Getpid())
	// The changes due so far are made whenever the pacer runs: a ticker
	// drops the ticks its reader misses, and on a loaded machine that
	// alone held the offered rate to a few hundred per second.
	tick := time.NewTicker(every)
	start := time.Now()
	n := 0
	for now := range tick.C {
		if now.Sub(start) > d {
			break
		}
		for due := int(now.Sub(start) / every); n < due; n++ {
			i := n % len(ids)
			work[i] <- n / len(ids)
		}
	}
	tick.Stop()
	for _, w := range work {
		close(w)
	}
	wg.Wait()
	r := result{n: n, wrote: time.Since(start),
		cpu:  time.Duration(pidTicks(pid)-before) * time.Second / userHZ,
		self: time.Duration(pidTicks(os.Getpid())-selfBefore) * time.Second / userHZ}
	if err, _ := failed.Load().(error); err != nil {
		return r, err
	}
	return r, nil
}

// result is what drive measured.
type result struct {
	n int
	// wrote is from the first change sent to the last one answered.
	wrote time.Duration
	// cpu is the control plane's, self the bench's own (its watchers).
	cpu, self time.Duration
}

// recorder keeps when each change was sent and how long each watcher took
// to get it.
type recorder struct {
	mu      sync.Mutex
	sentAt  [][]int64 // runner -> change -> unix nanos
	ackedAt [][]int64
	lat     []time.Duration
	// sinceAck is the latency from the change's answer (the change was
	// committed by then); negative when the event came first.
	sinceAck []time.Duration
	lastGot  int64
	n        atomic.Int64
	pending  sync.WaitGroup
}

func newRecorder(runners, watchers int) *recorder {
	r := &recorder{sentAt: make([][]int64, runners), ackedAt: make([][]int64, runners)}
	r.pending.Add(watchers)
	return r
}

// ready marks a watcher established (or failed: each counts once).
func (r *recorder) ready() { r.pending.Done() }

func (r *recorder) waitReady() { r.pending.Wait() }

func (r *recorder) sent(i, j int) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	for len(r.sentAt[i]) <= j {
		r.sentAt[i] = append(r.sentAt[i], 0)
	}
	r.sentAt[i][j] = now
	r.mu.Unlock()
}

func (r *recorder) acked(i, j int) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	for len(r.ackedAt[i]) <= j {
		r.ackedAt[i] = append(r.ackedAt[i], 0)
	}
	r.ackedAt[i][j] = now
	r.mu.Unlock()
}

func (r *recorder) got(i, j int) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	r.lastGot = now
	if i < len(r.sentAt) && j < len(r.sentAt[i]) && r.sentAt[i][j] != 0 {
		r.lat = append(r.lat, time.Duration(now-r.sentAt[i][j]))
	}
	if i < len(r.ackedAt) && j < len(r.ackedAt[i]) && r.ackedAt[i][j] != 0 {
		r.sinceAck = append(r.sinceAck, time.Duration(now-r.ackedAt[i][j]))
	}
	r.mu.Unlock()
	r.n.Add(1)
}

func (r *recorder) count() int64 { return r.n.Load() }

// span is from the first change sent to the last event received.
func (r *recorder) span() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first int64
	for _, s := range r.sentAt {
		if len(s) > 0 && (first == 0 || s[0] < first) {
			first = s[0]
		}
	}
	if first == 0 || r.lastGot == 0 {
		return 0
	}
	return time.Duration(r.lastGot - first)
}

func (r *recorder) latencies() (fromSend, fromAck []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, a := slices.Clone(r.lat), slices.Clone(r.sinceAck)
	slices.Sort(d)
	slices.Sort(a)
	return d, a
}

func pct(d []time.Duration, p float64) string {
	if len(d) == 0 {
		return "-"
	}
	i := min(int(float64(len(d))*p), len(d)-1)
	return d[i].Round(10 * time.Microsecond).String()
}

// userHZ is the kernel's USER_HZ, the unit of /proc/<pid>/stat.
const userHZ = 100

// pidTicks returns utime+stime of a process, 0 if it is gone.
func pidTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	g := strings.Fields(rest)
	if len(g) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(g[11], 10, 64)
	stime, _ := strconv.ParseInt(g[12], 10, 64)
	return utime + stime
}

func numCPU() int { return runtime.GOMAXPROCS(0) }

func ptr[T any](v T) *T { return &v }
