// Package queue is an unbounded queue in front of a channel: the runner's
// parts (pods, the automations executor, environments) report changes
// without ever waiting for the daemon to read them, which it cannot while
// its stream to the control plane is down.
package queue

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Queue delivers what is pushed, in order, on Out.
type Queue[T any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []T
	closed bool
	abort  chan struct{}
	done   chan struct{}
	out    chan T
}

// New returns a running queue.
func New[T any]() *Queue[T] {
	q := &Queue[T]{out: make(chan T), abort: make(chan struct{}), done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.deliver()
	return q
}

// Out delivers the pushed items; it is closed after Close once everything
// was delivered.
func (q *Queue[T]) Out() <-chan T { return q.out }

// Push adds v; after Close it is dropped.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.items = append(q.items, v)
	q.cond.Signal()
}

func (q *Queue[T]) deliver() {
	defer close(q.done)
	defer close(q.out)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		v := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- v:
		case <-q.abort:
			return
		}
	}
}

// Stopped reports whether the queue no longer delivers: after Close once
// everything was delivered, or after Drain gave up. Health checks use it to
// tell a live event loop from one that ended.
func (q *Queue[T]) Stopped() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

// Close lets the queue deliver what it holds, then close Out.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Signal()
	q.mu.Unlock()
}

// Drain waits until the queue delivered everything after Close. What is
// still unread grace after ctx ends is dropped (items that come after a
// SIGKILL which ctx's end may have triggered still get their chance).
func (q *Queue[T]) Drain(ctx context.Context, grace time.Duration) error {
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-q.done:
		return nil
	case <-t.C:
		close(q.abort)
		<-q.done
		return fmt.Errorf("not everything was delivered: %w", ctx.Err())
	}
}
