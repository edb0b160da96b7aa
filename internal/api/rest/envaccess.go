package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/rawconn"
)

// This file is the WebSocket adapter of envaccess: a command or a shell in
// an environment (`runyard environments exec|ssh`) and a TCP connection to
// one of its ports (`runyard environments port-forward`), one WebSocket per
// session. The session is opened before the upgrade, so a refusal is an
// ordinary HTTP error (and a runner connected to another replica gets the
// whole request relayed there).
//
// Exec: the server sends binary messages whose first byte says the stream
// (1 stdout, 2 stderr) and an exit event last; the client sends stdin as
// binary messages and eof, resize and signal events. Port forward: binary
// messages are the connection's bytes both ways; an eof event half-closes
// either direction, and the server closes the socket when both are done.

// Stream bytes of exec's binary messages.
const (
	execStdout = 1
	execStderr = 2
)

// accessEvent is a text message of an exec or port-forward WebSocket.
type accessEvent struct {
	// Type is eof, resize or signal from the client; exit or error from
	// the server (and eof from a port forward's server).
	Type   string `json:"type"`
	Cols   int    `json:"cols,omitempty"`
	Rows   int    `json:"rows,omitempty"`
	Signal string `json:"signal,omitempty"`
	// ExitCode is set on exit when the command exited (with Signal when a
	// signal ended it); Reason says why a session ended without one.
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

// maxAccessMessage bounds one message from the client: a chunk of stdin or
// of a forwarded connection.
const maxAccessMessage = 1 << 20

// environmentExec is GET /environments/{id}/exec: a WebSocket to a command
// in the environment (command=ARG, repeated; none runs a login shell),
// tty=1 for a terminal of cols x rows, term= the client's $TERM.
func (h *handler) environmentExec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := envaccess.Request{EnvironmentID: r.PathValue("id"), Kind: envaccess.KindExec, Argv: q["command"]}
	var err error
	if req.TTY, err = boolQuery(r, "tty"); err == nil {
		if req.Cols, err = intQuery(r, "cols"); err == nil {
			req.Rows, err = intQuery(r, "rows")
		}
	}
	if t := q.Get("term"); t != "" && err == nil {
		req.Env = map[string]string{"TERM": t}
	}
	h.serveAccess(w, r, req, err, "exec")
}

// environmentPortForward is GET /environments/{id}/port-forward?port=N: a
// WebSocket carrying one TCP connection to port N on the environment's
// loopback.
func (h *handler) environmentPortForward(w http.ResponseWriter, r *http.Request) {
	port, err := intQuery(r, "port")
	if err == nil && r.URL.Query().Get("port") == "" {
		err = apperr.Invalid("port", "is required: the port in the environment to connect to")
	}
	req := envaccess.Request{EnvironmentID: r.PathValue("id"), Kind: envaccess.KindTCP, Port: port}
	if rawconn.Requested(r, rawconn.ProtocolTCP) {
		h.servePortRaw(w, r, req, err)
		return
	}
	h.serveAccess(w, r, req, err, "port-forward")
}

// servePortRaw is a port forward on an upgraded connection (rawconn, the
// CLI's way when nothing between it and the control plane refuses an
// upgrade): the connection's bytes are the forwarded connection's, both
// ways, and its half-close is the forwarded connection's. The runner
// carries them on a connection of its own when it can, and the two are
// then spliced together here without passing through this process.
func (h *handler) servePortRaw(w http.ResponseWriter, r *http.Request, req envaccess.Request, qerr error) {
	ctx, ok := h.accessCaller(w, r, qerr)
	if !ok {
		return
	}
	req.Raw = true
	st, err := h.svc.Access.Open(ctx, req, "port-forward")
	if err != nil {
		if !h.svc.Proxy.RelayUpgraded(w, r, err, rawconn.ProtocolTCP) {
			h.writeError(w, r, err)
		}
		return
	}
	defer st.Close()
	conn, err := rawconn.Accept(w, rawconn.ProtocolTCP)
	if err != nil {
		return
	}
	defer conn.Close()
	if rc, ok := envaccess.Raw(st); ok {
		_ = rawconn.Pipe(conn, rc)
		return
	}
	pipeStream(conn, st)
}

// accessCaller authenticates an environment-access request and answers
// what keeps it from starting: no access service here, a bad query (qerr).
func (h *handler) accessCaller(w http.ResponseWriter, r *http.Request, qerr error) (context.Context, bool) {
	ctx, err := h.authenticate(r)
	if err == nil && h.svc.Access == nil {
		err = &apperr.Error{Code: apperr.CodeUnavailable, Message: "environment access is not available on this control plane"}
	}
	if err == nil {
		err = qerr
	}
	if err != nil {
		h.writeError(w, r, err)
		return nil, false
	}
	return ctx, true
}

// pipeStream copies a connection and a TCP session into each other until
// both directions ended or one broke.
func pipeStream(conn net.Conn, st envaccess.Stream) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if st.Write(buf[:n]) != nil {
					conn.Close()
					return
				}
			}
			if errors.Is(err, io.EOF) {
				_ = st.CloseStdin()
				return
			}
			if err != nil {
				st.Close()
				return
			}
		}
	}()
	for {
		f, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) && st.Exit().Err == "" {
				// The port's side ended: the input may go on.
				_ = rawconn.CloseWrite(conn)
				break
			}
			conn.Close()
			break
		}
		if _, err := conn.Write(f.Data); err != nil {
			st.Close()
			break
		}
	}
	<-done
}

func (h *handler) serveAccess(w http.ResponseWriter, r *http.Request, req envaccess.Request, qerr error, source string) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		qerr = apperr.Invalid("Upgrade", "this endpoint is a WebSocket: the request needs Upgrade: websocket")
	}
	ctx, ok := h.accessCaller(w, r, qerr)
	if !ok {
		return
	}
	st, err := h.svc.Access.Open(ctx, req, source)
	if err != nil {
		if !h.svc.Proxy.Relay(w, r, err) {
			h.writeError(w, r, err)
		}
		return
	}
	defer st.Close()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(maxAccessMessage)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(ctx, st.Close)
	defer stop()
	tcp := req.Kind == envaccess.KindTCP
	go func() {
		// The client's end (a closed socket) ends the session; the
		// runner kills what it started.
		defer cancel()
		accessInput(ctx, c, st, tcp)
	}()
	for {
		f, err := st.Recv()
		if errors.Is(err, io.EOF) {
			x := st.Exit()
			ev := accessEvent{Type: "exit", Reason: x.Err, Signal: x.Signal}
			if tcp {
				ev = accessEvent{Type: "eof", Reason: x.Err}
			} else if x.HasCode {
				ev.ExitCode = &x.Code
			}
			if err := writeAccessEvent(ctx, c, ev); err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				c.Close(websocket.StatusGoingAway, "lost the environment's runner")
			}
			return
		}
		msg := f.Data
		if !tcp {
			msg = make([]byte, 1+len(f.Data))
			msg[0] = execStdout
			if f.Stderr {
				msg[0] = execStderr
			}
			copy(msg[1:], f.Data)
		}
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return
		}
	}
}

// accessInput relays what the client sends until it closes the socket.
func accessInput(ctx context.Context, c *websocket.Conn, st envaccess.Stream, tcp bool) {
	// One buffer for every message (st.Write copies what it sends): read
	// into a small, growing slice, a message took many small reads of the
	// socket and an allocation each, and a port forward's throughput was
	// bound by them.
	buf := make([]byte, maxAccessMessage)
	for {
		typ, b, err := readMessage(ctx, c, buf)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			if err := st.Write(b); err != nil {
				return
			}
			continue
		}
		var ev accessEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			_ = writeAccessEvent(ctx, c, accessEvent{Type: "error", Error: "message: must be a JSON object with a type: " + err.Error()})
			continue
		}
		switch {
		case ev.Type == "eof":
			err = st.CloseStdin()
		case ev.Type == "resize" && !tcp:
			err = st.Resize(ev.Cols, ev.Rows)
			if apperr.Is(err, apperr.CodeInvalid) {
				_ = writeAccessEvent(ctx, c, accessEvent{Type: "error", Error: apperr.As(err).Public()})
				continue
			}
		case ev.Type == "signal" && !tcp:
			if !validSignal(ev.Signal) {
				_ = writeAccessEvent(ctx, c, accessEvent{Type: "error", Error: fmt.Sprintf("signal: %q is not one of %s", ev.Signal, strings.Join(envaccess.Signals, ", "))})
				continue
			}
			err = st.Signal(ev.Signal)
		default:
			want := "eof, resize or signal"
			if tcp {
				want = "eof"
			}
			_ = writeAccessEvent(ctx, c, accessEvent{Type: "error", Error: fmt.Sprintf("type: %q is not %s", ev.Type, want)})
			continue
		}
		if err != nil {
			return
		}
	}
}

// readMessage reads the next message into buf (its whole size is the read
// limit) and returns it.
func readMessage(ctx context.Context, c *websocket.Conn, buf []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return typ, buf[:n], nil
		}
		if err != nil {
			return 0, nil, err
		}
		if n == len(buf) {
			// The read limit fails the next read: the message is longer.
			if _, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				return 0, nil, fmt.Errorf("read a message: longer than %d bytes", len(buf))
			}
			return typ, buf[:n], nil
		}
	}
}

func validSignal(s string) bool {
	for _, v := range envaccess.Signals {
		if v == s {
			return true
		}
	}
	return false
}

func writeAccessEvent(ctx context.Context, c *websocket.Conn, ev accessEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

// intQuery reads an optional integer query parameter (0 when absent).
func intQuery(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, apperr.Invalid(name, "must be a whole number, not %q", v)
	}
	return n, nil
}
