package runner

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/creack/pty"
	"github.com/pkg/sftp"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/runner/envs"
)

// serveSession opens a Session stream into an environment, as the control
// plane asked in open, and serves it: a command (in a PTY or with pipes),
// an SFTP server or a TCP connection to the environment's loopback. The
// session ends when its command exits, the control plane closes the
// stream, the environment stops running or ctx (the Connect session) ends;
// whatever it started is killed then (its whole process group), so a
// client that goes away leaves nothing running.
func (d *Daemon) serveSession(ctx context.Context, open *runnerv1.OpenSession) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := d.log.With("environment", open.GetEnvironmentId(), "session", open.GetKind().String())
	if open.GetRaw() && open.GetKind() == runnerv1.SessionKind_SESSION_KIND_TCP && d.serveSessionRaw(ctx, open) {
		return
	}
	stream := d.sessions.Session(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
	defer stream.CloseRequest()

	s := &sessionConn{stream: stream}
	hello := &runnerv1.SessionHello{SessionId: open.GetSessionId()}
	acc, err := d.envs.Access(open.GetEnvironmentId())
	var run func(ctx context.Context) *runnerv1.SessionExit
	if err == nil {
		run, err = s.prepare(open, acc)
	}
	if err != nil {
		hello.Error = err.Error()
		hello.NotRunning = errors.Is(err, envs.ErrNotRunning)
		if stream.Send(&runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Hello{Hello: hello}}) == nil {
			// Wait for the control plane to read the refusal and end the
			// stream: cancelling it at once may reset it before the
			// control plane's handler reads the hello, and the client
			// would wait for the open to time out instead (a port that
			// nothing listens on took 10 s to say so).
			_ = stream.CloseRequest()
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				for {
					if _, err := stream.Receive(); err != nil {
						return
					}
				}
			}()
			select {
			case <-ended:
			case <-ctx.Done():
			case <-time.After(terminalLinger):
			}
		}
		return
	}
	if err := s.send(&runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Hello{Hello: hello}}); err != nil {
		log.Warn("open session", "err", err)
		s.abort()
		return
	}
	// The environment's stop ends the session too.
	go func() {
		select {
		case <-acc.Done:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer cancel()
		s.receive()
	}()
	exit := run(ctx)
	if err := s.send(&runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Exit{Exit: exit}}); err != nil {
		return
	}
	// The control plane ends the stream once it read the exit.
	_ = stream.CloseRequest()
	select {
	case <-ctx.Done():
	case <-time.After(terminalLinger):
	}
}

// serveSessionRaw serves a TCP session on a connection of its own to the
// control plane (rawconn) instead of a Session stream, as open allows: the
// connection's bytes are the forwarded connection's, spliced to the port's
// connection with no framing, and half-closes pass as they are. It returns
// false, having started nothing, when the port does not answer, a proxy is
// configured for the control plane or the control plane refuses the
// upgrade: the session then goes on a Session stream, which also says why
// it failed.
func (d *Daemon) serveSessionRaw(ctx context.Context, open *runnerv1.OpenSession) bool {
	if !d.canDialRaw(rawconn.SessionPath) {
		return false
	}
	acc, err := d.envs.Access(open.GetEnvironmentId())
	if err != nil {
		return false
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(open.GetPort())))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	rc, err := d.dialRaw(ctx, rawconn.SessionPath, rawconn.ProtocolSession, open.GetSessionId())
	if err != nil {
		conn.Close()
		d.log.Debug("session connection refused: a Session stream instead", "err", err)
		return false
	}
	// The Connect session's end and the environment's stop end it too.
	stop := context.AfterFunc(ctx, func() { rc.Close(); conn.Close() })
	defer stop()
	go func() {
		select {
		case <-acc.Done:
			rc.Close()
			conn.Close()
		case <-ctx.Done():
		}
	}()
	_ = rawconn.Pipe(rc, conn)
	return true
}

// canDialRaw reports whether the runner can reach the control plane's path
// on a connection of its own (rawconn): not through a proxy, which an
// upgrade does not pass.
func (d *Daemon) canDialRaw(path string) bool {
	tr, ok := d.http.Transport.(*http.Transport)
	if !ok {
		return false
	}
	if tr.Proxy != nil {
		req, err := http.NewRequest(http.MethodGet, strings.TrimRight(d.state.Server, "/")+path, nil)
		if err != nil {
			return false
		}
		if p, err := tr.Proxy(req); err != nil || p != nil {
			return false
		}
	}
	return true
}

// dialRaw opens a connection of its own to the control plane's path
// (rawconn), upgraded to protocol, with the runner's token and, when id is
// set, the session it is for.
func (d *Daemon) dialRaw(ctx context.Context, path, protocol, id string) (net.Conn, error) {
	var tc *tls.Config
	if tr, ok := d.http.Transport.(*http.Transport); ok {
		tc = tr.TLSClientConfig
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+d.state.AccessToken)
	if id != "" {
		hdr.Set(rawconn.SessionIDHeader, id)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return rawconn.Dial(ctx, strings.TrimRight(d.state.Server, "/")+path, hdr, protocol, tc)
}

// sessionConn is one Session stream and what it drives.
type sessionConn struct {
	stream *connect.BidiStreamForClient[runnerv1.SessionRequest, runnerv1.SessionResponse]
	sendMu sync.Mutex

	// Set by prepare: where input goes.
	stdin      io.Writer
	closeStdin func()
	resize     func(cols, rows uint32)
	signal     func(sig syscall.Signal)
	abort      func()
}

func (s *sessionConn) send(m *runnerv1.SessionRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// receive relays the control plane's messages until the stream ends.
func (s *sessionConn) receive() {
	for {
		m, err := s.stream.Receive()
		if err != nil {
			return
		}
		switch m := m.Message.(type) {
		case *runnerv1.SessionResponse_Stdin:
			_, err := s.stdin.Write(m.Stdin)
			// Written (an SFTP session's pipe is read before Write
			// returns): the buffer is free again.
			putSessionChunk(m.Stdin)
			if err != nil {
				// The command closed its input; output may go on.
				continue
			}
		case *runnerv1.SessionResponse_StdinEof:
			s.closeStdin()
		case *runnerv1.SessionResponse_Resize:
			if s.resize != nil {
				s.resize(m.Resize.GetCols(), m.Resize.GetRows())
			}
		case *runnerv1.SessionResponse_Signal:
			if sig, ok := signals[m.Signal]; ok && s.signal != nil {
				s.signal(sig)
			}
		}
	}
}

var signals = map[string]syscall.Signal{
	"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "KILL": syscall.SIGKILL,
	"QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
}

// outWriter sends what is written to it as stdout or stderr messages.
type outWriter struct {
	s      *sessionConn
	stderr bool
}

func (w outWriter) Write(p []byte) (int, error) {
	// Send copies p into its frame before returning.
	m := &runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Stdout{Stdout: p}}
	if w.stderr {
		m = &runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Stderr{Stderr: p}}
	}
	if err := w.s.send(m); err != nil {
		return 0, err
	}
	return len(p), nil
}

// prepare starts what open asks for and returns the function that serves
// it until it ends; an error means nothing started (the hello says why).
func (s *sessionConn) prepare(open *runnerv1.OpenSession, acc *envs.Access) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	switch open.GetKind() {
	case runnerv1.SessionKind_SESSION_KIND_EXEC:
		return s.prepareExec(open, acc)
	case runnerv1.SessionKind_SESSION_KIND_TCP:
		return s.prepareTCP(open)
	case runnerv1.SessionKind_SESSION_KIND_SFTP:
		return s.prepareSFTP(acc)
	}
	return nil, fmt.Errorf("unknown session kind %s", open.GetKind())
}

// loginShell is the shell a session without a command runs: the runner
// user's $SHELL, else bash, else sh.
func loginShell(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := cutPrefix(env[i], "SHELL="); ok && v != "" {
			return v
		}
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func (s *sessionConn) prepareExec(open *runnerv1.OpenSession, acc *envs.Access) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	// The client's variables (TERM, LANG) go first: the environment's own
	// win over them.
	env := []string{}
	for k, v := range open.GetEnv() {
		env = append(env, k+"="+v)
	}
	env = append(env, acc.Env...)
	env = append(env, "PWD="+acc.Dir)
	shell := loginShell(acc.Env)
	var cmd *exec.Cmd
	switch {
	case len(open.GetArgv()) > 0:
		cmd = exec.Command(open.GetArgv()[0], open.GetArgv()[1:]...)
	case open.GetCommand() != "":
		cmd = exec.Command(shell, "-c", open.GetCommand())
	default:
		cmd = exec.Command(shell, "-l")
	}
	cmd.Env, cmd.Dir = env, acc.Dir
	if open.GetTty() {
		return s.startPTY(cmd, open.GetSize())
	}
	return s.startPipes(cmd)
}

// startPTY runs cmd as the leader of a new session whose controlling
// terminal is a new PTY.
func (s *sessionConn) startPTY(cmd *exec.Cmd, size *runnerv1.TerminalSize) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	ws := &pty.Winsize{Cols: uint16(size.GetCols()), Rows: uint16(size.GetRows())}
	if ws.Cols == 0 || ws.Rows == 0 {
		ws.Cols, ws.Rows = 80, 24
	}
	hasTerm := false
	for _, kv := range cmd.Env {
		if _, ok := cutPrefix(kv, "TERM="); ok {
			hasTerm = true
		}
	}
	if !hasTerm {
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	}
	f, err := pty.StartWithSize(cmd, ws)
	if err != nil {
		return s.notStarted(cmd, err)
	}
	s.stdin = f
	// A terminal's end of input is its EOF character.
	s.closeStdin = func() { _, _ = f.Write([]byte{4}) }
	s.resize = func(cols, rows uint32) {
		_ = pty.Setsize(f, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	}
	pid := cmd.Process.Pid
	s.signal = func(sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
	s.abort = func() { killGroup(pid); _ = cmd.Wait(); f.Close() }
	return func(ctx context.Context) *runnerv1.SessionExit {
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			// EIO once every holder of the terminal closed it.
			_, _ = io.Copy(outWriter{s: s}, f)
		}()
		exit := s.wait(ctx, cmd, copied)
		f.Close()
		return exit
	}, nil
}

// startPipes runs cmd in its own process group with pipes for stdin,
// stdout and stderr.
func (s *sessionConn) startPipes(cmd *exec.Cmd) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return s.notStarted(cmd, err)
	}
	s.stdin = inW
	var once sync.Once
	s.closeStdin = func() { once.Do(func() { inW.Close() }) }
	pid := cmd.Process.Pid
	s.signal = func(sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
	s.abort = func() { killGroup(pid); _ = cmd.Wait(); inW.Close(); outR.Close(); errR.Close() }
	return func(ctx context.Context) *runnerv1.SessionExit {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = io.Copy(outWriter{s: s}, outR) }()
		go func() { defer wg.Done(); _, _ = io.Copy(outWriter{s: s, stderr: true}, errR) }()
		copied := make(chan struct{})
		go func() { wg.Wait(); close(copied) }()
		exit := s.wait(ctx, cmd, copied)
		s.closeStdin()
		outR.Close()
		errR.Close()
		return exit
	}, nil
}

// notStarted answers a command that could not start as a shell would: a
// message on stderr and exit status 127 (not found) or 126 (not
// executable), so that a typo is the command's failure, not the session's.
func (s *sessionConn) notStarted(cmd *exec.Cmd, err error) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	code := int32(126)
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	s.stdin, s.closeStdin, s.abort = io.Discard, func() {}, func() {}
	return func(ctx context.Context) *runnerv1.SessionExit {
		_, _ = outWriter{s: s, stderr: true}.Write([]byte(fmt.Sprintf("runyard: %s: %v\n", cmd.Args[0], unwrapExec(err))))
		return &runnerv1.SessionExit{ExitCode: code}
	}, nil
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// wait waits for cmd to exit (or ctx to end, which kills it), kills what
// it left in its process group, waits for its output to be sent (bounded:
// a grandchild in another group may keep a pipe open) and returns its exit.
func (s *sessionConn) wait(ctx context.Context, cmd *exec.Cmd, copied <-chan struct{}) *runnerv1.SessionExit {
	pid := cmd.Process.Pid
	done := make(chan struct{})
	var ps *os.ProcessState
	go func() {
		defer close(done)
		_ = cmd.Wait()
		ps = cmd.ProcessState
	}()
	var ended error
	select {
	case <-done:
	case <-ctx.Done():
		ended = ctx.Err()
		// The client went away (or the environment stopped): hang up on
		// the session like a closed terminal does, then make sure.
		_ = syscall.Kill(-pid, syscall.SIGHUP)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	// Nothing of the session outlives it.
	killGroup(pid)
	<-done
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	if ended != nil && ps == nil {
		return &runnerv1.SessionExit{Error: "the session was closed"}
	}
	return exitOf(ps)
}

// killGroup kills the process group pid leads and every process of the
// session pid leads: an interactive shell puts each job in a group of its
// own, and those must not outlive the session either.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ...: comm may hold spaces and
		// parentheses, so the fields start after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 4 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pid {
			_ = syscall.Kill(p, syscall.SIGKILL)
		} else if sid, _ := strconv.Atoi(f[3]); sid == pid {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

func exitOf(ps *os.ProcessState) *runnerv1.SessionExit {
	if ps == nil {
		return &runnerv1.SessionExit{Error: "the command's status is unknown"}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		name := signalName(ws.Signal())
		return &runnerv1.SessionExit{ExitCode: int32(128 + int(ws.Signal())), Signal: name}
	}
	return &runnerv1.SessionExit{ExitCode: int32(ps.ExitCode())}
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return strconv.Itoa(int(sig))
}

// prepareTCP connects to the port on the environment's loopback (the
// runner's host's: a runyard environment runs on its runner's host).
func (s *sessionConn) prepareTCP(open *runnerv1.OpenSession) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(open.GetPort())))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("nothing answers on port %d in the environment: %w", open.GetPort(), unwrapExec(err))
	}
	tc := conn.(*net.TCPConn)
	s.stdin = conn
	s.closeStdin = func() { _ = tc.CloseWrite() }
	s.abort = func() { conn.Close() }
	return func(ctx context.Context) *runnerv1.SessionExit {
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		// Large reads make few messages: each is a hop to the control
		// plane and on to the client.
		_, err := io.CopyBuffer(outWriter{s: s}, struct{ io.Reader }{conn}, make([]byte, 256<<10))
		conn.Close()
		if err != nil && ctx.Err() == nil {
			return &runnerv1.SessionExit{Error: "the connection broke: " + err.Error()}
		}
		return &runnerv1.SessionExit{}
	}, nil
}

// prepareSFTP serves SFTP on the runner, in the environment's checkout:
// the control plane (an SSH client's sftp subsystem) only relays the
// protocol's bytes, and files are read and written here with the runner's
// rights, as the environment's commands are.
func (s *sessionConn) prepareSFTP(acc *envs.Access) (func(ctx context.Context) *runnerv1.SessionExit, error) {
	inR, inW := io.Pipe()
	s.stdin = inW
	s.closeStdin = func() { _ = inW.Close() }
	s.abort = func() { _ = inW.Close() }
	rwc := &sftpConn{r: inR, w: outWriter{s: s}}
	srv, err := sftp.NewServer(rwc, sftp.WithServerWorkingDirectory(acc.Dir))
	if err != nil {
		return nil, fmt.Errorf("start the SFTP server: %w", err)
	}
	return func(ctx context.Context) *runnerv1.SessionExit {
		stop := context.AfterFunc(ctx, func() { _ = inW.CloseWithError(io.EOF) })
		defer stop()
		err := srv.Serve()
		_ = srv.Close()
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			return &runnerv1.SessionExit{Error: "sftp: " + err.Error()}
		}
		return &runnerv1.SessionExit{}
	}, nil
}

type sftpConn struct {
	r *io.PipeReader
	w io.Writer
}

func (c *sftpConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *sftpConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *sftpConn) Close() error                { return c.r.Close() }
