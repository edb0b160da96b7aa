package envaccess_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/identity"
)

// quietStream is an open session whose output the test feeds.
type quietStream struct {
	out    chan envaccess.Frame
	closed chan struct{}
	once   sync.Once
}

func newQuietStream() *quietStream {
	return &quietStream{out: make(chan envaccess.Frame, 16), closed: make(chan struct{})}
}

func (s *quietStream) Recv() (envaccess.Frame, error) {
	select {
	case f := <-s.out:
		return f, nil
	case <-s.closed:
		return envaccess.Frame{}, io.EOF
	}
}
func (s *quietStream) Exit() envaccess.Exit  { return envaccess.Exit{} }
func (s *quietStream) Write([]byte) error    { return nil }
func (s *quietStream) CloseStdin() error     { return nil }
func (s *quietStream) Resize(int, int) error { return nil }
func (s *quietStream) Signal(string) error   { return nil }
func (s *quietStream) Close()                { s.once.Do(func() { close(s.closed) }) }

type streamOpener struct{ st *quietStream }

func (o streamOpener) OpenSession(context.Context, string, string, envaccess.Request) (envaccess.Stream, error) {
	return o.st, nil
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestActivity_Throttled: a session's traffic marks its environment active
// at most once per interval (a quarter of its timeout), not once per
// message; while it is open the environment is in use; closed, it is not.
func TestActivity_Throttled(t *testing.T) {
	svc, _, e := setup(t, nil)
	e.Spec.Timeout.Disconnected = time.Hour // interval: a minute
	st := newQuietStream()
	svc.Opener = streamOpener{st: st}
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	svc.Now = clk.Now
	var marks atomic.Int32
	svc.Active = func(_ context.Context, orgID, envID, source string) {
		if orgID != orgA || envID != e.ID || source != "port-forward" {
			t.Errorf("marked %s %s %s", orgID, envID, source)
		}
		marks.Add(1)
	}
	waitMarks := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for marks.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d activity writes, want %d", marks.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	s, err := svc.Open(as(orgA, identity.ScopeEnvironmentsWrite), envaccess.Request{EnvironmentID: e.ID, Kind: envaccess.KindTCP, Port: 80}, "port-forward")
	if err != nil {
		t.Fatal(err)
	}
	waitMarks(1) // the open
	if got := svc.InUse(orgA, e.ID); got != "port-forward" {
		t.Errorf("InUse %q while the session is open", got)
	}
	for range 1000 {
		if err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		st.out <- envaccess.Frame{Data: []byte("y")}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	waitMarks(1) // 2000 messages within the minute: no more writes
	clk.advance(time.Minute)
	_ = s.Write([]byte("x"))
	waitMarks(2)
	s.Close()
	if got := svc.InUse(orgA, e.ID); got != "" {
		t.Errorf("InUse %q after the session closed", got)
	}
}
