package main

import (
	"bufio"
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
)

// accessEnv is a control plane (or two replicas sharing PostgreSQL) with a
// runner and one running environment, for the environment access tests.
type accessEnv struct {
	s, other *serverProc
	envID    string
	marker   string
}

// startAccessEnv starts a server, a runner and an environment cloned from
// a repository holding hello.txt, whose SECRET_VAR comes from a secret.
// With a PostgreSQL database it also starts a second replica, which the
// runner is not connected to.
func startAccessEnv(t *testing.T, dbURL string, serverArgs ...string) *accessEnv {
	t.Helper()
	a := &accessEnv{marker: fmt.Sprintf("runyard-access-%d-%d", os.Getpid(), time.Now().UnixNano())}
	a.s = startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: serverArgs})
	if dbURL != "" {
		a.other = startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	}
	runnerID, exchange := registerRunner(t, a.s, "access-host")
	startRunner(t, "--server", a.s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "2s")
	eventually(t, "the runner is ACTIVE", func() bool {
		r, _ := phaseOf(t, a.s, runnerID)
		return r.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
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
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		remote := ln.Addr().(*net.TCPAddr).Port
		pf := exec.Command(bin, "--server", s.URL, "--token", adminToken, "environments", "port-forward", a.envID, fmt.Sprintf("0:%d", remote))
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
	})
}
