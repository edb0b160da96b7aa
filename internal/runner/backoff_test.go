package runner

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max time.Duration
	}{
		{"default", 500 * time.Millisecond, 30 * time.Second},
		// Capped at a short renewal interval: a runner must retry within it.
		{"short renewal interval", 500 * time.Millisecond, 500 * time.Millisecond},
		{"interval below min", 500 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{min: tc.min, max: tc.max}
			var last time.Duration
			for i := range 40 {
				w := b.next()
				if w > tc.max {
					t.Fatalf("attempt %d waits %v, above max %v", i, w, tc.max)
				}
				if w < min(tc.min, tc.max)/2 {
					t.Fatalf("attempt %d waits %v, below half of the first step", i, w)
				}
				last = w
			}
			if last < tc.max/2 {
				t.Fatalf("after 40 attempts the wait is %v, want it grown to at least %v", last, tc.max/2)
			}
			b.reset()
			if w := b.next(); w > min(tc.min, tc.max) {
				t.Fatalf("after reset the wait is %v, want at most %v", w, min(tc.min, tc.max))
			}
		})
	}
}
