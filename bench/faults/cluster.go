package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/testutil/netns"
)

const adminToken = "ryd_bench_faults_admin_token_0123456789ab"

// cluster is one control plane and its two runners.
type cluster struct {
	cfg     config
	dir     string
	host    string // the address the control plane listens on
	url     string
	srvArgs []string
	srv     *exec.Cmd
	srvLog  *os.File
	link    *netns.Link // nil without a partition
	runners []*runner
	http    *http.Client
	starts  string // the file every step, service and agent appends its id to
}

// runner is one `runyard runner` process and what it needs to start again.
type runner struct {
	name, id   string
	state      string
	healthAddr string
	inNS       bool
	cmd        *exec.Cmd
	done       chan struct{}
	log        *os.File
	envID      string
}

func newCluster(ctx context.Context, cfg config, dir, database string, linkN int) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &cluster{cfg: cfg, dir: dir, host: "127.0.0.1", starts: filepath.Join(dir, "starts"),
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	if cfg.partition > 0 {
		l, err := netns.New(linkN)
		if err != nil {
			return nil, err
		}
		c.link, c.host = l, l.HostIP
	}
	port, err := freePort(c.host)
	if err != nil {
		c.close()
		return nil, err
	}
	addr := net.JoinHostPort(c.host, port)
	c.url = "http://" + addr
	c.srvArgs = []string{"server", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--runner-timeout", cfg.runnerTimeout.String()}
	if database != "" {
		c.srvArgs = append(c.srvArgs, "--database", database)
	}
	if c.srvLog, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		c.close()
		return nil, err
	}
	if _, err := c.startServer(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// close ends every process this run started and removes the namespace.
func (c *cluster) close() {
	if c.srv != nil {
		c.srv.Process.Kill()
		c.srv.Wait()
	}
	for _, r := range c.runners {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	if c.link != nil {
		c.link.Close()
	}
}

// startServer starts the control plane and returns when it first answered
// /healthz with 200.
func (c *cluster) startServer(ctx context.Context) (time.Time, error) {
	cmd := exec.Command(c.cfg.bin, c.srvArgs...)
	cmd.Env = append(os.Environ(), "RUNYARD_BOOTSTRAP_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = c.srvLog, c.srvLog
	if err := cmd.Start(); err != nil {
		return time.Time{}, fmt.Errorf("start the control plane: %w", err)
	}
	c.srv = cmd
	t, err := waitOK(ctx, c.url+"/healthz", 60*time.Second)
	if err != nil {
		return t, fmt.Errorf("control plane: %w (log: %s)", err, c.srvLog.Name())
	}
	return t, nil
}

// killServer SIGKILLs the control plane.
func (c *cluster) killServer() {
	c.srv.Process.Signal(syscall.SIGKILL)
	c.srv.Wait()
}

// addRunner registers a runner, starts it and waits until it is ready.
func (c *cluster) addRunner(ctx context.Context, name string, inNS bool) (*runner, error) {
	var created struct {
		Runner struct {
			RunnerID string `json:"runnerId"`
		} `json:"runner"`
		ExchangeToken string `json:"exchangeToken"`
	}
	if err := c.cli(&created, "runners", "create", "--name", name, "--provider", "linux-host"); err != nil {
		return nil, err
	}
	hostIP := "127.0.0.1"
	if inNS {
		hostIP = c.link.NSIP
	}
	r := &runner{name: name, id: created.Runner.RunnerID, state: filepath.Join(c.dir, name), inNS: inNS}
	port, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	r.healthAddr = net.JoinHostPort(hostIP, port)
	if r.log, err = os.Create(filepath.Join(c.dir, name+".log")); err != nil {
		return nil, err
	}
	c.runners = append(c.runners, r)
	if err := c.startRunner(r, "--exchange-token", created.ExchangeToken); err != nil {
		return nil, err
	}
	if _, err := waitOK(ctx, "http://"+r.healthAddr+"/readyz", 60*time.Second); err != nil {
		return nil, fmt.Errorf("runner %s: %w (log: %s)", name, err, r.log.Name())
	}
	return r, nil
}

func (c *cluster) startRunner(r *runner, extra ...string) error {
	args := append([]string{"runner", "--server", c.url, "--state-dir", r.state, "--health-addr", r.healthAddr,
		"--max-pods", "50", "--stop-grace", "5s"}, extra...)
	var cmd *exec.Cmd
	if r.inNS {
		cmd = c.link.Command(c.cfg.bin, args...)
	} else {
		cmd = exec.Command(c.cfg.bin, args...)
	}
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start runner %s: %w", r.name, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(r.done) }()
	return nil
}

// killRunner SIGKILLs r's process and waits until it is gone.
func (c *cluster) killRunner(r *runner) {
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// cli runs a CLI command against the control plane as the admin and
// decodes its JSON output into out.
func (c *cluster) cli(out any, args ...string) error {
	full := append([]string{"--server", c.url, "--token", adminToken}, args...)
	full = append(full, "-o", "json")
	b, err := exec.Command(c.cfg.bin, full...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errorsAs(err, &ee) {
			return fmt.Errorf("runyard %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return fmt.Errorf("runyard %s: %w", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("runyard %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// apiError is an answer other than 2xx; status 0 means no answer at all.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string {
	if e.status == 0 {
		return "no answer: " + e.body
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// isNotFound reports whether err is the control plane saying not found.
func isNotFound(err error) bool {
	var ae *apiError
	return errorsAs(err, &ae) && ae.status == http.StatusNotFound
}

// do sends a JSON request with the admin token; only a 2xx answer is an
// acknowledgement.
func (c *cluster) do(method, path, body string, out any) error {
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return &apiError{body: err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return &apiError{body: err.Error()}
	}
	if res.StatusCode/100 != 2 {
		return &apiError{status: res.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %s: %w: %s", path, err, b)
		}
	}
	return nil
}

// connect calls a gitpod.v1 method with JSON.
func (c *cluster) connect(method string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(http.MethodPost, "/gitpod.v1."+method, string(b), out)
}

// rest calls the REST API of the default organization.
func (c *cluster) rest(method, path string, in, out any) error {
	body := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = string(b)
	}
	return c.do(method, "/api/v1/orgs/default"+path, body, out)
}

// waitOK polls u until it answers 200 and returns when it first did; it
// polls every 2 ms, so the time is that close.
func waitOK(ctx context.Context, u string, timeout time.Duration) (time.Time, error) {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := hc.Get(u)
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

// waitNotReady polls a runner's /readyz until it says not ready.
func waitNotReady(ctx context.Context, u string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := hc.Get(u)
		if err != nil {
			return nil
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s stayed ready for %v", u, timeout)
}

func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

// tail returns the last n bytes of a log file, for an error message.
func tail(f *os.File, n int64) string {
	b, _ := os.ReadFile(f.Name())
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(bytes.TrimSpace(b))
}

// waitAll runs fn for every runner at once and returns their results in
// order.
func waitAll[T any](rs []*runner, fn func(*runner) (T, error)) ([]T, error) {
	out := make([]T, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = fn(r)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
