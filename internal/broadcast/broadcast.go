// Package broadcast carries "this runner's desired state changed" between
// control-plane replicas that share a PostgreSQL database. A runner keeps
// one stream to one replica; a user's request that changes its work (a pod
// placed, an environment started, a secret updated) may land on another.
// That replica tells its own fleet and publishes the change with NOTIFY;
// every replica LISTENs and tells its fleet, which sends the desired state
// again over the streams it holds.
//
// With SQLite there is one control-plane process and nothing to carry.
package broadcast

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Channel is the PostgreSQL notification channel.
const Channel = "runyard_changed"

// Local is what a replica does with a change: its fleet.
type Local interface {
	// Changed wakes the stream of runnerID if this replica holds it.
	Changed(orgID, runnerID string)
	// OrgChanged wakes the streams this replica holds of an organization.
	OrgChanged(orgID string)
	// TokenRevoked ends the streams this replica holds that authenticated
	// with the token.
	TokenRevoked(orgID, tokenID string)
	// Resync wakes every stream this replica holds: notices may have been
	// missed while the listener was away.
	Resync()
	// Holds reports whether this replica holds the stream of runnerID: a
	// change to that runner then concerns no other replica.
	Holds(runnerID string) bool
}

// Bus publishes changes to the other replicas and delivers theirs to Local.
// Changed and OrgChanged never block on the database: notices are queued,
// coalesced, and sent by Run.
type Bus struct {
	local Local
	url   string
	log   *slog.Logger
	// id tells this replica's own notices, which come back, from others'.
	id string

	mu      sync.Mutex
	pending map[string]struct{} // payloads not sent yet
	wake    chan struct{}
	// listening is set while the listener holds its LISTEN: only then
	// does every other replica's notice arrive.
	listening atomic.Bool
}

// Listening reports whether this replica receives the other replicas'
// notices now. A replica that keeps something in memory that their
// changes invalidate (the cache of API keys) trusts it for a short time
// only while it does not.
func (b *Bus) Listening() bool { return b.listening.Load() }

// New returns a bus over the PostgreSQL database at url; call Run.
func New(local Local, url string, log *slog.Logger) *Bus {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Bus{local: local, url: url, log: log, id: hex.EncodeToString(b[:]),
		pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// A notice's payload is "replica|kind|org|id": kind r wakes runner id, o
// the organization, t ends the streams of token id.

// Changed tells this replica's fleet and the others' that runnerID's
// desired state changed.
func (b *Bus) Changed(orgID, runnerID string) {
	b.local.Changed(orgID, runnerID)
	// A runner has one stream; the replica holding it tells no one else
	// (a fleet of runners connecting would otherwise send a notice each).
	if !b.local.Holds(runnerID) {
		b.publish("r|" + orgID + "|" + runnerID)
	}
}

// OrgChanged is Changed for every runner of an organization.
func (b *Bus) OrgChanged(orgID string) {
	b.local.OrgChanged(orgID)
	b.publish("o|" + orgID + "|")
}

// TokenRevoked ends the streams that authenticated with a revoked token, on
// every replica.
func (b *Bus) TokenRevoked(orgID, tokenID string) {
	b.local.TokenRevoked(orgID, tokenID)
	b.publish("t|" + orgID + "|" + tokenID)
}

func (b *Bus) publish(notice string) {
	b.mu.Lock()
	b.pending[b.id+"|"+notice] = struct{}{}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// deliver hands a notice from the database to the local fleet.
func (b *Bus) deliver(payload string) {
	parts := strings.Split(payload, "|")
	if len(parts) != 4 || parts[0] == b.id {
		return
	}
	switch parts[1] {
	case "r":
		b.local.Changed(parts[2], parts[3])
	case "o":
		b.local.OrgChanged(parts[2])
	case "t":
		b.local.TokenRevoked(parts[2], parts[3])
	}
}

// Run sends queued notices and listens for the others' until ctx ends,
// reconnecting after database errors.
func (b *Bus) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.retry(ctx, "publish", b.publishLoop) }()
	go func() { defer wg.Done(); b.retry(ctx, "listen", b.listen) }()
	wg.Wait()
}

// retry runs fn until ctx ends, waiting longer after each failure (up to
// 5 s) and logging it.
func (b *Bus) retry(ctx context.Context, what string, fn func(context.Context) error) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			// It worked for a while: a new failure starts the backoff
			// again.
			wait = 100 * time.Millisecond
		}
		b.log.Warn("change notices between replicas: "+what+" failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (b *Bus) publishLoop(ctx context.Context) error {
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for {
		batch := b.take()
		if err := notify(ctx, db, batch); err != nil {
			// Sent again after the reconnect.
			b.mu.Lock()
			for _, q := range batch {
				b.pending[q] = struct{}{}
			}
			b.mu.Unlock()
			return err
		}
		select {
		case <-ctx.Done():
			// Notices queued as the replica stops still go out: a pod
			// created just before a restart must reach its runner.
			b.flush(db)
			return nil
		case <-b.wake:
		}
	}
}

// flush sends what is queued, on a context of its own (Run's ended).
func (b *Bus) flush(db *sql.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	batch := b.take()
	if err := notify(ctx, db, batch); err != nil {
		b.log.Warn("change notices between replicas: lost at shutdown", "count", len(batch), "err", err)
	}
}

// take empties the queue and returns what it held.
func (b *Bus) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := make([]string, 0, len(b.pending))
	for p := range b.pending {
		batch = append(batch, p)
	}
	clear(b.pending)
	return batch
}

// notify sends payloads in one statement (one round trip however many).
func notify(ctx context.Context, db *sql.DB, payloads []string) error {
	if len(payloads) == 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, Channel, payloads); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (b *Bus) listen(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever changed while this replica was not listening is not
	// coming: every stream it holds sends its desired state again.
	// Resync first: what Local kept while not listening is forgotten
	// before it is trusted again.
	b.local.Resync()
	b.listening.Store(true)
	defer b.listening.Store(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for a notice: %w", err)
		}
		b.deliver(n.Payload)
	}
}
