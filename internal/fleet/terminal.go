package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/replicaproxy"
)

// terminalOpenTimeout bounds the wait for a runner to open a terminal it was
// asked for.
const terminalOpenTimeout = 10 * time.Second

// TerminalStream is the runner's side of one Terminal stream
// (connect.BidiStream).
type TerminalStream interface {
	Receive() (*runnerv1.TerminalRequest, error)
	Send(*runnerv1.TerminalResponse) error
}

// terminalWait is a client waiting for a runner to open a terminal.
type terminalWait struct {
	orgID, runnerID string
	// ready hands the stream over; unbuffered, so that a stream either
	// reaches the client or sees gone.
	ready chan *relay
	// gone is closed when the client stopped waiting: a stream that
	// arrives after it is closed, not left open.
	gone chan struct{}
}

// relay is one pod terminal: the runner's Terminal stream, used by the
// client that asked for it. The stream's handler waits until the relay is
// closed.
type relay struct {
	hello  *runnerv1.TerminalHello
	stream TerminalStream
	sendMu sync.Mutex
	// ended is set (under sendMu) when the stream's handler returns; a
	// send after it would write to a finished HTTP handler (see
	// envSession.ended).
	ended bool

	closeOnce sync.Once
	closed    chan struct{}

	end       *runnerv1.TerminalEnd
	endReason string
	// pending is output received but not yet read (LogReader).
	pending []byte
}

var _ pods.Terminal = (*relay)(nil)

// OpenTerminal asks the runner's live stream to open a Terminal stream to
// pod key and waits for it. It implements pods.TerminalOpener.
func (f *Fleet) OpenTerminal(ctx context.Context, orgID, runnerID, key string, follow bool) (pods.Terminal, error) {
	r, err := f.open(ctx, orgID, runnerID, &runnerv1.OpenTerminal{PodKey: key, Follow: follow}, "pod's terminal")
	if err != nil {
		return nil, err
	}
	if msg := r.hello.GetError(); msg != "" {
		r.Close()
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner cannot open the pod's terminal: " + msg}
	}
	return r, nil
}

// open asks the runner's live stream to open a Terminal stream for req
// (its session ID set here) and waits for it; what names the stream's
// content in errors.
func (f *Fleet) open(ctx context.Context, orgID, runnerID string, req *runnerv1.OpenTerminal, what string) (*relay, error) {
	f.mu.Lock()
	s := f.sessions[runnerID]
	f.mu.Unlock()
	if s == nil || s.orgID != orgID {
		// Another replica may hold the stream: the API relays the request
		// there (replicaproxy), or answers unavailable.
		return nil, &replicaproxy.ElsewhereError{OrgID: orgID, RunnerID: runnerID}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w := &terminalWait{orgID: orgID, runnerID: runnerID, ready: make(chan *relay), gone: make(chan struct{})}
	f.mu.Lock()
	f.terminals[id] = w
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.terminals, id)
		f.mu.Unlock()
	}()
	defer close(w.gone)

	timer := time.NewTimer(terminalOpenTimeout)
	defer timer.Stop()
	req.SessionId = id
	open := &runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_OpenTerminal{OpenTerminal: req}}
	select {
	case s.acks <- open:
		s.kick()
	case <-s.done:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner disconnected; try again when it is online"}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner is not reading its stream; try again"}
	}
	select {
	case r := <-w.ready:
		// The caller reads r.hello's error: what it means depends on what
		// was asked for.
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("the runner did not open the %s within %s", what, terminalOpenTimeout)}
	}
}

// ServeTerminal serves a Terminal stream a runner opened: it hands the
// stream to the client waiting for it and returns once that client is done
// or the stream breaks.
func (f *Fleet) ServeTerminal(ctx context.Context, stream TerminalStream) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Receive()
	if err != nil {
		return fmt.Errorf("receive terminal hello: %w", err)
	}
	hello := first.GetHello()
	if hello == nil {
		return apperr.Invalid("hello", "the first message of a terminal must be a hello")
	}
	w := f.takeTerminalWait(c, hello.GetSessionId())
	if w == nil {
		return apperr.NotFound("no client waits for terminal session %q", hello.GetSessionId())
	}
	f.openTerminals.Add(1)
	defer f.openTerminals.Add(-1)
	r := &relay{hello: hello, stream: stream, closed: make(chan struct{})}
	r.handOver(ctx, w)
	return nil
}

// handOver gives r to the client waiting in w and waits until that client
// is done with it or ctx ends; a client that stopped waiting is not waited
// for. A send after it returns fails (relay.ended).
func (r *relay) handOver(ctx context.Context, w *terminalWait) {
	select {
	case w.ready <- r:
		select {
		case <-r.closed:
		case <-ctx.Done():
		}
	case <-w.gone:
	}
	r.sendMu.Lock()
	r.ended = true
	r.sendMu.Unlock()
}

// takeTerminalWait returns the client waiting for Terminal session id of
// runner c, no longer findable, or nil when none waits.
func (f *Fleet) takeTerminalWait(c *identity.Caller, id string) *terminalWait {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.terminals[id]
	if w == nil || w.orgID != c.OrgID || w.runnerID != c.RunnerID {
		return nil
	}
	delete(f.terminals, id)
	return w
}

func (r *relay) Scrollback() []byte { return r.hello.GetScrollback() }

func (r *relay) Status() pods.Report { return podReportOf(r.hello.GetStatus()) }

func (r *relay) Recv() ([]byte, error) {
	for {
		msg, err := r.stream.Receive()
		if errors.Is(err, io.EOF) {
			if r.end == nil && r.endReason == "" {
				r.endReason = "the runner closed the terminal"
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("receive pod output: %w", err)
		}
		switch m := msg.Message.(type) {
		case *runnerv1.TerminalRequest_Output:
			return m.Output, nil
		case *runnerv1.TerminalRequest_End:
			r.end, r.endReason = m.End, m.End.GetReason()
			return nil, io.EOF
		}
	}
}

func (r *relay) End() (*pods.Report, string) {
	if r.end.GetStatus() == nil {
		return nil, r.endReason
	}
	rep := podReportOf(r.end.GetStatus())
	return &rep, r.endReason
}

func (r *relay) Input(b []byte) error {
	return r.send(&runnerv1.TerminalResponse{Message: &runnerv1.TerminalResponse_Input{Input: b}})
}

func (r *relay) Resize(cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535 {
		return apperr.Invalid("cols", "terminal size %dx%d: cols and rows must be between 1 and 65535", cols, rows)
	}
	return r.send(&runnerv1.TerminalResponse{Message: &runnerv1.TerminalResponse_Resize{Resize: &runnerv1.TerminalSize{
		Cols: uint32(cols), Rows: uint32(rows)}}})
}

func (r *relay) send(m *runnerv1.TerminalResponse) error {
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
		return fmt.Errorf("send to the pod's terminal: %w", err)
	}
	return nil
}

func (r *relay) Close() { r.closeOnce.Do(func() { close(r.closed) }) }
