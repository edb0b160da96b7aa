package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// checkPTYResize runs cmd (an interactive shell into the environment:
// OpenSSH's ssh -tt or runyard environments ssh) on a real terminal of
// 30 rows and 100 columns, asks the shell in the environment for its
// terminal's size, then resizes the terminal in the middle of the session
// (the kernel sends the client SIGWINCH, as a terminal emulator's resize
// does) and asks again until the shell reports 50 rows and 132 columns.
// The shell's exit status comes back as the client's.
func checkPTYResize(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatalf("start %s on a terminal: %v", cmd.Path, err)
	}
	var out syncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// EIO once the client exited and closed the terminal.
		_, _ = io.Copy(&out, ptmx)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		ptmx.Close()
		<-copied
		if t.Failed() {
			t.Logf("terminal output:\n%q", out.String())
		}
	}()
	// The echoed command line holds "$(stty size)", which the pattern
	// does not match: only the shell's answers do.
	re := regexp.MustCompile(`size-(\d+ \d+)-end`)
	last := func() string {
		m := re.FindAllStringSubmatch(out.String(), -1)
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1][1]
	}
	ask := func(want string) {
		t.Helper()
		// The resize reaches the environment some time after the
		// client's SIGWINCH: ask until the answer is the new size.
		asked := time.Time{}
		eventually(t, "stty size in the environment says "+want, func() bool {
			if last() == want {
				return true
			}
			if time.Since(asked) > 500*time.Millisecond {
				asked = time.Now()
				if _, err := io.WriteString(ptmx, "echo size-$(stty size)-end\n"); err != nil {
					t.Fatalf("type into the terminal: %v", err)
				}
			}
			return false
		})
	}
	ask("30 100")
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	ask("50 132")
	// And back, smaller: a second resize of the same session.
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 20, Cols: 70}); err != nil {
		t.Fatal(err)
	}
	ask("20 70")
	if _, err := io.WriteString(ptmx, "exit 6\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 6 {
			t.Fatalf("client exit: %v, want the shell's status 6", err)
		}
		exited <- err
	case <-time.After(cliTimeout):
		t.Fatalf("the client did not exit after the shell's exit")
	}
}

// sshShellCmd is OpenSSH's ssh -tt into the environment target through the
// SSH server at port.
func sshShellCmd(c *sshClient, port, target string, strict bool) *exec.Cmd {
	cmd := exec.Command("ssh", append(c.opts(strict), "-p", port, "-tt", target)...)
	cmd.Dir = c.dir
	return cmd
}

// cliShellCmd is runyard environments ssh ENV against s.
func cliShellCmd(s *serverProc, envID string) *exec.Cmd {
	args := []string{"--server", s.URL, "--token", adminToken}
	if s.CAFile != "" {
		args = append(args, "--ca-file", s.CAFile)
	}
	cmd := exec.Command(bin, append(args, "environments", "ssh", envID)...)
	cmd.Env = processEnv()
	cmd.Dir = emptyDir
	return cmd
}

// startEchoServer listens on the environment's loopback (the runner's
// host's: the environment runs there) and sends back what each connection
// sends, closing its side after the other's end.
func startEchoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPortForward runs runyard environments port-forward ENV 0:remote
// against s and returns the local address it listens on.
func startPortForward(t *testing.T, s *serverProc, envID string, remote int) string {
	t.Helper()
	args := []string{"--server", s.URL, "--token", adminToken}
	if s.CAFile != "" {
		args = append(args, "--ca-file", s.CAFile)
	}
	pf := exec.Command(bin, append(args, "environments", "port-forward", envID, fmt.Sprintf("0:%d", remote))...)
	pf.Env = processEnv()
	pf.Dir = emptyDir
	var stderr syncBuffer
	pf.Stderr = &stderr
	out, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pf.Process.Kill()
		pf.Wait()
		if t.Failed() {
			t.Logf("port-forward stderr:\n%s", stderr.String())
		}
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> \d+`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("port-forward printed %q (stderr %q)", line, stderr.String())
	}
	return m[1]
}

// checkEchoes opens n connections at once to addr (a forward to an echo
// server) and sends size bytes of its own through each: each gets its own
// bytes back, in order, and then the end of the stream once it ended its
// side (a half-close carried both ways).
func checkEchoes(t *testing.T, addr string, n, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, size)
			r := rand.New(rand.NewPCG(uint64(i), 16))
			for j := range payload {
				payload[j] = byte(r.Uint32())
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(cliTimeout))
			sent := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				sent <- err
			}()
			got, err := io.ReadAll(c)
			if serr := <-sent; serr != nil {
				errs <- fmt.Errorf("connection %d: send: %w", i, serr)
				return
			}
			if err != nil {
				errs <- fmt.Errorf("connection %d: read back %d of %d bytes: %w", i, len(got), size, err)
				return
			}
			if !bytes.Equal(got, payload) {
				errs <- fmt.Errorf("connection %d: read back %d bytes that differ from the %d sent", i, len(got), size)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestEnvironmentsAccess_TLS: with the control plane speaking TLS (a
// self-signed certificate the CLI and the runner trust with --ca-file),
// runyard environments port-forward carries many concurrent connections'
// data both ways through each replica (the second relays to the one
// holding the runner's stream over HTTPS), runyard environments ssh
// follows a resize in the middle of the session, and OpenSSH's client
// reaches the environment through the replica that relays the SSH session
// over HTTPS.
func TestEnvironmentsAccess_TLS(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cert := newTestCert(t)
			dbURL := b.databaseURL(t)
			a := startAccessEnvTLS(t, dbURL, cert, "--ssh-listen", "127.0.0.1:0")
			servers := []*serverProc{a.s}
			if a.other != nil {
				servers = append(servers, a.other)
			}
			echo := startEchoServer(t)
			for i, s := range servers {
				t.Run(fmt.Sprintf("Replica%d", i), func(t *testing.T) {
					t.Run("PortForward", func(t *testing.T) {
						addr := startPortForward(t, s, a.envID, echo)
						// 32 connections of 1 MiB each, then a second round
						// through the same forward.
						checkEchoes(t, addr, 32, 1<<20)
						checkEchoes(t, addr, 8, 3<<20+17)
					})
					t.Run("ShellResize", func(t *testing.T) { checkPTYResize(t, cliShellCmd(s, a.envID)) })
				})
			}
			c := newSSHClient(t)
			setSSHKeys(t, a.s, a.envID, c.publicKey(t))
			target := a.envID + "@127.0.0.1"
			t.Run("SSH", func(t *testing.T) {
				_, port, _ := net.SplitHostPort(sshAddr(t, a.s))
				r := c.run(t, "piped\n", "ssh", port, false, target, "cat; cat hello.txt; exit 5")
				if r.Code != 5 || r.Stdout != "piped\nhello from the repository\n" {
					t.Fatalf("ssh exec: %+v", r)
				}
				checkPTYResize(t, sshShellCmd(c, port, target, true))
			})
			if a.other == nil {
				return
			}
			t.Run("SSHRelayedOverHTTPS", func(t *testing.T) {
				// The other replica's SSH server: each session is relayed
				// to the replica holding the runner's stream, over HTTPS.
				other := startServer(t, serverConfig{DatabaseURL: dbURL, Cert: cert,
					Env:  []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken, "SSL_CERT_FILE=" + cert.CertFile},
					Args: []string{"--ssh-listen", "127.0.0.1:0"}})
				_, oport, _ := net.SplitHostPort(sshAddr(t, other))
				r := c.run(t, "relayed\n", "ssh", oport, false, target, "cat; cat hello.txt; exit 6")
				if r.Code != 6 || r.Stdout != "relayed\nhello from the repository\n" {
					t.Fatalf("ssh exec through the relaying replica: %+v (its log: %s)", r, other.Stderr.String())
				}
				checkSSHForward(t, c, oport, target)
				checkPTYResize(t, sshShellCmd(c, oport, target, true))
			})
		})
	}
}
