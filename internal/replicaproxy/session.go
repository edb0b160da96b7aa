package replicaproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
)

// This file relays an environment session (envaccess) between replicas for
// a surface that has no HTTP request to proxy: the SSH server. The replica
// the client reached authorizes the session and records it; the session
// itself opens on the replica holding the runner's stream, which that
// replica's fleet serves, over a WebSocket between the two replicas signed
// with the relay key (the signature is the only credential it takes: a
// request without it is refused whoever sends it).
//
//	ssh client ──▶ replica A (login, audit) ──WebSocket, signed──▶ replica B ──Session stream──▶ runner
//
// On the WebSocket, B's first message says whether the session opened
// (opened, or error with a code). Then B sends binary messages whose first
// byte is 1 (stdout) or 2 (stderr), and an exit event last; A sends stdin as
// binary messages and eof, resize and signal events.

// SessionRoute is the route a replica opens another's sessions on.
const SessionRoute = "GET " + sessionPath

const sessionPath = "/internal/replica/session"

// maxSessionMessage bounds one message between replicas: a chunk of a
// session's bytes.
const maxSessionMessage = 1<<20 + 1

const (
	relayStdout = 1
	relayStderr = 2
)

// relayEvent is a text message of the relay.
type relayEvent struct {
	// Type is opened, error or exit from the replica holding the stream;
	// eof, resize or signal from the other.
	Type   string `json:"type"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
	Cols   int    `json:"cols,omitempty"`
	Rows   int    `json:"rows,omitempty"`
	Signal string `json:"signal,omitempty"`
	// Exit is how the session ended (exit).
	Exit *envaccess.Exit `json:"exit,omitempty"`
}

// SessionRelay opens sessions on Local, and a session whose runner's
// stream another replica holds on that replica. It is an envaccess.Opener.
type SessionRelay struct {
	Local envaccess.Opener
	// Proxy finds the replica holding a runner's stream and holds the key
	// that signs the relay; without a key, sessions are not relayed.
	Proxy *Proxy
	// Client reaches the other replicas; nil is http.DefaultClient.
	Client *http.Client
}

// OpenSession implements envaccess.Opener.
func (s *SessionRelay) OpenSession(ctx context.Context, orgID, runnerID string, req envaccess.Request) (envaccess.Stream, error) {
	st, err := s.Local.OpenSession(ctx, orgID, runnerID, req)
	var e *ElsewhereError
	p := s.Proxy
	if err == nil || !errors.As(err, &e) || p == nil || p.Find == nil || len(p.Key) == 0 {
		return st, err
	}
	target, ferr := p.Find(ctx, orgID, runnerID)
	if ferr != nil {
		p.Log.Warn("find the replica holding a runner's stream", "runner", runnerID, "err", ferr)
		return nil, err
	}
	if target == "" || target == p.Self {
		return nil, err
	}
	return p.dialSession(ctx, s.Client, target, orgID, runnerID, req)
}

// dialSession opens a session on the replica at target.
func (p *Proxy) dialSession(ctx context.Context, client *http.Client, target, orgID, runnerID string, req envaccess.Request) (envaccess.Stream, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode a relayed session: %w", err)
	}
	uri := sessionPath + "?" + url.Values{"org": {orgID}, "runner": {runnerID}, "request": {string(b)}}.Encode()
	h := http.Header{}
	h.Set(Header, p.sign(http.MethodGet, uri, p.now()))
	if client == nil {
		client = http.DefaultClient
	}
	c, res, err := websocket.Dial(ctx, strings.TrimRight(target, "/")+uri, &websocket.DialOptions{HTTPHeader: h, HTTPClient: client})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		p.Log.Warn("relay a session to the replica holding a runner's stream", "replica", target, "status", status, "err", err)
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the control plane holding the runner's stream did not answer; try again"}
	}
	c.SetReadLimit(maxSessionMessage)
	sctx, cancel := context.WithCancel(context.Background())
	r := &relayedStream{c: c, ctx: sctx, cancel: cancel}
	stop := context.AfterFunc(ctx, r.Close) // the open is bounded by ctx, as a local one is
	typ, msg, err := c.Read(sctx)
	opened := stop()
	if err != nil || !opened {
		r.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "lost the control plane holding the runner's stream while opening the session"}
	}
	var ev relayEvent
	if typ != websocket.MessageText || json.Unmarshal(msg, &ev) != nil || ev.Type != "opened" && ev.Type != "error" {
		r.Close()
		return nil, fmt.Errorf("relayed session: unexpected first message %q", msg)
	}
	if ev.Type == "error" {
		r.Close()
		return nil, &apperr.Error{Code: apperr.Code(ev.Code), Message: ev.Error}
	}
	return r, nil
}

// relayedStream is a session opened on another replica.
type relayedStream struct {
	c      *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	exit   envaccess.Exit
}

func (r *relayedStream) Recv() (envaccess.Frame, error) {
	for {
		typ, b, err := r.c.Read(r.ctx)
		if err != nil {
			if r.exit.Err == "" && !r.exit.HasCode {
				r.exit.Err = "lost the control plane holding the runner's stream"
			}
			if r.ctx.Err() != nil {
				return envaccess.Frame{}, io.EOF
			}
			return envaccess.Frame{}, fmt.Errorf("receive relayed session output: %w", err)
		}
		if typ == websocket.MessageBinary {
			if len(b) == 0 {
				continue
			}
			return envaccess.Frame{Stderr: b[0] == relayStderr, Data: b[1:]}, nil
		}
		var ev relayEvent
		if json.Unmarshal(b, &ev) == nil && ev.Type == "exit" && ev.Exit != nil {
			r.exit = *ev.Exit
			return envaccess.Frame{}, io.EOF
		}
	}
}

func (r *relayedStream) Exit() envaccess.Exit { return r.exit }

func (r *relayedStream) Write(p []byte) error {
	return r.c.Write(r.ctx, websocket.MessageBinary, p)
}

func (r *relayedStream) event(ev relayEvent) error {
	b, _ := json.Marshal(ev)
	return r.c.Write(r.ctx, websocket.MessageText, b)
}

func (r *relayedStream) CloseStdin() error { return r.event(relayEvent{Type: "eof"}) }

func (r *relayedStream) Resize(cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535 {
		return apperr.Invalid("cols", "terminal size %dx%d: cols and rows must be between 1 and 65535", cols, rows)
	}
	return r.event(relayEvent{Type: "resize", Cols: cols, Rows: rows})
}

func (r *relayedStream) Signal(name string) error {
	return r.event(relayEvent{Type: "signal", Signal: name})
}

// Close ends the session: the other replica closes the runner's session
// when the socket goes.
func (r *relayedStream) Close() {
	r.once.Do(func() {
		r.cancel()
		r.c.CloseNow()
	})
}

// SessionHandler serves SessionRoute: a session another replica relays
// here, opened on local (this replica's fleet). A request that is not
// signed with the relay key goes to refuse, which answers it.
func (p *Proxy) SessionHandler(local envaccess.Opener, refuse http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.Relayed(r) {
			refuse(w, r)
			return
		}
		q := r.URL.Query()
		var req envaccess.Request
		if err := json.Unmarshal([]byte(q.Get("request")), &req); err != nil {
			http.Error(w, "request: "+err.Error(), http.StatusBadRequest)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept answered
		}
		defer c.CloseNow()
		c.SetReadLimit(maxSessionMessage)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		send := func(ev relayEvent) error {
			b, _ := json.Marshal(ev)
			return c.Write(ctx, websocket.MessageText, b)
		}
		st, err := local.OpenSession(ctx, q.Get("org"), q.Get("runner"), req)
		if err != nil {
			ev := relayEvent{Type: "error", Code: string(apperr.CodeOf(err)), Error: "internal error"}
			if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
				ev.Error = e.Public()
			}
			if errors.As(err, new(*ElsewhereError)) {
				// Relayed once: never again (the record of the
				// stream's replica is behind, or the runner moved).
				ev.Code, ev.Error = string(apperr.CodeUnavailable), err.Error()
			}
			if send(ev) == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		defer st.Close()
		stop := context.AfterFunc(ctx, st.Close)
		defer stop()
		if send(relayEvent{Type: "opened"}) != nil {
			return
		}
		go func() {
			defer cancel()
			relayInput(ctx, c, st)
		}()
		for {
			f, err := st.Recv()
			if errors.Is(err, io.EOF) {
				x := st.Exit()
				if send(relayEvent{Type: "exit", Exit: &x}) == nil {
					c.Close(websocket.StatusNormalClosure, "")
				}
				return
			}
			if err != nil {
				return
			}
			msg := make([]byte, 1+len(f.Data))
			msg[0] = relayStdout
			if f.Stderr {
				msg[0] = relayStderr
			}
			copy(msg[1:], f.Data)
			if c.Write(ctx, websocket.MessageBinary, msg) != nil {
				return
			}
		}
	})
}

// relayInput passes what the relaying replica sends to the session until
// it closes the socket.
func relayInput(ctx context.Context, c *websocket.Conn, st envaccess.Stream) {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			err = st.Write(b)
		} else {
			var ev relayEvent
			if json.Unmarshal(b, &ev) != nil {
				continue
			}
			switch ev.Type {
			case "eof":
				err = st.CloseStdin()
			case "resize":
				err = st.Resize(ev.Cols, ev.Rows)
			case "signal":
				err = st.Signal(ev.Signal)
			}
		}
		if err != nil && !apperr.Is(err, apperr.CodeInvalid) {
			return
		}
	}
}
