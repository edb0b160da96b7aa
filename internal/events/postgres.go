package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the PostgreSQL notification channel notified each time events
// got their positions (runyard_read_events, migration 00039): once for
// every batch of commits a replica's hub numbered, not once per commit.
const Channel = "runyard_events"

// ListenPostgres wakes hub at every NOTIFY on Channel until ctx ends,
// reconnecting after errors; after each (re)connect it wakes the hub once,
// since notices sent meanwhile are lost (the hub's poll would find them
// too, later).
func ListenPostgres(ctx context.Context, url string, hub *Hub, log *slog.Logger) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := listen(ctx, url, hub)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			wait = 100 * time.Millisecond
		}
		log.Warn("events: listen for changes of other replicas failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func listen(ctx context.Context, url string, hub *Hub) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hub.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for a notice: %w", err)
		}
		hub.Wake()
	}
}
