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

// Coalescer turns concurrent calls into calls of flush with up to max
// items each, one flush at a time. There is no goroutine to start or
// stop: the first caller to find the coalescer idle runs the flush for
// everyone waiting, and hands the next batch to the caller of the oldest
// item still pending, so a caller runs a flush only for a batch that
// holds one of its own items.
type Coalescer[T, R any] struct {
	max   int
	flush func(ctx context.Context, items []T) ([]R, error)
	// maxBytes bounds the sum of size over a batch's items, when size is
	// set; a single item bigger than that goes alone.
	maxBytes int
	size     func(T) int

	mu      sync.Mutex
	pending []*call[T, R]
	busy    bool
}

type call[T, R any] struct {
	item T
	res  R
	err  error
	// done is closed once res and err are set; lead is closed when this
	// item is the oldest pending and its caller is to flush the next
	// batch.
	done chan struct{}
	lead chan struct{}
}

// New returns a Coalescer that flushes at most max items at once. flush
// answers one R per item, in order; its error fails every item of the
// batch.
func New[T, R any](max int, flush func(ctx context.Context, items []T) ([]R, error)) *Coalescer[T, R] {
	return &Coalescer[T, R]{max: max, flush: flush}
}

// Bytes bounds a batch's items to maxBytes in all, as size measures them,
// so that a batch of big items stays within what one message may carry;
// an item bigger than that goes in a batch of its own. Call it before the
// first Do.
func (c *Coalescer[T, R]) Bytes(maxBytes int, size func(T) int) *Coalescer[T, R] {
	c.maxBytes, c.size = maxBytes, size
	return c
}

// Do adds item to the next batch and returns its answer; see DoAll.
func (c *Coalescer[T, R]) Do(ctx context.Context, item T) (R, error) {
	res, errs := c.DoAll(ctx, []T{item})
	return res[0], errs[0]
}

// DoAll adds items to the next batches, in order, and returns their
// answers: errs[i] is the error of the batch that held items[i]. Once
// added, the items are flushed even if ctx ends, and DoAll waits for
// their answers: the flush is bounded by the callee's own timeouts, and
// a caller must not mistake a written row for a lost one. The flush a
// caller leads runs under its context, without its cancellation, so
// that one caller leaving does not fail the others.
func (c *Coalescer[T, R]) DoAll(ctx context.Context, items []T) (res []R, errs []error) {
	if len(items) == 0 {
		return nil, nil // nothing to lead a flush with
	}
	calls := make([]*call[T, R], len(items))
	for i, item := range items {
		calls[i] = &call[T, R]{item: item, done: make(chan struct{}), lead: make(chan struct{})}
	}
	c.mu.Lock()
	c.pending = append(c.pending, calls...)
	leading := !c.busy
	c.busy = true
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	if leading {
		c.run(ctx)
	}
	res, errs = make([]R, len(items)), make([]error, len(items))
	for i, cl := range calls {
		select {
		case <-cl.done:
		case <-cl.lead:
			// The items before it are answered: pending is in order.
			c.run(ctx)
			<-cl.done
		}
		res[i], errs[i] = cl.res, cl.err
	}
	return res, errs
}

// run flushes the oldest pending items, answers them, and passes the lead
// to the caller of the oldest item still pending, if any.
func (c *Coalescer[T, R]) run(ctx context.Context) {
	c.mu.Lock()
	n := min(len(c.pending), c.max)
	if c.size != nil {
		bytes := c.size(c.pending[0].item)
		for i := 1; i < n; i++ {
			if bytes += c.size(c.pending[i].item); bytes > c.maxBytes {
				n = i
				break
			}
		}
	}
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
		close(cl.done)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		c.busy = false
		return
	}
	close(c.pending[0].lead)
}
