package server

import (
	"context"
	"time"
)

// startAuditPruning deletes audit entries older than --audit-retention
// every purgeInterval until the returned stop is called. Replicas sharing
// PostgreSQL may prune the same entries without harm.
func (s *Server) startAuditPruning() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	retention := s.cfg.AuditRetention
	go func() {
		defer close(done)
		t := time.NewTicker(purgeInterval(retention))
		defer t.Stop()
		var lastLog time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := s.audit.Prune(ctx, retention)
			switch {
			case err != nil && ctx.Err() == nil && time.Since(lastLog) > time.Minute:
				lastLog = time.Now()
				s.log.Warn("prune audit log", "err", err)
			case n > 0:
				s.log.Info("audit entries pruned after their retention", "count", n, "retention", retention)
			}
		}
	}()
	return func() { cancel(); <-done }
}
