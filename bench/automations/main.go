// Command automations measures environment automations end to end: a
// control plane and a real runner daemon, each a child process of this
// program (the same code as `runyard server` and `runyard runner`: the
// server package's Open and Serve on SQLite in a temporary directory, the
// runner package's New and Run), an environment created through
// gitpod.v1.EnvironmentService on the runner's default class, and the
// automations created and started through EnvironmentAutomationService.
// Each figure is printed beside its baseline from the same run.
//
//  1. StartTask → the step's process running: the task's command writes its
//     execution ID into a FIFO this program reads; the time from just before
//     the StartTask call to the line's arrival, p50/p99 over --tasks
//     executions run one after another (each waits until the control plane
//     has it SUCCEEDED), beside a bare fork/exec of the same shell command
//     measured the same way.
//
//  2. Log throughput: a task writes --log-bytes as fast as it can and a
//     client follows GET status.logUrl?follow=1 with the admin token; MB/s
//     end to end, beside the same command read straight from a pipe.
//
//  3. --services services with ready probes on the runner: the time from the
//     first StartService call until ListServices has all of them RUNNING,
//     then the runner process's CPU while they idle for --idle.
//
//  4. Task executions of many steps: dependency chains (--chains) and a
//     1→W→1 fan-out (--fanout) of `true`; the control plane's and the
//     runner's CPU per step and StartTask → SUCCEEDED, beside the same
//     commands forked in the same shape and, with --process-compose, that
//     binary running the same graph (executions.go).
//
//     go run ./bench/automations
//     go run ./bench/automations --tasks 200 --services 0 --log-runs 0
//     go run ./bench/automations --cpuprofile /tmp/auto   # writes /tmp/auto.{server,runner}.N.pprof per part
//
// Everything stays on 127.0.0.1; child processes, the processes the runner
// started and the temporary directory are removed at the end; --max-time
// bounds the run. It exits 1 when a request fails or a check does not hold.
// bench/README.md keeps the figures.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/bench/internal/report"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/server"
)

// adminToken is the bootstrap admin key of the benchmarked control plane.
const adminToken = "ryd_bench_automations_admin_token_0123"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			exit(serve(os.Args[2:]))
			return
		case "runner":
			exit(runRunner(os.Args[2:]))
			return
		}
	}
	exit(run(os.Args[1:]))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "automations:", err)
		os.Exit(1)
	}
}

// profileOnSignals makes SIGUSR1 start a CPU profile into prefix.N.pprof
// (N counting from 1) and SIGUSR2 stop it, so that a profile covers exactly
// one measured part.
func profileOnSignals(prefix string) {
	if prefix == "" {
		return
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f *os.File
		n := 0
		for s := range sig {
			switch {
			case s == syscall.SIGUSR1 && f == nil:
				n++
				var err error
				if f, err = os.Create(fmt.Sprintf("%s.%d.pprof", prefix, n)); err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "start cpu profile:", err)
				}
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
	}()
}

// serve runs a control plane until SIGTERM and prints its URL first.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("data-dir", "", "data dir")
	cpuprofile := fs.String("cpuprofile", "", "CPU profile prefix: SIGUSR1 starts PREFIX.N.pprof, SIGUSR2 stops it")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	profileOnSignals(*cpuprofile)
	s, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: *dir, BootstrapToken: adminToken, ShutdownTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
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

// runRunner runs a runner daemon until SIGTERM, as `runyard runner` does
// (default ready interval, info-level log on stderr) but with a short stop
// grace so that the benchmark ends quickly.
func runRunner(args []string) error {
	fs := flag.NewFlagSet("runner", flag.ExitOnError)
	srv := fs.String("server", "", "control plane URL")
	token := fs.String("exchange-token", "", "exchange token")
	stateDir := fs.String("state-dir", "", "state dir")
	cpuprofile := fs.String("cpuprofile", "", "CPU profile prefix: SIGUSR1 starts PREFIX.N.pprof, SIGUSR2 stops it")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	profileOnSignals(*cpuprofile)
	level := new(slog.LevelVar)
	d, err := runner.New(ctx, runner.Config{
		Server: *srv, ExchangeToken: *token, StateDir: *stateDir, Name: "bench-runner", Version: "bench",
		StopGrace: 5 * time.Second, Level: level,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
}

type config struct {
	tasks        int
	warmup       int
	services     int
	startClients int
	idle         time.Duration
	logBytes     int64
	logRuns      int
	cpuprofile   string
	tmpBase      string
	// Part 4: chain lengths, the fan-out's width, runs per shape and the
	// process-compose binary to compare with.
	chains         []int
	fanout         int
	execRuns       int
	processCompose string
}

func run(args []string) error {
	var cfg config
	fs := flag.NewFlagSet("automations", flag.ExitOnError)
	fs.IntVar(&cfg.tasks, "tasks", 1000, "task executions measured one after another in part 1 (0 skips it)")
	fs.IntVar(&cfg.warmup, "warmup", 20, "unrecorded executions (and fork/execs) before part 1")
	fs.IntVar(&cfg.logRuns, "log-runs", 5, "log throughput runs in part 2 (0 skips it)")
	fs.Int64Var(&cfg.logBytes, "log-bytes", 16_000_000, "bytes the task writes per log run; must stay under the runner's 16 MiB log cap")
	fs.IntVar(&cfg.services, "services", 500, "services with ready probes started in part 3 (0 skips it)")
	fs.IntVar(&cfg.startClients, "start-clients", 8, "concurrent StartService calls in part 3")
	fs.DurationVar(&cfg.idle, "idle", 10*time.Second, "how long the runner's CPU is measured while the services idle")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write CPU profiles of the control plane and the runner for each part to PREFIX.server.N.pprof and PREFIX.runner.N.pprof")
	fs.StringVar(&cfg.tmpBase, "tmp", "", "where the temporary directory goes (default /dev/shm when it exists, so SQLite writes stay off the disk)")
	chains := fs.String("chains", "25,50,100,200", "dependency chains measured in part 4, by length (empty skips them)")
	fs.IntVar(&cfg.fanout, "fanout", 98, "width of the 1->W->1 fan-out in part 4 (0 skips it)")
	fs.IntVar(&cfg.execRuns, "exec-runs", 3, "measured runs of each part 4 shape, after one unrecorded")
	fs.StringVar(&cfg.processCompose, "process-compose", os.Getenv("RUNYARD_BENCH_PROCESS_COMPOSE"), "process-compose binary run beside part 4 on the same shapes (empty skips it)")
	maxTime := fs.Duration("max-time", 20*time.Minute, "the whole run stops after this")
	short := report.ShortSet(fs)
	fs.Parse(args)
	if *short {
		cfg.tasks, cfg.warmup, cfg.logRuns, cfg.logBytes, cfg.services, cfg.idle = 5, 2, 1, 2_000_000, 5, time.Second
		*chains, cfg.fanout, cfg.execRuns = "3,6", 4, 1
	}
	var err error
	if cfg.chains, err = parseInts("--chains", *chains); err != nil {
		return err
	}
	if cfg.fanout < 0 || cfg.execRuns < 1 {
		return errors.New("--fanout must not be negative and --exec-runs must be positive")
	}
	if cfg.tasks < 0 || cfg.warmup < 0 || cfg.services < 0 || cfg.logRuns < 0 || cfg.startClients < 1 || cfg.idle <= 0 {
		return errors.New("--tasks, --warmup, --services and --log-runs must not be negative; --start-clients and --idle must be positive")
	}
	if cfg.logBytes < 1<<20 || cfg.logBytes > logCap-4096 {
		return fmt.Errorf("--log-bytes must be between 1 MiB and %d (the runner's log cap of %d bytes, less room for its own lines)", logCap-4096, logCap)
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
		fmt.Fprintln(os.Stderr, "automations: still running two minutes after --max-time: aborting")
		os.Exit(3)
	})
	defer watchdog.Stop()

	fmt.Printf("# %s %s/%s GOMAXPROCS=%d NumCPU=%d %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	b, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.close(err != nil); err == nil {
			err = cerr
		}
	}()
	if cfg.tasks > 0 {
		if err = runTasks(ctx, b, cfg); err != nil {
			return fmt.Errorf("tasks: %w", err)
		}
	}
	if cfg.logRuns > 0 {
		if err = runLogs(ctx, b, cfg); err != nil {
			return fmt.Errorf("logs: %w", err)
		}
	}
	if cfg.services > 0 {
		if err = runServices(ctx, b, cfg); err != nil {
			return fmt.Errorf("services: %w", err)
		}
	}
	if len(cfg.chains) > 0 || cfg.fanout > 0 {
		if err = runExecutions(ctx, b, cfg); err != nil {
			return fmt.Errorf("executions: %w", err)
		}
	}
	return nil
}

// logCap is the runner's default log cap per run (automations.Config.LogCap).
const logCap = 16 << 20

// bench is the running setup: a control plane, a runner, and the FIFO the
// commands write to.
type bench struct {
	cfg      config
	dir      string
	srv      *child
	runner   *child
	base     string
	api      *api
	runnerID string
	class    string
	// lines carries what commands write into the ready FIFO.
	lines <-chan ready
	fifo  string
	// goFIFO releases the log task (part 2); this program holds it open
	// for reading and writing, so writes never block.
	goFIFO string
	goFile *os.File
	fifoF  *os.File
	shell  string
	// profiles counts the CPU profiles the children wrote.
	profiles int
}

// ready is a line read from the FIFO: the key a process wrote, and when.
type ready struct {
	key string
	at  time.Time
}

// start creates the temporary directory and the FIFOs, starts the control
// plane and the runner, and waits until the runner offers its class.
func start(ctx context.Context, cfg config) (b *bench, err error) {
	dir, err := os.MkdirTemp(cfg.tmpBase, "runyard-bench-automations-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	b = &bench{cfg: cfg, dir: dir, fifo: filepath.Join(dir, "ready.fifo"), goFIFO: filepath.Join(dir, "go.fifo")}
	defer func() {
		if err != nil {
			b.close(true)
			b = nil
		}
	}()
	if strings.ContainsAny(dir, `'"\$`+"`") {
		return nil, fmt.Errorf("temp dir %q holds characters the commands cannot quote", dir)
	}
	// The runner runs commands with bash where it exists, sh otherwise;
	// the baselines use the same shell.
	b.shell = "/bin/sh"
	if p, err := exec.LookPath("bash"); err == nil {
		b.shell = p
	}
	for _, f := range []string{b.fifo, b.goFIFO} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			return nil, fmt.Errorf("make fifo: %w", err)
		}
	}
	// Read and write, so that the open does not wait for a writer and the
	// reads do not end when a writer closes.
	if b.fifoF, err = os.OpenFile(b.fifo, os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	if b.goFile, err = os.OpenFile(b.goFIFO, os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	lines := make(chan ready, 64)
	b.lines = lines
	go func() {
		rd := bufio.NewReader(b.fifoF)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			lines <- ready{key: strings.TrimSpace(l), at: time.Now()}
		}
	}()

	var profile []string
	if cfg.cpuprofile != "" {
		profile = []string{"--cpuprofile", cfg.cpuprofile + ".server"}
	}
	if b.srv, b.base, err = startServer(ctx, dir, profile...); err != nil {
		return nil, err
	}
	b.api = newAPI(b.base)
	cr, err := b.api.runners.CreateRunner(ctx, req(&gitpodv1.CreateRunnerRequest{
		Name: "bench-runner", Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
	if err != nil {
		return nil, fmt.Errorf("create runner: %w", err)
	}
	b.runnerID = cr.Msg.GetRunner().GetRunnerId()
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	args := []string{"runner", "--server", b.base, "--exchange-token", cr.Msg.GetExchangeToken(), "--state-dir", filepath.Join(dir, "runner-state")}
	if cfg.cpuprofile != "" {
		args = append(args, "--cpuprofile", cfg.cpuprofile+".runner")
	}
	if b.runner, err = startChild(dir, "runner", self, args...); err != nil {
		return nil, err
	}
	err = waitFor(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		res, err := b.api.envs.ListEnvironmentClasses(ctx, req(&gitpodv1.ListEnvironmentClassesRequest{
			Filter: &gitpodv1.ListEnvironmentClassesRequest_Filter{RunnerIds: []string{b.runnerID}},
		}))
		if err != nil {
			return false, err
		}
		for _, c := range res.Msg.GetEnvironmentClasses() {
			if c.GetEnabled() {
				b.class = c.GetId()
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the runner's class did not become available: %w", err)
	}
	fmt.Printf("control plane %s (pid %d), runner %s (pid %d), class %s, shell %s, temp dir %s\n",
		b.base, b.srv.cmd.Process.Pid, b.runnerID, b.runner.cmd.Process.Pid, b.class, b.shell, dir)
	return b, nil
}

// createEnv creates an empty environment on the runner's class and waits
// until it runs.
func (b *bench) createEnv(ctx context.Context) (string, error) {
	res, err := b.api.envs.CreateEnvironment(ctx, req(&gitpodv1.CreateEnvironmentRequest{Spec: &gitpodv1.EnvironmentSpec{
		DesiredPhase: gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING,
		Machine:      &gitpodv1.EnvironmentSpec_Machine{Class: b.class},
	}}))
	if err != nil {
		return "", fmt.Errorf("create environment: %w", err)
	}
	id := res.Msg.GetEnvironment().GetId()
	var last *gitpodv1.Environment
	err = waitFor(ctx, time.Minute, 20*time.Millisecond, func() (bool, error) {
		res, err := b.api.envs.GetEnvironment(ctx, req(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
		if err != nil {
			return false, err
		}
		last = res.Msg.GetEnvironment()
		return last.GetStatus().GetPhase() == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, nil
	})
	if err != nil {
		return "", fmt.Errorf("environment %s did not run (status %v): %w", id, last.GetStatus(), err)
	}
	return id, nil
}

// profile starts (on) or stops the children's CPU profiles and says where
// they go.
func (b *bench) profile(on bool) {
	if b.cfg.cpuprofile == "" {
		return
	}
	sig := syscall.SIGUSR2
	if on {
		sig = syscall.SIGUSR1
		b.profiles++
	}
	b.srv.cmd.Process.Signal(sig)
	b.runner.cmd.Process.Signal(sig)
	if !on {
		// Give the children a moment to write the profiles out.
		time.Sleep(200 * time.Millisecond)
		fmt.Printf("  cpu profiles: %s.server.%d.pprof %s.runner.%d.pprof\n", b.cfg.cpuprofile, b.profiles, b.cfg.cpuprofile, b.profiles)
	}
}

// close stops the runner (which stops what it runs), kills whatever it
// left, stops the control plane and removes the temporary directory.
func (b *bench) close(failed bool) error {
	var err error
	if b.runner != nil {
		// Stopping 500 services takes a while: each gets SIGTERM, and its
		// session is swept.
		b.runner.stop(90 * time.Second)
		if failed {
			b.runner.tail(30)
		}
	}
	if b.api != nil {
		b.api.hc.CloseIdleConnections()
	}
	if b.srv != nil {
		b.srv.stop(30 * time.Second)
		if failed {
			b.srv.tail(30)
		}
	}
	if n := sweep(b.dir); n > 0 {
		err = fmt.Errorf("killed %d processes the runner left behind", n)
		fmt.Fprintln(os.Stderr, "automations:", err)
	}
	if b.fifoF != nil {
		b.fifoF.Close()
	}
	if b.goFile != nil {
		b.goFile.Close()
	}
	if rerr := os.RemoveAll(b.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove temp dir: %w", rerr)
	}
	return err
}

// sweep kills the processes whose command line names dir: every command
// of this benchmark does (the FIFO's path, or argv[0] set to a path in
// it). The runner and the control plane, which name it too, must have
// exited. It returns how many it killed.
func sweep(dir string) int {
	self := os.Getpid()
	n := 0
	for range 3 {
		found := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == self {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !strings.Contains(string(b), dir) {
				continue
			}
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				found++
			}
		}
		if found == 0 {
			break
		}
		n += found
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

// child is a process this program started.
type child struct {
	cmd  *exec.Cmd
	name string
	log  *os.File
	done chan struct{}
}

// startChild starts a process with its output in dir/NAME.log.
func startChild(dir, name, bin string, args ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, name: name, log: logf, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	return c, nil
}

// stop asks the process to end with SIGTERM, waits up to grace, then kills
// it.
func (c *child) stop(grace time.Duration) {
	if c == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "automations: %s did not stop within %s: killing it\n", c.name, grace)
		c.cmd.Process.Kill()
		<-c.done
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
	c := &child{cmd: cmd, name: "control plane", log: logf, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(c.done)
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

// api holds Connect clients of the control plane with the admin key.
type api struct {
	hc      *http.Client
	envs    gitpodv1connect.EnvironmentServiceClient
	autos   gitpodv1connect.EnvironmentAutomationServiceClient
	runners gitpodv1connect.RunnerServiceClient
}

func newAPI(base string) *api {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
	}}
	opt := connect.WithInterceptors(bearer(adminToken))
	return &api{
		hc:      hc,
		envs:    gitpodv1connect.NewEnvironmentServiceClient(hc, base, opt),
		autos:   gitpodv1connect.NewEnvironmentAutomationServiceClient(hc, base, opt),
		runners: gitpodv1connect.NewRunnerServiceClient(hc, base, opt),
	}
}

func req[T any](msg *T) *connect.Request[T] { return connect.NewRequest(msg) }

// bearer adds the admin key to every Connect request.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// waitFor polls check every poll until it returns true, fails, or timeout
// passes.
func waitFor(ctx context.Context, timeout, poll time.Duration, check func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not within %s", timeout)
		case <-time.After(poll):
		}
	}
}

// awaitLine waits for key's line in the FIFO and returns its arrival;
// lines of other keys (none expected) are skipped.
func (b *bench) awaitLine(ctx context.Context, key string) (time.Time, error) {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-b.lines:
			if l.key == key {
				return l.at, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("no line %q in the FIFO within 60s", key)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitExecution waits until the control plane has execution id in a final
// phase, polling every poll, and fails unless it SUCCEEDED.
func (b *bench) waitExecution(ctx context.Context, id string, poll time.Duration) error {
	var last *gitpodv1.TaskExecution
	err := waitFor(ctx, time.Minute, poll, func() (bool, error) {
		res, err := b.api.autos.GetTaskExecution(ctx, req(&gitpodv1.GetTaskExecutionRequest{Id: id}))
		if err != nil {
			return false, err
		}
		last = res.Msg.GetTaskExecution()
		switch last.GetStatus().GetPhase() {
		case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED:
			return true, nil
		case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED, gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED:
			return false, fmt.Errorf("execution %s ended %s: %s", id, last.GetStatus().GetPhase(), last.GetStatus().GetFailureMessage())
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("execution %s (status %v): %w", id, last.GetStatus(), err)
	}
	return nil
}
