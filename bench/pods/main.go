// Command pods measures agent pods end to end on a control plane of its own.
//
// Part one, placement: a control plane in a child process (SQLite, or
// PostgreSQL with --database), N runners created through the API and held
// online by simulator processes over the real runner protocol (one TCP
// connection and one Connect stream per runner, a status snapshot with
// max_pods, labels and agent types, renewals at the interval the control
// plane gives), and concurrent clients creating pods with POST
// /api/v1/orgs/default/pods on loopback. It prints pods placed per second
// with the create latency, fills the remaining capacity, and checks that no
// runner holds more than its max_pods, that the placed count is exact, that
// the pods beyond capacity wait with the exact reason, and that every placed
// pod reached its runner in a desired state.
//
// Part two, agent start: a control plane, one real `runyard runner` and a
// custom agent type whose command writes the pod's key into a FIFO; pods are
// created one after another and the time from the POST to the line in the
// FIFO is measured, beside a bare fork/exec of the same command.
//
//	go run ./bench/pods                                  # both parts, SQLite
//	go run ./bench/pods --database "$(scripts/pg-start.sh)" --agent-pods 0
//
// Everything stays on 127.0.0.0/8; child processes and temporary
// directories are removed at the end; --max-time bounds the run. It exits 1
// when a request fails or a check does not hold. bench/README.md keeps the
// figures.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/server"
)

// adminToken is the bootstrap admin key of the benchmarked control planes.
const adminToken = "ryd_bench_pods_admin_token_0123456789"

// orgPath is the REST root of the bootstrap organization.
const orgPath = "/api/v1/orgs/default"

// The agent type the placement pods ask for, and the label.
const (
	benchAgent = "bench-agent"
	benchLabel = "zone-a"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			exit(serve(os.Args[2:]))
			return
		case "simulate":
			exit(simulate(os.Args[2:]))
			return
		}
	}
	exit(run(os.Args[1:]))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "pods:", err)
		os.Exit(1)
	}
}

// serve runs a control plane until SIGTERM and prints its URL first. With
// --cpuprofile, SIGUSR1 starts a CPU profile into that file and SIGUSR2
// stops it, so the profile covers exactly the measured phase.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("data-dir", "", "data dir")
	database := fs.String("database", "", "PostgreSQL URL; empty for SQLite in the data dir")
	timeout := fs.Duration("runner-timeout", 30*time.Second, "runner timeout")
	cpuprofile := fs.String("cpuprofile", "", "CPU profile file, written between SIGUSR1 and SIGUSR2")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *cpuprofile != "" {
		sig := make(chan os.Signal, 2)
		signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
		go func() {
			var f *os.File
			for s := range sig {
				switch {
				case s == syscall.SIGUSR1 && f == nil:
					var err error
					if f, err = os.Create(*cpuprofile); err == nil {
						err = pprof.StartCPUProfile(f)
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, "serve: start cpu profile:", err)
					}
				case s == syscall.SIGUSR2 && f != nil:
					pprof.StopCPUProfile()
					f.Close()
					f = nil
				}
			}
		}()
	}
	s, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: *dir, DatabaseURL: *database, BootstrapToken: adminToken,
		RunnerTimeout: *timeout, ShutdownTimeout: 10 * time.Second,
		// One replica: the simulators' streams go as --connect-streams
		// says, on PostgreSQL too (whose default is HTTP/2).
		RunnerStreams: server.RunnerStreamsConnection,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fmt.Errorf("open control plane: %w", err)
	}
	fmt.Println(s.URL())
	if err := s.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

type config struct {
	runners       int
	sims          int
	pods          int
	clients       int
	extra         int
	database      string
	runnerTimeout time.Duration
	reportRunning bool
	// connectStreams: the simulated runners' streams on the Connect
	// procedure, not on connections of their own (simstream).
	connectStreams bool
	cpuprofile     string
	agentPods      int
	runnerMaxPods  int
	runyard        string
	tmpBase        string
	placement      bool
}

func run(args []string) error {
	var cfg config
	fs := flag.NewFlagSet("pods", flag.ExitOnError)
	fs.IntVar(&cfg.runners, "runners", 10000, "simulated runners (20,000 open files per process here: keep it under about 19,000)")
	fs.IntVar(&cfg.sims, "sims", 2, "simulator processes that share the runners")
	fs.IntVar(&cfg.pods, "pods", 30000, "pods created in the measured placement phase")
	fs.IntVar(&cfg.clients, "clients", 32, "concurrent API clients creating pods")
	fs.IntVar(&cfg.extra, "extra", 200, "pods created beyond the capacity left after the measured phase; they must wait")
	fs.StringVar(&cfg.database, "database", "", "PostgreSQL URL: run the placement part on PostgreSQL, in a fresh schema dropped at the end")
	fs.DurationVar(&cfg.runnerTimeout, "runner-timeout", 30*time.Second, "the control plane's runner timeout (runners renew every third)")
	fs.BoolVar(&cfg.reportRunning, "report-running", false, "simulated runners report each pod running, as a real runner does after starting it")
	fs.BoolVar(&cfg.connectStreams, "connect-streams", false, "simulated runners hold their streams on the Connect procedure (HTTP/2, a runner behind a proxy), not on connections of their own")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write the control plane's CPU profile of the measured placement phase to this file")
	fs.IntVar(&cfg.agentPods, "agent-pods", 300, "pods created one after another on a real runner in part two (0 skips it)")
	fs.IntVar(&cfg.runnerMaxPods, "runner-max-pods", 4, "the real runner's --max-pods in part two")
	fs.StringVar(&cfg.runyard, "runyard", "", "runyard binary for part two (default: go build ./cmd/runyard into the temp dir)")
	fs.StringVar(&cfg.tmpBase, "tmp", "", "where temporary directories go (default /dev/shm when it exists, so SQLite writes stay off the disk)")
	fs.BoolVar(&cfg.placement, "placement", true, "run part one (placement)")
	maxTime := fs.Duration("max-time", 20*time.Minute, "the whole run stops after this")
	short := report.ShortSet(fs)
	fs.Parse(args)
	if *short {
		cfg.runners, cfg.sims, cfg.pods, cfg.clients, cfg.extra, cfg.agentPods = 20, 1, 20, 4, 5, 3
	}
	if cfg.runyard == "" {
		cfg.runyard = os.Getenv(report.BinEnv)
	}
	if cfg.runners < 10 || cfg.sims < 1 || cfg.pods < 1 || cfg.clients < 1 || cfg.extra < 0 || cfg.agentPods < 0 {
		return errors.New("--runners must be at least 10; --sims, --pods and --clients positive; --extra and --agent-pods not negative")
	}
	if cfg.tmpBase == "" {
		cfg.tmpBase = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			cfg.tmpBase = "/dev/shm"
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxTime)
	defer cancel()
	// The context ends every phase at the deadline; the watchdog covers
	// whatever might still hang after it.
	watchdog := time.AfterFunc(*maxTime+2*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "pods: still running two minutes after --max-time: aborting")
		os.Exit(3)
	})
	defer watchdog.Stop()

	fmt.Printf("# %s %s/%s GOMAXPROCS=%d NumCPU=%d %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	if cfg.placement {
		if err := runPlacement(ctx, cfg); err != nil {
			return fmt.Errorf("placement: %w", err)
		}
	}
	if cfg.agentPods > 0 {
		if err := runAgentStart(ctx, cfg); err != nil {
			return fmt.Errorf("agent start: %w", err)
		}
	}
	return nil
}

// child is a process this program started.
type child struct {
	cmd  *exec.Cmd
	name string
	log  *os.File
}

// stop asks the process to end with SIGTERM, waits up to grace, then kills
// it.
func (c *child) stop(grace time.Duration) {
	if c == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "pods: %s did not stop within %s: killing it\n", c.name, grace)
		c.cmd.Process.Kill()
		<-done
	}
	if c.log != nil {
		c.log.Close()
	}
}

// tail prints the last lines of a child's log, if it wrote any.
func (c *child) tail(n int) {
	if c == nil || c.log == nil {
		return
	}
	b, err := os.ReadFile(c.log.Name())
	if err != nil || len(b) == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	fmt.Fprintf(os.Stderr, "--- last lines of the %s log (%d lines in all) ---\n", c.name, len(lines))
	for _, l := range lines[max(0, len(lines)-n):] {
		fmt.Fprintln(os.Stderr, l)
	}
}

// startServer starts a control plane child process with its log in dir and
// returns it with its URL.
func startServer(ctx context.Context, dir string, args ...string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find own executable: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, "", fmt.Errorf("create server log: %w", err)
	}
	cmd := exec.Command(self, append([]string{"serve", "--data-dir", filepath.Join(dir, "data")}, args...)...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("server stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start control plane: %w", err)
	}
	c := &child{cmd: cmd, name: "control plane", log: logf}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-lines:
		if u := strings.TrimSpace(l); strings.HasPrefix(u, "http://127.0.0.1:") {
			return c, u, nil
		}
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	c.stop(10 * time.Second)
	c.tail(20)
	return nil, "", errors.New("the control plane did not start")
}

// restClient calls the REST API with the admin key.
type restClient struct {
	hc   *http.Client
	base string
}

func newREST(base string, conns int) *restClient {
	return &restClient{base: base + orgPath, hc: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        2 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     time.Minute,
		},
	}}
}

// statusError is a response with an unexpected status.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// do sends body (JSON, or raw when []byte) and decodes a response with
// status want into out.
func (c *restClient) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %w", method, path, &statusError{res.StatusCode, strings.TrimSpace(string(b))})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// podJSON is the part of a REST pod the benchmark reads.
type podJSON struct {
	Key      string `json:"key"`
	Status   string `json:"status"`
	RunnerID *int64 `json:"runner_id"`
	Reason   string `json:"reason"`
}

type podResponse struct {
	Pod podJSON `json:"pod"`
}

type runnerJSON struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Labels   []string `json:"labels"`
	PodCount int      `json:"pod_count"`
	MaxPods  int      `json:"max_pods"`
}

func (c *restClient) createAgentType(ctx context.Context, id string, command []string) error {
	return c.do(ctx, http.MethodPost, "/agents", map[string]any{"id": id, "name": id, "command": command}, http.StatusCreated, nil)
}

func (c *restClient) runners(ctx context.Context) ([]runnerJSON, error) {
	var out struct {
		Runners []runnerJSON `json:"runners"`
	}
	if err := c.do(ctx, http.MethodGet, "/runners", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Runners, nil
}

// bearer adds the admin key to every Connect request.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// createRunners creates n runners named name(i) through the Connect API with
// workers concurrent calls and returns their exchange tokens.
func createRunners(ctx context.Context, base string, n, workers int, name func(int) string) ([]string, error) {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer hc.CloseIdleConnections()
	client := gitpodv1connect.NewRunnerServiceClient(hc, base, connect.WithInterceptors(bearer(adminToken)))
	tokens := make([]string, n)
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				res, err := client.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{
					Name: name(i), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("create runner %d: %w", i, err); cancel() })
					return
				}
				tokens[i] = res.Msg.GetExchangeToken()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return tokens, ctx.Err()
}

// postgresSchema creates a fresh schema and returns the URL that uses it and
// a function that drops it.
func postgresSchema(ctx context.Context, dbURL string) (string, func(), error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("parse postgres URL: %w", err)
	}
	if h := u.Hostname(); h != "localhost" && !strings.HasPrefix(h, "127.") && h != "::1" {
		return "", nil, fmt.Errorf("--database must be on loopback, got host %q", h)
	}
	admin, err := sql.Open("pgx", dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("open postgres: %w", err)
	}
	schema := "bench_pods_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		// Dropped even after the deadline: a fresh context, bounded.
		dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "pods: drop schema %s: %v\n", schema, err)
		}
		admin.Close()
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
