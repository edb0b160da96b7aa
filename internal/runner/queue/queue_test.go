package queue

import (
	"context"
	"testing"
	"time"
)

func TestQueue_OrderCloseAndDrain(t *testing.T) {
	q := New[int]()
	for i := range 100 {
		q.Push(i) // nobody reads yet: Push must not block
	}
	if q.Stopped() {
		t.Fatal("Stopped before Close")
	}
	q.Close()
	q.Push(100) // after Close: dropped
	var got []int
	for v := range q.Out() {
		got = append(got, v)
	}
	if len(got) != 100 {
		t.Fatalf("delivered %d items, want 100", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d is %d: out of order", i, v)
		}
	}
	if err := q.Drain(context.Background(), time.Second); err != nil {
		t.Fatalf("drain after delivery: %v", err)
	}
	if !q.Stopped() {
		t.Fatal("not Stopped after Close and Drain")
	}
}

func TestQueue_DrainGivesUpOnUnreadItems(t *testing.T) {
	q := New[string]()
	q.Push("unread")
	q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Drain(ctx, 10*time.Millisecond); err == nil {
		t.Fatal("drain with an unread item and an ended context succeeded")
	}
}
