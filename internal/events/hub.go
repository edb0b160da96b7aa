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
	// DefaultLinger bounds the delay a busy stream adds to an event (see
	// Hub.Linger): a write per burst instead of a write per event was
	// most of a busy stream's CPU (bench/events).
	DefaultLinger = 5 * time.Millisecond
	// readBatch is how many events one read takes.
	readBatch = 1000
	// subBuffer is how many events a subscriber may be behind before it
	// is switched to reading the table (it then catches up from there).
	subBuffer = 1024
	// gapRetry is how often a gap of uncommitted IDs is checked.
	gapRetry = 5 * time.Millisecond
)

// Hub tails the events table and hands each event to its subscribers, in
// ID order, once. One Hub per process; Run drives it.
type Hub struct {
	store Store
	log   *slog.Logger
	// Retention and Poll are read by Run (defaults when zero).
	Retention time.Duration
	Poll      time.Duration
	// Linger is how long a watcher's stream may hold an event back for
	// the next one when events come faster than one per Linger (zero: not
	// at all). The first event after a quiet spell goes at once.
	Linger time.Duration
	// Now is the clock of pruning.
	Now func() time.Time

	wake  chan struct{}
	ready chan struct{}
	// closed ends every Watch (Close): a stream would hold a graceful
	// shutdown up until its timeout.
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	pos  int64 // the last event handed to subscribers
	subs map[*subscriber]struct{}
	gap  *gap
}

// gap is a missing ID below events already read (PostgreSQL): the
// transaction that drew it may still commit. Once the store says the read
// that saw it is settled (Store.EventsSettled(fence)), the events up to
// upTo that exist are final.
type gap struct {
	pos   int64
	fence uint64
	upTo  int64
}

type subscriber struct {
	filter func(Event) bool
	ch     chan Event
	// lagged is set (under Hub.mu) when ch was full: the hub stops
	// sending and the subscriber catches up from the table.
	lagged bool
	signal chan struct{}
}

// NewHub returns a hub over store; call Run.
func NewHub(store Store, log *slog.Logger) *Hub {
	return &Hub{store: store, log: log, Now: time.Now, Linger: DefaultLinger,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), closed: make(chan struct{}),
		subs: map[*subscriber]struct{}{}}
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

// Position returns the ID of the last event handed to subscribers.
func (h *Hub) Position() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos
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
	for {
		wait := poll
		more, gapPending, err := h.tail(ctx)
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
			_, fence, err := h.store.ReadEvents(ctx, max(latest-1, 0), 1)
			if err != nil {
				return err
			}
			for {
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
			h.pos = latest
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
// reports a full batch; gapPending a gap that may still fill.
func (h *Hub) tail(ctx context.Context) (more, gapPending bool, err error) {
	h.mu.Lock()
	pos := h.pos
	h.mu.Unlock()
	// A gap seen before is judged first, then the table read again: a
	// transaction that commits between a read and the check would
	// otherwise be passed over.
	var upTo int64
	if h.gap != nil && h.gap.pos == pos {
		settled, err := h.store.EventsSettled(ctx, h.gap.fence)
		if err != nil {
			return false, true, err
		}
		if settled {
			upTo = h.gap.upTo
		}
	}
	evs, fence, err := h.store.ReadEvents(ctx, pos, readBatch)
	if err != nil {
		return false, false, err
	}
	ok := len(evs)
	if fence != 0 {
		ok = 0
		for next := pos; ok < len(evs) && (evs[ok].ID == next+1 || evs[ok].ID <= upTo); ok++ {
			next = evs[ok].ID
		}
	}
	if ok == 0 && len(evs) > 0 {
		if h.gap == nil || h.gap.pos != pos {
			h.gap = &gap{pos: pos, fence: fence, upTo: evs[len(evs)-1].ID}
		}
		return false, true, nil
	}
	h.gap = nil
	h.publish(evs[:ok])
	return len(evs) == readBatch || ok < len(evs), false, nil
}

func (h *Hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		h.pos = e.ID
		for s := range h.subs {
			if s.lagged || !s.filter(e) {
				continue
			}
			select {
			case s.ch <- e:
			default:
				s.lagged = true
				select {
				case s.signal <- struct{}{}:
				default:
				}
			}
		}
	}
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
	for {
		s := &subscriber{filter: filter, ch: make(chan Event, subBuffer), signal: make(chan struct{}, 1)}
		h.mu.Lock()
		start := h.pos
		h.subs[s] = struct{}{}
		h.mu.Unlock()
		if after < 0 {
			after = start
		}
		last, err := h.follow(ctx, s, after, start, filter, started, fn)
		started = nil
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		if err != nil {
			return err
		}
		// The subscriber lagged: start again from its last event.
		after = last
	}
}

// follow reads (after, start] from the table, then the subscriber's
// events, until it lags (nil error) or fails. It returns the last ID
// handed to fn or skipped.
func (h *Hub) follow(ctx context.Context, s *subscriber, after, start int64, filter func(Event) bool, started func(), fn func(Event, bool) error) (int64, error) {
	if after < start {
		oldest, _, err := h.store.EventBounds(ctx)
		if err != nil {
			return after, err
		}
		if oldest == 0 || oldest > after+1 {
			return after, &apperr.Error{Code: apperr.CodeFailedPrecondition, Err: ErrExpired,
				Message: "the cursor to resume from is older than the events kept: watch from now and read the resources again"}
		}
	}
	if started != nil {
		started()
	}
	for after < start {
		evs, _, err := h.store.ReadEvents(ctx, after, readBatch)
		if err != nil {
			return after, err
		}
		if len(evs) == 0 {
			break
		}
		// Matching events of the batch, each told whether another follows.
		var batch []Event
		for _, e := range evs {
			if e.ID > start {
				break
			}
			if filter(e) {
				batch = append(batch, e)
			}
		}
		for i, e := range batch {
			if err := fn(e, i < len(batch)-1); err != nil {
				return e.ID, err
			}
		}
		after = min(evs[len(evs)-1].ID, start)
		if evs[len(evs)-1].ID > start {
			break
		}
	}
	after = max(after, start)
	// held is an event not handed to fn yet: while events come faster
	// than one per Linger, the last one waits (up to Linger after the
	// previous flush) for another, so that a busy stream writes a burst
	// at a time instead of one system call per event.
	var (
		held      *Event
		lastFlush time.Time
		linger    = time.NewTimer(time.Hour)
	)
	linger.Stop()
	defer linger.Stop()
	hand := func(e Event, more bool) error {
		if !more {
			lastFlush = time.Now()
		}
		return fn(e, more)
	}
	for {
		select {
		case <-ctx.Done():
			return after, ctx.Err()
		case <-h.closed:
			return after, errClosed
		case <-linger.C:
			if held != nil {
				e := *held
				held = nil
				if err := hand(e, false); err != nil {
					return after, err
				}
			}
		case e := <-s.ch:
			if e.ID <= after {
				continue
			}
			after = e.ID
			if held != nil {
				if err := hand(*held, true); err != nil {
					return after, err
				}
				held = nil
			}
			if len(s.ch) > 0 {
				if err := hand(e, true); err != nil {
					return after, err
				}
				continue
			}
			if wait := h.Linger - time.Since(lastFlush); wait > 0 {
				held = &e
				linger.Reset(wait)
				continue
			}
			if err := hand(e, false); err != nil {
				return after, err
			}
		case <-s.signal:
			// Deliver what was queued before the overflow, then catch up
			// from the table (more follows: what the table holds).
			if held != nil {
				if err := hand(*held, true); err != nil {
					return after, err
				}
				held = nil
			}
			for {
				select {
				case e := <-s.ch:
					if e.ID > after {
						after = e.ID
						if err := hand(e, true); err != nil {
							return after, err
						}
					}
					continue
				default:
				}
				break
			}
			return after, nil
		}
	}
}
