package storetest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/runyard/runyard/internal/store"
)

// testServerKeys checks that a server key is created once, kept, and the same
// for every concurrent first caller: replicas that race on their first
// request must still agree on the key.
func testServerKeys(t *testing.T, s store.Store) {
	const n = 16
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.ServerKey(ctx, "race")
			if err != nil {
				t.Errorf("concurrent first ServerKey: %v", err)
				return
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, k := range keys {
		if got, want := len(k), 32; got != want {
			t.Fatalf("key %d has %d bytes, want %d", i, got, want)
		}
		if !bytes.Equal(k, keys[0]) {
			t.Fatalf("concurrent first calls returned different keys: %x and %x", keys[0], k)
		}
	}
	again, err := s.ServerKey(ctx, "race")
	must(t, err, "ServerKey again")
	if !bytes.Equal(again, keys[0]) {
		t.Fatalf("the key changed from %x to %x", keys[0], again)
	}
	other, err := s.ServerKey(ctx, "other")
	must(t, err, "ServerKey other")
	if bytes.Equal(other, keys[0]) {
		t.Fatal("two key names share one key")
	}
	if bytes.Equal(other, make([]byte, 32)) {
		t.Fatal("the key is all zeros")
	}
}
