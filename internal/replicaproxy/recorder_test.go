package replicaproxy

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// sessions records the calls a Recorder makes.
type sessions struct {
	mu    sync.Mutex
	calls []string
}

func (s *sessions) add(c string) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

func (s *sessions) RecordRunnerSession(_ context.Context, orgID, runnerID, replica string, since time.Time) error {
	s.add("record " + runnerID + " " + since.Format("15:04:05"))
	return nil
}

func (s *sessions) EndRunnerSession(_ context.Context, runnerID, replica string, since time.Time) error {
	s.add("end " + runnerID + " " + since.Format("15:04:05"))
	return nil
}

func (s *sessions) FindRunnerSession(context.Context, string, string) (string, error) { return "", nil }

// TestRecorder_KeepsEachRunnersLatestChange: changes queued before a write
// collapse to each runner's latest, and what is queued when Run ends is
// still written.
func TestRecorder_KeepsEachRunnersLatestChange(t *testing.T) {
	st := &sessions{}
	r := NewRecorder(st, "http://a", slog.New(slog.DiscardHandler))
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r.Connected("o", "r1", t0)
	r.Disconnected("o", "r1", t0)
	r.Connected("o", "r2", t0.Add(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run writes what is queued and returns
	r.Run(ctx)
	got := map[string]bool{}
	for _, c := range st.calls {
		got[c] = true
	}
	want := []string{"end r1 10:00:00", "record r2 10:00:01"}
	if len(st.calls) != len(want) {
		t.Fatalf("calls = %q, want %q", st.calls, want)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("calls = %q, want %q among them", st.calls, w)
		}
	}
}
