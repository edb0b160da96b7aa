package sessions

import (
	"sync"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// cache keeps recently read sessions in memory, so a console's burst of
// requests costs one read of the session, its user and membership, not one
// per request. Revoking a session or a user on this replica drops their
// entries at once; another replica sharing the database may accept a
// revoked session, or an old role, for up to cacheTTL.
type cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry // by the secret's hash
}

type cacheEntry struct {
	sess *Session
	// caller is the user caller of a user's session (nil for key
	// sessions, which authenticate their key every time).
	caller *identity.Caller
	until  time.Time
}

const (
	cacheTTL = 5 * time.Second
	// cacheMax bounds the memory a flood of distinct sessions can take.
	cacheMax = 10_000
)

func (c *cache) get(hash string, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e
}

func (c *cache) put(hash string, e *cacheEntry, now time.Time) {
	e.until = now.Add(cacheTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= cacheMax {
		c.entries = map[string]*cacheEntry{}
	}
	c.entries[hash] = e
}

// replace swaps the session of an entry after a touch, unless the entry
// changed meanwhile.
func (c *cache) replace(hash string, old, next *Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[hash]; ok && e.sess == old {
		c.entries[hash] = &cacheEntry{sess: next, caller: e.caller, until: e.until}
	}
}

func (c *cache) dropSession(id string) {
	c.drop(func(s *Session) bool { return s.ID == id })
}

func (c *cache) dropUser(userID string) {
	c.drop(func(s *Session) bool { return s.UserID == userID })
}

func (c *cache) drop(match func(*Session) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if match(e.sess) {
			delete(c.entries, h)
		}
	}
}

// limiter is a token bucket per key (a client IP): burst attempts at once,
// then one more every interval.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// limiterMax bounds the buckets kept; past it, full buckets are forgotten
// (they would allow a whole burst anyway).
const limiterMax = 10_000

// take spends one attempt of key, or says how long until one is there.
func (l *limiter) take(key string, now time.Time, burst int, interval time.Duration) (time.Duration, bool) {
	if burst <= 0 || interval <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	refill := func(b *bucket) {
		b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(interval))
		b.at = now
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterMax {
			for k, o := range l.buckets {
				if refill(o); o.tokens >= float64(burst) {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{tokens: float64(burst), at: now}
		l.buckets[key] = b
	}
	refill(b)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(interval)), false
	}
	b.tokens--
	return 0, true
}
