// Command runnerapi measures the runner API of an in-process control plane:
// GetRunner and ListRunners over Connect (binary protobuf, and JSON for
// GetRunner) against SQLite and, when configured, PostgreSQL, next to a bare
// loopback HTTP round trip that shows what the machine and net/http cost on
// their own.
//
// Client and server share the process and its cores, so every figure includes
// the client's own work; the baseline carries the same handicap.
//
//	go run ./bench/runnerapi [--runners 10000] [--clients 1,16,64] [--duration 5s]
//	                         [--postgres URL] [--cpuprofile PREFIX] [--run REGEXP]
//
// It exits 1 when any request fails. bench/README.md explains the output and
// keeps the measured figures.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/server"
)

// adminToken is the bootstrap admin key of the benchmarked control plane.
const adminToken = "ryd_bench_admin_token_0123456789"

// postgresEnv is the variable the tests use for PostgreSQL; the benchmark
// honours it too.
const postgresEnv = "RUNYARD_TEST_POSTGRES_URL"

type config struct {
	runners     int
	setup       int
	clients     []int
	jsonClients int
	duration    time.Duration
	warmup      time.Duration
	postgres    string
	cpuprofile  string
	timeout     time.Duration
	gzip        bool
	pgAnalyze   bool
	// orgs, users and keys size the population of the GetRunner/keys
	// figure; orgs zero skips it.
	orgs, users, keys int
	// run selects the figures to measure by their name, e.g.
	// "sqlite GetRunner clients=16"; nil measures all.
	run *regexp.Regexp
}

// wants reports whether the figure label at clients is selected.
func (c config) wants(label string, clients int) bool {
	return c.run == nil || c.run.MatchString(fmt.Sprintf("%s clients=%d", label, clients))
}

func main() {
	var cfg config
	var clients string
	flag.IntVar(&cfg.runners, "runners", 10000, "runners to create before measuring")
	flag.IntVar(&cfg.setup, "setup-workers", 16, "concurrent CreateRunner calls during setup")
	flag.StringVar(&clients, "clients", "1,16,64", "comma-separated concurrency levels to measure")
	flag.IntVar(&cfg.jsonClients, "json-clients", 16, "concurrency of the Connect JSON GetRunner run (0 skips it)")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per figure")
	flag.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "unrecorded warm-up before each figure (opens the connections)")
	flag.StringVar(&cfg.postgres, "postgres", os.Getenv(postgresEnv), "PostgreSQL URL for a second run in a fresh schema (default $"+postgresEnv+")")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole process (server and clients) during each measured figure to PREFIX-<figure>.pprof")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.gzip, "gzip", true, "let clients accept gzip responses, as connect-go clients do by default")
	flag.BoolVar(&cfg.pgAnalyze, "pg-analyze", true, "run ANALYZE after the PostgreSQL setup, as autovacuum would within a minute, so plans do not depend on its timing")
	flag.IntVar(&cfg.orgs, "orgs", 100, "organizations of the population behind the GetRunner/keys figure (0 skips it)")
	flag.IntVar(&cfg.users, "users", 10000, "users of the population, members of the organizations in turn")
	flag.IntVar(&cfg.keys, "keys", 50000, "API keys of the population; each GetRunner/keys request carries one drawn at random")
	runRE := flag.String("run", "", "measure only the figures whose name (e.g. \"sqlite GetRunner clients=16\") matches this regexp")
	short := report.Short()
	flag.Parse()
	if *short {
		cfg.runners, clients, cfg.jsonClients, cfg.duration, cfg.warmup = 200, "16", 4, 300*time.Millisecond, 100*time.Millisecond
		cfg.orgs, cfg.users, cfg.keys = 2, 20, 40
	}
	var err error
	if *runRE != "" {
		if cfg.run, err = regexp.Compile(*runRE); err != nil {
			fmt.Fprintln(os.Stderr, "runnerapi: --run:", err)
			os.Exit(2)
		}
	}
	if cfg.clients, err = parseClients(clients); err != nil {
		fmt.Fprintln(os.Stderr, "runnerapi:", err)
		os.Exit(2)
	}
	if cfg.orgs < 0 || cfg.users < 0 || (cfg.orgs > 0 && cfg.keys < cfg.orgs) {
		fmt.Fprintln(os.Stderr, "runnerapi: --orgs and --users must not be negative, and --keys must be at least --orgs (each organization's first key creates its runner)")
		os.Exit(2)
	}
	if cfg.runners < 1 || cfg.setup < 1 || cfg.duration <= 0 {
		fmt.Fprintln(os.Stderr, "runnerapi: --runners, --setup-workers and --duration must be positive")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "runnerapi:", err)
		os.Exit(1)
	}
}

func parseClients(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--clients: %q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	// The context ends every request and phase at the deadline; the watchdog
	// covers whatever might still hang after it.
	watchdog := time.AfterFunc(cfg.timeout+time.Minute, func() {
		fmt.Fprintln(os.Stderr, "runnerapi: still running a minute after --timeout: aborting")
		os.Exit(3)
	})
	defer watchdog.Stop()

	fmt.Printf("# %s, %s/%s, GOMAXPROCS=%d, NumCPU=%d, runners=%d, duration=%s, clients=%v, gzip=%v\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(),
		cfg.runners, cfg.duration, cfg.clients, cfg.gzip)

	var errs errorLog
	err := runAll(ctx, cfg, &errs)
	printRSS()
	if n := errs.count.Load(); n > 0 {
		errs.print()
		return errors.Join(err, fmt.Errorf("%d requests failed", n))
	}
	return err
}

func runAll(ctx context.Context, cfg config, errs *errorLog) error {
	if err := runBaseline(ctx, cfg, errs); err != nil {
		return err
	}
	if err := runFloor(ctx, cfg, errs); err != nil {
		return err
	}
	if err := runBackend(ctx, cfg, "sqlite", "", nil, errs); err != nil {
		return err
	}
	switch {
	case cfg.postgres == "":
		fmt.Printf("# postgres: skipped (set --postgres or $%s)\n", postgresEnv)
	case backendWanted(cfg, "postgres"):
		return runPostgres(ctx, cfg, errs)
	}
	return nil
}

// errorLog counts failed requests and keeps the first few messages.
type errorLog struct {
	count atomic.Int64
	mu    sync.Mutex
	first []string
}

func (l *errorLog) add(what string, err error) {
	l.count.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < 10 {
		l.first = append(l.first, what+": "+err.Error())
	}
}

func (l *errorLog) print() {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(os.Stderr, "errors: %d requests failed; the first ones:\n", l.count.Load())
	for _, m := range l.first {
		fmt.Fprintln(os.Stderr, "  "+m)
	}
}

// firstRecords passes on the first few log records of the control plane and
// drops the rest: when the database goes away, every request logs an error,
// and the error count at the end says how many there were.
type firstRecords struct {
	slog.Handler
	left int64
	seen *atomic.Int64
}

func newFirstRecords(h slog.Handler, n int64) *firstRecords {
	return &firstRecords{Handler: h, left: n, seen: new(atomic.Int64)}
}

func (h *firstRecords) Handle(ctx context.Context, r slog.Record) error {
	switch n := h.seen.Add(1); {
	case n <= h.left:
		return h.Handler.Handle(ctx, r)
	case n == h.left+1:
		fmt.Fprintln(os.Stderr, "runnerapi: further control-plane log records are not shown")
	}
	return nil
}

func (h *firstRecords) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &firstRecords{Handler: h.Handler.WithAttrs(attrs), left: h.left, seen: h.seen}
}

func (h *firstRecords) WithGroup(name string) slog.Handler {
	return &firstRecords{Handler: h.Handler.WithGroup(name), left: h.left, seen: h.seen}
}

// newHTTPClient returns a plain HTTP/1.1 keep-alive client that keeps enough
// idle connections for every concurrency level, so no request pays for a new
// connection once the warm-up has opened them.
func newHTTPClient(cfg config) *http.Client {
	conns := max(slices.Max(cfg.clients), cfg.jsonClients, cfg.setup)
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        2 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     time.Minute,
			ForceAttemptHTTP2:   false,
			// Connect negotiates its own compression; the transport's would
			// only get in its way.
			DisableCompression: true,
		},
	}
}

// runBaseline measures a trivial handler on a separate loopback server.
func runBaseline(ctx context.Context, cfg config, errs *errorLog) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("baseline listen: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	defer srv.Close()
	hc := newHTTPClient(cfg)
	defer hc.CloseIdleConnections()
	target := "http://" + ln.Addr().String() + "/"
	call := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", res.Status)
		}
		return nil
	}
	for _, c := range cfg.clients {
		if err := measure(ctx, cfg, baselineLabel, c, call, errs); err != nil {
			return err
		}
	}
	return nil
}

// runPostgres runs the backend in a fresh schema that it drops afterwards,
// as the tests' helper does.
func runPostgres(ctx context.Context, cfg config, errs *errorLog) error {
	admin, err := sql.Open("pgx", cfg.postgres)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	defer admin.Close()
	schema := "bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer func() {
		// Dropped even after the deadline: a fresh context, bounded.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "runnerapi: drop schema %s: %v\n", schema, err)
		}
	}()
	u, err := url.Parse(cfg.postgres)
	if err != nil {
		return fmt.Errorf("parse postgres URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	var analyze func(context.Context) error
	if cfg.pgAnalyze {
		analyze = func(ctx context.Context) error {
			start := time.Now()
			if _, err := admin.ExecContext(ctx, "ANALYZE "+schema+".runners, "+schema+".tokens, "+schema+".users, "+schema+".memberships"); err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
			fmt.Printf("postgres ANALYZE after setup in %s\n", ms(time.Since(start)))
			return nil
		}
	}
	return runBackend(ctx, cfg, "postgres", u.String(), analyze, errs)
}

// runBackend starts a control plane on one database, fills it, calls
// afterSetup unless nil, and measures it.
func runBackend(ctx context.Context, cfg config, name, databaseURL string, afterSetup func(context.Context) error, errs *errorLog) error {
	if !backendWanted(cfg, name) {
		return nil
	}
	dir, err := os.MkdirTemp("", "runyard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	srv, err := server.Open(sctx, server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         dir,
		DatabaseURL:     databaseURL,
		BootstrapToken:  adminToken,
		ShutdownTimeout: 10 * time.Second,
		Logger:          slog.New(newFirstRecords(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), 10)),
	})
	if err != nil {
		return fmt.Errorf("%s: open server: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "runnerapi: %s: server shutdown: %v\n", name, err)
		}
	}()
	hc := newHTTPClient(cfg)
	defer hc.CloseIdleConnections()
	if err := waitHealthy(ctx, hc, srv.URL()); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("%s server ready in %s at %s\n", name, ms(time.Since(start)), srv.URL())

	opts := []connect.ClientOption{connect.WithInterceptors(bearer(adminToken))}
	if !cfg.gzip {
		// Unregistering gzip stops the client from advertising it.
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil))
	}
	client := gitpodv1connect.NewRunnerServiceClient(hc, srv.URL(), opts...)
	jsonClient := gitpodv1connect.NewRunnerServiceClient(hc, srv.URL(), append(opts, connect.WithProtoJSON())...)

	ids, err := createRunners(ctx, cfg, name, client)
	if err != nil {
		return err
	}
	if afterSetup != nil {
		if err := afterSetup(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	tokens, err := walkPages(ctx, client, len(ids))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}

	get := func(c gitpodv1connect.RunnerServiceClient) func(context.Context) error {
		return func(ctx context.Context) error {
			id := ids[rand.IntN(len(ids))]
			res, err := c.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
			if err != nil {
				return err
			}
			if got := res.Msg.GetRunner().GetRunnerId(); got != id {
				return fmt.Errorf("GetRunner(%s) returned runner %q", id, got)
			}
			return nil
		}
	}
	list := func(ctx context.Context) error {
		i := rand.IntN(len(tokens))
		res, err := client.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{
			Pagination: &gitpodv1.PaginationRequest{Token: tokens[i], PageSize: 100},
		}))
		if err != nil {
			return err
		}
		if want := min(100, len(ids)-100*i); len(res.Msg.GetRunners()) != want {
			return fmt.Errorf("ListRunners page %d returned %d runners, want %d", i, len(res.Msg.GetRunners()), want)
		}
		return nil
	}
	for _, c := range cfg.clients {
		if err := measure(ctx, cfg, name+" GetRunner", c, get(client), errs); err != nil {
			return err
		}
	}
	if cfg.orgs > 0 && (wantsAny(cfg, name+" GetRunner/keys") || wantsAny(cfg, name+" GetRunner/hotkeys")) {
		pop, err := seedPopulation(ctx, cfg, name, dir, databaseURL, hc, srv.URL())
		if err != nil {
			return err
		}
		if afterSetup != nil {
			if err := afterSetup(ctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		// opts[1:] leaves out the admin key: each request carries its own.
		for _, c := range cfg.clients {
			if err := measure(ctx, cfg, name+" GetRunner/hotkeys", c, pop.getWithKeys(pop.keys, hotKeys, hc, srv.URL(), opts[1:]), errs); err != nil {
				return err
			}
			if err := measure(ctx, cfg, name+" GetRunner/keys", c, pop.getWithKeys(pop.keys, cfg.keys, hc, srv.URL(), opts[1:]), errs); err != nil {
				return err
			}
			if err := measure(ctx, cfg, name+" GetRunner/userkeys", c, pop.getWithKeys(pop.userKeys, hotKeys, hc, srv.URL(), opts[1:]), errs); err != nil {
				return err
			}
		}
		// The keys figure above meets most keys for the first time, so it
		// measures store reads as much as authentication. After every key
		// has been used once (an installation whose 50,000 keys are all in
		// use), the same uniform draw shows the steady state.
		if wantsAny(cfg, name+" GetRunner/keys") {
			all := pop.getWithKeys(pop.keys, cfg.keys, hc, srv.URL(), opts[1:])
			warm := pop.getEach(ctx, pop.keys, hc, srv.URL(), opts[1:])
			if err := parallel(ctx, 16, len(pop.keys), warm); err != nil {
				return fmt.Errorf("%s: use every key once: %w", name, err)
			}
			for _, c := range cfg.clients {
				if err := measure(ctx, cfg, name+" GetRunner/keys-warm", c, all, errs); err != nil {
					return err
				}
			}
		}
	}
	if cfg.jsonClients > 0 {
		if err := measure(ctx, cfg, name+" GetRunner/json", cfg.jsonClients, get(jsonClient), errs); err != nil {
			return err
		}
	}
	for _, c := range cfg.clients {
		if err := measure(ctx, cfg, name+" ListRunners/100", c, list, errs); err != nil {
			return err
		}
	}
	return nil
}

// hotKeys is how many keys of the population the GetRunner/hotkeys figure
// uses: the keys in use within a few seconds on a busy installation.
const hotKeys = 1000

// wantsAny reports whether --run selects the figure label at any
// concurrency.
func wantsAny(cfg config, label string) bool {
	for _, c := range cfg.clients {
		if cfg.wants(label, c) {
			return true
		}
	}
	return false
}

// backendWanted reports whether --run selects any figure of the backend.
func backendWanted(cfg config, name string) bool {
	for _, c := range cfg.clients {
		if cfg.wants(name+" GetRunner", c) || cfg.wants(name+" ListRunners/100", c) || (cfg.orgs > 0 && (cfg.wants(name+" GetRunner/keys", c) || cfg.wants(name+" GetRunner/hotkeys", c))) {
			return true
		}
	}
	return cfg.jsonClients > 0 && cfg.wants(name+" GetRunner/json", cfg.jsonClients)
}

func waitHealthy(ctx context.Context, hc *http.Client, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server at %s did not become healthy", base)
}

// bearer adds the admin key to every request.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// createRunners registers cfg.runners runners with cfg.setup concurrent
// calls and returns their IDs.
func createRunners(ctx context.Context, cfg config, name string, client gitpodv1connect.RunnerServiceClient) ([]string, error) {
	start := time.Now()
	ids := make([]string, cfg.runners)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range cfg.setup {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.runners || ctx.Err() != nil {
					return
				}
				res, err := client.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{
					Name:     fmt.Sprintf("bench-runner-%06d", i),
					Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
				}))
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: create runner %d: %w", name, i, err); cancel() })
					return
				}
				ids[i] = res.Msg.GetRunner().GetRunnerId()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	d := time.Since(start)
	fmt.Printf("%s setup: created %d runners with %d workers in %s (%.0f/s)\n",
		name, cfg.runners, cfg.setup, d.Round(time.Millisecond), float64(cfg.runners)/d.Seconds())
	return ids, nil
}

// walkPages lists every runner once by pages of 100 and returns the token of
// each page, "" for the first.
func walkPages(ctx context.Context, client gitpodv1connect.RunnerServiceClient, n int) ([]string, error) {
	tokens := []string{""}
	seen := 0
	for {
		res, err := client.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{
			Pagination: &gitpodv1.PaginationRequest{Token: tokens[len(tokens)-1], PageSize: 100},
		}))
		if err != nil {
			return nil, fmt.Errorf("walk runner pages: %w", err)
		}
		seen += len(res.Msg.GetRunners())
		next := res.Msg.GetPagination().GetNextToken()
		if next == "" {
			break
		}
		tokens = append(tokens, next)
	}
	if seen != n {
		return nil, fmt.Errorf("walk runner pages: saw %d runners, created %d", seen, n)
	}
	return tokens, nil
}

// measure runs call from clients goroutines for cfg.warmup unrecorded, then
// for cfg.duration recording every request, and prints one line.
func measure(ctx context.Context, cfg config, label string, clients int, call func(context.Context) error, errs *errorLog) error {
	// The baseline is always measured: every other figure is printed
	// beside it.
	if label != baselineLabel && !cfg.wants(label, clients) {
		return nil
	}
	if cfg.warmup > 0 {
		if _, _, err := load(ctx, clients, cfg.warmup, call, label+" (warm-up)", errs); err != nil {
			return err
		}
	}
	stopProfile, err := startProfile(cfg, label, clients)
	if err != nil {
		return err
	}
	allocs := readAllocs()
	before := readCPU()
	lat, elapsed, err := load(ctx, clients, cfg.duration, call, label, errs)
	stopProfile()
	if err != nil {
		return err
	}
	cpuAfter := readCPU()
	cpu := cpuAfter.since(before, elapsed, len(lat))
	allocs = readAllocs().minus(allocs)
	slices.Sort(lat)
	rps := float64(len(lat)) / elapsed.Seconds()
	line := fmt.Sprintf("%s clients=%d rps=%.0f p50=%s p99=%s max=%s n=%d %s allocs/req=%.0f B/req=%.0f", label, clients,
		rps, ms(pct(lat, 0.50)), ms(pct(lat, 0.99)), ms(lat[len(lat)-1]), len(lat), cpu,
		float64(allocs.objects)/float64(len(lat)), float64(allocs.bytes)/float64(len(lat)))
	perReq := cpuAfter.perRequest(before, len(lat))
	if label == baselineLabel {
		baselines[clients] = baseline{rps: rps, cpuPerReq: perReq}
	} else if b, ok := baselines[clients]; ok && b.rps > 0 && b.cpuPerReq > 0 && perReq > 0 {
		// Beside the bare HTTP round trip of the same run and concurrency:
		// what the API costs over what the machine and net/http cost.
		line += fmt.Sprintf(" vs_bare: cpu/req=%.2fx rps=%.2fx", perReq.Seconds()/b.cpuPerReq.Seconds(), rps/b.rps)
	}
	fmt.Println(line)
	if label != baselineLabel {
		emit(label, clients, perReq, rps, pct(lat, 0.99), float64(allocs.objects)/float64(len(lat)))
	}
	return nil
}

// emit reports a figure's CPU per request beside the bare round trip's,
// with its allocations per request (which other load does not move), and
// the targets: GetRunner (one key) at 16 clients within 2× the
// bare CPU, 60% of its rate and a p99 under 5 ms; a page of 100 runners
// within 600 µs of CPU.
func emit(label string, clients int, perReq time.Duration, rps float64, p99 time.Duration, allocs float64) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b := baselines[clients]
	f := report.Figure{Bench: "runnerapi", Name: fmt.Sprintf("%s clients=%d, CPU per request", label, clients), Value: us(perReq), Unit: "µs",
		Baseline: us(b.cpuPerReq), BaselineName: "bare HTTP", Count: allocs, CountUnit: "allocs/req"}
	_, what, _ := strings.Cut(label, " ")
	switch {
	case what == "GetRunner" && clients == 16:
		cpu, rate, tail := report.RatioAtMost(2), report.RatioAtLeast(0.6), report.AtMost(5)
		report.Emit(f, &cpu)
		report.Emit(report.Figure{Bench: "runnerapi", Name: fmt.Sprintf("%s clients=%d, requests/s", label, clients), Value: rps, Unit: "/s",
			Baseline: b.rps, BaselineName: "bare HTTP"}, &rate)
		report.Emit(report.Figure{Bench: "runnerapi", Name: fmt.Sprintf("%s clients=%d, p99", label, clients), Value: float64(p99) / float64(time.Millisecond), Unit: "ms"}, &tail)
	case what == "ListRunners/100":
		t := report.AtMost(600)
		report.Emit(f, &t)
	default:
		report.Emit(f, nil)
	}
}

// baselineLabel names the bare HTTP figure the others are compared with.
const baselineLabel = "baseline http"

// baseline is the bare HTTP figure of this run at one concurrency.
type baseline struct {
	rps       float64
	cpuPerReq time.Duration
}

// baselines holds the baseline of each concurrency, measured first.
var baselines = map[int]baseline{}

// startProfile starts a CPU profile of the figure when --cpuprofile is set
// and returns what stops it.
func startProfile(cfg config, label string, clients int) (func(), error) {
	if cfg.cpuprofile == "" {
		return func() {}, nil
	}
	name := fmt.Sprintf("%s-%s-c%d.pprof", cfg.cpuprofile, strings.NewReplacer(" ", "-", "/", "_").Replace(label), clients)
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heapAllocs counts the heap allocations of the process so far: unlike its
// time, a request's count barely depends on the other load of the machine.
type heapAllocs struct{ objects, bytes uint64 }

func readAllocs() heapAllocs {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return heapAllocs{objects: s[0].Value.Uint64(), bytes: s[1].Value.Uint64()}
}

func (a heapAllocs) minus(b heapAllocs) heapAllocs {
	return heapAllocs{objects: a.objects - b.objects, bytes: a.bytes - b.bytes}
}

// cpuTicks is a sample of the machine's busy time and this process's CPU
// time, in clock ticks. Other processes on the machine compete for the same
// cores, so each figure says how much of the machine they took.
type cpuTicks struct {
	// pg is the CPU time of the processes named postgres: the database
	// server of a PostgreSQL run, counted apart from other load.
	machine, self, pg int64
	ok                bool
}

// userHZ is the kernel's USER_HZ, the unit of /proc/stat; 100 on Linux.
const userHZ = 100

func readCPU() cpuTicks {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTicks{}
	}
	var t cpuTicks
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		t.machine += n
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return cpuTicks{}
	}
	_, rest, _ := strings.Cut(string(self), ") ")
	t.self, t.ok = procTicks(strings.Fields(rest)), true
	t.pg = postgresTicks()
	return t
}

// procTicks returns utime+stime from the fields of /proc/PID/stat that follow
// the parenthesised command name, where they are the 12th and 13th.
func procTicks(g []string) int64 {
	if len(g) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(g[11], 10, 64)
	stime, _ := strconv.ParseInt(g[12], 10, 64)
	return utime + stime
}

// postgresTicks sums the CPU time of the running postgres processes. A
// backend that exits between two samples drops out of the sum, so the figure
// is a lower bound.
func postgresTicks() int64 {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		head, rest, ok := strings.Cut(string(b), ") ")
		if !ok || !strings.HasSuffix(head, "(postgres") {
			continue
		}
		sum += procTicks(strings.Fields(rest))
	}
	return sum
}

// since formats the CPU used between b and t by this process and by
// everything else on the machine, in cores, and this process's CPU time per
// request (client and server together), which other load disturbs far less
// than the rate does.
func (t cpuTicks) since(b cpuTicks, elapsed time.Duration, requests int) string {
	if !t.ok || !b.ok {
		return "cpu=unknown"
	}
	ticks := elapsed.Seconds() * userHZ
	self := float64(t.self-b.self) / ticks
	pg := max(float64(t.pg-b.pg)/ticks, 0)
	other := max(float64(t.machine-b.machine)/ticks-self-pg, 0)
	perReq := time.Duration(float64(t.self-b.self) / userHZ / float64(requests) * float64(time.Second))
	out := fmt.Sprintf("cpu=%.2f othercpu=%.2f cpu/req=%dus", self, other, perReq.Microseconds())
	if pg > 0.005 {
		pgReq := time.Duration(float64(t.pg-b.pg) / userHZ / float64(requests) * float64(time.Second))
		out += fmt.Sprintf(" pgcpu=%.2f pgcpu/req=%dus", pg, pgReq.Microseconds())
	}
	return out
}

// perRequest is this process's CPU time per request between b and t.
func (t cpuTicks) perRequest(b cpuTicks, requests int) time.Duration {
	if !t.ok || !b.ok || requests == 0 {
		return 0
	}
	return time.Duration(float64(t.self-b.self) / userHZ / float64(requests) * float64(time.Second))
}

// load runs the clients for d and returns the latency of every successful
// request and the time from the start until the last client stopped.
func load(ctx context.Context, clients int, d time.Duration, call func(context.Context) error, label string, errs *errorLog) ([]time.Duration, time.Duration, error) {
	per := make([][]time.Duration, clients)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				err := call(ctx)
				if err != nil {
					errs.add(label, err)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			per[w] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", label, err)
	}
	var all []time.Duration
	for _, l := range per {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil, 0, fmt.Errorf("%s: no request succeeded", label)
	}
	return all, elapsed, nil
}

// pct returns the q-quantile of sorted latencies (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// printRSS prints the resident set size now and at its peak.
func printRSS() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Printf("process rss=unknown (%v)\n", err)
		return
	}
	defer f.Close()
	var rss, hwm string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "VmRSS":
			rss = strings.TrimSpace(v)
		case "VmHWM":
			hwm = strings.TrimSpace(v)
		}
	}
	fmt.Printf("process rss=%s peak=%s\n", strings.ReplaceAll(rss, " ", ""), strings.ReplaceAll(hwm, " ", ""))
}
