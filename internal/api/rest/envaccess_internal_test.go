package rest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/envaccess"
)

// fakeTCPSession is a TCP session on a Session stream (a runner that
// carries no raw connections): what is written to it is kept, and its
// output is what the test sends on out.
type fakeTCPSession struct {
	envaccess.Stream
	out chan []byte

	mu     sync.Mutex
	in     []byte
	eof    chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (s *fakeTCPSession) Recv() (envaccess.Frame, error) {
	select {
	case b, ok := <-s.out:
		if !ok {
			return envaccess.Frame{}, io.EOF
		}
		return envaccess.Frame{Data: b}, nil
	case <-s.closed:
		return envaccess.Frame{}, io.EOF
	}
}

func (s *fakeTCPSession) Exit() envaccess.Exit { return envaccess.Exit{} }

func (s *fakeTCPSession) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in = append(s.in, p...)
	return nil
}

func (s *fakeTCPSession) CloseStdin() error { close(s.eof); return nil }

func (s *fakeTCPSession) Close() { s.once.Do(func() { close(s.closed) }) }

// TestPipeStream_HalfCloses: an upgraded port forward whose session is a
// Session stream passes the client's half-close as the session's stdin EOF
// and the session's end as the connection's half-close, each direction on
// its own.
func TestPipeStream_HalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeTCPSession{out: make(chan []byte, 1), eof: make(chan struct{}), closed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipeStream(server, st)
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	select {
	case <-st.eof:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's half-close did not reach the session")
	}
	st.mu.Lock()
	in := string(st.in)
	st.mu.Unlock()
	if in != "request" {
		t.Errorf("the session read %q", in)
	}
	// The client reads the answer after its half-close.
	st.out <- []byte("answer")
	close(st.out)
	b, err := io.ReadAll(client)
	if err != nil || string(b) != "answer" {
		t.Errorf("the client read %q, %v", b, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pipeStream did not return once both directions ended")
	}
}
