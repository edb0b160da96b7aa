package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/pods"
)

// podOutput is GET /pods/{key}/output: the pod's scrollback as text. With
// follow=1 (or true) the response goes on with the pod's output until it
// ends or the client goes away.
func (h *handler) podOutput(w http.ResponseWriter, r *http.Request) {
	ctx, err := h.authenticate(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	follow, err := boolQuery(r, "follow")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	mode := pods.TerminalSnapshot
	if follow {
		mode = pods.TerminalFollow
	}
	t, err := h.svc.Pods.OpenTerminal(ctx, r.PathValue("key"), mode)
	if err != nil {
		if !h.svc.Proxy.Relay(w, r, err) {
			h.writeError(w, r, err)
		}
		return
	}
	defer t.Close()
	stop := context.AfterFunc(r.Context(), t.Close)
	defer stop()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if _, err := w.Write(t.Scrollback()); err != nil {
		return
	}
	if !follow {
		return
	}
	_ = rc.Flush()
	for {
		b, err := t.Recv()
		if err != nil {
			// The response is under way: a broken runner stream can only
			// end it, which a following client sees as the end of output.
			return
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// terminalEvent is a text message of the terminal WebSocket, in either
// direction. Binary messages carry terminal bytes: output from the server,
// input from the client.
type terminalEvent struct {
	// Type is "input" or "resize" from the client; "status", "exit" or
	// "error" from the server.
	Type string `json:"type"`
	// Data is typed into the terminal (type input).
	Data string `json:"data,omitempty"`
	Cols int    `json:"cols,omitempty"`
	Rows int    `json:"rows,omitempty"`
	// Status, ExitCode and Reason describe the pod (type status, exit).
	Status   string `json:"status,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Error says what was wrong with a message from the client.
	Error string `json:"error,omitempty"`
}

// maxTerminalMessage bounds one message from a terminal client: input is
// typed or pasted, never bulk data.
const maxTerminalMessage = 1 << 20

// podTerminal is GET /pods/{key}/terminal, a WebSocket to the pod's
// terminal. The server sends a status event, the scrollback and then the
// output as binary messages, and an exit event when the pod ends. The client
// sends input (binary, or an input event) and resize events. readonly=1
// attaches without input or resizes and needs only pods:read. Closing the socket
// detaches; the pod runs on.
func (h *handler) podTerminal(w http.ResponseWriter, r *http.Request) {
	ctx, err := h.authenticate(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		h.writeError(w, r, apperr.Invalid("Upgrade", "this endpoint is a WebSocket: the request needs Upgrade: websocket"))
		return
	}
	readonly, err := boolQuery(r, "readonly")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	mode := pods.TerminalAttach
	if readonly {
		mode = pods.TerminalFollow
	}
	t, err := h.svc.Pods.OpenTerminal(ctx, r.PathValue("key"), mode)
	if err != nil {
		if !h.svc.Proxy.Relay(w, r, err) {
			h.writeError(w, r, err)
		}
		return
	}
	defer t.Close()
	// Origin checking stays on (the default): a page of another origin must
	// not drive a terminal with a user's credentials.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(maxTerminalMessage)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(ctx, t.Close)
	defer stop()

	st := t.Status()
	if err := writeEvent(ctx, c, terminalEvent{Type: "status", Status: string(st.Status), ExitCode: st.ExitCode, Reason: st.Reason}); err != nil {
		return
	}
	if sb := t.Scrollback(); len(sb) > 0 {
		if err := c.Write(ctx, websocket.MessageBinary, sb); err != nil {
			return
		}
	}
	go func() {
		defer cancel()
		h.terminalInput(ctx, c, t, readonly)
	}()
	for {
		b, err := t.Recv()
		if errors.Is(err, io.EOF) {
			final, reason := t.End()
			ev := terminalEvent{Type: "exit", Reason: reason}
			if final != nil {
				ev.Status, ev.ExitCode = string(final.Status), final.ExitCode
			}
			if err := writeEvent(ctx, c, ev); err == nil {
				c.Close(websocket.StatusNormalClosure, closeReason(reason))
			}
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				c.Close(websocket.StatusGoingAway, "lost the pod's runner")
			}
			return
		}
		if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
			return
		}
	}
}

// terminalInput relays what the client sends until it closes the socket.
func (h *handler) terminalInput(ctx context.Context, c *websocket.Conn, t pods.Terminal, readonly bool) {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var ev terminalEvent
		if typ == websocket.MessageBinary {
			ev = terminalEvent{Type: "input", Data: string(b)}
		} else if err := json.Unmarshal(b, &ev); err != nil {
			_ = writeEvent(ctx, c, terminalEvent{Type: "error", Error: "message: must be a JSON object with a type: " + err.Error()})
			continue
		}
		switch ev.Type {
		case "input":
			if readonly {
				_ = writeEvent(ctx, c, terminalEvent{Type: "error", Error: "input: this terminal is read-only"})
				continue
			}
			err = t.Input([]byte(ev.Data))
		case "resize":
			// The size is the pod's, shared by every attachment: a watcher
			// resizing it would garble the screen of whoever types.
			if readonly {
				_ = writeEvent(ctx, c, terminalEvent{Type: "error", Error: "resize: this terminal is read-only"})
				continue
			}
			err = t.Resize(ev.Cols, ev.Rows)
			if apperr.Is(err, apperr.CodeInvalid) {
				_ = writeEvent(ctx, c, terminalEvent{Type: "error", Error: apperr.As(err).Public()})
				continue
			}
		default:
			_ = writeEvent(ctx, c, terminalEvent{Type: "error", Error: fmt.Sprintf("type: %q is not input or resize", ev.Type)})
			continue
		}
		if err != nil {
			return // the terminal ended; the output side says how
		}
	}
}

func writeEvent(ctx context.Context, c *websocket.Conn, ev terminalEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// closeReason fits reason into a close frame (at most 123 bytes).
func closeReason(reason string) string {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	return reason
}

// boolQuery reads an optional boolean query parameter.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apperr.Invalid(name, "must be true, false, 1 or 0, not %q", v)
	}
	return b, nil
}
