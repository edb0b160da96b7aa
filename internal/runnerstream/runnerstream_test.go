package runnerstream

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// pair returns the two ends of a loopback TCP connection as a stream's
// client and server.
func pair(t *testing.T) (*Client, *Server, net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return NewClient(cc), NewServer(sc), cc, sc
}

// TestStream_Messages checks that messages pass both ways, in order,
// whole, and that the runner's half-close is the server's io.EOF.
func TestStream_Messages(t *testing.T) {
	c, s, _, _ := pair(t)
	big := strings.Repeat("x", 1<<20) // over any socket buffer: one frame in several reads
	for _, name := range []string{"first", big, "third"} {
		if err := c.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{Hostname: name}}}); err != nil {
			t.Fatal(err)
		}
		m, err := s.Receive()
		if err != nil || m.GetStatus().GetHostname() != name {
			t.Fatalf("server received %.40q, %v; want %.40q", m.GetStatus().GetHostname(), err, name)
		}
		if err := s.Send(&runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_Welcome{Welcome: &runnerv1.Welcome{RunnerId: name}}}); err != nil {
			t.Fatal(err)
		}
		r, err := c.Receive()
		if err != nil || r.GetWelcome().GetRunnerId() != name {
			t.Fatalf("client received %.40q, %v; want %.40q", r.GetWelcome().GetRunnerId(), err, name)
		}
	}
	if err := c.CloseRequest(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("server Receive after the runner's half-close: %v, want io.EOF", err)
	}
}

// TestStream_End checks that the control plane's end reaches the runner as
// the Connect stream would say it: io.EOF for a clean end, else the
// error's code and message.
func TestStream_End(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode connect.Code // 0: io.EOF
		wantMsg  string
	}{
		{"clean", nil, 0, ""},
		{"deleted", connect.NewError(connect.CodeAborted, errors.New("the runner was deleted")), connect.CodeAborted, "the runner was deleted"},
		{"revoked", connect.NewError(connect.CodeUnauthenticated, errors.New("token revoked")), connect.CodeUnauthenticated, "token revoked"},
		{"plain error", errors.New("boom"), connect.CodeUnknown, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s, _, _ := pair(t)
			s.End(tc.err)
			_, err := c.Receive()
			if tc.wantCode == 0 {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Receive after a clean end: %v, want io.EOF", err)
				}
				return
			}
			if connect.CodeOf(err) != tc.wantCode {
				t.Fatalf("Receive after End(%v): %v, want code %v", tc.err, err, tc.wantCode)
			}
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Message() != tc.wantMsg {
				t.Errorf("message %q, want %q", ce.Message(), tc.wantMsg)
			}
		})
	}
}

// TestStream_BadInput checks what a broken or hostile peer gets: a frame
// over the limit, a runner's frame with flags, a message that is not one,
// a connection cut inside a frame, a control plane gone without an end.
func TestStream_BadInput(t *testing.T) {
	frame := func(flags byte, n uint32, payload string) []byte {
		b := []byte{flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], n)
		return append(b, payload...)
	}
	for _, tc := range []struct {
		name  string
		raw   []byte
		close bool
		want  string
	}{
		{"over the limit", frame(0, MaxRequestBytes+1, ""), false, "over the limit"},
		{"flags", frame(flagEndStream, 2, "{}"), false, "flags"},
		{"not a message", frame(0, 3, "\xff\xff\xff"), false, "unmarshal"},
		{"cut inside a frame", frame(0, 10, "abc"), true, io.ErrUnexpectedEOF.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s, cc, _ := pair(t)
			if _, err := cc.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				cc.Close()
			}
			_, err := s.Receive()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Receive: %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("control plane gone", func(t *testing.T) {
		c, _, _, sc := pair(t)
		sc.Close()
		if _, err := c.Receive(); connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("Receive after the connection closed without an end: %v, want unavailable", err)
		}
	})
}

// TestStream_CloseReceive checks that CloseReceive ends a blocked Receive
// while Send, and the end, still reach the runner.
func TestStream_CloseReceive(t *testing.T) {
	c, s, _, _ := pair(t)
	got := make(chan error, 1)
	go func() {
		_, err := s.Receive()
		got <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the test holds either way
	s.CloseReceive()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("Receive returned a message after CloseReceive")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive still blocks after CloseReceive")
	}
	if err := s.Send(&runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_RenewalAck{RenewalAck: &runnerv1.RenewalAck{}}}); err != nil {
		t.Fatalf("Send after CloseReceive: %v", err)
	}
	s.End(connect.NewError(connect.CodeAborted, errors.New("superseded")))
	if m, err := c.Receive(); err != nil || m.GetRenewalAck() == nil {
		t.Fatalf("client: %v, %v; want the ack", m, err)
	}
	if _, err := c.Receive(); connect.CodeOf(err) != connect.CodeAborted {
		t.Errorf("client after the end: %v, want aborted", err)
	}
}
