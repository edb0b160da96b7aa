package identity

import (
	"sync"
	"time"
)

// keyCache keeps recently authenticated API keys in memory, because looking a
// key up on every request was a sixth of a GetRunner's CPU. Revoking a key in
// this process drops it at once; another control-plane replica on the same
// database may accept a revoked key for up to keyCacheTTL. Runner tokens are
// not cached: they authenticate a stream once, not every request. Nor are
// users' keys: each use reads the owner's state with the key, so disabling
// the owner or changing their role applies to the next call on every
// replica.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]keyCacheEntry // by hash
}

type keyCacheEntry struct {
	token *Token
	until time.Time
}

const (
	keyCacheTTL = 5 * time.Second
	// keyCacheMax bounds the memory a flood of distinct valid keys can take.
	keyCacheMax = 10_000
)

func (c *keyCache) get(hash string, now time.Time) *Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.token
}

func (c *keyCache) put(t *Token, now time.Time) {
	if t.Principal != PrincipalServiceAccount {
		return
	}
	until := now.Add(keyCacheTTL)
	if t.ExpiresAt != nil && t.ExpiresAt.Before(until) {
		until = *t.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= keyCacheMax {
		c.entries = map[string]keyCacheEntry{}
	}
	c.entries[t.Hash] = keyCacheEntry{token: t, until: until}
}

func (c *keyCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, hash)
}

func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}
