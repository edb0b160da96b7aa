package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
)

const (
	// DefaultRetention is how long events are kept for watchers that
	// resume from a position.
	DefaultRetention = time.Hour
	// DefaultPoll bounds how late an event is when a wake-up was lost
	// (a NOTIFY while the listener reconnected, a write outside the store).
	DefaultPoll = time.Second
	// DefaultLinger bounds the delay a busy feed adds to an event (see
	// Hub.Linger): a write per burst instead of a write per event was
	// most of a busy stream's CPU (bench/events).
	DefaultLinger = 5 * time.Millisecond
	// readBatch is how many events one read takes.
	readBatch = 1000
	// ringSize is how many events a watcher may be behind before it reads
	// the table to catch up.
	ringSize = 8192
	// gapRetry is how often a gap of uncommitted IDs is checked.
	gapRetry = 5 * time.Millisecond
)

// Hub tails the events table and hands each event to its watchers, in ID
// order, once. One Hub per process; Run drives it.
//
// Published events go into one ring that every watcher reads: publishing
// costs the same whatever the number of watchers (one wake-up broadcast per
// batch, the close of a channel), and each watcher takes everything new at
// once when it wakes and writes it with one flush. A busy feed publishes at
// most once per Linger, so a watcher wakes, and a stream writes, at most
// that often, however many changes commit. A watcher the ring has passed (a
// slow client) reads the table to catch up, so it never holds the others
// up and never costs memory.
type Hub struct {
	store Store
	log   *slog.Logger
	// Retention and Poll are read by Run (defaults when zero).
	Retention time.Duration
	Poll      time.Duration
	// Linger is how long after publishing the hub waits before it reads
	// the table again (zero: not at all): under a busy feed every watcher
	// then wakes once and writes once per Linger with what came
	// meanwhile, instead of once per commit; the table is read once per
	// Linger too. The first event after a quiet spell goes at once.
	Linger time.Duration
	// Now is the clock of pruning.
	Now func() time.Time

	wake  chan struct{}
	ready chan struct{}
	// closed ends every Watch (Close): a stream would hold a graceful
	// shutdown up until its timeout.
	closed    chan struct{}
	closeOnce sync.Once

	mu  sync.RWMutex
	pos int64 // the last event handed to watchers
	gap *gap
	// ring holds the newest published events: ring[(seq-1)%len(ring)] is
	// the newest; base is the position just before the oldest one held,
	// so the ring has every event after base.
	ring []Event
	seq  uint64
	base int64
	// notify is closed at the next publish.
	notify chan struct{}
}

// gap is a missing ID below events already read (PostgreSQL): the
// transaction that drew it may still commit. fence is taken after the read
// that saw it: once every transaction of it ended, the events up to upTo
// that a read made after that shows are final.
type gap struct {
	pos   int64
	fence Fence
	upTo  int64
}

// NewHub returns a hub over store; call Run.
func NewHub(store Store, log *slog.Logger) *Hub {
	return &Hub{store: store, log: log, Now: time.Now, Linger: DefaultLinger,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), closed: make(chan struct{}),
		ring: make([]Event, ringSize), notify: make(chan struct{})}
}

// Wake makes the hub read the table now: a listener calls it for each
// NOTIFY from the database.
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Close ends every Watch, now and later, with unavailable: the server is
// stopping and its watchers should reconnect (to another replica) with
// their cursor.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

var errClosed = &apperr.Error{Code: apperr.CodeUnavailable, Message: "the server is shutting down: watch again with the cursor of the last event"}

// Position returns the ID of the last event handed to watchers.
func (h *Hub) Position() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.pos
}

// waitPublished waits until the hub has published the event id, for at
// most d or until ctx ends.
func (h *Hub) waitPublished(ctx context.Context, id int64, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		h.mu.RLock()
		pos, notify := h.pos, h.notify
		h.mu.RUnlock()
		if pos >= id {
			return
		}
		select {
		case <-notify:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-h.closed:
			return
		}
	}
}

// Run tails the table and prunes it until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	retention, poll := h.Retention, h.Poll
	if retention <= 0 {
		retention = DefaultRetention
	}
	if poll <= 0 {
		poll = DefaultPoll
	}
	if !h.start(ctx) {
		return
	}
	pruneEvery := min(retention/10, time.Minute)
	nextPrune := time.Now()
	committed := h.store.Committed()
	timer := time.NewTimer(0)
	defer timer.Stop()
	// quietUntil is Linger after the last publish: a wake-up before it
	// waits until then, so that what commits meanwhile is read and
	// published at once.
	var quietUntil time.Time
	for {
		if wait := time.Until(quietUntil); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		wait := poll
		more, gapPending, published, err := h.tail(ctx)
		if published && !more && h.Linger > 0 {
			quietUntil = time.Now().Add(h.Linger)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.log.Warn("events: read the table", "err", err)
		case more:
			wait = 0
		case gapPending:
			wait = gapRetry
		}
		if !time.Now().Before(nextPrune) {
			if n, err := h.store.PruneEvents(ctx, h.Now().Add(-retention)); err != nil && ctx.Err() == nil {
				h.log.Warn("events: prune", "err", err)
			} else if n > 0 {
				h.log.Debug("events: pruned", "count", n)
			}
			nextPrune = time.Now().Add(pruneEvery)
		}
		if wait == 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-committed:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// start sets the position to the newest event once no transaction that
// could still commit an older one is running, so that "from now" and a
// resume below it read final rows.
func (h *Hub) start(ctx context.Context) bool {
	for {
		err := func() error {
			_, latest, err := h.store.EventBounds(ctx)
			if err != nil {
				return err
			}
			fence, err := h.store.EventsFence(ctx)
			if err != nil {
				return err
			}
			for len(fence) > 0 {
				ok, err := h.store.EventsSettled(ctx, fence)
				if err != nil {
					return err
				}
				if ok {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(gapRetry):
				}
			}
			h.mu.Lock()
			h.pos, h.base = latest, latest
			h.mu.Unlock()
			close(h.ready)
			return nil
		}()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		h.log.Warn("events: find the newest event", "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// tail reads what follows the position and publishes what is final. more
// reports a full batch; gapPending a gap that may still fill; published
// that events were handed out.
func (h *Hub) tail(ctx context.Context) (more, gapPending, published bool, err error) {
	h.mu.Lock()
	pos := h.pos
	h.mu.Unlock()
	// A gap seen before is judged first, then the table read again: a
	// transaction that commits between a read and the check would
	// otherwise be passed over.
	var upTo int64
	pending := false
	if h.gap != nil && h.gap.pos == pos {
		settled := len(h.gap.fence) == 0
		if !settled {
			var err error
			if settled, err = h.store.EventsSettled(ctx, h.gap.fence); err != nil {
				return false, true, false, err
			}
		}
		if settled {
			upTo = h.gap.upTo
		}
		pending = !settled
	}
	evs, err := h.store.ReadEvents(ctx, pos, readBatch)
	if err != nil {
		return false, false, false, err
	}
	ok := 0
	for next := pos; ok < len(evs) && (evs[ok].ID == next+1 || evs[ok].ID <= upTo); ok++ {
		next = evs[ok].ID
	}
	if ok == 0 && len(evs) > 0 {
		if pending {
			return false, true, false, nil // its fence is still running
		}
		// Who could still fill the gap is asked after the read: one that
		// committed in between is in the next read, which is made after
		// the fence ended (at once when it is empty).
		fence, err := h.store.EventsFence(ctx)
		if err != nil {
			return false, true, false, err
		}
		h.gap = &gap{pos: pos, fence: fence, upTo: evs[len(evs)-1].ID}
		return len(fence) == 0, len(fence) > 0, false, nil
	}
	h.gap = nil
	h.publish(evs[:ok])
	return len(evs) == readBatch || ok < len(evs), false, ok > 0, nil
}

func (h *Hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		e.shared = new(encodings)
		slot := h.seq % uint64(len(h.ring))
		if h.seq >= uint64(len(h.ring)) {
			h.base = h.ring[slot].ID
		}
		h.ring[slot] = e
		h.seq++
		h.pos = e.ID
	}
	close(h.notify)
	h.notify = make(chan struct{})
}

// take appends to dst the events after position after that filter admits,
// from the ring. It returns the position they reach (the hub's), a channel
// closed at the next publish, and ok false when the ring no longer holds
// every event after after.
func (h *Hub) take(after int64, filter func(Event) bool, dst []Event) ([]Event, int64, <-chan struct{}, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if after < h.base {
		return dst, after, nil, false
	}
	if after >= h.pos {
		return dst, after, h.notify, true
	}
	n := uint64(len(h.ring))
	// The first event after after, searched from the newest: a watcher
	// that keeps up is a few events behind.
	i := h.seq
	for i > 0 && h.seq-i < n && h.ring[(i-1)%n].ID > after {
		i--
	}
	for ; i < h.seq; i++ {
		if e := h.ring[i%n]; filter(e) {
			dst = append(dst, e)
		}
	}
	return dst, h.pos, h.notify, true
}

// ErrExpired is returned by Watch when the position it was given is older
// than the events kept.
var ErrExpired = errors.New("position older than the events kept")

// FromNow is the position of Watch that skips every event so far.
const FromNow int64 = -1

// Watch calls fn with every event after position after (FromNow: after the
// newest) for which filter is true, in order, until ctx ends or fn fails.
// It returns fn's error, ctx's, or an apperr (failed_precondition wrapping
// ErrExpired) when after is older than the events kept. fn runs on the
// caller's goroutine: a slow fn never holds the hub up, it reads the table
// to catch up instead. started (may be nil) is called once the watch is
// established, before the first event: a stream sends its headers then.
// more tells fn that another event follows at once: a stream may hold its
// flush (one write for a burst instead of one per event).
func (h *Hub) Watch(ctx context.Context, after int64, filter func(Event) bool, started func(), fn func(e Event, more bool) error) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.closed:
		return errClosed
	case <-h.ready:
	}
	if after < 0 {
		// "From now" means after every change committed before the call;
		// the hub publishes at most once per Linger, so it may not have
		// published the newest of them yet: wait (bounded) until it has.
		if _, latest, err := h.store.EventBounds(ctx); err == nil {
			h.waitPublished(ctx, latest, time.Second)
		}
		after = h.Position()
	} else if start := h.Position(); after < start {
		oldest, _, err := h.store.EventBounds(ctx)
		if err != nil {
			return err
		}
		if oldest == 0 || oldest > after+1 {
			return &apperr.Error{Code: apperr.CodeFailedPrecondition, Err: ErrExpired,
				Message: "the cursor to resume from is older than the events kept: watch from now and read the resources again"}
		}
	}
	if started != nil {
		started()
	}
	var buf []Event
	for {
		evs, pos, notify, ok := h.take(after, filter, buf[:0])
		if !ok {
			var err error
			if after, err = h.catchUp(ctx, after, filter, fn); err != nil {
				return err
			}
			continue
		}
		after = pos
		for i, e := range evs {
			if err := fn(e, i < len(evs)-1); err != nil {
				return err
			}
		}
		clear(evs)
		buf = evs
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closed:
			return errClosed
		case <-notify:
		}
	}
}

// catchUp hands fn the events after after that the hub published but the
// ring no longer holds, from the table, until the ring has the rest. It
// returns the position reached.
func (h *Hub) catchUp(ctx context.Context, after int64, filter func(Event) bool, fn func(Event, bool) error) (int64, error) {
	for {
		h.mu.RLock()
		base, pos := h.base, h.pos
		h.mu.RUnlock()
		if after >= base {
			return after, nil
		}
		select {
		case <-ctx.Done():
			return after, ctx.Err()
		case <-h.closed:
			return after, errClosed
		default:
		}
		evs, err := h.store.ReadEvents(ctx, after, readBatch)
		if err != nil {
			return after, err
		}
		// Only what the hub published is final (PostgreSQL's gaps); the
		// rest comes from the ring.
		last := after
		var batch []Event
		for _, e := range evs {
			if e.ID > pos {
				break
			}
			last = e.ID
			if filter(e) {
				batch = append(batch, e)
			}
		}
		for i, e := range batch {
			if err := fn(e, i < len(batch)-1); err != nil {
				return after, err
			}
		}
		if last == after {
			// The table has nothing up to base any more (pruned): the
			// ring has everything after it.
			last = base
		}
		after = last
	}
}
