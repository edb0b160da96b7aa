package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

// memStore is an events table in memory. With unordered it behaves like
// PostgreSQL: ids are drawn before commit, the fence names the ids drawn
// and not yet committed, and it is settled once each of them committed or
// rolled back.
type memStore struct {
	mu        sync.Mutex
	unordered bool
	next      int64
	rows      []Event // committed, sorted by ID
	drawn     map[int64]bool
	committed chan struct{}
	reads     atomic.Int64
}

func newMemStore(unordered bool) *memStore {
	return &memStore{unordered: unordered, drawn: map[int64]bool{}, committed: make(chan struct{}, 1)}
}

// draw takes the next id for a transaction that commits later.
func (m *memStore) draw() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	m.drawn[m.next] = true
	return m.next
}

// commit makes a drawn id visible (or drops it: a rollback).
func (m *memStore) commit(id int64, keep bool) {
	m.mu.Lock()
	delete(m.drawn, id)
	if keep {
		m.rows = append(m.rows, Event{ID: id, OrgID: "o", ResourceType: TypeRunner, Operation: OpCreate, CreatedAt: time.Now()})
		sort.Slice(m.rows, func(i, j int) bool { return m.rows[i].ID < m.rows[j].ID })
	}
	m.mu.Unlock()
	select {
	case m.committed <- struct{}{}:
	default:
	}
}

func (m *memStore) add() int64 {
	id := m.draw()
	m.commit(id, true)
	return id
}

func (m *memStore) ReadEvents(_ context.Context, after int64, limit int) ([]Event, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.rows {
		if e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) EventsFence(context.Context) (Fence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.unordered {
		return nil, nil
	}
	var f Fence
	for id := range m.drawn {
		f = append(f, uint64(id))
	}
	return f, nil
}

func (m *memStore) EventsSettled(_ context.Context, f Fence) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range f {
		if m.drawn[int64(id)] {
			return false, nil
		}
	}
	return true, nil
}

func (m *memStore) EventBounds(context.Context) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows) == 0 {
		return 0, 0, nil
	}
	return m.rows[0].ID, m.rows[len(m.rows)-1].ID, nil
}

func (m *memStore) PruneEvents(_ context.Context, cutoff time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var kept []Event
	for _, e := range m.rows {
		if !e.CreatedAt.Before(cutoff) {
			kept = append(kept, e)
		}
	}
	n := len(m.rows) - len(kept)
	m.rows = kept
	return int64(n), nil
}

func (m *memStore) Committed() <-chan struct{} { return m.committed }

func startHub(t *testing.T, st Store) *Hub {
	t.Helper()
	h := NewHub(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Poll = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// collect watches from after and sends the IDs it gets to the returned
// channel; slow makes fn sleep on every event.
func collect(t *testing.T, h *Hub, after int64, slow time.Duration) (<-chan int64, <-chan error) {
	t.Helper()
	ids := make(chan int64, 100000)
	errc := make(chan error, 1)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		errc <- h.Watch(ctx, after, func(Event) bool { return true }, func() { close(started) }, func(e Event, _ bool) error {
			ids <- e.ID
			time.Sleep(slow)
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-errc:
		errc <- err
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not start")
	}
	return ids, errc
}

func wantIDs(t *testing.T, ids <-chan int64, want []int64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for i, w := range want {
		select {
		case got := <-ids:
			if got != w {
				t.Fatalf("event %d: id %d, want %d", i, got, w)
			}
		case <-deadline:
			t.Fatalf("event %d (id %d) never came", i, w)
		}
	}
}

// TestHub_SlowWatcher: a watcher slower than the feed falls behind the
// hub's ring and catches up from the table, missing nothing.
func TestHub_SlowWatcher(t *testing.T) {
	st := newMemStore(false)
	h := startHub(t, st)
	ids, _ := collect(t, h, FromNow, 20*time.Microsecond)
	var want []int64
	for range 2 * ringSize {
		want = append(want, st.add())
	}
	wantIDs(t, ids, want)
}

// TestHub_OutOfOrderCommits: an id that commits after a higher one is
// handed out first; a rolled-back id is passed once nothing can commit it.
func TestHub_OutOfOrderCommits(t *testing.T) {
	st := newMemStore(true)
	h := startHub(t, st)
	ids, _ := collect(t, h, FromNow, 0)
	late := st.draw()
	rolledBack := st.draw()
	after := st.add()
	// Nothing passes the gap while its ids may still commit.
	select {
	case id := <-ids:
		t.Fatalf("id %d handed out before %d committed", id, late)
	case <-time.After(50 * time.Millisecond):
	}
	st.commit(late, true)
	st.commit(rolledBack, false)
	wantIDs(t, ids, []int64{late, after})
	wantIDs(t, ids, []int64{st.add()})
}

// TestHub_Resume: a watch from a position gets what followed it, then the
// live feed; a position older than the table keeps is refused.
func TestHub_Resume(t *testing.T) {
	st := newMemStore(false)
	h := startHub(t, st)
	var ids []int64
	for range 10 {
		ids = append(ids, st.add())
	}
	// Wait until the hub has read them, so that the watch starts below its
	// position and reads the table.
	for deadline := time.Now().Add(10 * time.Second); h.Position() < ids[9]; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub never read the table")
		}
	}
	got, _ := collect(t, h, ids[3], 0)
	wantIDs(t, got, append(ids[4:], st.add()))

	if _, err := st.PruneEvents(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.add()
	err := h.Watch(context.Background(), ids[3], func(Event) bool { return true }, nil, func(Event, bool) error { return nil })
	if !errors.Is(err, ErrExpired) || !apperr.Is(err, apperr.CodeFailedPrecondition) {
		t.Fatalf("watch from a pruned position: %v", err)
	}
}

// TestHub_Close ends every watch with unavailable.
func TestHub_Close(t *testing.T) {
	h := startHub(t, newMemStore(false))
	_, errc := collect(t, h, FromNow, 0)
	h.Close()
	select {
	case err := <-errc:
		if !apperr.Is(err, apperr.CodeUnavailable) {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end")
	}
}

// TestHub_PassedByTheRing: a watcher stuck while more events than the ring
// holds are published reads the table to catch up, then the ring again,
// missing nothing and repeating nothing.
func TestHub_PassedByTheRing(t *testing.T) {
	st := newMemStore(false)
	h := startHub(t, st)
	ids := make(chan int64, 4*ringSize)
	release := make(chan struct{})
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go h.Watch(ctx, FromNow, func(Event) bool { return true }, func() { close(started) }, func(e Event, _ bool) error {
		ids <- e.ID
		<-release
		return nil
	})
	<-started
	var want []int64
	for range ringSize + ringSize/2 {
		want = append(want, st.add())
	}
	for deadline := time.Now().Add(30 * time.Second); h.Position() < want[len(want)-1]; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub never read the table")
		}
	}
	close(release)
	want = append(want, st.add())
	wantIDs(t, ids, want)
}

// TestHub_BusyFeedOncePerLinger: changes that commit within Linger of a
// publish are read and published together once it has passed (one table
// read, one wake-up of each watcher), not one by one; the first change
// after a quiet spell goes at once.
func TestHub_BusyFeedOncePerLinger(t *testing.T) {
	st := newMemStore(false)
	h := NewHub(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Poll = time.Hour
	// Long enough that the burst below fits in it on a loaded machine.
	h.Linger = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	type batch struct{ ids []int64 }
	batches := make(chan batch, 100)
	started := make(chan struct{})
	wctx, wcancel := context.WithCancel(context.Background())
	t.Cleanup(wcancel)
	var cur []int64
	go h.Watch(wctx, FromNow, func(Event) bool { return true }, func() { close(started) }, func(e Event, more bool) error {
		cur = append(cur, e.ID)
		if !more {
			batches <- batch{cur}
			cur = nil
		}
		return nil
	})
	<-started
	next := func() batch {
		t.Helper()
		select {
		case b := <-batches:
			return b
		case <-time.After(30 * time.Second):
			t.Fatal("no batch came")
			return batch{}
		}
	}
	first := st.add()
	if b := next(); fmt.Sprint(b.ids) != fmt.Sprint([]int64{first}) {
		t.Fatalf("first batch %v, want [%d]", b.ids, first)
	}
	reads := st.reads.Load()
	var want []int64
	for range 20 {
		want = append(want, st.add())
		time.Sleep(time.Millisecond)
	}
	if b := next(); fmt.Sprint(b.ids) != fmt.Sprint(want) {
		t.Fatalf("the burst came as %v, want one batch %v", b.ids, want)
	}
	if n := st.reads.Load() - reads; n > 3 {
		t.Fatalf("the burst of 20 commits took %d reads of the table", n)
	}
}
