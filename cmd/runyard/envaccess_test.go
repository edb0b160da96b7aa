package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// accessEnv is a control plane (or two replicas sharing PostgreSQL) with a
// runner and one running environment, for the environment access tests.
type accessEnv struct {
	s, other *serverProc
	envID    string
	marker   string
	// member is memberKey's key, once made.
	member string
}

// startAccessEnv starts a server, a runner and an environment cloned from
// a repository holding hello.txt, whose SECRET_VAR comes from a secret.
// With a PostgreSQL database it also starts a second replica, which the
// runner is not connected to.
func startAccessEnv(t *testing.T, dbURL string, serverArgs ...string) *accessEnv {
	t.Helper()
	return startAccessEnvTLS(t, dbURL, nil, serverArgs...)
}

// startAccessEnvTLS is startAccessEnv with servers speaking TLS with cert
// when it is not nil: the runner and the CLI trust it with --ca-file, and
// the replicas, which relay to each other over HTTPS, with SSL_CERT_FILE
// (a server has no flag of its own for a CA).
func startAccessEnvTLS(t *testing.T, dbURL string, cert *testCert, serverArgs ...string) *accessEnv {
	t.Helper()
	a := &accessEnv{marker: fmt.Sprintf("runyard-access-%d-%d", os.Getpid(), time.Now().UnixNano())}
	cfg := serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: serverArgs, Cert: cert}
	runnerArgs := []string{}
	if cert != nil {
		cfg.Env = append(cfg.Env, "SSL_CERT_FILE="+cert.CertFile)
		runnerArgs = append(runnerArgs, "--ca-file", cert.CertFile)
	}
	a.s = startServer(t, cfg)
	if dbURL != "" {
		a.other = startServer(t, cfg)
	}
	runnerID, exchange := registerRunner(t, a.s, "access-host")
	rp := startRunner(t, append(runnerArgs, "--server", a.s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "2s")...)
	eventually(t, "the runner is ACTIVE", func() bool {
		r, _ := phaseOf(t, a.s, runnerID)
		return r.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	// Its stream is on a connection of its own, over TLS too, unless the
	// replicas share PostgreSQL (--runner-streams auto keeps streams on
	// HTTP/2 there); its log says which once the Welcome came, as the
	// line's last attribute.
	want := "stream=connection"
	if dbURL != "" {
		want = "stream=connect"
	}
	eventually(t, "the runner says where its stream went", func() bool {
		return strings.Contains(rp.Stderr.String(), "connected to the control plane")
	})
	if log := rp.Stderr.String(); !strings.Contains(log, want+"\n") {
		t.Fatalf("the runner's stream: want %s (TLS %v, PostgreSQL %v):\n%s", want, cert != nil, dbURL != "", log)
	}
	t.Cleanup(func() {
		if processWithArg(a.marker) {
			t.Errorf("a process of the test (%s) outlived its session", a.marker)
		}
	})
	repo := makeGitRepo(t, map[string]string{"hello.txt": "hello from the repository\n"})
	out := a.s.mustRun(t, adminToken, "environments", "create", "--git", repo, "--name", "access", "--wait")
	a.envID = uuidRe.FindString(out)
	if a.envID == "" {
		t.Fatalf("environments create printed no ID:\n%s", out)
	}
	return a
}

func TestEnvironmentsAccess_Exec(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			a := startAccessEnv(t, b.databaseURL(t))
			servers := []*serverProc{a.s}
			if a.other != nil {
				// The runner's stream is on the first replica: the second
				// relays the WebSocket there.
				servers = append(servers, a.other)
			}
			for i, s := range servers {
				t.Run(fmt.Sprintf("Replica%d", i), func(t *testing.T) {
					testExec(t, a, s)
				})
			}
		})
	}
}

func testExec(t *testing.T, a *accessEnv, s *serverProc) {
	t.Run("ExitCodeAndStreams", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", a.envID, "--", "sh", "-c", "cat hello.txt; pwd; echo to-stderr >&2; exit 7")
		if r.Code != 7 {
			t.Fatalf("exec exit %d, want 7; stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 2 || lines[0] != "hello from the repository" || !strings.Contains(lines[1], "/"+a.envID+"/workspace/") {
			t.Errorf("exec stdout %q, want the checkout's file and directory", r.Stdout)
		}
		if r.Stderr != "to-stderr\n" {
			t.Errorf("exec stderr %q, want only the command's", r.Stderr)
		}
	})
	t.Run("Success", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", a.envID, "--", "true")
		if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
			t.Fatalf("exec true: %+v", r)
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		r := runCLIInput(t, "", nil, "one\ntwo\nthree\n", "--server", s.URL, "--token", adminToken, "environments", "exec", "-i", a.envID, "--", "wc", "-l")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "3" {
			t.Fatalf("exec -i wc -l: %+v", r)
		}
	})
	t.Run("TTY", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", "-t", a.envID, "--", "sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; stty size")
		if r.Code != 0 || !strings.Contains(r.Stdout, "is-a-tty") || !strings.Contains(r.Stdout, "24 80") {
			t.Fatalf("exec -t: %+v", r)
		}
	})
	t.Run("Signalled", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", a.envID, "--", "sh", "-c", "kill -TERM $$")
		if r.Code != 128+15 {
			t.Fatalf("exec of a command killed by SIGTERM: exit %d, want 143 (%+v)", r.Code, r)
		}
	})
	t.Run("ErrNotFoundCommand", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", a.envID, "--", "no-such-program-runyard")
		if r.Code != 127 || !strings.Contains(r.Stderr, "no-such-program-runyard") {
			t.Fatalf("exec of a missing program: %+v, want exit 127 naming it", r)
		}
	})
	t.Run("ErrUnknownEnvironment", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", "00000000-0000-4000-8000-000000000000", "--", "true")
		requireOneLineError(t, r, 3, "not found")
	})
	t.Run("ErrNoDash", func(t *testing.T) {
		r := s.run(t, adminToken, "environments", "exec", a.envID, "true")
		requireOneLineError(t, r, 2, "--")
	})
	t.Run("Shell", func(t *testing.T) {
		// ssh without a terminal on stdin: the shell reads its commands
		// from stdin.
		r := runCLIInput(t, "", nil, "echo shell-says-$((6*7))\nexit 3\n", "--server", s.URL, "--token", adminToken, "environments", "ssh", a.envID)
		if r.Code != 3 || !strings.Contains(r.Stdout, "shell-says-42") {
			t.Fatalf("environments ssh with a script: %+v", r)
		}
	})
	t.Run("ShellResize", func(t *testing.T) { checkPTYResize(t, cliShellCmd(s, a.envID)) })
	t.Run("DetachKillsEverything", func(t *testing.T) {
		// A command that would outlive its session: killing the CLI ends
		// the session, and the runner kills the command and its child.
		cmd := exec.Command(bin, "--server", s.URL, "--token", adminToken, "environments", "exec", a.envID, "--",
			"sh", "-c", `sh -c "sleep 300" "bg-$0" & echo started; sleep 301`, "fg-"+a.marker)
		cmd.Env = processEnv()
		cmd.Dir = emptyDir
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "started\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("first output %q", line)
		}
		if !processWithArg(a.marker) {
			t.Fatalf("the command is not running")
		}
		cmd.Process.Kill()
		cmd.Wait()
		eventually(t, "the command is gone", func() bool { return !processWithArg(a.marker) })
	})
	t.Run("PortForward", func(t *testing.T) {
		// An HTTP server on the environment's loopback (the runner's
		// host's: the environment runs there).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ws" {
				// A WebSocket echo.
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
				if err != nil {
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				for {
					typ, b, err := c.Read(r.Context())
					if err != nil {
						return
					}
					if c.Write(r.Context(), typ, b) != nil {
						return
					}
				}
			}
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		remote := ln.Addr().(*net.TCPAddr).Port
		m := []string{"", portForward(t, s, a.envID, remote)}
		// Many connections at once, each its own stream.
		errs := make(chan error, 20)
		for i := range 20 {
			go func() {
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
				res, err := c.Get(fmt.Sprintf("http://%s/n%d", m[1], i))
				if err != nil {
					errs <- err
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				if string(b) != fmt.Sprintf("hello /n%d", i) {
					errs <- fmt.Errorf("connection %d read %q", i, b)
					return
				}
				errs <- nil
			}()
		}
		for range 20 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		// A WebSocket through the forward.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+m[1]+"/ws", nil)
		if err != nil {
			t.Fatalf("WebSocket through the forward: %v", err)
		}
		defer ws.CloseNow()
		for i := range 3 {
			msg := fmt.Sprintf("echo %d %s", i, strings.Repeat("x", i*100000))
			if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			ws.SetReadLimit(1 << 20)
			_, b, err := ws.Read(ctx)
			if err != nil || string(b) != msg {
				t.Fatalf("WebSocket echo %d: %d bytes, %v", i, len(b), err)
			}
		}
		ws.Close(websocket.StatusNormalClosure, "")

		// The port-forward WebSocket (what an older CLI speaks, and the
		// fallback of one that cannot upgrade): an HTTP request through it.
		u := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/orgs/default/environments/" + a.envID + fmt.Sprintf("/port-forward?port=%d", remote)
		pws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + adminToken}}})
		if err != nil {
			t.Fatalf("port-forward WebSocket: %v", err)
		}
		defer pws.CloseNow()
		if err := pws.Write(ctx, websocket.MessageBinary, []byte("GET /viaws HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			typ, b, err := pws.Read(ctx)
			if err != nil {
				t.Fatalf("port-forward WebSocket ended without an eof event: %v (read %q)", err, got)
			}
			if typ == websocket.MessageText {
				if !strings.Contains(string(b), `"eof"`) {
					t.Fatalf("port-forward WebSocket event %s", b)
				}
				break
			}
			got = append(got, b...)
		}
		if !strings.HasSuffix(string(got), "hello /viaws") {
			t.Errorf("port-forward WebSocket read %q", got)
		}

		// Half-closes: a server that greets first, reads until the
		// client's half-close and then answers, and a client that reads
		// until the server's.
		hc, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hc.Close() })
		go func() {
			for {
				c, err := hc.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.Write([]byte("hello\n"))
					b, err := io.ReadAll(c)
					if err != nil {
						return
					}
					fmt.Fprintf(c, "read %d bytes", len(b))
					c.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, c)
				}()
			}
		}()
		hcAddr := portForward(t, s, a.envID, hc.Addr().(*net.TCPAddr).Port)
		for i := range 3 {
			c, err := net.Dial("tcp", hcAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			n := i * 300000
			go func() {
				c.Write(make([]byte, n))
				c.(*net.TCPConn).CloseWrite()
			}()
			b, err := io.ReadAll(c)
			c.Close()
			if want := fmt.Sprintf("hello\nread %d bytes", n); err != nil || string(b) != want {
				t.Errorf("half-close %d: read %q (%v), want %q", i, b, err, want)
			}
		}
	})
}

// portForward starts `runyard environments port-forward` to remote in
// envID and returns the local address it listens on.
func portForward(t *testing.T, s *serverProc, envID string, remote int) string {
	t.Helper()
	pf := exec.Command(bin, "--server", s.URL, "--token", adminToken, "environments", "port-forward", envID, fmt.Sprintf("0:%d", remote))
	pf.Env = processEnv()
	pf.Dir = emptyDir
	out, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pf.Stderr = os.Stderr
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Process.Kill(); pf.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> \d+`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("port-forward printed %q", line)
	}
	return m[1]
}

// sshAddr waits for the server's "SSH into environments: ADDR" line.
func sshAddr(t *testing.T, s *serverProc) string {
	t.Helper()
	re := regexp.MustCompile(`SSH into environments: (\S+)`)
	var addr string
	eventually(t, "the server prints its SSH address", func() bool {
		if m := re.FindStringSubmatch(s.Stdout.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// sshClient runs OpenSSH's clients with a key of their own and no user
// configuration.
type sshClient struct {
	dir, key, knownHosts string
}

func newSSHClient(t *testing.T) *sshClient {
	t.Helper()
	dir := t.TempDir()
	c := &sshClient{dir: dir, key: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@runyard", "-f", c.key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return c
}

func (c *sshClient) publicKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(c.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// opts are the options of every client: this key only, no agent, no
// prompts, and the host key learned on first use (strict: it must match
// after that).
func (c *sshClient) opts(strict bool) []string {
	check := "accept-new"
	if strict {
		check = "yes"
	}
	return []string{"-F", "/dev/null", "-i", c.key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + c.knownHosts, "-o", "StrictHostKeyChecking=" + check, "-o", "LogLevel=ERROR"}
}

// run runs name (ssh, scp, sftp) with args after the options; port is -p
// for ssh and -P for scp and sftp.
func (c *sshClient) run(t *testing.T, input, name, port string, strict bool, args ...string) cliResult {
	t.Helper()
	flag := "-p"
	if name != "ssh" {
		flag = "-P"
	}
	all := append(append(c.opts(strict), flag, port), args...)
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, all...)
	cmd.Dir = c.dir
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: did not finish within %v", name, strings.Join(args, " "), cliTimeout)
	}
	r := cliResult{Args: all, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// setSSHKeys sets the environment's spec.sshPublicKeys.
func setSSHKeys(t *testing.T, s *serverProc, envID string, keys ...string) {
	t.Helper()
	var list []string
	for i, k := range keys {
		list = append(list, fmt.Sprintf(`{"id":"key%d","value":%q}`, i, k))
	}
	body := fmt.Sprintf(`{"environmentId":%q,"spec":{"sshPublicKeys":[%s]}}`, envID, strings.Join(list, ","))
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1.EnvironmentService/UpdateEnvironment", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	// s.client: it trusts a server speaking TLS.
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK {
		t.Fatalf("UpdateEnvironment: %d %s", res.StatusCode, b)
	}
}

func TestEnvironmentsAccess_SSH(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testSSH(t, b.databaseURL(t))
		})
	}
}

func testSSH(t *testing.T, dbURL string) {
	a := startAccessEnv(t, dbURL, "--ssh-listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(sshAddr(t, a.s))
	c := newSSHClient(t)
	stranger := newSSHClient(t)
	target := a.envID + "@127.0.0.1"

	t.Run("ErrKeyNotListed", func(t *testing.T) {
		r := c.run(t, "", "ssh", port, false, target, "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Fatalf("ssh before the key is listed: %+v", r)
		}
	})
	setSSHKeys(t, a.s, a.envID, c.publicKey(t))

	t.Run("Exec", func(t *testing.T) {
		r := c.run(t, "", "ssh", port, false, target, "cat hello.txt; echo err >&2; exit 5")
		if r.Code != 5 || r.Stdout != "hello from the repository\n" || r.Stderr != "err\n" {
			t.Fatalf("ssh exec: %+v", r)
		}
		r = c.run(t, "piped\n", "ssh", port, true, target, "cat")
		if r.Code != 0 || r.Stdout != "piped\n" {
			t.Fatalf("ssh exec with stdin: %+v", r)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		r := stranger.run(t, "", "ssh", port, false, target, "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Fatalf("ssh with a key the environment does not list: %+v", r)
		}
		r = c.run(t, "", "ssh", port, true, "00000000-0000-4000-8000-000000000000@127.0.0.1", "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Fatalf("ssh as an unknown environment: %+v", r)
		}
	})
	t.Run("Shell", func(t *testing.T) {
		// -tt: a terminal although stdin is a script.
		r := c.run(t, "echo shell-$((40+2)) $(tty | cut -c1-8)\nexit 4\n", "ssh", port, true, "-tt", target)
		if r.Code != 4 || !strings.Contains(r.Stdout, "shell-42 /dev/pts") {
			t.Fatalf("ssh -tt shell: %+v", r)
		}
	})
	t.Run("ShellResize", func(t *testing.T) { checkPTYResize(t, sshShellCmd(c, port, target, true)) })
	t.Run("SCP", func(t *testing.T) {
		up := filepath.Join(c.dir, "up.txt")
		if err := os.WriteFile(up, []byte("uploaded by scp\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := c.run(t, "", "scp", port, true, up, target+":up.txt"); r.Code != 0 {
			t.Fatalf("scp upload: %+v", r)
		}
		if r := c.run(t, "", "ssh", port, true, target, "cat up.txt"); r.Stdout != "uploaded by scp\n" {
			t.Fatalf("the uploaded file in the environment: %+v", r)
		}
		down := filepath.Join(c.dir, "down.txt")
		if r := c.run(t, "", "scp", port, true, target+":hello.txt", down); r.Code != 0 {
			t.Fatalf("scp download: %+v", r)
		}
		if b, _ := os.ReadFile(down); string(b) != "hello from the repository\n" {
			t.Fatalf("downloaded %q", b)
		}
	})
	t.Run("SFTP", func(t *testing.T) {
		up := filepath.Join(c.dir, "sftp-up.bin")
		payload := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
		if err := os.WriteFile(up, []byte(payload), 0o644); err != nil {
			t.Fatal(err)
		}
		batch := fmt.Sprintf("put %s sent.bin\nmkdir made\nget sent.bin back.bin\nls made\n", up)
		r := c.run(t, batch, "sftp", port, true, "-b", "-", target)
		if r.Code != 0 {
			t.Fatalf("sftp batch: %+v", r)
		}
		if b, _ := os.ReadFile(filepath.Join(c.dir, "back.bin")); string(b) != payload {
			t.Fatalf("sftp round trip: got %d bytes, want %d", len(b), len(payload))
		}
		if r := c.run(t, "", "ssh", port, true, target, "wc -c < sent.bin; test -d made && echo dir"); r.Stdout != fmt.Sprintf("%d\ndir\n", len(payload)) {
			t.Fatalf("sftp's files in the environment: %+v", r)
		}
	})
	t.Run("LocalForward", func(t *testing.T) { checkSSHForward(t, c, port, target) })
	t.Run("SSHConfig", func(t *testing.T) {
		// The printed block reaches the environment by its name too.
		out := a.s.mustRun(t, adminToken, "environments", "ssh-config", "--ssh-port", port)
		for _, want := range []string{"Host " + a.envID + ".runyard access.runyard", "HostName 127.0.0.1", "Port " + port, "User " + a.envID} {
			if !strings.Contains(out, want) {
				t.Fatalf("ssh-config lacks %q:\n%s", want, out)
			}
		}
		cfg := filepath.Join(c.dir, "config")
		if err := os.WriteFile(cfg, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		opts := c.opts(true)
		opts[1] = cfg // -F the printed block instead of /dev/null
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		defer cancel()
		got, err := exec.CommandContext(ctx, "ssh", append(opts, "access.runyard", "echo via-config")...).CombinedOutput()
		if err != nil || string(got) != "via-config\n" {
			t.Fatalf("ssh access.runyard with the printed config: %v: %s", err, got)
		}
	})
	if a.other != nil {
		t.Run("OtherReplica", func(t *testing.T) {
			// The host key is the database's: another replica presents
			// the same one (strict checking against what the first
			// taught). It does not hold the runner's stream, so it relays
			// each session to the replica that does.
			other := startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: []string{"--ssh-listen", "127.0.0.1:0"}})
			_, oport, _ := net.SplitHostPort(sshAddr(t, other))
			known, err := os.ReadFile(c.knownHosts)
			if err != nil {
				t.Fatal(err)
			}
			// known_hosts names the host with its port: teach the same
			// key for the other port.
			line := strings.SplitN(strings.TrimSpace(string(known)), "\n", 2)[0]
			fields := strings.Fields(line)
			extra := fmt.Sprintf("[127.0.0.1]:%s %s %s\n", oport, fields[1], fields[2])
			if err := os.WriteFile(c.knownHosts, append(known, extra...), 0o600); err != nil {
				t.Fatal(err)
			}
			r := c.run(t, "", "ssh", oport, true, target, "cat hello.txt; echo err >&2; exit 6")
			if r.Code != 6 || r.Stdout != "hello from the repository\n" || r.Stderr != "err\n" {
				t.Fatalf("ssh exec through the other replica: %+v", r)
			}
			r = c.run(t, "piped-through\n", "ssh", oport, true, target, "cat")
			if r.Code != 0 || r.Stdout != "piped-through\n" {
				t.Fatalf("ssh exec with stdin through the other replica: %+v", r)
			}
			r = c.run(t, "echo relayed-$((40+3)) $(tty | cut -c1-8)\nexit 7\n", "ssh", oport, true, "-tt", target)
			if r.Code != 7 || !strings.Contains(r.Stdout, "relayed-43 /dev/pts") {
				t.Fatalf("ssh -tt shell through the other replica: %+v", r)
			}
			up := filepath.Join(c.dir, "relayed-up.txt")
			if err := os.WriteFile(up, []byte("uploaded through the other replica\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := c.run(t, "", "scp", oport, true, up, target+":relayed-up.txt"); r.Code != 0 {
				t.Fatalf("scp upload through the other replica: %+v", r)
			}
			down := filepath.Join(c.dir, "relayed-down.txt")
			if r := c.run(t, "", "scp", oport, true, target+":relayed-up.txt", down); r.Code != 0 {
				t.Fatalf("scp download through the other replica: %+v", r)
			}
			if b, _ := os.ReadFile(down); string(b) != "uploaded through the other replica\n" {
				t.Fatalf("scp round trip through the other replica: %q", b)
			}
			checkSSHForward(t, c, oport, target)
			checkPTYResize(t, sshShellCmd(c, oport, target, true))
		})
	}
	t.Run("Audited", func(t *testing.T) {
		out := a.s.mustRun(t, adminToken, "audit", "list", "-o", "json")
		// "ssh login": the refused logins of ErrKeyNotListed and
		// ErrOtherKey (the environment's organization sees them).
		for _, want := range []string{`"ssh exec"`, `"ssh shell"`, `"ssh sftp"`, `"ssh direct-tcpip"`, `"ssh login"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the audit log has no %s entry", want)
			}
		}
	})
}

// checkSSHForward forwards a local port with ssh -L (through the SSH server
// at port) to an HTTP server in the environment and requests it.
func checkSSHForward(t *testing.T, c *sshClient, port, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "forwarded %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	remote := ln.Addr().(*net.TCPAddr).Port
	local := freePort(t)
	_, lport, _ := net.SplitHostPort(local)
	args := append(c.opts(true), "-p", port, "-N", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%s:localhost:%d", lport, remote), target)
	fwd := exec.Command("ssh", args...)
	var stderr syncBuffer
	fwd.Stderr = &stderr
	if err := fwd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Process.Kill(); fwd.Wait() })
	var body string
	eventually(t, "a request through ssh -L answers", func() bool {
		res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + local + "/through-ssh")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		body = string(b)
		return true
	})
	if body != "forwarded /through-ssh" {
		t.Fatalf("through ssh -L: %q (ssh: %s)", body, stderr.String())
	}
}
