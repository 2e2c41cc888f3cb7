package jqmanager_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/jqmanager"
	"faas/jqmanager/queuetest"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
)

// faultyStore is the real store with a fault put in one call: pending
// blocks PendingJobs until it is closed (nil: no block) and pendingErr
// fails it; pageLimit, if set, lowers the limit of its pages, and
// pageFails fails that many of its pages after the first as
// unavailable; startFails fails that many StartJobs calls as unavailable.
type faultyStore struct {
	*sqlite.Store
	pending    chan struct{}
	pendingErr error
	pageLimit  int
	pageFails  atomic.Int64
	startFails atomic.Int64
}

func (s *faultyStore) PendingJobs(ctx context.Context, after string, limit int) (faas.PendingPage, error) {
	if s.pending != nil {
		select {
		case <-s.pending:
		case <-ctx.Done():
			return faas.PendingPage{}, ctx.Err()
		}
	}
	if s.pendingErr != nil {
		return faas.PendingPage{}, s.pendingErr
	}
	if after != "" && s.pageFails.Add(-1) >= 0 {
		return faas.PendingPage{}, faas.Errorf(faas.Unavailable, "store down for a moment")
	}
	if s.pageLimit > 0 {
		limit = min(limit, s.pageLimit)
	}
	return s.Store.PendingJobs(ctx, after, limit)
}

func (s *faultyStore) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	if s.startFails.Add(-1) >= 0 {
		return nil, faas.Errorf(faas.Unavailable, "store down for a moment")
	}
	return s.Store.StartJobs(ctx, starts)
}

// runOver starts a Manager over store and returns it with a channel
// closed when Run returns, and Run's error then; Run is stopped at
// cleanup.
func runOver(t *testing.T, store faas.Store) (m *jqmanager.Manager, exited <-chan struct{}, runErr *error) {
	t.Helper()
	m, err := jqmanager.New(config(), store, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	runErr = new(error)
	go func() { defer close(done); *runErr = m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return m, done, runErr
}

// TestServesOnlyAfterRebuild: while the queue is being rebuilt from the
// Store, requests get no answer; the first answer already counts the
// jobs the Store held.
func TestServesOnlyAfterRebuild(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.submit("ann")
	r.stop()
	store := &faultyStore{Store: r.store, pending: make(chan struct{})}
	m, _, _ := runOver(t, store)
	c, err := jqproxy.Dial(m.Endpoint(), 100*time.Millisecond, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithTimeout(r.ctx, 500*time.Millisecond)
	defer cancel()
	st, err := c.Stats(ctx)
	require.Error(t, err, "answered %+v before the queue was rebuilt", st)
	require.Equal(t, faas.Unavailable, faas.ErrorCode(err))

	close(store.pending)
	st, err = c.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Queued, "the first answer after the rebuild")
}

// TestRebuildPageByPage: the queue is rebuilt from pages of the Store's
// pending jobs, which follow the Store's order (one function's jobs,
// then the next one's), a page that fails is asked again, and the jobs
// queue in the order they were submitted.
func TestRebuildPageByPage(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ann", Name: "g", Source: "x => x", Timeout: time.Second})
	require.NoError(t, err)
	var want []string
	for i := range 5 {
		fn := []string{"f", "g"}[i%2]
		want = append(want, queuetest.Submit(t, r.ctx, r.m, "ann", fn).ID)
	}
	r.stop()
	store := &faultyStore{Store: r.store, pageLimit: 2}
	store.pageFails.Store(1)
	m, _, _ := runOver(t, store)
	var got []string
	for range want {
		j, ok, err := nextOne(m, r.ctx, "w", 5*time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		got = append(got, j.ID)
	}
	require.Equal(t, want, got)
	require.Negative(t, store.pageFails.Load(), "pages were asked after the one that failed")
}

// TestRebuildFailureStopsRun: a Store that answers the rebuild with an
// error other than unavailable stops Run with that error, instead of a
// queue that serves without its jobs and without reaping leases.
func TestRebuildFailureStopsRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	broken := errors.New("no such table: jobs")
	_, exited, err := runOver(t, &faultyStore{Store: r.store, pendingErr: broken})
	select {
	case <-exited:
		require.ErrorIs(t, *err, broken)
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept going after the rebuild failed")
	}
}

// TestBadConfigRefused: New checks a Config built in code as LoadConfig
// checks the environment; a zero lease timeout used to panic in the reaper.
func TestBadConfigRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*jqmanager.Config)
		want   string
	}{
		{"zero lease", func(c *jqmanager.Config) { c.LeaseTimeout = 0 }, "FAAS_LEASE_TIMEOUT=0s"},
		{"negative lease", func(c *jqmanager.Config) { c.LeaseTimeout = -time.Second }, "FAAS_LEASE_TIMEOUT=-1s"},
		{"zero request timeout", func(c *jqmanager.Config) { c.RequestTimeout = 0 }, "FAAS_REQUEST_TIMEOUT=0s"},
		{"zero attempts", func(c *jqmanager.Config) { c.MaxAttempts = 0 }, "FAAS_MAX_ATTEMPTS=0"},
		{"zero pending", func(c *jqmanager.Config) { c.MaxPendingPerUser = 0 }, "FAAS_MAX_PENDING_PER_USER=0"},
		{"negative ring", func(c *jqmanager.Config) { c.EventRing = -1 }, "FAAS_EVENT_RING=-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config()
			tc.change(&cfg)
			require.ErrorContains(t, cfg.Validate(), tc.want)
			m, err := jqmanager.New(cfg, nil, slog.New(slog.DiscardHandler))
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, m)
		})
	}
}

// TestStoreErrorWakesIdleWorker: a job put back because the Store failed
// to record its lease goes to another idle worker at once, not when that
// worker's poll ends.
func TestStoreErrorWakesIdleWorker(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	store := &faultyStore{Store: r.store}
	store.startFails.Store(1)
	m, _, _ := runOver(t, store)

	const poll = 20 * time.Second
	type polled struct {
		job  faas.Job
		err  error
		took time.Duration
	}
	results := make(chan polled, 2)
	for _, w := range []string{"w1", "w2"} {
		go func() {
			begin := time.Now()
			j, _, err := nextOne(m, r.ctx, w, poll)
			results <- polled{j, err, time.Since(begin)}
		}()
	}
	// Both workers idle before the job comes.
	require.Eventually(t, func() bool { st, _ := m.Stats(r.ctx); return st.Workers == 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	j, err := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f"})
	require.NoError(t, err)

	first, second := <-results, <-results
	if first.err == nil {
		first, second = second, first
	}
	require.Error(t, first.err, "the worker whose lease failed")
	require.NoError(t, second.err)
	require.Equal(t, j.ID, second.job.ID, "the other worker got the job")
	require.Less(t, second.took, poll/2, "the other worker slept through its poll")
}
