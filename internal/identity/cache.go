package identity

import (
	"sync"
	"sync/atomic"
	"time"
)

// keyCache keeps recently authenticated API keys in memory, as the callers
// they authenticate, because reading a key (and a user's key's owner) on
// every request was a fifth of a GetRunner's CPU. Service accounts' keys
// and users' keys are cached alike; runner tokens are not (they
// authenticate a stream once, not every request).
//
// A cached key is trusted only while every change that narrows it reaches
// this process: revoking a key, disabling its owner, changing or removing
// the owner's membership all call Service.KeyChanged here and, through the
// change notices between replicas (internal/broadcast), on every other
// replica, which drops the entry. When those notices may be missed (the
// replica is not listening for them) an entry is trusted for
// keyCacheUnsureTTL only, as every entry was before users' keys were
// cached; keyCacheTTL bounds what a change that reached no one (a lost
// notice) can leave behind.
//
// The cache holds at most max entries and evicts with the CLOCK algorithm
// (an approximation of least recently used that costs a reader one atomic
// store): an installation with more keys in use than that keeps its most
// used ones.
type keyCache struct {
	mu      sync.RWMutex
	entries map[string]*keyEntry // by hash
	byID    map[string]*keyEntry // by token ID
	// ring holds every entry once; hand is where the clock looks for the
	// next victim.
	ring []*keyEntry
	hand int
	// gen counts the entries dropped and the times the cache was cleared.
	// A reader notes it before reading a key from the store and caches
	// what it read only when no drop happened meanwhile: the drop may be of
	// a change its read did not see yet.
	gen atomic.Uint64
	// max is the bound on entries; zero is keyCacheMax.
	max int
}

type keyEntry struct {
	hash, id string
	caller   *Caller
	// at is when the key was read from the store; until is when the entry
	// expires at the latest (keyCacheTTL later, or the key's expiry).
	at, until time.Time
	// used is the CLOCK's reference bit, set by every hit.
	used atomic.Bool
	slot int
}

const (
	// keyCacheTTL bounds the life of an entry while changes reach this
	// process.
	keyCacheTTL = time.Minute
	// keyCacheUnsureTTL is an entry's life while they may not.
	keyCacheUnsureTTL = 5 * time.Second
	// keyCacheMax bounds the memory distinct valid keys can take: about
	// 0.6 KiB each, so some 40 MiB at the bound.
	keyCacheMax = 1 << 16
)

// generation returns the count of drops so far, to pass to put.
func (c *keyCache) generation() uint64 { return c.gen.Load() }

// get returns the caller of the key with hash, read at most ttl before now,
// or nil.
func (c *keyCache) get(hash string, now time.Time, ttl time.Duration) *Caller {
	c.mu.RLock()
	e := c.entries[hash]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.until) || !now.Before(e.at.Add(ttl)) {
		return nil
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e.caller
}

// put caches the caller of token t, read from the store at now, unless an
// entry was dropped since generation gen.
func (c *keyCache) put(t *Token, caller *Caller, now time.Time, gen uint64) {
	if t.Principal != PrincipalServiceAccount && t.Principal != PrincipalUser {
		return
	}
	until := now.Add(keyCacheTTL)
	if t.ExpiresAt != nil && t.ExpiresAt.Before(until) {
		until = *t.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.entries == nil {
		c.entries, c.byID = map[string]*keyEntry{}, map[string]*keyEntry{}
	}
	if old := c.entries[t.Hash]; old != nil {
		c.remove(old)
	} else if old := c.byID[t.ID]; old != nil {
		// The key has a new secret (the admin key rotated).
		c.remove(old)
	}
	e := &keyEntry{hash: t.Hash, id: t.ID, caller: caller, at: now, until: until}
	limit := c.max
	if limit <= 0 {
		limit = keyCacheMax
	}
	if len(c.ring) >= limit {
		// The new entry takes the victim's place, just behind the hand:
		// it has a whole turn to be used before the hand comes back.
		v := c.victim(now)
		delete(c.entries, v.hash)
		delete(c.byID, v.id)
		e.slot = v.slot
		c.ring[e.slot] = e
	} else {
		e.slot = len(c.ring)
		c.ring = append(c.ring, e)
	}
	c.entries[e.hash], c.byID[e.id] = e, e
}

// victim returns the entry to evict: the first the clock hand finds that
// is expired or was not used since the hand last passed it. Two turns
// find one, since the first clears every reference bit it passes.
func (c *keyCache) victim(now time.Time) *keyEntry {
	for range 2 * len(c.ring) {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		c.hand++
		if !now.Before(e.until) || !e.used.Swap(false) {
			return e
		}
	}
	return c.ring[0]
}

// remove takes e out of the cache; the caller holds mu.
func (c *keyCache) remove(e *keyEntry) {
	last := len(c.ring) - 1
	moved := c.ring[last]
	c.ring[e.slot], moved.slot = moved, e.slot
	c.ring[last] = nil
	c.ring = c.ring[:last]
	delete(c.entries, e.hash)
	delete(c.byID, e.id)
}

// drop forgets the key with hash.
func (c *keyCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if e := c.entries[hash]; e != nil {
		c.remove(e)
	}
}

// dropID forgets the key with ID id.
func (c *keyCache) dropID(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if e := c.byID[id]; e != nil {
		c.remove(e)
	}
}

// dropOrg forgets the keys of organization orgID.
func (c *keyCache) dropOrg(orgID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	// Backwards, since remove moves the last entry into the freed slot.
	for i := len(c.ring) - 1; i >= 0; i-- {
		if i < len(c.ring) && c.ring[i].caller.OrgID == orgID {
			c.remove(c.ring[i])
		}
	}
}

// clear forgets every key.
func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.entries, c.byID, c.ring, c.hand = nil, nil, nil, 0
}

// len returns the number of entries.
func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ring)
}
