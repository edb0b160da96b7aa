package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/runner/envs"
)

// serveLog sends one log of a service run or task execution to the control
// plane, as it asked in open: the log so far and, with follow, what the run
// writes until it ends. The log goes on a connection of its own when the
// control plane allows it (open.raw) and the runner can dial one, else on a
// Terminal stream, which is also what says that the runner has no such
// log. The control plane closing either (its reader went away) stops it.
func (d *Daemon) serveLog(ctx context.Context, open *runnerv1.OpenTerminal) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := d.log.With("log", open.GetLogId())
	// ended is closed once the control plane ended the stream or the
	// connection: after the log's end, the runner waits for it (briefly)
	// so that nothing the control plane has yet to read is cut off.
	ended := make(chan struct{})
	var stream *connect.BidiStreamForClient[runnerv1.TerminalRequest, runnerv1.TerminalResponse]
	var conn net.Conn
	hello := &runnerv1.TerminalHello{SessionId: open.GetSessionId()}
	w := &logWriter{}
	w.before = func() error {
		if open.GetRaw() && hello.GetError() == "" && d.canDialRaw(rawconn.LogPath) {
			c, err := d.dialRaw(ctx, rawconn.LogPath, rawconn.ProtocolLog, open.GetSessionId())
			if err == nil {
				conn, w.conn = c, c
				go func() {
					defer close(ended)
					defer cancel()
					// The control plane sends nothing: a read ends when
					// it closes the connection.
					_, _ = c.Read(make([]byte, 1))
				}()
				return nil
			}
			log.Debug("log connection refused: a Terminal stream instead", "err", err)
		}
		stream = d.control.Terminal(ctx)
		stream.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
		go func() {
			defer close(ended)
			defer cancel()
			for {
				if _, err := stream.Receive(); err != nil {
					return
				}
			}
		}()
		w.send = func(b []byte) error {
			return stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: b}})
		}
		return stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Hello{Hello: hello}})
	}
	err := d.envs.ReadLog(ctx, open.GetLogId(), open.GetFollow(), w)
	if errors.Is(err, envs.ErrUnknownLog) && !w.started {
		hello.Error = "this runner has no such log (never written, or past its retention)"
		err = w.begin()
	} else {
		if err == nil {
			err = w.begin() // an empty log still reaches its reader
		}
		if err == nil && stream != nil {
			err = stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: &runnerv1.TerminalEnd{Reason: "end of log"}}})
		}
		if err == nil && conn != nil {
			// The connection's end is the log's.
			err = rawconn.CloseWrite(conn)
		}
	}
	if err != nil && ctx.Err() == nil {
		log.Warn("send log", "err", err)
	}
	switch {
	case stream != nil:
		_ = stream.CloseRequest()
	case conn != nil:
		defer conn.Close()
	default:
		return
	}
	select {
	case <-ended:
	case <-time.After(terminalLinger):
	}
}

// logWriter sends a log, after before opened its way: on a connection of
// its own (conn) or as messages (send).
type logWriter struct {
	mu      sync.Mutex
	started bool
	before  func() error
	send    func([]byte) error
	conn    net.Conn
	// buf is ReadFrom's when the log goes as messages.
	buf []byte
}

func (w *logWriter) begin() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return nil
	}
	w.started = true
	return w.before()
}

// maxLogChunk bounds one message of a log: as large as the chunks the
// executor reads a log in (automations' copyChunk), far below the control
// plane's 4 MiB limit on a message; a message costs about the same whatever
// its size, so a log read fast goes in few of them.
const maxLogChunk = 256 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	if err := w.begin(); err != nil {
		return 0, err
	}
	if w.conn != nil {
		return w.conn.Write(p)
	}
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), maxLogChunk)]
		// Send encodes the message before it returns: p is not kept, and
		// needs no copy.
		if err := w.send(c); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

// ReadFrom takes a section of the log's file (the executor's copyLog hands
// it over when the writer can take it): on a plain TCP connection of its
// own the kernel sends it (sendfile(2)), with no copy through the runner.
func (w *logWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := w.begin(); err != nil {
		return 0, err
	}
	if rf, ok := w.conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	if w.buf == nil {
		w.buf = make([]byte, maxLogChunk)
	}
	return io.CopyBuffer(struct{ io.Writer }{w}, r, w.buf)
}

// gatherEnvelopes is the transport of the Terminal streams: Connect writes
// each message as its 5-byte prefix and then its payload, two writes to
// the request body, and HTTP/2 sends each read of the body as a DATA frame
// and flushes it: a log's chunk went out as two frames and two writes to
// the connection, and woke the control plane twice. The body read here
// returns a prefix with as much of its payload as the read takes.
type gatherEnvelopes struct{ http.RoundTripper }

func (t gatherEnvelopes) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.URL.Path == runnerv1connect.RunnerControlServiceTerminalProcedure {
		req.Body = &envelopeBody{ReadCloser: req.Body}
	}
	return t.RoundTripper.RoundTrip(req)
}

// envelopeBody reads a stream of Connect envelopes (a flags byte, a
// big-endian uint32 length, the payload) so that a read at a message's
// start holds its prefix and its payload.
type envelopeBody struct {
	io.ReadCloser
	// rest is what is left of the current message's payload.
	rest int
	// raw: a read too small for a prefix came, and the stream is passed
	// through as it is from there on.
	raw bool
}

func (b *envelopeBody) Read(p []byte) (int, error) {
	switch {
	case b.raw:
		return b.ReadCloser.Read(p)
	case b.rest > 0:
		n, err := b.ReadCloser.Read(p[:min(len(p), b.rest)])
		b.rest -= n
		return n, err
	case len(p) < 5:
		b.raw = true
		return b.ReadCloser.Read(p)
	}
	// A message's start: its prefix, then its payload, which its writer
	// sends right after.
	n, err := io.ReadFull(b.ReadCloser, p[:5])
	if err != nil {
		return n, err
	}
	size := int(binary.BigEndian.Uint32(p[1:5]))
	k, err := io.ReadFull(b.ReadCloser, p[5:5+min(size, len(p)-5)])
	b.rest = size - k
	return 5 + k, err
}
