package runner

import (
	"context"
	"log/slog"
	"sync"

	"github.com/runyard/runyard/internal/runner/ring"
)

// ownLogSize is how much of its own recent log the daemon keeps in memory
// for status.logUrl and the support bundle.
const ownLogSize = 1 << 20

// ownLog is the daemon's recent log: every record its logger writes, as
// text, the oldest dropped first. The log never holds a secret (nothing
// logs one), so it can be handed to whoever may read the runner.
type ownLog struct {
	mu   sync.Mutex
	ring *ring.Ring
}

func (l *ownLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.ring.Write(p)
	l.mu.Unlock()
	return len(p), nil
}

func (l *ownLog) Snapshot() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ring.Snapshot()
}

// teeLogger returns a logger that writes what log writes to own as well,
// at level's level (the runner's spec.configuration.logLevel).
func teeLogger(log *slog.Logger, own *ownLog, level slog.Leveler) *slog.Logger {
	return slog.New(teeHandler{log.Handler(), slog.NewTextHandler(own, &slog.HandlerOptions{Level: level})})
}

type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.a.Enabled(ctx, r.Level) {
		err = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		_ = t.b.Handle(ctx, r)
	}
	return err
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
