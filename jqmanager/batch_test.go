package jqmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/proxies/faas"
)

// countingCreates is the real store, counting the CreateJobs batches and
// holding the first until released, so that submissions pile up.
type countingCreates struct {
	*sqlite.Store
	batches, rows atomic.Int64
	// overweight counts the batches of several rows over MaxBatchBytes.
	overweight atomic.Int64
	hold       chan struct{}
	once       sync.Once
}

func (s *countingCreates) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	s.batches.Add(1)
	s.rows.Add(int64(len(js)))
	bytes := 0
	for _, j := range js {
		bytes += len(j.Args)
	}
	if len(js) > 1 && bytes > faas.MaxBatchBytes {
		s.overweight.Add(1)
	}
	s.once.Do(func() { <-s.hold })
	return s.Store.CreateJobs(ctx, js)
}

// TestSubmissionsAreCoalesced submits concurrently while the Store is
// busy: the submissions reach it in fewer batches than jobs, none carrying
// more than MaxBatchBytes of arguments unless alone (a bigger message
// would be refused by the bus), every job is durable when its caller
// hears so, and a submission that cannot be stored fails alone.
func TestSubmissionsAreCoalesced(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	store := &countingCreates{Store: r.store, hold: make(chan struct{})}
	m, _, _ := runOver(t, store)

	const n = 20
	type submitted struct {
		job faas.Job
		err error
	}
	results := make(chan submitted, n)
	for i := range n {
		function := "f"
		if i == n/2 {
			function = "missing"
		}
		var args json.RawMessage
		if i%4 == 0 {
			args = json.RawMessage(`"` + strings.Repeat("a", 2<<20) + `"`)
		}
		go func() {
			j, err := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: function, Args: args})
			results <- submitted{j, err}
		}()
	}
	require.Eventually(t, func() bool { return store.batches.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // the rest queue behind the held batch
	close(store.hold)
	failed := 0
	for range n {
		s := <-results
		if s.err != nil {
			require.Equal(t, faas.NotFound, faas.ErrorCode(s.err), "err %v", s.err)
			failed++
			continue
		}
		stored, err := r.store.Job(r.ctx, s.job.ID)
		require.NoError(t, err, "a job was acknowledged before it was durable")
		require.Equal(t, faas.Queued, stored.State)
	}
	require.Equal(t, 1, failed, "one bad submission failed, alone")
	require.EqualValues(t, n, store.rows.Load())
	require.Less(t, store.batches.Load(), int64(n/2), "submissions were not coalesced")
	require.Zero(t, store.overweight.Load(), "a batch carried more than MaxBatchBytes")
	st, err := m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, n-1, st.Queued)
}

// countingStarts is the real store, counting the StartJobs batches and
// holding the first until released, so that other workers' leases pile up.
type countingStarts struct {
	*sqlite.Store
	batches, rows atomic.Int64
	hold          chan struct{}
	once          sync.Once
}

func (s *countingStarts) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	s.batches.Add(1)
	s.rows.Add(int64(len(starts)))
	s.once.Do(func() { <-s.hold })
	return s.Store.StartJobs(ctx, starts)
}

// TestLeasesAreCoalesced has several workers poll while the Store is
// busy leasing: their leases reach it in fewer batches than workers, and
// each job is leased, in the Store, to the worker that got it.
func TestLeasesAreCoalesced(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	store := &countingStarts{Store: r.store, hold: make(chan struct{})}
	m, _, _ := runOver(t, store)

	const n = 10
	for range n {
		_, err := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f"})
		require.NoError(t, err)
	}
	type polled struct {
		worker string
		jobs   []faas.Job
		err    error
	}
	results := make(chan polled, n)
	for i := range n {
		worker := "w" + strings.Repeat("x", i)
		go func() {
			js, err := m.Next(r.ctx, worker, 1, time.Second)
			results <- polled{worker, js, err}
		}()
	}
	require.Eventually(t, func() bool { return store.batches.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // the other polls queue behind the held batch
	close(store.hold)
	leased := 0
	for range n {
		p := <-results
		require.NoError(t, p.err)
		for _, j := range p.jobs {
			stored, err := r.store.Job(r.ctx, j.ID)
			require.NoError(t, err)
			require.Equal(t, faas.Running, stored.State)
			require.Equal(t, p.worker, stored.Worker, "job %s leased to another worker", j.ID)
			leased++
		}
	}
	require.Equal(t, n, leased)
	require.EqualValues(t, n, store.rows.Load())
	require.LessOrEqual(t, store.batches.Load(), int64(2), "leases of waiting polls were not coalesced")
}

// TestPublishIsOneBatch: a publish's jobs reach the Store together, one
// batch for all subscribers, rather than one after another.
func TestPublishIsOneBatch(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	const subscribers = 6
	for i := range subscribers {
		name := fmt.Sprintf("g%d", i)
		_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ann", Name: name, Source: "x => x", Timeout: time.Second})
		require.NoError(t, err)
		_, err = r.store.Subscribe(r.ctx, faas.Subscription{Owner: "ann", Function: name, Topic: "news"})
		require.NoError(t, err)
	}
	store := &countingCreates{Store: r.store, hold: make(chan struct{})}
	close(store.hold)
	m, _, _ := runOver(t, store)

	ids, err := m.Publish(r.ctx, "ann", "news", json.RawMessage(`{"n":1}`), "key-1")
	require.NoError(t, err)
	require.Len(t, ids, subscribers)
	require.EqualValues(t, 1, store.batches.Load(), "the subscribers' jobs went in %d batches", store.batches.Load())
	require.EqualValues(t, subscribers, store.rows.Load())
	st, err := m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, subscribers, st.Queued)
}
