package runner

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max time.Duration
	}{
		{"default", 500 * time.Millisecond, 30 * time.Second},
		// Capped at a short renewal interval: a runner must retry within it.
		{"short renewal interval", 500 * time.Millisecond, 500 * time.Millisecond},
		{"interval below min", 500 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{min: tc.min, max: tc.max}
			var last time.Duration
			for i := range 40 {
				w := b.next()
				if w > tc.max {
					t.Fatalf("attempt %d waits %v, above max %v", i, w, tc.max)
				}
				if w < min(tc.min, tc.max)/2 {
					t.Fatalf("attempt %d waits %v, below half of the first step", i, w)
				}
				last = w
			}
			if last < tc.max/2 {
				t.Fatalf("after 40 attempts the wait is %v, want it grown to at least %v", last, tc.max/2)
			}
			b.reset()
			if w := b.next(); w > min(tc.min, tc.max) {
				t.Fatalf("after reset the wait is %v, want at most %v", w, min(tc.min, tc.max))
			}
		})
	}
}

// TestWaitOrReachable checks that a runner waiting out a long backoff comes
// back as soon as the control plane's port accepts connections again, and
// that an address it cannot probe leaves the wait alone.
func TestWaitOrReachable(t *testing.T) {
	// A port that was free a moment ago: refused until the listener opens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	done := make(chan bool, 1)
	go func() { done <- waitOrReachable(context.Background(), time.Hour, "http://"+addr) }()
	select {
	case <-done:
		t.Fatal("the wait ended while the port refused connections")
	case <-time.After(3 * probeEvery): // some refused probes
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("waitOrReachable returned false without a cancelled context")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an hour's wait was not cut short once the port accepted connections")
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- waitOrReachable(ctx, time.Hour, "") }()
	cancel()
	if ok := <-done; ok {
		t.Fatal("waitOrReachable returned true after its context ended")
	}
	if got := probeAddr("https://cp.example.com/api"); got != "cp.example.com:443" {
		t.Fatalf("probeAddr = %q", got)
	}
}
