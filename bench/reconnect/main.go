// Command reconnect measures how soon a real runner is back after the control
// plane restarts. It builds runyard, runs `runyard server` and one
// `runyard runner` as child processes on loopback, then restarts the server
// --restarts times in a row on the same port and data dir (SIGTERM and SIGKILL
// in turn). For each restart it records the time from the new server's first
// healthy /healthz to the runner's first ready /readyz (its stream is back),
// and prints p50 and max beside a baseline from the same run: a bare loopback
// TCP connect. All traffic stays on 127.0.0.1; the run stops by itself.
//
//	go run ./bench/reconnect --restarts 10
//	go run ./bench/reconnect --database "$RUNYARD_TEST_POSTGRES_URL"
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
)

const adminToken = "ryd_bench_reconnect_admin_token_0123456789"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reconnect:", err)
		os.Exit(1)
	}
}

func run() error {
	restarts := flag.Int("restarts", 10, "control-plane restarts in a row")
	database := flag.String("database", "", "PostgreSQL URL for the server (default: SQLite in the data dir)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up on one restart after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		*restarts = 2
	}

	dir, err := os.MkdirTemp("", "runyard-bench-reconnect-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := report.RunyardBinary(dir)
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	healthAddr, err := freeAddr()
	if err != nil {
		return err
	}
	url := "http://" + addr
	serverArgs := []string{"server", "--listen", addr, "--data-dir", filepath.Join(dir, "data")}
	if *database != "" {
		serverArgs = append(serverArgs, "--database", *database)
	}
	startServer := func() (*exec.Cmd, error) {
		cmd := exec.Command(bin, serverArgs...)
		cmd.Env = append(os.Environ(), "RUNYARD_BOOTSTRAP_TOKEN="+adminToken)
		cmd.Stdout, cmd.Stderr = nil, nil
		return cmd, cmd.Start()
	}
	srv, err := startServer()
	if err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if _, err := waitOK(url+"/healthz", *timeout); err != nil {
		return fmt.Errorf("server: %w", err)
	}

	var created struct {
		ExchangeToken string `json:"exchangeToken"`
	}
	out, err := exec.Command(bin, "--server", url, "--token", adminToken, "runners", "create", "--name", fmt.Sprintf("reconnect-%d", time.Now().UnixNano()), "--provider", "linux-host", "-o", "json").Output()
	if err != nil || json.Unmarshal(out, &created) != nil {
		return fmt.Errorf("create runner: %v: %s", err, out)
	}
	runner := exec.Command(bin, "runner", "--server", url, "--exchange-token", created.ExchangeToken,
		"--state-dir", filepath.Join(dir, "runner"), "--health-addr", healthAddr)
	var runnerLog bytes.Buffer
	runner.Stderr = &runnerLog
	if err := runner.Start(); err != nil {
		return err
	}
	defer func() { runner.Process.Signal(syscall.SIGTERM); runner.Wait() }()
	if _, err := waitOK("http://"+healthAddr+"/readyz", *timeout); err != nil {
		return fmt.Errorf("runner: %w\n%s", err, runnerLog.String())
	}

	var times []time.Duration
	for i := range *restarts {
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGKILL
		}
		srv.Process.Signal(sig)
		srv.Wait()
		// The runner must have noticed, or its readiness would be stale.
		if err := waitNotReady("http://"+healthAddr+"/readyz", *timeout); err != nil {
			return err
		}
		if srv, err = startServer(); err != nil {
			return err
		}
		healthy, err := waitOK(url+"/healthz", *timeout)
		if err != nil {
			return fmt.Errorf("restart %d: server: %w", i+1, err)
		}
		ready, err := waitOK("http://"+healthAddr+"/readyz", *timeout)
		if err != nil {
			return fmt.Errorf("restart %d: runner: %w\n%s", i+1, err, runnerLog.String())
		}
		d := ready.Sub(healthy)
		if d < 0 {
			d = 0 // the runner's stream came up before /healthz answered us
		}
		times = append(times, d)
		fmt.Printf("restart %2d (%s): runner back %v after the control plane was healthy\n", i+1, sigName(sig), d.Round(time.Millisecond))
	}
	base, err := tcpBaseline(1000)
	if err != nil {
		return err
	}
	fmt.Printf("baseline loopback TCP connect: p50 %v max %v (n=%d)\n", pct(base, 50), slices.Max(base), len(base))
	fmt.Printf("reconnect after control-plane restart: p50 %v max %v (n=%d, polled every 2ms)\n",
		pct(times, 50).Round(time.Millisecond), slices.Max(times).Round(time.Millisecond), len(times))
	report.Emit(report.Figure{Bench: "reconnect", Name: "runner back after a control-plane restart, p50", Value: msf(pct(times, 50)), Unit: "ms",
		Baseline: msf(pct(base, 50)), BaselineName: "loopback TCP connect"}, nil)
	report.Emit(report.Figure{Bench: "reconnect", Name: "runner back after a control-plane restart, max", Value: msf(slices.Max(times)), Unit: "ms"}, nil)
	if strings.Contains(runnerLog.String(), "refused this runner") {
		return fmt.Errorf("the runner was refused:\n%s", runnerLog.String())
	}
	return nil
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// waitOK polls u until it answers 200 and returns when it first did.
func waitOK(u string, timeout time.Duration) (time.Time, error) {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		res, err := c.Get(u)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s not OK within %v", u, timeout)
}

func waitNotReady(u string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		res, err := c.Get(u)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("the runner did not notice the control plane was gone")
}

// tcpBaseline times n bare loopback TCP connects to a listener in this
// process.
func tcpBaseline(n int) ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		c.Close()
	}
	return out, nil
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
