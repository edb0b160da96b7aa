package server

import (
	"context"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/sessions"
)

// Sessions returns the browser sessions service: the OpenID Connect
// sign-in issues its sessions through it, and disabling a user revokes
// theirs (RevokeUser).
func (s *Server) Sessions() *sessions.Service { return s.signIns }

// secureCookies reports whether the session cookie is marked Secure: when
// browsers reach the server over https (TLS here, or a proxy's public URL).
func (s *Server) secureCookies() bool {
	return s.scheme == "https" || strings.HasPrefix(s.cfg.PublicURL, "https://")
}

func signInLimits(l sessions.Limits) sessions.Limits {
	d := sessions.DefaultLimits
	if l.MaxFailures > 0 {
		d.MaxFailures = l.MaxFailures
	}
	if l.LockoutDuration > 0 {
		d.LockoutDuration = l.LockoutDuration
	}
	if l.PerIPBurst > 0 {
		d.PerIPBurst = l.PerIPBurst
	}
	if l.PerIPInterval > 0 {
		d.PerIPInterval = l.PerIPInterval
	}
	return d
}

// startSessionPruning deletes sessions a day after their absolute expiry,
// hourly, until the returned stop is called. Replicas sharing PostgreSQL
// may prune the same sessions without harm.
func (s *Server) startSessionPruning() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := s.signIns.Prune(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("prune expired browser sessions", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// endOtherSessions ends a user's browser sessions but keepID, after they
// changed their own password. Like endSessions it runs after the change
// committed, so a failure is logged.
func (s *Server) endOtherSessions(ctx context.Context, userID, keepID string) {
	if n, err := s.signIns.RevokeOtherSessions(ctx, userID, keepID); err != nil {
		s.log.ErrorContext(ctx, "end the other sessions of a user", "user", userID, "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "sessions ended after a password change", "user", userID, "sessions", n)
	}
}
