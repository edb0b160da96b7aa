package pods

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestRing(t *testing.T) {
	t.Run("UnderCapacity", func(t *testing.T) {
		r := newRing(16)
		r.write([]byte("hello "))
		r.write([]byte("world"))
		if got, want := string(r.snapshot()), "hello world"; got != want {
			t.Errorf("snapshot = %q, want %q", got, want)
		}
	})

	t.Run("KeepsTheLastBytes", func(t *testing.T) {
		// Compare with the obvious implementation over random writes.
		rng := rand.New(rand.NewPCG(1, 2))
		for _, size := range []int{1, 7, 64, 1000} {
			r := newRing(size)
			var all []byte
			for range 500 {
				p := make([]byte, rng.IntN(2*size+1))
				for i := range p {
					p[i] = 'a' + byte(rng.IntN(26))
				}
				r.write(p)
				all = append(all, p...)
				want := all
				if len(all) > size {
					want = append([]byte(TruncationMarker), all[len(all)-size:]...)
				}
				if got := r.snapshot(); !bytes.Equal(got, want) {
					t.Fatalf("size %d after %d bytes: snapshot = %q, want %q", size, len(all), got, want)
				}
			}
		}
	})

	t.Run("MarkerBeforeWholeCharacters", func(t *testing.T) {
		r := newRing(4)
		r.write([]byte("ab€cd")) // '€' is 3 bytes: the ring keeps its last 2 and "cd"
		if got, want := string(r.snapshot()), TruncationMarker+"cd"; got != want {
			t.Errorf("snapshot = %q, want %q", got, want)
		}
	})
}
