package server

import (
	"context"
	"time"
)

// defaultInactivitySweep is how often environments are checked for
// inactivity: spec.timeout.disconnected is at least 30 minutes, so a stop
// comes at most this late.
const defaultInactivitySweep = 30 * time.Second

// startInactivitySweep stops environments whose spec.timeout.disconnected
// has passed without activity (environments.Service.StopInactive) until the
// returned stop is called. Every replica sweeps; each stop re-checks its
// environment in a transaction, so they never stop one twice.
func (s *Server) startInactivitySweep() (stop func()) {
	interval := s.cfg.InactivitySweep
	if interval <= 0 {
		interval = defaultInactivitySweep
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var lastLog time.Time
		s.environments.RunInactivitySweep(ctx, interval, func(err error) {
			// A database outage would fail every pass: log once a minute.
			if time.Since(lastLog) > time.Minute {
				lastLog = time.Now()
				s.log.Warn("stop inactive environments", "err", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}
