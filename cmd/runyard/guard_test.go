package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServer_TricklersWithFewDescriptors is the report, on a real
// `runyard server` limited to 256 file descriptors: 300 clients without a
// token, each trickling a request body, hold nothing. Every one is answered
// 401 and cut off, and /healthz keeps answering.
func TestServer_TricklersWithFewDescriptors(t *testing.T) {
	s := startCLIServer(t)
	limit := unix.Rlimit{Cur: 256, Max: 256}
	if err := unix.Prlimit(s.cmd.Process.Pid, unix.RLIMIT_NOFILE, &limit, nil); err != nil {
		t.Skipf("cannot limit the server's file descriptors: %v", err)
	}
	const clients = 300
	type result struct {
		answer string
		err    error
	}
	results := make(chan result, clients)
	for i := range clients {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			head := "POST /gitpod.v1.RunnerService/CreateRunner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
			if _, err := io.WriteString(c, head); err != nil {
				results <- result{err: err}
				return
			}
			done := make(chan struct{})
			go func() {
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			b, err := io.ReadAll(c)
			close(done)
			results <- result{answer: string(b), err: err}
		}()
	}
	if err := s.waitHealthy(); err != nil {
		t.Fatalf("/healthz while %d clients trickle: %v", clients, err)
	}
	deadline := time.After(60 * time.Second)
	for i := range clients {
		select {
		case r := <-results:
			if r.err != nil && !strings.Contains(r.err.Error(), "reset by peer") {
				t.Fatalf("client %d: %v", i, r.err)
			}
			if r.err == nil && !strings.HasPrefix(r.answer, "HTTP/1.1 401 ") {
				t.Fatalf("client %d got %q, want 401", i, r.answer)
			}
		case <-deadline:
			t.Fatalf("%d of %d trickling clients still held after a minute", clients-i, clients)
		}
	}
	if err := s.waitHealthy(); err != nil {
		t.Fatalf("/healthz after the tricklers: %v", err)
	}
}
