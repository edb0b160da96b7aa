package sshserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/identity"
)

// Failed logins: each connection that offered keys and logged in with
// none is an audit entry (method "ssh login", the environment named as
// the user when there is one, so that its organization sees it, and the
// fingerprint of the last key refused; never a key itself). An address
// that fails LoginBurst times is refused at once, without a handshake,
// until its failures age out (one every LoginInterval): guessing keys or
// environment IDs from one address goes no faster than that.

// Defaults of the failed-login limit.
const (
	DefaultLoginBurst    = 10
	DefaultLoginInterval = 6 * time.Second
)

// MethodLogin is the audit method of a failed login.
const MethodLogin = "ssh login"

// failures is a token bucket of failed logins per client address.
type failures struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the addresses remembered; past it, those whose
// failures aged out are forgotten (they would allow a whole burst anyway).
const maxBuckets = 10_000

func (f *failures) refill(b *bucket, now time.Time, burst int, interval time.Duration) {
	b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(interval))
	b.at = now
}

// allowed says ip may try to log in now.
func (f *failures) allowed(ip string, now time.Time, burst int, interval time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[ip]
	if !ok {
		return true
	}
	f.refill(b, now, burst, interval)
	return b.tokens >= 1
}

// fail counts a failed login of ip.
func (f *failures) fail(ip string, now time.Time, burst int, interval time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets == nil {
		f.buckets = map[string]*bucket{}
	}
	b, ok := f.buckets[ip]
	if !ok {
		if len(f.buckets) >= maxBuckets {
			for k, o := range f.buckets {
				if f.refill(o, now, burst, interval); o.tokens >= float64(burst) {
					delete(f.buckets, k)
				}
			}
		}
		b = &bucket{tokens: float64(burst), at: now}
		f.buckets[ip] = b
	}
	f.refill(b, now, burst, interval)
	b.tokens = max(0, b.tokens-1)
}

func (s *Server) limits() (int, time.Duration) {
	burst, interval := s.LoginBurst, s.LoginInterval
	if burst <= 0 {
		burst = DefaultLoginBurst
	}
	if interval <= 0 {
		interval = DefaultLoginInterval
	}
	return burst, interval
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// loginAllowed says a connection from ip may log in.
func (s *Server) loginAllowed(ip string) bool {
	burst, interval := s.limits()
	return s.failed.allowed(ip, s.now(), burst, interval)
}

// loginFailed counts a failed login and records it in the audit log.
func (s *Server) loginFailed(ctx context.Context, ip, version string, r *envaccess.RefusedLogin) {
	burst, interval := s.limits()
	s.failed.fail(ip, s.now(), burst, interval)
	if s.Audit == nil {
		return
	}
	ctx, d := audit.Begin(ctx, audit.SurfaceSSH, MethodLogin, "RESOURCE_TYPE_ENVIRONMENT", ip, version)
	audit.SetObject(ctx, "RESOURCE_TYPE_ENVIRONMENT", r.EnvironmentID)
	// Nobody logged in: the entry names no actor, only the organization
	// of the environment tried (none for an unknown one) and the key.
	d.SetCaller(&identity.Caller{OrgID: r.OrgID, TokenID: r.Fingerprint})
	if err := s.Audit.Finish(ctx, d, string(r.Reason)); err != nil && !errors.Is(err, context.Canceled) {
		s.Log.Error("audit log", "err", err)
	}
}
