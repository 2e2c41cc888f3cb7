package jqmanager

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestRingPages(t *testing.T) {
	t.Parallel()
	start := time.Unix(0, 1000)
	full := func() *ring {
		r := newRing(4, start)
		for i := range 6 {
			r.add(faas.Event{Kind: faas.JobFinished, JobID: string(rune('a' + i))})
		}
		return r // holds c, d, e, f: 1003..1006
	}
	ids := func(p faas.Events) (out string) {
		for _, ev := range p.List {
			out += ev.JobID
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		since uint64
		gap   bool
		ids   string
		next  uint64
	}{
		{"first call", 0, true, "", 1006},
		{"oldest held and on", 1002, false, "cdef", 1006},
		{"up to date", 1006, false, "", 1006},
		{"one behind", 1005, false, "f", 1006},
		{"fell behind the ring", 1001, true, "", 1006},
		{"cursor of an earlier run", 900, true, "", 1006},
		{"cursor from the future", 2000, true, "", 1006},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := full().after(tc.since)
			require.Equal(t, tc.gap, p.Gap)
			require.Equal(t, tc.ids, ids(p))
			require.Equal(t, tc.next, p.Next)
			for _, ev := range p.List {
				require.Greater(t, ev.Seq, tc.since)
			}
		})
	}

	// A fresh ring: the cursor it hands out reads no gap.
	r := newRing(4, start)
	first := r.after(0)
	require.True(t, first.Gap)
	require.False(t, r.after(first.Next).Gap)
}

// bareManager is a Manager with no socket and no store, for the logic
// that needs neither.
func bareManager() *Manager {
	return &Manager{
		cfg:     Config{LeaseTimeout: time.Second, MaxAttempts: 1, MaxPendingPerUser: 10},
		log:     slog.New(slog.DiscardHandler),
		jobs:    make(map[string]*entry),
		queue:   newFairQueue(0),
		pending: make(map[string]int),
		workers: make(map[string]time.Time),
		waiters: make(map[*entry][]chan struct{}),
		events:  newRing(8, time.Now()),
	}
}

// TestTimedOutWaiterLeaves: waits that end without the job finishing
// leave nothing behind on the job.
func TestTimedOutWaiterLeaves(t *testing.T) {
	t.Parallel()
	m := bareManager()
	m.mu.Lock()
	e := newEntry(faas.Job{ID: "j", Owner: "ann"})
	m.add(e)
	m.enqueue(e)
	m.mu.Unlock()
	for range 20 {
		_, finished, err := m.Wait(context.Background(), "j", time.Millisecond)
		require.NoError(t, err)
		require.False(t, finished)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := m.Wait(ctx, "j", time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Empty(t, m.waiters)
}
