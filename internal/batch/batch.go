// Package batch coalesces concurrent calls into batches: callers that
// arrive while a batch is being written wait and go together in the next
// one, so that under load one round trip carries many rows, and a caller
// that comes alone goes at once, waiting for no company.
package batch

import (
	"context"
	"fmt"
	"sync"
)

// Coalescer turns concurrent Do calls into calls of flush with up to max
// items each, one flush at a time. There is no goroutine to start or
// stop: the first caller to find the coalescer idle runs the flush for
// everyone waiting, and hands the next batch to the first of the callers
// that arrived meanwhile, so no caller runs more than one flush.
type Coalescer[T, R any] struct {
	max   int
	flush func(ctx context.Context, items []T) ([]R, error)

	mu      sync.Mutex
	pending []*call[T, R]
	busy    bool
}

type call[T, R any] struct {
	item T
	res  R
	err  error
	// done is closed when res and err are set, or when lead is: then
	// this caller flushes the next batch.
	done chan struct{}
	lead bool
}

// New returns a Coalescer that flushes at most max items at once. flush
// answers one R per item, in order; its error fails every item of the
// batch.
func New[T, R any](max int, flush func(ctx context.Context, items []T) ([]R, error)) *Coalescer[T, R] {
	return &Coalescer[T, R]{max: max, flush: flush}
}

// Do adds item to the next batch and returns its answer. Once added, the
// item is flushed even if ctx ends, and Do waits for its answer: the
// flush is bounded by the callee's own timeouts, and the caller must not
// mistake a written row for a lost one. The flush a caller leads runs
// under its context, without its cancellation, so that one caller
// leaving does not fail the others.
func (c *Coalescer[T, R]) Do(ctx context.Context, item T) (R, error) {
	me := &call[T, R]{item: item, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	leading := !c.busy
	c.busy = true
	c.mu.Unlock()
	if !leading {
		<-me.done
		leading = me.lead // written before done was closed
	}
	if leading {
		c.lead(context.WithoutCancel(ctx))
	}
	return me.res, me.err
}

// lead flushes the oldest pending items, the leader's among them (it is
// the first), answers them, and passes the lead to the first caller
// still pending, if any.
func (c *Coalescer[T, R]) lead(ctx context.Context) {
	c.mu.Lock()
	n := min(len(c.pending), c.max)
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	c.mu.Unlock()

	items := make([]T, n)
	for i, cl := range batch {
		items[i] = cl.item
	}
	res, err := c.flush(ctx, items)
	if err == nil && len(res) != n {
		err = fmt.Errorf("batch of %d items answered with %d results", n, len(res))
	}
	for i, cl := range batch {
		if err != nil {
			cl.err = err
		} else {
			cl.res = res[i]
		}
	}

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		next.lead = true
		close(next.done)
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	for _, cl := range batch[1:] {
		close(cl.done)
	}
}
