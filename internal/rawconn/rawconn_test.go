package rawconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/rawconn"
)

const wait = 10 * time.Second

// upgradeServer answers Upgrade: runyard-tcp with 101 and hands each
// connection to serve; anything else is refused with 400.
func upgradeServer(t *testing.T, serve func(net.Conn)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, `{"error":"who are you","code":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		if !rawconn.Requested(r, rawconn.ProtocolTCP) {
			http.Error(w, "needs an upgrade", http.StatusBadRequest)
			return
		}
		c, err := rawconn.Accept(w, rawconn.ProtocolTCP)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		serve(c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dial(t *testing.T, srv *httptest.Server, token string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return rawconn.Dial(ctx, srv.URL+"/fwd", http.Header{"Authorization": {"Bearer " + token}}, rawconn.ProtocolTCP, nil)
}

// TestUpgrade_HalfCloseBothWays: the server's first bytes, sent right
// after the 101 (as a server-first protocol's banner is), arrive; the
// client's half-close reaches the server, which answers after it; the
// server's half-close reaches the client.
func TestUpgrade_HalfCloseBothWays(t *testing.T) {
	srv := upgradeServer(t, func(c net.Conn) {
		defer c.Close()
		if _, err := c.Write([]byte("banner\n")); err != nil {
			return
		}
		b, err := io.ReadAll(c) // until the client's half-close
		if err != nil {
			return
		}
		_, _ = c.Write(append([]byte("got "), b...))
		_ = rawconn.CloseWrite(c)
	})
	c, err := dial(t, srv, "t")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := rawconn.CloseWrite(c); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until the server's half-close: %v", err)
	}
	if want := "banner\ngot hello"; string(b) != want {
		t.Errorf("read %q, want %q", b, want)
	}
}

// TestDial_Refused: an answer other than 101 is a StatusError with the
// server's status and body.
func TestDial_Refused(t *testing.T) {
	srv := upgradeServer(t, func(c net.Conn) { c.Close() })
	_, err := dial(t, srv, "wrong")
	var se *rawconn.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || !bytes.Contains(se.Body, []byte("unauthenticated")) {
		t.Fatalf("Dial with a wrong token: %v, want a 401 StatusError with the body", err)
	}
}

// TestPipe_RelaysHalfClosesAndData: a hop between a client and a server
// (as the control plane is between the CLI and the runner) passes bytes
// both ways, megabytes of them, and each direction's end on its own.
func TestPipe_RelaysHalfClosesAndData(t *testing.T) {
	// The server echoes what it read once the client half-closed.
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go func() {
		c, err := back.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(b)
		_ = rawconn.CloseWrite(c)
	}()
	srv := upgradeServer(t, func(c net.Conn) {
		b, err := net.Dial("tcp", back.Addr().String())
		if err != nil {
			c.Close()
			return
		}
		if err := rawconn.Pipe(c, b); err != nil {
			t.Errorf("Pipe: %v", err)
		}
	})
	c, err := dial(t, srv, "t")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	go func() {
		_, _ = c.Write(data)
		_ = rawconn.CloseWrite(c)
	}()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(b, data) {
		t.Errorf("echo: %d bytes, want the %d sent", len(b), len(data))
	}
}
