package batch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/batch"
)

// TestCoalescerBatchesWaitingCallers holds the first flush until the other
// callers are queued behind it, and checks that they then go in batches
// of at most max, each caller answered with its own item's result.
func TestCoalescerBatchesWaitingCallers(t *testing.T) {
	t.Parallel()
	const callers, max = 20, 8
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := true
	c := batch.New(max, func(ctx context.Context, items []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(items))
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release
		}
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]int, callers)
	errs := make([]error, callers)
	wg.Go(func() { results[0], errs[0] = c.Do(ctx, 0) })
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 }, 5*time.Second, time.Millisecond)
	for i := 1; i < callers; i++ {
		wg.Go(func() { results[i], errs[i] = c.Do(ctx, i) })
	}
	// Let the others queue behind the held flush before releasing it.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.Equal(t, i*10, results[i], "caller %d got another's answer", i)
	}
	require.Equal(t, []int{1, max, max, callers - 1 - 2*max}, sizes, "batch sizes")
}

// TestCoalescerErrorFailsItsBatchOnly checks that a failed flush fails
// the callers of that batch, and that later callers are served.
func TestCoalescerErrorFailsItsBatchOnly(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	calls := 0
	c := batch.New(4, func(ctx context.Context, items []string) ([]string, error) {
		calls++
		if calls == 1 {
			return nil, boom
		}
		if calls == 2 {
			return items[:0], nil // a callee that answers too few
		}
		return items, nil
	})
	ctx := context.Background()
	_, err := c.Do(ctx, "a")
	require.ErrorIs(t, err, boom)
	_, err = c.Do(ctx, "b")
	require.ErrorContains(t, err, "answered with 0 results")
	got, err := c.Do(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, "c", got)
}

// TestCoalescerLeaderContextEnded checks that the leader's ended context
// does not reach the flush, which others' items ride in.
func TestCoalescerLeaderContextEnded(t *testing.T) {
	t.Parallel()
	c := batch.New(4, func(ctx context.Context, items []int) ([]int, error) {
		return items, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := c.Do(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, 7, got)
}

// TestCoalescerDoAll sends more items than one batch holds from several
// callers at once, while the first flush is held: every item is answered
// with its own result, in batches of at most max.
func TestCoalescerDoAll(t *testing.T) {
	t.Parallel()
	const callers, each, max = 4, 5, 3
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	total := 0
	c := batch.New(max, func(ctx context.Context, items []int) ([]int, error) {
		once.Do(func() { <-release })
		mu.Lock()
		total += len(items)
		mu.Unlock()
		if len(items) > max {
			return nil, errors.New("batch too big")
		}
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = -v
		}
		return out, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for k := range callers {
		wg.Go(func() {
			items := make([]int, each)
			for i := range items {
				items[i] = k*100 + i
			}
			res, errs := c.DoAll(ctx, items)
			for i := range items {
				assert.NoError(t, errs[i])
				assert.Equal(t, -items[i], res[i])
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	require.Equal(t, callers*each, total)
}

// TestCoalescerBytes checks that batches stop at the byte bound, and that
// an item bigger than the bound still goes, alone.
func TestCoalescerBytes(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var batches [][]int
	c := batch.New(64, func(ctx context.Context, items []int) ([]int, error) {
		mu.Lock()
		batches = append(batches, items)
		mu.Unlock()
		once.Do(func() { <-release })
		return items, nil
	}).Bytes(10, func(v int) int { return v })
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { c.Do(ctx, 1) })
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() {
		res, errs := c.DoAll(ctx, []int{4, 4, 4, 20, 3})
		assert.Equal(t, []int{4, 4, 4, 20, 3}, res)
		assert.Equal(t, make([]error, 5), errs)
	})
	time.Sleep(50 * time.Millisecond) // the second caller's items queue up
	close(release)
	wg.Wait()
	require.Equal(t, [][]int{{1}, {4, 4}, {4}, {20}, {3}}, batches)
}

// TestCoalescerDoAllOfNothing: no items, no flush and no answers.
func TestCoalescerDoAllOfNothing(t *testing.T) {
	t.Parallel()
	flushes := 0
	c := batch.New(3, func(ctx context.Context, items []int) ([]int, error) {
		flushes++
		return items, nil
	})
	res, errs := c.DoAll(context.Background(), nil)
	require.Empty(t, res)
	require.Empty(t, errs)
	require.Zero(t, flushes)
	got, err := c.Do(context.Background(), 7)
	require.NoError(t, err)
	require.Equal(t, 7, got, "the coalescer still works afterwards")
}
