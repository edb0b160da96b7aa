package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/replicaproxy"
)

// This file carries sessions into environments (envaccess) the way
// terminal.go carries pod terminals: the control plane asks the runner's
// Connect stream to OpenSession, the runner dials back with a Session
// stream (its own HTTP/2 stream on the runner's connection, so a busy
// session never holds up the Connect stream or another session), and the
// fleet pairs it with the client waiting for it by session ID.

// SessionStream is the runner's side of one Session stream
// (connect.BidiStream).
type SessionStream interface {
	Receive() (*runnerv1.SessionRequest, error)
	Send(*runnerv1.SessionResponse) error
}

type sessionWait struct {
	orgID, runnerID string
	ready           chan envaccess.Stream // capacity 1: an *envSession or a *rawSession
	// gone is closed when the client stopped waiting: a raw session that
	// arrives after it is closed, not left open.
	gone chan struct{}
}

// envSession is one session: the runner's Session stream, used by the
// client that asked for it. The stream's handler waits until it is closed.
type envSession struct {
	hello  *runnerv1.SessionHello
	stream SessionStream
	sendMu sync.Mutex
	// ended is set (under sendMu) when the stream's handler returns: the
	// runner's connection went away or the control plane shuts down. A
	// send after that would write to a finished HTTP handler, which
	// panics in net/http.
	ended bool

	closeOnce sync.Once
	closed    chan struct{}

	exit envaccess.Exit
}

var _ envaccess.Stream = (*envSession)(nil)

// OpenSession asks the runner's live stream to open a session into one of
// its environments and waits for it. It implements envaccess.Opener.
func (f *Fleet) OpenSession(ctx context.Context, orgID, runnerID string, req envaccess.Request) (envaccess.Stream, error) {
	f.mu.Lock()
	s := f.sessions[runnerID]
	f.mu.Unlock()
	if s == nil || s.orgID != orgID {
		return nil, &replicaproxy.ElsewhereError{OrgID: orgID, RunnerID: runnerID}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w := &sessionWait{orgID: orgID, runnerID: runnerID, ready: make(chan envaccess.Stream, 1), gone: make(chan struct{})}
	f.envSessions.Store(id, w)
	defer f.envSessions.Delete(id)
	served := false
	defer func() {
		if !served {
			close(w.gone)
		}
	}()

	open := &runnerv1.OpenSession{
		SessionId: id, EnvironmentId: req.EnvironmentID, Argv: req.Argv, Command: req.Command, Tty: req.TTY, Env: req.Env, Port: uint32(req.Port),
		Raw: req.Raw && req.Kind == envaccess.KindTCP,
	}
	switch req.Kind {
	case envaccess.KindExec:
		open.Kind = runnerv1.SessionKind_SESSION_KIND_EXEC
	case envaccess.KindTCP:
		open.Kind = runnerv1.SessionKind_SESSION_KIND_TCP
	case envaccess.KindSFTP:
		open.Kind = runnerv1.SessionKind_SESSION_KIND_SFTP
	}
	if req.TTY {
		open.Size = &runnerv1.TerminalSize{Cols: uint32(req.Cols), Rows: uint32(req.Rows)}
	}
	timer := time.NewTimer(terminalOpenTimeout)
	defer timer.Stop()
	select {
	case s.acks <- &runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_OpenSession{OpenSession: open}}:
		s.kick()
	case <-s.done:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner disconnected; try again when it is online"}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner is not reading its stream; try again"}
	}
	select {
	case st := <-w.ready:
		served = true
		r, ok := st.(*envSession)
		if !ok {
			return st, nil // a raw session: the runner reached the port
		}
		if msg := r.hello.GetError(); msg != "" {
			r.Close()
			if r.hello.GetNotRunning() {
				return nil, apperr.FailedPrecondition("environment %q: %s", req.EnvironmentID, msg)
			}
			return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner cannot open the session: " + msg}
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("the runner did not open the session within %s", terminalOpenTimeout)}
	}
}

// ServeSession serves a Session stream a runner opened: it hands the
// stream to the client waiting for it and returns once that client is done
// or the stream breaks.
func (f *Fleet) ServeSession(ctx context.Context, stream SessionStream) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Receive()
	if err != nil {
		return fmt.Errorf("receive session hello: %w", err)
	}
	hello := first.GetHello()
	if hello == nil {
		return apperr.Invalid("hello", "the first message of a session must be a hello")
	}
	v, ok := f.envSessions.Load(hello.GetSessionId())
	w, _ := v.(*sessionWait)
	if !ok || w.orgID != c.OrgID || w.runnerID != c.RunnerID || !f.envSessions.CompareAndDelete(hello.GetSessionId(), w) {
		return apperr.NotFound("no client waits for session %q", hello.GetSessionId())
	}
	r := &envSession{hello: hello, stream: stream, closed: make(chan struct{})}
	w.ready <- r
	select {
	case <-r.closed:
	case <-ctx.Done():
	}
	r.sendMu.Lock()
	r.ended = true
	r.sendMu.Unlock()
	return nil
}

// ServeSessionRaw takes a runner's session connection (rawconn), which
// carries the TCP session id asked for (OpenSession with Raw): accept
// upgrades the request once the session is known to wait for it. It hands
// the connection to the client waiting for it and returns once that
// client is done or ctx ends (the connection is then closed).
func (f *Fleet) ServeSessionRaw(ctx context.Context, id string, accept func() (net.Conn, error)) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	v, ok := f.envSessions.Load(id)
	w, _ := v.(*sessionWait)
	if !ok || w.orgID != c.OrgID || w.runnerID != c.RunnerID || !f.envSessions.CompareAndDelete(id, w) {
		return apperr.NotFound("no client waits for session %q", id)
	}
	conn, err := accept()
	if err != nil {
		return err
	}
	r := &rawSession{conn: conn, closed: make(chan struct{})}
	select {
	case w.ready <- r:
	case <-w.gone:
		r.Close()
		return nil
	}
	select {
	case <-r.closed:
	case <-ctx.Done():
		r.Close()
	}
	return nil
}

// rawSession is a TCP session on a runner's connection of its own: the
// connection's bytes are the forwarded connection's.
type rawSession struct {
	conn      net.Conn
	buf       []byte
	closeOnce sync.Once
	closed    chan struct{}
}

var _ envaccess.RawStream = (*rawSession)(nil)

func (r *rawSession) Conn() net.Conn { return r.conn }

func (r *rawSession) Recv() (envaccess.Frame, error) {
	if r.buf == nil {
		r.buf = make([]byte, 64<<10)
	}
	n, err := r.conn.Read(r.buf)
	if n > 0 {
		return envaccess.Frame{Data: r.buf[:n]}, nil
	}
	if errors.Is(err, io.EOF) {
		return envaccess.Frame{}, io.EOF
	}
	select {
	case <-r.closed:
		return envaccess.Frame{}, io.EOF
	default:
	}
	return envaccess.Frame{}, fmt.Errorf("receive session output: %w", err)
}

func (r *rawSession) Exit() envaccess.Exit { return envaccess.Exit{} }

func (r *rawSession) Write(p []byte) error {
	if _, err := r.conn.Write(p); err != nil {
		return fmt.Errorf("send to the session: %w", err)
	}
	return nil
}

func (r *rawSession) CloseStdin() error { return rawconn.CloseWrite(r.conn) }

func (r *rawSession) Resize(cols, rows int) error {
	return apperr.FailedPrecondition("a TCP session has no terminal")
}

func (r *rawSession) Signal(name string) error {
	return apperr.FailedPrecondition("a TCP session runs no command")
}

func (r *rawSession) Close() {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.conn.Close()
	})
}

func (r *envSession) Recv() (envaccess.Frame, error) {
	for {
		msg, err := r.stream.Receive()
		if errors.Is(err, io.EOF) {
			if !r.exit.HasCode && r.exit.Err == "" {
				r.exit.Err = "the runner closed the session"
			}
			return envaccess.Frame{}, io.EOF
		}
		if err != nil {
			select {
			case <-r.closed:
				return envaccess.Frame{}, io.EOF
			default:
			}
			r.exit.Err = "lost the runner's stream"
			return envaccess.Frame{}, fmt.Errorf("receive session output: %w", err)
		}
		switch m := msg.Message.(type) {
		case *runnerv1.SessionRequest_Stdout:
			return envaccess.Frame{Data: m.Stdout}, nil
		case *runnerv1.SessionRequest_Stderr:
			return envaccess.Frame{Stderr: true, Data: m.Stderr}, nil
		case *runnerv1.SessionRequest_Exit:
			x := m.Exit
			r.exit = envaccess.Exit{Code: int(x.GetExitCode()), HasCode: x.GetError() == "", Signal: x.GetSignal(), Err: x.GetError()}
			return envaccess.Frame{}, io.EOF
		}
	}
}

func (r *envSession) Exit() envaccess.Exit { return r.exit }

func (r *envSession) Write(p []byte) error {
	// The message is encoded before Send returns, so p may be reused.
	return r.send(&runnerv1.SessionResponse{Message: &runnerv1.SessionResponse_Stdin{Stdin: p}})
}

func (r *envSession) CloseStdin() error {
	return r.send(&runnerv1.SessionResponse{Message: &runnerv1.SessionResponse_StdinEof{StdinEof: true}})
}

func (r *envSession) Resize(cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535 {
		return apperr.Invalid("cols", "terminal size %dx%d: cols and rows must be between 1 and 65535", cols, rows)
	}
	return r.send(&runnerv1.SessionResponse{Message: &runnerv1.SessionResponse_Resize{Resize: &runnerv1.TerminalSize{
		Cols: uint32(cols), Rows: uint32(rows)}}})
}

func (r *envSession) Signal(name string) error {
	return r.send(&runnerv1.SessionResponse{Message: &runnerv1.SessionResponse_Signal{Signal: name}})
}

func (r *envSession) send(m *runnerv1.SessionResponse) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	select {
	case <-r.closed:
		return io.ErrClosedPipe
	default:
	}
	if r.ended {
		return io.ErrClosedPipe
	}
	if err := r.stream.Send(m); err != nil {
		return fmt.Errorf("send to the session: %w", err)
	}
	return nil
}

func (r *envSession) Close() { r.closeOnce.Do(func() { close(r.closed) }) }
