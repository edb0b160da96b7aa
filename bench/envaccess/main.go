// Command envaccess measures sessions into an environment end to end: a
// `runyard server` and a `runyard runner` (this repository's binary, built
// at the start) on loopback, one environment, then
//
//  1. exec round trip: the exec WebSocket with `true` (dial, the control
//     plane's OpenSession on the runner's stream, the runner's Session
//     stream back, fork/exec, exit status back), one after another, p50 and
//     p99, beside a local fork/exec of `true`; and the same through the CLI
//     process (`runyard environments exec ENV -- true`), which adds the
//     CLI's own start and its two identity calls;
//
//  2. port forward: `runyard environments port-forward` to a sink and an
//     echo server on loopback; throughput of one connection and the echo
//     round trip of one byte on an open connection, p50 and p99, each beside
//     a direct loopback connection to the same server;
//
//  3. SSH keystroke echo: through the control plane's SSH server (--ssh-listen,
//     golang.org/x/crypto/ssh's client), a shell session with a terminal
//     running `stty raw -echo; exec cat` (each key goes to the program, which
//     writes it back, as an editor or a shell's line editor does): the time
//     from sending one byte to reading it back, p50 and p99, beside the same
//     program in a local PTY.
//
//     go run ./bench/envaccess
//     go run ./bench/envaccess --execs 500 --bytes 512MiB
//
// Everything stays on 127.0.0.1; processes and temporary directories are
// removed at the end; --max-time bounds the run. It exits 1 when a step
// fails. bench/README.md keeps the figures.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/runyard/runyard/bench/internal/report"
)

const adminToken = "ryd_bench_envaccess_admin_token_0123456789"

func main() {
	if len(os.Args) == 3 && os.Args[1] == relayArg {
		if err := relay(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "envaccess relay:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "envaccess:", err)
		os.Exit(1)
	}
}

type config struct {
	execs, cliExecs, pings int
	bytes                  int64
	maxTime                time.Duration
	// throughputOnly skips everything but the throughput figures, which
	// are taken rounds times, direct and forwarded in turn.
	throughputOnly bool
	rounds         int
}

func run() error {
	var cfg config
	flag.IntVar(&cfg.execs, "execs", 300, "exec round trips through the WebSocket")
	flag.IntVar(&cfg.cliExecs, "cli-execs", 30, "exec round trips through the CLI process")
	flag.IntVar(&cfg.pings, "pings", 2000, "one-byte echo round trips per connection kind (and keystrokes per SSH figure)")
	flag.Int64Var(&cfg.bytes, "bytes", 256<<20, "bytes sent through one connection per throughput figure")
	flag.DurationVar(&cfg.maxTime, "max-time", 10*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.throughputOnly, "throughput-only", false, "measure only the port forward's throughput (no exec, echo or SSH figures)")
	flag.IntVar(&cfg.rounds, "rounds", 1, "throughput figures taken this many times, direct and forwarded in turn (each round's pair printed)")
	short := report.Short()
	flag.Parse()
	if *short {
		cfg.execs, cfg.cliExecs, cfg.pings, cfg.bytes = 5, 2, 50, 4<<20
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.maxTime)
	defer cancel()

	tmp, err := os.MkdirTemp("", "runyard-bench-envaccess-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := report.RunyardBinary(tmp)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "RUNYARD_BOOTSTRAP_TOKEN="+adminToken, "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))

	port, err := freePort()
	if err != nil {
		return err
	}
	url := "http://" + port
	sshPort, err := freePort()
	if err != nil {
		return err
	}
	srv := exec.CommandContext(ctx, bin, "server", "--listen", port, "--ssh-listen", sshPort, "--data-dir", filepath.Join(tmp, "server"))
	srv.Env = env
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitHealthy(ctx, url); err != nil {
		return err
	}
	cli := func(args ...string) (string, error) {
		c := exec.CommandContext(ctx, bin, append([]string{"--server", url, "--token", adminToken}, args...)...)
		c.Env, c.Dir = env, tmp
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("runyard %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
			}
			return "", err
		}
		return string(out), nil
	}
	var created struct {
		Runner        struct{ RunnerID string }
		ExchangeToken string
	}
	out, err := cli("runners", "create", "--name", "bench-host", "--provider", "linux-host", "-o", "json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		return err
	}
	rn := exec.CommandContext(ctx, bin, "runner", "--server", url, "--exchange-token", created.ExchangeToken, "--state-dir", filepath.Join(tmp, "runner"))
	rn.Env, rn.Stderr = env, io.Discard
	if err := rn.Start(); err != nil {
		return err
	}
	defer func() { rn.Process.Signal(os.Interrupt); rn.Wait() }()
	var envID string
	for range 300 {
		out, err = cli("environments", "create", "--name", "bench", "--wait")
		if err == nil {
			envID = regexp.MustCompile(`[0-9a-f-]{36}`).FindString(out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if envID == "" {
		return fmt.Errorf("create an environment: %v", err)
	}
	fmt.Printf("envaccess: control plane %s (SQLite), one runner, environment %s\n", url, envID)

	if cfg.throughputOnly {
		return throughputRounds(ctx, cfg, bin, env, tmp, url, envID, []int{srv.Process.Pid, rn.Process.Pid})
	}

	// Part 1: exec round trips.
	local := make([]time.Duration, 0, cfg.execs)
	for range cfg.execs {
		t0 := time.Now()
		if err := exec.Command("true").Run(); err != nil {
			return err
		}
		local = append(local, time.Since(t0))
	}
	wsURL := "ws://" + port + "/api/v1/orgs/default/environments/" + envID + "/exec?command=true"
	for range 10 { // warm up
		if err := wsExec(ctx, wsURL); err != nil {
			return err
		}
	}
	remote := make([]time.Duration, 0, cfg.execs)
	for range cfg.execs {
		t0 := time.Now()
		if err := wsExec(ctx, wsURL); err != nil {
			return err
		}
		remote = append(remote, time.Since(t0))
	}
	viaCLI := make([]time.Duration, 0, cfg.cliExecs)
	for range cfg.cliExecs {
		t0 := time.Now()
		if _, err := cli("environments", "exec", envID, "--", "true"); err != nil {
			return err
		}
		viaCLI = append(viaCLI, time.Since(t0))
	}
	fmt.Printf("exec true    local fork/exec   p50 %8s  p99 %8s  (n=%d)\n", pct(local, 50), pct(local, 99), len(local))
	fmt.Printf("exec true    WebSocket         p50 %8s  p99 %8s  (n=%d)\n", pct(remote, 50), pct(remote, 99), len(remote))
	fmt.Printf("exec true    CLI process       p50 %8s  p99 %8s  (n=%d)\n", pct(viaCLI, 50), pct(viaCLI, 99), len(viaCLI))
	report.Emit(report.Figure{Bench: "envaccess", Name: "exec true through the WebSocket, p50", Value: ms(pct(remote, 50)), Unit: "ms",
		Baseline: ms(pct(local, 50)), BaselineName: "local fork/exec"}, nil)
	report.Emit(report.Figure{Bench: "envaccess", Name: "exec true through the CLI process, p50", Value: ms(pct(viaCLI, 50)), Unit: "ms",
		Baseline: ms(pct(local, 50)), BaselineName: "local fork/exec"}, nil)

	// Part 2: port forward.
	sink, err := serve(func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
	if err != nil {
		return err
	}
	defer sink.Close()
	echo, err := serve(func(c net.Conn) { io.Copy(c, c); c.Close() })
	if err != nil {
		return err
	}
	defer echo.Close()
	fwdSink, fwdPid, stopSink, err := portForward(ctx, bin, env, tmp, url, envID, sink.Addr())
	if err != nil {
		return err
	}
	defer stopSink()
	fwdEcho, _, stopEcho, err := portForward(ctx, bin, env, tmp, url, envID, echo.Addr())
	if err != nil {
		return err
	}
	defer stopEcho()
	chain, chainPids, stopChain, err := relayChain(ctx, sink.Addr().String())
	if err != nil {
		return err
	}
	defer stopChain()
	rates, err := throughputPair(sink.Addr().String(), chain, fwdSink, cfg.bytes, chainPids, []int{srv.Process.Pid, rn.Process.Pid, fwdPid})
	if err != nil {
		return err
	}
	emitThroughput(rates)
	var echoes []time.Duration // direct, forwarded
	for _, tc := range []struct{ name, addr string }{{"direct     ", echo.Addr().String()}, {"forwarded  ", fwdEcho}} {
		d, err := pingPong(tc.addr, cfg.pings)
		if err != nil {
			return fmt.Errorf("echo %s: %w", strings.TrimSpace(tc.name), err)
		}
		echoes = append(echoes, pct(d, 50))
		fmt.Printf("port-forward %s  echo 1 byte      p50 %8s  p99 %8s  (n=%d)\n", tc.name, pct(d, 50), pct(d, 99), len(d))
	}
	// The target is at most 1 ms added to the direct round trip.
	added := report.AtMost(ms(echoes[0]) + 1)
	report.Emit(report.Figure{Bench: "envaccess", Name: "port-forward echo 1 byte, p50", Value: ms(echoes[1]), Unit: "ms",
		Baseline: ms(echoes[0]), BaselineName: "direct"}, &added)
	for _, tc := range []struct{ name, addr string }{{"direct     ", echo.Addr().String()}, {"forwarded  ", fwdEcho}} {
		d, err := connects(tc.addr, 100)
		if err != nil {
			return fmt.Errorf("connect %s: %w", strings.TrimSpace(tc.name), err)
		}
		fmt.Printf("port-forward %s  connect+echo     p50 %8s  p99 %8s  (n=%d, a new connection each)\n", tc.name, pct(d, 50), pct(d, 99), len(d))
	}

	// Part 3: SSH keystroke echo.
	localPTY, err := ptyEcho(cfg.pings)
	if err != nil {
		return fmt.Errorf("local PTY echo: %w", err)
	}
	overSSH, err := sshEcho(ctx, url, sshPort, envID, cfg.pings)
	if err != nil {
		return fmt.Errorf("SSH echo: %w", err)
	}
	fmt.Printf("keystroke    local PTY         p50 %8s  p99 %8s  (n=%d)\n", pct(localPTY, 50), pct(localPTY, 99), len(localPTY))
	fmt.Printf("keystroke    SSH shell         p50 %8s  p99 %8s  (n=%d)\n", pct(overSSH, 50), pct(overSSH, 99), len(overSSH))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wsExec runs `true` through the exec WebSocket and waits for its exit.
func wsExec(ctx context.Context, u string) error {
	h := http.Header{"Authorization": {"Bearer " + adminToken}}
	// A connection of its own: a kept-alive one may have been closed by
	// the server meanwhile, and a WebSocket handshake is not retried.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: hc})
	if err != nil {
		return fmt.Errorf("dial exec: %w", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"eof"}`)); err != nil {
		return err
	}
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("exec ended without an exit: %w", err)
		}
		if typ == websocket.MessageText && strings.Contains(string(b), `"exit"`) {
			if !strings.Contains(string(b), `"exit_code":0`) {
				return fmt.Errorf("exec: %s", b)
			}
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
}

func portForward(ctx context.Context, bin string, env []string, dir, url, envID string, target net.Addr) (string, int, func(), error) {
	remote := target.(*net.TCPAddr).Port
	c := exec.CommandContext(ctx, bin, "--server", url, "--token", adminToken, "environments", "port-forward", envID, fmt.Sprintf("0:%d", remote))
	c.Env, c.Dir, c.Stderr = env, dir, os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := c.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { c.Process.Kill(); c.Wait() }
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`from (\S+) ->`).FindStringSubmatch(line)
	if m == nil {
		stop()
		return "", 0, nil, fmt.Errorf("port-forward printed %q", line)
	}
	return m[1], c.Process.Pid, stop, nil
}

func serve(handle func(net.Conn)) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln, nil
}

// throughputPair measures one connection's throughput direct to sink,
// through the bare relay chain, and through the forward fwd; it returns
// the three MiB/s figures. It also prints the CPU time the processes of
// pids (the control plane, the runner, the CLI's port forward) took per
// GiB forwarded, and the bare relays (chainPids) per GiB relayed.
func throughputPair(sink, chain, fwd string, n int64, chainPids, pids []int) ([]float64, error) {
	var rates []float64 // direct, bare chain, forwarded
	for _, tc := range []struct{ name, addr string }{{"direct     ", sink}, {"bare chain ", chain}, {"forwarded  ", fwd}} {
		relays := pids
		if tc.addr == chain {
			relays = chainPids
		}
		cpu0, own0 := cpuTime(relays), cpuTime([]int{os.Getpid()})
		mbps, err := throughput(tc.addr, n)
		if err != nil {
			return nil, fmt.Errorf("throughput %s: %w", strings.TrimSpace(tc.name), err)
		}
		rates = append(rates, mbps)
		fmt.Printf("port-forward %s  throughput %8.1f MiB/s  (%d MiB through one connection)\n", tc.name, mbps, n>>20)
		perGiB := func(d time.Duration) float64 { return d.Seconds() * float64(1<<30) / float64(n) }
		own := perGiB(cpuTime([]int{os.Getpid()}) - own0)
		switch {
		case tc.addr == fwd && cpu0 >= 0:
			fmt.Printf("port-forward %s  CPU %.2f s per GiB in the control plane, runner and CLI (%.2f s in the sender and sink)\n", tc.name, perGiB(cpuTime(relays)-cpu0), own)
		case tc.addr == chain && cpu0 >= 0:
			fmt.Printf("port-forward %s  CPU %.2f s per GiB in the three relays (%.2f s in the sender and sink)\n", tc.name, perGiB(cpuTime(relays)-cpu0), own)
		default:
			fmt.Printf("port-forward %s  CPU %.2f s per GiB in the sender and sink\n", tc.name, own)
		}
	}
	return rates, nil
}

// cpuTime is the user and system CPU time of the processes pids so far
// (from /proc, in clock ticks of 10 ms); -1 when one is unreadable.
func cpuTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// pid (comm) state ...: utime and stime are the 12th and 13th
		// fields after the command's closing parenthesis.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		for _, v := range f[11:13] {
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			ticks += t
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// throughputRounds is --throughput-only: the throughput pair, rounds times,
// each round's ratio printed, for comparisons on a shared machine where
// only figures of the same moment compare.
func throughputRounds(ctx context.Context, cfg config, bin string, env []string, tmp, url, envID string, pids []int) error {
	sink, err := serve(func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
	if err != nil {
		return err
	}
	defer sink.Close()
	fwd, fwdPid, stop, err := portForward(ctx, bin, env, tmp, url, envID, sink.Addr())
	if err != nil {
		return err
	}
	defer stop()
	chain, chainPids, stopChain, err := relayChain(ctx, sink.Addr().String())
	if err != nil {
		return err
	}
	defer stopChain()
	for i := range max(cfg.rounds, 1) {
		rates, err := throughputPair(sink.Addr().String(), chain, fwd, cfg.bytes, chainPids, append(pids, fwdPid))
		if err != nil {
			return err
		}
		fmt.Printf("round %d: forwarded / direct %.0f%%, bare relay chain / direct %.0f%%, forwarded / bare relay chain %.0f%%\n",
			i+1, 100*rates[2]/rates[0], 100*rates[1]/rates[0], 100*rates[2]/rates[1])
		if i == max(cfg.rounds, 1)-1 {
			emitThroughput(rates)
		}
	}
	return nil
}

// emitThroughput reports the forwarded throughput beside the direct one
// (target: at least half) and beside the bare relay chain. The target is
// judged only when the bare chain met it in the same round: on a machine
// where three plain splice relays cannot carry half of a direct
// connection, no forwarder with the same three hops can, and the miss is
// the machine's (printed, not failed).
func emitThroughput(rates []float64) {
	direct, chain, fwd := rates[0], rates[1], rates[2]
	var half *report.Target
	if chain >= direct/2 {
		t := report.RatioAtLeast(0.5)
		half = &t
	} else {
		fmt.Printf("port-forward target (>= 50%% of direct) not judged: the bare relay chain reached %.0f%% of direct on this machine\n", 100*chain/direct)
	}
	report.Emit(report.Figure{Bench: "envaccess", Name: "port-forward throughput, one connection", Value: fwd, Unit: "MiB/s",
		Baseline: direct, BaselineName: "direct"}, half)
	report.Emit(report.Figure{Bench: "envaccess", Name: "port-forward throughput beside the bare relay chain", Value: fwd, Unit: "MiB/s",
		Baseline: chain, BaselineName: "three bare splice relays"}, nil)
}

// throughput sends n bytes through one connection to a sink and returns
// MiB/s, counted until the sink has read everything (the close completes).
func throughput(addr string, n int64) (float64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	t0 := time.Now()
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	// The sink closes once it read everything: wait for that.
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
	return float64(n) / (1 << 20) / time.Since(t0).Seconds(), nil
}

func pingPong(addr string, n int) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b := []byte{'x'}
	out := make([]time.Duration, 0, n)
	for i := range n + 20 {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		if i >= 20 {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

func connects(addr string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	b := []byte{'x'}
	for range n {
		t0 := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(b); err != nil {
			c.Close()
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			c.Close()
			return nil, err
		}
		out = append(out, time.Since(t0))
		c.Close()
	}
	return out, nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Microsecond)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHealthy(ctx context.Context, url string) error {
	for range 300 {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the control plane did not become healthy")
}
