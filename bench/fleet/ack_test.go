package main

import (
	"testing"
	"time"
)

// TestAckQuantile checks the latency buckets: a latency lands in the
// first bucket whose bound holds it, and a quantile is that bucket's
// bound, within a bucket's width (19 %) above the true value.
func TestAckQuantile(t *testing.T) {
	var h [ackBuckets]int64
	for _, d := range []time.Duration{time.Microsecond, 100 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 50 * time.Millisecond,
		ackBound(7), ackBound(7) + 1, ackBound(ackBuckets - 2)} {
		b := ackBucket(d)
		if d > ackBound(b) || (b > 0 && d <= ackBound(b-1)) {
			t.Errorf("%s in bucket %d (%s, %s]", d, b, ackBound(b-1), ackBound(b))
		}
	}
	for range 98 {
		h[ackBucket(time.Millisecond)]++
	}
	h[ackBucket(50*time.Millisecond)] += 2
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, time.Millisecond}, {0.98, time.Millisecond}, {0.99, 50 * time.Millisecond}, {1, 50 * time.Millisecond}} {
		got := ackQuantile(h, tc.q)
		if got < tc.want || float64(got) > 1.19*float64(tc.want) {
			t.Errorf("quantile %v = %s, want %s to 19 %% above", tc.q, got, tc.want)
		}
	}
	if got := ackQuantile([ackBuckets]int64{}, 0.99); got != 0 {
		t.Errorf("quantile of no acks = %s, want 0", got)
	}
	if b := ackBucket(time.Hour); b != ackBuckets-1 {
		t.Errorf("an hour lands in bucket %d, want the last", b)
	}
}
