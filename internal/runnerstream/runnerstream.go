// Package runnerstream carries a runner's stream (the messages of
// RunnerControlService.Connect) on a connection of its own: an HTTP/1.1
// request upgraded to "runyard-stream" (rawconn), then frames both ways in
// Connect's envelope (a flags byte, a big-endian uint32 length, a protobuf
// message). The control plane's last frame ends the stream (flags
// EndStream): an error's code and message, as JSON, or nothing for a clean
// end.
//
// Why: the control plane holds one stream per connected runner for as
// long as the runner lives. Over HTTP/2 each cost three goroutines of
// net/http's server and its buffers (the connection's bufio reader and
// writer, the stream's response writer, HPACK tables, frame buffers):
// about 60 KiB live and 110 KiB of RSS per runner. Here a stream is its
// handler's goroutine and a socket.
//
// A runner that cannot dial one (a proxy in the way, an older control
// plane) opens the Connect stream, which carries the same messages.
package runnerstream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/rawconn"
)

const (
	// Protocol is named in the Upgrade header.
	Protocol = "runyard-stream"
	// Path is where a runner upgrades its stream's connection, beside the
	// runner protocol's procedures (not one of them). Its request carries
	// the runner's token.
	Path = "/runyard.runner.v1.RunnerControlService/ConnectRaw"
)

// flagEndStream marks the control plane's last frame (Connect's flag).
const flagEndStream = 0x02

// writeTimeout bounds one frame's write: a peer that stopped reading (a
// host gone without closing the connection) fails the write instead of
// holding its writer for ever.
const writeTimeout = 30 * time.Second

// MaxRequestBytes bounds a runner's message, as the Connect stream does
// (connectapi.MaxRequestBytes).
const MaxRequestBytes = 4 << 20

// maxResponseBytes bounds a control plane's message: a desired state
// holds every pod, environment, service and execution of its runner.
const maxResponseBytes = 64 << 20

// frames reads and writes envelopes on one connection.
type frames struct {
	conn   net.Conn
	prefix [5]byte
	wmu    sync.Mutex
}

// read returns the next frame's flags and payload; the payload is at most
// limit bytes.
func (f *frames) read(limit int) (byte, []byte, error) {
	if _, err := io.ReadFull(f.conn, f.prefix[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(f.prefix[1:])
	if int64(n) > int64(limit) {
		return 0, nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("a message of %d bytes is over the limit of %d", n, limit))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(f.conn, b); err != nil {
		return 0, nil, noEOF(err)
	}
	return f.prefix[0], b, nil
}

// write sends one frame in one write.
func (f *frames) write(flags byte, payload func([]byte) ([]byte, error)) error {
	b := make([]byte, 5, 5+256)
	b, err := payload(b)
	if err != nil {
		return err
	}
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = f.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = f.conn.Write(b)
	return err
}

func (f *frames) writeMessage(flags byte, m proto.Message) error {
	return f.write(flags, func(b []byte) ([]byte, error) {
		out, err := proto.MarshalOptions{}.MarshalAppend(b, m)
		if err != nil {
			return nil, fmt.Errorf("marshal %T: %w", m, err)
		}
		return out, nil
	})
}

// noEOF: a connection that ends inside a frame was cut.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// end is the payload of the last frame.
type end struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Server is the control plane's side of one stream (fleet.Stream).
type Server struct {
	f frames
}

// NewServer serves a stream on conn, an accepted upgrade.
func NewServer(conn net.Conn) *Server { return &Server{f: frames{conn: conn}} }

// Receive returns the runner's next message; io.EOF when the runner ended
// the stream.
func (s *Server) Receive() (*runnerv1.ConnectRequest, error) {
	flags, b, err := s.f.read(MaxRequestBytes)
	if err != nil {
		return nil, err
	}
	if flags != 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("a runner's frame with flags %#x", flags))
	}
	m := &runnerv1.ConnectRequest{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unmarshal the runner's message: %w", err))
	}
	return m, nil
}

// Send sends m to the runner.
func (s *Server) Send(m *runnerv1.ConnectResponse) error { return s.f.writeMessage(0, m) }

// CloseReceive makes a blocked Receive, and every later one, fail; Send
// still works, so the stream's end can be said.
func (s *Server) CloseReceive() { _ = s.f.conn.SetReadDeadline(time.Unix(1, 0)) }

// End sends the stream's end, err's code and message (err is nil or a
// *connect.Error, as the Connect handler would answer), and closes the
// connection.
func (s *Server) End(err error) {
	var e end
	var ce *connect.Error
	if errors.As(err, &ce) {
		e = end{Code: ce.Code().String(), Message: ce.Message()}
	} else if err != nil {
		e = end{Code: connect.CodeUnknown.String(), Message: err.Error()}
	}
	_ = s.f.write(flagEndStream, func(b []byte) ([]byte, error) {
		j, err := json.Marshal(e)
		return append(b, j...), err
	})
	_ = s.f.conn.Close()
}

// Client is the runner's side of one stream.
type Client struct {
	f frames
}

// NewClient runs a stream on conn, an upgrade the control plane accepted.
func NewClient(conn net.Conn) *Client { return &Client{f: frames{conn: conn}} }

// Send sends m to the control plane.
func (c *Client) Send(m *runnerv1.ConnectRequest) error { return c.f.writeMessage(0, m) }

// Receive returns the control plane's next message. The stream's end is
// io.EOF when clean, else a *connect.Error with the control plane's code
// and message, as the Connect stream returns them.
func (c *Client) Receive() (*runnerv1.ConnectResponse, error) {
	flags, b, err := c.f.read(maxResponseBytes)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("the control plane closed the stream's connection"))
		}
		return nil, err
	}
	if flags&flagEndStream != 0 {
		var e end
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("the stream's end: %w", err)
		}
		if e.Code == "" {
			return nil, io.EOF
		}
		var code connect.Code
		if err := code.UnmarshalText([]byte(e.Code)); err != nil {
			code = connect.CodeUnknown
		}
		return nil, connect.NewError(code, errors.New(e.Message))
	}
	m := &runnerv1.ConnectResponse{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("unmarshal the control plane's message: %w", err)
	}
	return m, nil
}

// CloseRequest ends the runner's side of the stream (a half-close): the
// control plane's Receive returns io.EOF.
func (c *Client) CloseRequest() error { return rawconn.CloseWrite(c.f.conn) }

// Close closes the connection.
func (c *Client) Close() error { return c.f.conn.Close() }
