package ring

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestRing(t *testing.T) {
	t.Run("UnderCapacity", func(t *testing.T) {
		r := New(16)
		r.Write([]byte("hello "))
		r.Write([]byte("world"))
		if got, want := string(r.Snapshot()), "hello world"; got != want {
			t.Errorf("snapshot = %q, want %q", got, want)
		}
	})

	t.Run("KeepsTheLastBytes", func(t *testing.T) {
		// Compare with the obvious implementation over random writes.
		rng := rand.New(rand.NewPCG(1, 2))
		for _, size := range []int{1, 7, 64, 1000} {
			r := New(size)
			var all []byte
			for range 500 {
				p := make([]byte, rng.IntN(2*size+1))
				for i := range p {
					p[i] = 'a' + byte(rng.IntN(26))
				}
				r.Write(p)
				all = append(all, p...)
				want := all
				if len(all) > size {
					want = append([]byte(TruncationMarker), all[len(all)-size:]...)
				}
				if got := r.Snapshot(); !bytes.Equal(got, want) {
					t.Fatalf("size %d after %d bytes: snapshot = %q, want %q", size, len(all), got, want)
				}
			}
		}
	})

	t.Run("MarkerBeforeWholeCharacters", func(t *testing.T) {
		r := New(4)
		r.Write([]byte("ab€cd")) // '€' is 3 bytes: the ring keeps its last 2 and "cd"
		if got, want := string(r.Snapshot()), TruncationMarker+"cd"; got != want {
			t.Errorf("snapshot = %q, want %q", got, want)
		}
	})
}
