package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// ServeLogRaw takes a runner's connection of its own for a log (rawconn,
// OpenTerminal with raw): accept upgrades the request once a client is
// known to wait for log session id. The connection's bytes are the log's,
// and the runner's half-close is its end; the client reads it as it reads
// a Terminal stream's log (LogReader). It returns once that client is done
// or ctx ends, and closes the connection, which stops the runner.
//
// A log's bytes on a Terminal stream were framed and copied about ten
// times between the runner's file and the follower (protobuf, Connect's
// envelopes, HTTP/2's frames and stream buffers on both sides); here the
// runner sends the file with sendfile(2) and the control plane reads the
// socket straight into the buffer it writes to the follower.
func (f *Fleet) ServeLogRaw(ctx context.Context, id string, accept func() (net.Conn, error)) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	w := f.takeTerminalWait(c, id)
	if w == nil {
		return apperr.NotFound("no client waits for log session %q", id)
	}
	conn, err := accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	f.logConns.Add(1)
	f.openTerminals.Add(1)
	defer f.openTerminals.Add(-1)
	r := &relay{hello: &runnerv1.TerminalHello{SessionId: id}, stream: &rawLog{conn: conn}, closed: make(chan struct{})}
	r.handOver(ctx, w)
	return nil
}

// rawLog is a log on a runner's connection of its own, as a Terminal
// stream: each read is an output message, in a buffer of TerminalCodec's
// pool that the LogReader hands back, and the connection's end is the
// log's.
type rawLog struct {
	conn  net.Conn
	ended bool
}

func (l *rawLog) Receive() (*runnerv1.TerminalRequest, error) {
	if l.ended {
		return nil, io.EOF
	}
	buf := terminalChunks.Get()
	n, err := l.conn.Read(buf)
	if n > 0 {
		// An error comes again with the next read.
		return &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: buf[:n]}}, nil
	}
	putTerminalChunk(buf)
	if errors.Is(err, io.EOF) {
		l.ended = true
		return &runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: &runnerv1.TerminalEnd{Reason: "end of log"}}}, nil
	}
	return nil, fmt.Errorf("read the log's connection: %w", err)
}

// Send fails: a log takes no input (relay.Input and Resize are a pod
// terminal's).
func (l *rawLog) Send(*runnerv1.TerminalResponse) error {
	return errors.New("a log's connection takes no input")
}
