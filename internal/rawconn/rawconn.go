// Package rawconn carries a forwarded TCP connection's bytes on a
// connection of their own: an HTTP/1.1 request upgraded to a bare byte
// stream (101 Switching Protocols), with no framing after it. A port
// forward (`runyard environments port-forward`) travels this way on both
// hops when it can, client → control plane and runner → control plane, and
// every process on the way copies with Pipe: on plain TCP that is splice(2)
// from one socket to the other, with no copy through the process. A
// runner sends a followed log the same way (ProtocolLog): the log's bytes,
// then its half-close.
//
// A half-close travels as TCP's own: the end of one direction is a
// CloseWrite on the next hop, so each direction ends on its own.
package rawconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Protocols named in the Upgrade header.
const (
	// ProtocolTCP is a client's port forward to the control plane.
	ProtocolTCP = "runyard-tcp"
	// ProtocolSession is a runner's session connection to the control
	// plane.
	ProtocolSession = "runyard-session"
	// ProtocolLog is a runner's connection carrying one log to the
	// control plane: the log's bytes, then the runner's half-close.
	ProtocolLog = "runyard-log"
)

// SessionPath is where a runner upgrades its session connection (beside
// the runner protocol's procedures; not one of them). Its request carries
// the runner's token and the session's ID (SessionIDHeader).
const (
	SessionPath     = "/runyard.runner.v1.RunnerControlService/SessionRaw"
	SessionIDHeader = "Runyard-Session-Id"
)

// LogPath is where a runner upgrades a log's connection; its request
// carries the runner's token and the ID of the log's session
// (SessionIDHeader, OpenTerminal's session_id).
const LogPath = "/runyard.runner.v1.RunnerControlService/LogRaw"

// Requested reports whether r asks to upgrade to protocol.
func Requested(r *http.Request, protocol string) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), protocol) && headerHas(r.Header, "Connection", "upgrade")
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Accept answers r with 101 Switching Protocols to protocol and returns the
// connection, which is the caller's to close. Deadlines the server set on
// it are cleared: the connection lives as long as what it carries.
func Accept(w http.ResponseWriter, protocol string) (net.Conn, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("take over the connection: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	c := withBuffered(conn, brw.Reader)
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("answer the upgrade: %w", err)
	}
	return c, nil
}

// StatusError is a refused upgrade: the server's status and the start of
// its body.
type StatusError struct {
	StatusCode int
	Body       []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("upgrade refused: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Dial sends GET rawURL (http or https) with header on a new connection,
// asking to upgrade it to protocol, and returns the connection once the
// server switched. A server that answers otherwise fails with a
// *StatusError. tlsConfig is used for https (nil: the defaults). It
// connects directly: a caller behind a proxy uses something else.
func Dial(ctx context.Context, rawURL string, header http.Header, protocol string, tlsConfig *tls.Config) (net.Conn, error) {
	return DialWith(ctx, &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, rawURL, header, protocol, tlsConfig)
}

// DialWith is Dial through d (a local address of its own, say).
func DialWith(ctx context.Context, d *net.Dialer, rawURL string, header http.Header, protocol string, tlsConfig *tls.Config) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	var conn net.Conn
	switch u.Scheme {
	case "http":
		conn, err = d.DialContext(ctx, "tcp", host)
	case "https":
		cfg := tlsConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		// HTTP/1.1 only: an upgrade is not HTTP/2's.
		cfg.NextProtos = []string{"http/1.1"}
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", host)
	default:
		return nil, fmt.Errorf("dial %s: not an http or https URL", rawURL)
	}
	if err != nil {
		return nil, err
	}
	// The handshake gives up with ctx; the connection then outlives it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, err := handshake(conn, u, header, protocol)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func handshake(conn net.Conn, u *url.URL, header http.Header, protocol string) (net.Conn, error) {
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: header.Clone(),
		ProtoMajor: 1, ProtoMinor: 1, Proto: "HTTP/1.1"}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", protocol)
	bw := bufio.NewWriter(conn)
	if err := req.Write(bw); err != nil {
		return nil, fmt.Errorf("send the upgrade: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("send the upgrade: %w", err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("read the upgrade's answer: %w", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), protocol) {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		return nil, &StatusError{StatusCode: res.StatusCode, Body: b}
	}
	return withBuffered(conn, br), nil
}

// bufferedConn is a connection whose first bytes were read ahead (with the
// request or the answer of the upgrade).
type bufferedConn struct {
	net.Conn
	buf []byte
}

func withBuffered(conn net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := br.Peek(n)
	return &bufferedConn{Conn: conn, buf: append([]byte(nil), b...)}
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Pipe copies a into b and b into a until both directions ended, then
// closes both. A direction ends at its source's EOF, which half-closes its
// destination (CloseWrite); an error in either direction closes both at
// once. It returns the first error (nil when both ended at EOF).
func Pipe(a, b net.Conn) error {
	errc := make(chan error, 2)
	go func() { errc <- halfCopy(b, a) }()
	go func() { errc <- halfCopy(a, b) }()
	err := <-errc
	if err != nil {
		a.Close()
		b.Close()
		<-errc
		return err
	}
	err = <-errc
	a.Close()
	b.Close()
	return err
}

// halfCopy copies src into dst until src's EOF, then half-closes dst.
func halfCopy(dst, src net.Conn) error {
	if bc, ok := src.(*bufferedConn); ok {
		if len(bc.buf) > 0 {
			if _, err := dst.Write(bc.buf); err != nil {
				return err
			}
			bc.buf = nil
		}
		src = bc.Conn
	}
	if bc, ok := dst.(*bufferedConn); ok {
		// Its buffer is what was read ahead; writes go to the connection.
		dst = bc.Conn
	}
	// Between two *net.TCPConn this is splice(2), no copy through here.
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return CloseWrite(dst)
}

// CloseWrite half-closes c when it can (TCP, TLS); otherwise it does
// nothing.
func CloseWrite(c net.Conn) error {
	if bc, ok := c.(*bufferedConn); ok {
		c = bc.Conn
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}
