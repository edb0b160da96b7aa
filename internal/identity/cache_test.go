package identity

import (
	"fmt"
	"testing"
	"time"
)

func cacheKey(i int) *Token {
	return &Token{ID: fmt.Sprintf("id-%d", i), Hash: fmt.Sprintf("hash-%d", i), Principal: PrincipalServiceAccount}
}

// TestKeyCache_Evicts: a full cache evicts one entry per new key, never
// clears itself, and keeps the keys in use (the clock's second chance)
// over those not used since the hand last passed.
func TestKeyCache_Evicts(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	c := &keyCache{max: 4}
	for i := range 4 {
		k := cacheKey(i)
		c.put(k, callerOf(k), now, c.generation())
	}
	// Keys 0 and 2 are in use.
	for _, i := range []int{0, 2} {
		if c.get(cacheKey(i).Hash, now, keyCacheTTL) == nil {
			t.Fatalf("key %d is not cached", i)
		}
	}
	for i := 4; i < 6; i++ {
		k := cacheKey(i)
		c.put(k, callerOf(k), now, c.generation())
		if got := c.len(); got != 4 {
			t.Fatalf("after key %d the cache holds %d entries, want 4", i, got)
		}
	}
	for i, want := range []bool{true, false, true, false, true, true} {
		if got := c.get(cacheKey(i).Hash, now, keyCacheTTL) != nil; got != want {
			t.Errorf("key %d cached = %v, want %v", i, got, want)
		}
	}
	// An expired entry goes before one in use.
	later := now.Add(keyCacheTTL)
	k := cacheKey(6)
	c.put(k, callerOf(k), later, c.generation())
	if c.len() != 4 || c.get(k.Hash, later, keyCacheTTL) == nil {
		t.Fatalf("the new key is not cached (%d entries)", c.len())
	}
	// Every index agrees after the evictions.
	if len(c.entries) != len(c.ring) || len(c.byID) != len(c.ring) {
		t.Fatalf("entries %d, by id %d, ring %d", len(c.entries), len(c.byID), len(c.ring))
	}
	for i, e := range c.ring {
		if e.slot != i || c.entries[e.hash] != e || c.byID[e.id] != e {
			t.Fatalf("ring slot %d holds %+v", i, e)
		}
	}
}

// TestKeyCache_DropDuringRead: a key read from the store before a change to
// it was announced is not cached, since the read may predate the change.
func TestKeyCache_DropDuringRead(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var c keyCache
	k := cacheKey(1)
	gen := c.generation()
	// The change commits and its notice arrives while the read is under way.
	c.dropID(k.ID)
	c.put(k, callerOf(k), now, gen)
	if c.get(k.Hash, now, keyCacheTTL) != nil {
		t.Fatal("a key read before its change was announced is cached")
	}
	c.put(k, callerOf(k), now, c.generation())
	if c.get(k.Hash, now, keyCacheTTL) == nil {
		t.Fatal("a key read after the change is not cached")
	}
	c.dropID(k.ID)
	if c.get(k.Hash, now, keyCacheTTL) != nil || c.len() != 0 {
		t.Fatal("dropping by ID leaves the entry")
	}
}

// TestKeyCache_DropOrg: forgetting an organization's keys keeps every other
// organization's.
func TestKeyCache_DropOrg(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var c keyCache
	for i := range 10 {
		k := cacheKey(i)
		k.OrgID = fmt.Sprintf("org-%d", i%3)
		c.put(k, callerOf(k), now, c.generation())
	}
	c.dropOrg("org-1")
	for i := range 10 {
		if got, want := c.get(cacheKey(i).Hash, now, keyCacheTTL) != nil, i%3 != 1; got != want {
			t.Errorf("key %d of org-%d cached = %v, want %v", i, i%3, got, want)
		}
	}
	if c.len() != 7 {
		t.Fatalf("%d entries, want 7", c.len())
	}
}
