package server

import (
	"context"
	"time"
)

// startPrebuildSweep runs prebuilds.Service.Sweep (prebuilds past their
// timeout fail, due schedules create prebuilds) until the returned stop is
// called.
func (s *Server) startPrebuildSweep() (stop func()) {
	interval := s.cfg.PrebuildSweep
	if interval <= 0 {
		interval = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var lastLog time.Time
		s.prebuilds.RunSweep(ctx, interval, func(err error) {
			if time.Since(lastLog) > time.Minute {
				lastLog = time.Now()
				s.log.Warn("prebuild sweep", "err", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}
