package jqmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// maxEntryBytes bounds the live heap one queued job costs the manager. It
// measured 265-275 bytes (the entry 160, its id 48, its slots in the id map
// and its owner's queue the rest), 829 before entries were made compact;
// the bound leaves half as much again for the map's growth steps and the
// runtime's rounding.
const maxEntryBytes = 400

// TestQueuedEntryHeap: a backlog costs the manager a few hundred bytes of
// live heap per queued job, whatever the size of the job's arguments,
// which the Store holds and the queue must not. Not parallel: it measures
// the whole process's heap, which other tests would grow meanwhile.
func TestQueuedEntryHeap(t *testing.T) {
	const n = 20000
	cfg := config()
	cfg.MaxPendingPerUser = n
	r := newRig(t, cfg, "backlog")
	// Arguments larger than an entry, so that keeping them would break
	// the bound, yet small, so that the Store writes them quickly.
	pad := strings.Repeat("x", 256)
	before := liveHeap(t)
	submitted := make(chan int)
	var wg sync.WaitGroup
	// Enough submitters for full batches (faas.MaxBatch) two at a time:
	// the Store writes 20,000 jobs in seconds even under the race
	// detector.
	for range 2 * faas.MaxBatch {
		wg.Go(func() {
			for i := range submitted {
				// Strings of their own for every job, as a request
				// decoded from the bus has them.
				_, err := r.m.Submit(context.Background(), faas.Job{
					ID:       uuid.NewString(),
					Owner:    strings.Clone("backlog"),
					Function: strings.Clone("f"),
					Args:     json.RawMessage(fmt.Sprintf("[%d,%q]", i, pad)),
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		submitted <- i
	}
	close(submitted)
	wg.Wait()
	perEntry := (int64(liveHeap(t)) - int64(before)) / n
	t.Logf("%d bytes of live heap per queued job", perEntry)
	st, err := r.m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, n, st.Queued)
	require.LessOrEqual(t, perEntry, int64(maxEntryBytes), "a queued job costs more live heap than it should")
}

// liveHeap is the bytes of the heap objects still reachable after a full
// collection.
func liveHeap(t testing.TB) uint64 {
	t.Helper()
	// The second collection frees what the first one's finalizers and
	// sweep left.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
