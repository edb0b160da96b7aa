package authzmatrix_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// callTimeout bounds one call; streams that stay open are cut after
// streamWait and count as accepted.
const (
	callTimeout = 20 * time.Second
	streamWait  = 1500 * time.Millisecond
)

// clients are the HTTP clients of the matrix: HTTP/1.1 for unary calls and
// routes, h2c for Connect streams (bidi needs HTTP/2).
type clients struct {
	h1  *http.Client
	h2c *http.Client
}

func newClients() *clients {
	h2 := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 32}
	h2.Protocols.SetUnencryptedHTTP2(true)
	return &clients{
		// Redirects are answers: the console's to /signin is its
		// unauthenticated.
		h1: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		h2c: &http.Client{Transport: h2},
	}
}

func (c *clients) close() {
	c.h1.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
}

// request is one call: an HTTP request and how to read its answer.
type request struct {
	method, url string
	body        []byte
	header      http.Header
	// stream frames body as one Connect envelope (a streaming method).
	stream bool
	// websocket dials the URL as a WebSocket.
	websocket bool
}

// do sends req and returns its answer as a code: a Connect or apperr code
// name, "ok", "unrouted" for a 404 without a JSON error (no route), or
// "http_<status>".
func (c *clients) do(ctx context.Context, req request) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if req.websocket {
		return c.dialWebSocket(ctx, req)
	}
	body := req.body
	hc := c.h1
	if req.stream {
		env := make([]byte, 5, 5+len(body))
		binary.BigEndian.PutUint32(env[1:], uint32(len(body)))
		body = append(env, body...)
		hc = c.h2c
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, rd)
	if err != nil {
		return "", err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	res, err := hc.Do(hr)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if req.stream && res.StatusCode == http.StatusOK {
		return readStream(ctx, res.Body)
	}
	if res.StatusCode/100 == 3 {
		// The console sends whoever is not signed in to its sign-in
		// page; any other redirect is where an action goes next.
		if strings.HasPrefix(res.Header.Get("Location"), "/signin") {
			return "unauthenticated", nil
		}
		return "ok", nil
	}
	if res.StatusCode/100 == 2 || res.StatusCode == http.StatusSwitchingProtocols {
		// A followed log or output streams on: the status says it all.
		return "ok", nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		// A page that says what went wrong (the console's, single
		// sign-on's); the mux's plain-text 404 is no route.
		switch res.StatusCode {
		case http.StatusNotFound:
			return "not_found", nil
		case http.StatusBadRequest:
			return "invalid_argument", nil
		}
	}
	return codeOf(res.StatusCode, b), nil
}

// codeOf reads the code of an error answer: Connect's {"code"} and the
// REST surfaces' {"error", "code"} both carry it.
func codeOf(status int, body []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		return e.Code
	}
	switch status {
	case http.StatusNotFound:
		return "unrouted"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission_denied"
	}
	return fmt.Sprintf("http_%d", status)
}

// readStream reads a Connect stream's first envelope: the end of the stream
// carries the error, if any; a message, or a stream still open after
// streamWait, is an accepted call.
func readStream(ctx context.Context, body io.Reader) (string, error) {
	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var head [5]byte
		if _, err := io.ReadFull(body, head[:]); err != nil {
			done <- result{err: fmt.Errorf("read envelope: %w", err)}
			return
		}
		if head[0]&2 == 0 {
			done <- result{code: "ok"}
			return
		}
		b := make([]byte, binary.BigEndian.Uint32(head[1:]))
		if _, err := io.ReadFull(body, b); err != nil {
			done <- result{err: fmt.Errorf("read end of stream: %w", err)}
			return
		}
		var end struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &end); err != nil {
			done <- result{err: fmt.Errorf("end of stream %q: %w", b, err)}
			return
		}
		if end.Error == nil {
			done <- result{code: "ok"}
			return
		}
		done <- result{code: end.Error.Code}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-time.After(streamWait):
		return "ok", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// dialWebSocket opens the WebSocket and closes it at once: the handshake's
// answer is the call's.
func (c *clients) dialWebSocket(ctx context.Context, req request) (string, error) {
	u := "ws" + strings.TrimPrefix(req.url, "http")
	conn, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.h1, HTTPHeader: req.header})
	if err == nil {
		conn.CloseNow()
		return "ok", nil
	}
	if res == nil {
		return "", err
	}
	var b []byte
	if res.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(res.Body, 64<<10))
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return "", errors.New("upgraded, then failed: " + err.Error())
	}
	return codeOf(res.StatusCode, b), nil
}
