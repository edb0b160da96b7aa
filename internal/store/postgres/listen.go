package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runyard/runyard/internal/store/sqlstore"
)

// RunnersChannel is the channel the runners' trigger notifies at the commit
// of every change of a runner (migration 00036).
const RunnersChannel = "runyard_runners"

// ListenRunners hands db's runner view every change of a runner that any
// replica commits until ctx ends, reconnecting after errors. The view is
// used only while it listens, and forgets what it held at each (re)connect,
// since notices sent meanwhile are lost.
func ListenRunners(ctx context.Context, url string, db *sqlstore.DB, log *slog.Logger) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := listenRunners(ctx, url, db)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			wait = 100 * time.Millisecond
		}
		log.Warn("runner view: listen for changes of other replicas failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func listenRunners(ctx context.Context, url string, db *sqlstore.DB) error {
	cfg, err := pgxConfig(url)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+RunnersChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	db.RunnerViewListening(true)
	defer db.RunnerViewListening(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for a notice: %w", err)
		}
		db.RunnerViewNotice(n.Payload)
	}
}
