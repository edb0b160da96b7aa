package fleet_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/fleet"
)

// TestLog_Raw: a log asked for says raw (unless the fleet keeps logs on
// Terminal streams); its connection (ServeLogRaw) is taken only from the
// runner that was asked and only for a waiting client; the client reads
// the connection's bytes as the log, to the runner's half-close; a
// connection for a client that stopped waiting is closed at once.
func TestLog_Raw(t *testing.T) {
	e := setup(t)
	r, rctx := e.newRunner(t, "lograw")
	_, otherCtx := e.newRunner(t, "lograw-other")
	f := fleet.New(e.svc, 0, discard)
	f.SetEpochs(e.db)
	c := connect(t, f, rctx, &runnerv1.Status{Version: "test"})
	c.handshake(t)

	type opened struct {
		rc  io.ReadCloser
		err error
	}
	open := func(ctx context.Context) (chan opened, *runnerv1.OpenTerminal) {
		openc := make(chan opened, 1)
		go func() {
			rc, err := f.OpenLog(ctx, r.OrgID, r.ID, "log-1", true)
			openc <- opened{rc, err}
		}()
		var ot *runnerv1.OpenTerminal
		for ot == nil {
			ot = c.recv(t).GetOpenTerminal()
		}
		return openc, ot
	}

	openc, ot := open(e.admin)
	if !ot.GetRaw() || ot.GetLogId() != "log-1" || !ot.GetFollow() {
		t.Fatalf("OpenTerminal for a log: %v, want raw, log-1, follow", ot)
	}
	server, runner := net.Pipe()
	defer runner.Close()
	accept := func() (net.Conn, error) { return server, nil }
	if err := f.ServeLogRaw(otherCtx, ot.GetSessionId(), accept); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("another runner's connection for the log: %v, want not found", err)
	}
	if err := f.ServeLogRaw(rctx, "no-such-session", accept); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("a connection for no waiting client: %v, want not found", err)
	}
	served := make(chan error, 1)
	go func() { served <- f.ServeLogRaw(rctx, ot.GetSessionId(), accept) }()
	var o opened
	select {
	case o = <-openc:
	case <-time.After(wait):
		t.Fatal("OpenLog did not return")
	}
	if o.err != nil {
		t.Fatalf("OpenLog: %v", o.err)
	}
	go func() {
		_, _ = runner.Write([]byte("line one\n"))
		_, _ = runner.Write([]byte("line two\n"))
		runner.Close() // the log's end
	}()
	got, err := io.ReadAll(o.rc)
	if err != nil || string(got) != "line one\nline two\n" {
		t.Fatalf("the log read: %q, %v", got, err)
	}
	if n := f.LogConnections(); n != 1 {
		t.Errorf("LogConnections = %d, want 1", n)
	}
	o.rc.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeLogRaw: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("ServeLogRaw did not return when the client closed the log")
	}

	// A client that gives up: the connection that comes after it is
	// closed, not held.
	ctx, cancel := context.WithCancel(e.admin)
	openc, ot = open(ctx)
	cancel()
	if o := <-openc; o.err == nil {
		t.Fatal("OpenLog returned a log after its context ended")
	}
	late, lateRunner := net.Pipe()
	defer lateRunner.Close()
	err = f.ServeLogRaw(rctx, ot.GetSessionId(), func() (net.Conn, error) { return late, nil })
	if !apperr.Is(err, apperr.CodeNotFound) {
		t.Errorf("a connection after the client stopped waiting: %v, want not found", err)
	}

	// A fleet that keeps logs on Terminal streams does not say raw.
	f.LogsOnStreams = true
	ctx, cancel = context.WithCancel(e.admin)
	openc, ot = open(ctx)
	cancel()
	if ot.GetRaw() {
		t.Error("OpenTerminal says raw with LogsOnStreams")
	}
	<-openc
}
