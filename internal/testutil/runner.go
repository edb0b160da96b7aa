package testutil

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/runner/holder"
)

// StartRunner runs a runner daemon in this process until the test ends or
// stop is called. cfg needs Server and, on the first start, ExchangeToken; an
// empty StateDir is a fresh temporary directory.
func StartRunner(tb testing.TB, cfg runner.Config) (stop func()) {
	tb.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := runner.New(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("start runner daemon: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("runner daemon: %v", err)
			}
			d.Close()
		})
	}
	// Cleanups run last-in first-out: the daemon stops before the server.
	// Its services and pods outlive it under their holders (as they would
	// a restart): the test's end ends them too.
	tb.Cleanup(func() {
		stop()
		holder.KillUnder(cfg.StateDir)
	})
	return stop
}
