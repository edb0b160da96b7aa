package fleet_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/fleet"
)

// sessionStream is a runner's Session stream in memory; Send after ended
// is a write to a finished HTTP handler, which panics in net/http.
type sessionStream struct {
	in    chan *runnerv1.SessionRequest
	ended atomic.Bool
	late  atomic.Int64 // sends after ended
}

func (s *sessionStream) Receive() (*runnerv1.SessionRequest, error) {
	m, ok := <-s.in
	if !ok {
		return nil, io.EOF
	}
	return m, nil
}

func (s *sessionStream) Send(*runnerv1.SessionResponse) error {
	if s.ended.Load() {
		s.late.Add(1)
	}
	return nil
}

// TestSession_NoSendAfterItsStreamEnded: once the handler of a session's
// stream has returned (the runner's connection went away, or the control
// plane shuts down), the client's stdin EOF, input, resize and signal are
// refused instead of written to the stream. An SSH client's EOF that came
// after the stream ended used to crash the control plane.
func TestSession_NoSendAfterItsStreamEnded(t *testing.T) {
	e := setup(t)
	r, rctx := e.newRunner(t, "sessions")
	f := fleet.New(e.svc, 0, discard)
	f.SetEpochs(e.db)
	c := connect(t, f, rctx, &runnerv1.Status{Version: "test"})
	c.handshake(t)

	type opened struct {
		st  envaccess.Stream
		err error
	}
	openc := make(chan opened, 1)
	go func() {
		st, err := f.OpenSession(context.Background(), r.OrgID, r.ID, envaccess.Request{EnvironmentID: "env", Kind: envaccess.KindExec, Command: "cat"})
		openc <- opened{st, err}
	}()
	var open *runnerv1.OpenSession
	for open == nil {
		open = c.recv(t).GetOpenSession()
	}

	ss := &sessionStream{in: make(chan *runnerv1.SessionRequest, 1)}
	ss.in <- &runnerv1.SessionRequest{Message: &runnerv1.SessionRequest_Hello{Hello: &runnerv1.SessionHello{SessionId: open.GetSessionId()}}}
	sctx, endStream := context.WithCancel(rctx)
	served := make(chan error, 1)
	go func() { served <- f.ServeSession(sctx, ss) }()
	var o opened
	select {
	case o = <-openc:
	case <-time.After(wait):
		t.Fatal("OpenSession did not return")
	}
	if o.err != nil {
		t.Fatalf("OpenSession: %v", o.err)
	}
	if err := o.st.Write([]byte("live")); err != nil {
		t.Fatalf("Write while the stream is served: %v", err)
	}

	endStream()
	select {
	case <-served:
	case <-time.After(wait):
		t.Fatal("ServeSession did not return when its stream's context ended")
	}
	ss.ended.Store(true)
	for name, send := range map[string]func() error{
		"CloseStdin": o.st.CloseStdin,
		"Write":      func() error { return o.st.Write([]byte("late")) },
		"Resize":     func() error { return o.st.Resize(80, 24) },
		"Signal":     func() error { return o.st.Signal("INT") },
	} {
		if err := send(); err == nil {
			t.Errorf("%s after the stream ended: no error", name)
		}
	}
	if n := ss.late.Load(); n != 0 {
		t.Errorf("%d messages sent to a stream whose handler had returned", n)
	}
	o.st.Close()
}

// TestSession_Raw: a TCP session asked for raw tells the runner so; its
// connection (ServeSessionRaw) is taken only from the runner that was asked
// and only for a waiting session, and the client gets it as a RawStream.
func TestSession_Raw(t *testing.T) {
	e := setup(t)
	r, rctx := e.newRunner(t, "raw")
	_, otherCtx := e.newRunner(t, "raw-other")
	f := fleet.New(e.svc, 0, discard)
	f.SetEpochs(e.db)
	c := connect(t, f, rctx, &runnerv1.Status{Version: "test"})
	c.handshake(t)

	type opened struct {
		st  envaccess.Stream
		err error
	}
	openc := make(chan opened, 1)
	go func() {
		st, err := f.OpenSession(context.Background(), r.OrgID, r.ID, envaccess.Request{EnvironmentID: "env", Kind: envaccess.KindTCP, Port: 8080, Raw: true})
		openc <- opened{st, err}
	}()
	var open *runnerv1.OpenSession
	for open == nil {
		open = c.recv(t).GetOpenSession()
	}
	if !open.GetRaw() {
		t.Fatal("OpenSession of a raw TCP session: raw is not set")
	}
	client, runner := net.Pipe()
	defer runner.Close()
	accept := func() (net.Conn, error) { return client, nil }
	if err := f.ServeSessionRaw(otherCtx, open.GetSessionId(), accept); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("another runner's connection for the session: %v, want not found", err)
	}
	if err := f.ServeSessionRaw(rctx, "no-such-session", accept); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("a connection for no waiting session: %v, want not found", err)
	}
	served := make(chan error, 1)
	go func() { served <- f.ServeSessionRaw(rctx, open.GetSessionId(), accept) }()
	var o opened
	select {
	case o = <-openc:
	case <-time.After(wait):
		t.Fatal("OpenSession did not return")
	}
	if o.err != nil {
		t.Fatalf("OpenSession: %v", o.err)
	}
	conn, ok := envaccess.Raw(o.st)
	if !ok || conn != client {
		t.Fatalf("the stream is not the runner's connection (raw %v)", ok)
	}
	go func() { _, _ = runner.Write([]byte("hi")) }()
	f1, err := o.st.Recv()
	if err != nil || string(f1.Data) != "hi" {
		t.Fatalf("Recv: %q, %v", f1.Data, err)
	}
	o.st.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeSessionRaw: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("ServeSessionRaw did not return when the client closed the session")
	}
}
