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

// TestEventsOverTheWire: a watcher holding one long poll hears of a job
// finishing at once, with its outcome.
func TestEventsOverTheWire(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()

	first, err := c.Events(r.ctx, 0, time.Second)
	require.NoError(t, err)
	require.True(t, first.Gap, "a first call has nothing to go on")
	idle, err := c.Events(r.ctx, first.Next, 10*time.Millisecond)
	require.NoError(t, err)
	require.False(t, idle.Gap)
	require.Empty(t, idle.List)
	require.Equal(t, first.Next, idle.Next)

	j := r.submit("ann")
	got, ok := r.next("w", time.Second)
	require.True(t, ok)
	type page struct {
		ev   faas.Events
		err  error
		took time.Duration
	}
	polled := make(chan page, 1)
	go func() {
		begin := time.Now()
		ev, err := c.Events(r.ctx, first.Next, 20*time.Second)
		polled <- page{ev, err, time.Since(begin)}
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, r.complete(got))
	p := <-polled
	require.NoError(t, p.err)
	require.Less(t, p.took, 5*time.Second, "the long poll was not woken")
	require.Len(t, p.ev.List, 1)
	ev := p.ev.List[0]
	require.Equal(t, faas.JobFinished, ev.Kind)
	require.Equal(t, j.ID, ev.JobID)
	require.NotNil(t, ev.Job)
	require.Equal(t, faas.Succeeded, ev.Job.State)
	require.JSONEq(t, "1", string(ev.Job.Result))
	require.Empty(t, ev.Job.Logs, "events stay small")
	require.Equal(t, ev.Seq, p.ev.Next)

	_, err = c.Events(r.ctx, p.ev.Next, 2*jqproxy.MaxHold)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
}

// TestForgetUser: deleting a user stops their jobs, queued and running,
// leaves other users' alone, and tells the watchers; in-process and over
// the wire alike.
func TestForgetUser(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		start, err := q.Events(r.ctx, 0, 0)
		require.NoError(t, err)
		running := r.submit("eve")
		got, ok := r.next("w", time.Second)
		require.True(t, ok)
		require.Equal(t, running.ID, got.ID)
		queued := r.submit("eve")
		r.submit("bob")

		require.NoError(t, q.ForgetUser(r.ctx, "eve"))
		lost, err := r.m.Renew(r.ctx, "w", []faas.Lease{{ID: got.ID, Attempt: got.Attempt}})
		require.NoError(t, err)
		require.Len(t, lost, 1, "the running job's lease was not revoked")
		st, _ := r.m.Stats(r.ctx)
		require.Equal(t, 1, st.Queued, "only bob's job is left")
		require.Zero(t, st.Running)
		next, ok := r.next("w", 100*time.Millisecond)
		require.True(t, ok)
		require.NotEqual(t, queued.ID, next.ID)

		page, err := q.Events(r.ctx, start.Next, 0)
		require.NoError(t, err)
		var finished []string
		revoked := ""
		for _, ev := range page.List {
			switch ev.Kind {
			case faas.JobFinished:
				require.Nil(t, ev.Job, "a forgotten job has no outcome to hand over")
				finished = append(finished, ev.JobID)
			case faas.UserRevoked:
				revoked = ev.User
			}
		}
		require.ElementsMatch(t, []string{running.ID, queued.ID}, finished)
		require.Equal(t, "eve", revoked)
		require.Equal(t, faas.Invalid, faas.ErrorCode(q.ForgetUser(r.ctx, "")))
	}, "eve", "bob")
}

// TestRevokeTokens: a replaced token tells the watchers, and leaves the
// user's jobs alone; in-process and over the wire alike.
func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		start, err := q.Events(r.ctx, 0, 0)
		require.NoError(t, err)
		queued := r.submit("eve")

		require.NoError(t, q.RevokeTokens(r.ctx, "eve"))
		page, err := q.Events(r.ctx, start.Next, 0)
		require.NoError(t, err)
		require.Len(t, page.List, 1)
		require.Equal(t, faas.UserRevoked, page.List[0].Kind)
		require.Equal(t, "eve", page.List[0].User)
		next, ok := r.next("w", time.Second)
		require.True(t, ok, "the user's queued job stays")
		require.Equal(t, queued.ID, next.ID)
		require.Equal(t, faas.Invalid, faas.ErrorCode(q.RevokeTokens(r.ctx, "")))
	}, "eve")
}

// TestManyWaitsOverTheWire: waits through jqproxy hold no socket each:
// 1,000 callers waiting at once through one client leave the sockets
// open nearly unchanged, and all hear of the job finishing, with its
// outcome.
func TestManyWaitsOverTheWire(t *testing.T) {
	t.Parallel()
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
		require.Equal(t, faas.Succeeded, w.job.State)
	}
	t.Logf("%d waits: %d sockets open before, at most %d while they began, %d while they waited", waiters, before, most, last)
	// Once the probes are answered, only the watch's socket and the
	// client's idle ones (64 at most) are left.
	require.Less(t, last-before, 70, "sockets held by the waits")
}
