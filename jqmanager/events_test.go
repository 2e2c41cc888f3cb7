package jqmanager_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire/wiretest"
)

// TestManyWaitsOverTheWire: waits through jqproxy hold no socket each:
// 1,000 callers waiting at once through one client leave the sockets
// open nearly unchanged, and all hear of the job finishing, with its
// outcome. It counts the process's sockets, so it runs before the
// parallel tests, which open and close theirs meanwhile.
func TestManyWaitsOverTheWire(t *testing.T) {
	const waiters = 1000
	cfg := config()
	// Long enough for the test, so the worker needs no heartbeats.
	cfg.LeaseTimeout = time.Minute
	r := newRig(t, cfg, "ann")
	c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()
	j := r.submit("ann")
	got, ok := r.next("w", time.Second)
	require.True(t, ok)

	before := wiretest.OpenSockets(t)
	type waited struct {
		job      faas.Job
		finished bool
		err      error
	}
	results := make(chan waited, waiters)
	for range waiters {
		go func() {
			j, finished, err := c.Wait(r.ctx, j.ID, 30*time.Second)
			results <- waited{j, finished, err}
		}()
	}
	// Every caller waits once its probe is answered. Sample meanwhile,
	// and check that other calls through the same client get through:
	// the waits hold none of its sockets.
	most, last := before, before
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		last = wiretest.OpenSockets(t)
		most = max(most, last)
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		_, err := c.Stats(ctx)
		cancel()
		require.NoError(t, err, "the waits crowd out other calls")
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(t, results, "a wait ended before the job did")
	require.NoError(t, r.complete(got))
	for range waiters {
		w := <-results
		require.NoError(t, w.err)
		require.True(t, w.finished)
		// A probe answered only after the job left the queue (a loaded
		// machine may take the 3 s above and more for 1,000 of them) has
		// no outcome to hand over, and says so with an empty job: the
		// caller reads the Store then (faas.JobQueue.Wait).
		if w.job.ID != "" {
			require.Equal(t, faas.Succeeded, w.job.State)
		}
	}
	t.Logf("%d waits: %d sockets open before, at most %d while they began, %d while they waited", waiters, before, most, last)
	// Once the probes are answered, only the watch's socket and the
	// client's idle ones (64 at most) are left.
	require.Less(t, last-before, 70, "sockets held by the waits")
}
