package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/runner/envs"
)

// serveLog opens a Terminal stream that carries one log of a service run or
// task execution, as the control plane asked in open: the log so far and,
// with follow, what the run writes until it ends. The control plane closing
// the stream (its reader went away) stops it.
func (d *Daemon) serveLog(ctx context.Context, open *runnerv1.OpenTerminal) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := d.log.With("log", open.GetLogId())
	stream := d.control.Terminal(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
	defer stream.CloseRequest()

	// A log that does not exist is said in the hello, before any output.
	hello := &runnerv1.TerminalHello{SessionId: open.GetSessionId()}
	w := &logWriter{send: func(b []byte) error {
		return stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Output{Output: b}})
	}}
	received := make(chan struct{})
	go func() {
		defer close(received)
		defer cancel()
		for {
			if _, err := stream.Receive(); err != nil {
				return
			}
		}
	}()
	w.before = func() error {
		return stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_Hello{Hello: hello}})
	}
	err := d.envs.ReadLog(ctx, open.GetLogId(), open.GetFollow(), w)
	if errors.Is(err, envs.ErrUnknownLog) && !w.started {
		hello.Error = "this runner has no such log (never written, or past its retention)"
		_ = w.begin()
	} else {
		if err == nil {
			err = w.begin() // an empty log still gets its hello
		}
		if err == nil {
			err = stream.Send(&runnerv1.TerminalRequest{Message: &runnerv1.TerminalRequest_End{End: &runnerv1.TerminalEnd{Reason: "end of log"}}})
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("send log", "err", err)
		}
	}
	_ = stream.CloseRequest()
	select {
	case <-received:
	case <-time.After(terminalLinger):
	}
}

// logWriter sends a log in chunks, after the hello.
type logWriter struct {
	mu      sync.Mutex
	started bool
	before  func() error
	send    func([]byte) error
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
