package jqproxy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// scriptedQueue answers Wait with pending until finish is set, and
// Events from a list of pages, then holds until the context ends. Only
// for the pure logic of waits; the platform tests use the real queue.
type scriptedQueue struct {
	faas.JobQueue
	waits  atomic.Int64
	finish atomic.Pointer[faas.Job]
	pages  chan faas.Events
	// asks counts the calls of Events.
	asks atomic.Int64
}

func (q *scriptedQueue) Wait(ctx context.Context, id string, wait time.Duration) (faas.Job, bool, error) {
	q.waits.Add(1)
	if j := q.finish.Load(); j != nil {
		return *j, true, nil
	}
	return faas.Job{}, false, nil
}

func (q *scriptedQueue) Events(ctx context.Context, since uint64, hold time.Duration) (faas.Events, error) {
	q.asks.Add(1)
	select {
	case p := <-q.pages:
		return p, nil
	case <-ctx.Done():
		return faas.Events{}, ctx.Err()
	}
}

// revocations records what the Watch told of deleted users.
type revocations struct {
	mu    sync.Mutex
	users []string
}

func (r *revocations) add(u string) { r.mu.Lock(); r.users = append(r.users, u); r.mu.Unlock() }
func (r *revocations) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.users...)
}

func newTestWatch(q faas.JobQueue, rev *revocations) *Watch {
	return NewWatch(q, time.Second, rev.add, slog.New(slog.DiscardHandler))
}

// runWatch runs w's loop until the test ends, and returns the loop's
// context, which ends first.
func runWatch(t *testing.T, w *Watch) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	var loop sync.WaitGroup
	loop.Go(func() { w.Run(ctx) })
	t.Cleanup(func() { cancel(); loop.Wait() })
	return ctx
}

// TestWaitLeavesNothingBehind: waits that time out or are cancelled
// unregister, so a job that never ends does not collect them.
func TestWaitLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	w := newTestWatch(&scriptedQueue{}, &revocations{})
	for range 10 {
		_, finished, err := w.Wait(context.Background(), "j", time.Millisecond)
		require.NoError(t, err)
		require.False(t, finished)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := w.Wait(ctx, "j", time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, w.Waiting("j"))
	require.Empty(t, w.byJob)
}

// TestWatchLoop: events reach the waits for their job and the users
// revoked; after a gap, every job waited on is asked about again and
// the revocations cover every user.
func TestWatchLoop(t *testing.T) {
	t.Parallel()
	q := &scriptedQueue{pages: make(chan faas.Events, 4)}
	rev := &revocations{}
	w := newTestWatch(q, rev)
	ctx := runWatch(t, w)

	type waited struct {
		job      faas.Job
		finished bool
		err      error
	}
	waitFor := func(id string) <-chan waited {
		out := make(chan waited, 1)
		go func() {
			j, finished, err := w.Wait(ctx, id, 30*time.Second)
			out <- waited{j, finished, err}
		}()
		require.Eventually(t, func() bool { return w.Waiting(id) == 1 }, 5*time.Second, time.Millisecond)
		return out
	}

	// An event with the outcome, and one without (the Store has it).
	a, b := waitFor("a"), waitFor("b")
	q.pages <- faas.Events{Next: 3, List: []faas.Event{
		{Seq: 2, Kind: faas.JobFinished, JobID: "a", Job: &faas.Job{ID: "a", State: faas.Succeeded}},
		{Seq: 3, Kind: faas.JobFinished, JobID: "b"},
		{Seq: 3, Kind: faas.UserRevoked, User: "eve"},
	}}
	got := <-a
	require.NoError(t, got.err)
	require.True(t, got.finished)
	require.Equal(t, faas.Succeeded, got.job.State)
	got = <-b
	require.NoError(t, got.err)
	require.True(t, got.finished)
	require.Zero(t, got.job, "no outcome: the caller reads the Store")
	require.Eventually(t, func() bool { return len(rev.list()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"eve"}, rev.list())

	// A job that finished in events this process missed.
	c := waitFor("c")
	checks := q.waits.Load()
	q.finish.Store(&faas.Job{ID: "c", State: faas.Failed})
	q.pages <- faas.Events{Next: 100, Gap: true}
	got = <-c
	require.NoError(t, got.err)
	require.True(t, got.finished)
	require.Equal(t, faas.Failed, got.job.State)
	require.Greater(t, q.waits.Load(), checks, "the gap was not followed by a recheck")
	require.Equal(t, []string{"eve", ""}, rev.list(), "after a gap any user may have been revoked")
}

// TestCaughtUp: the watch is caught up to when it asked for a page that
// was not full, and not before the queue first answered; a full page
// leaves it where it was, since more events may wait behind it.
func TestCaughtUp(t *testing.T) {
	t.Parallel()
	q := &scriptedQueue{pages: make(chan faas.Events, 1)}
	w := newTestWatch(q, &revocations{})
	ctx := runWatch(t, w)
	require.Eventually(t, func() bool { return q.asks.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.Zero(t, w.CaughtUp(), "caught up before the queue answered")

	before := time.Now()
	q.pages <- faas.Events{Gap: true, Next: 1}
	require.True(t, w.Reached(ctx, 1, 5*time.Second))
	first := w.CaughtUp()
	require.False(t, first.IsZero(), "a gap, which forgets everything, catches up")
	require.False(t, first.After(before), "caught up to after the question was asked")

	full := faas.Events{Next: 1 + faas.MaxEventsPage, List: make([]faas.Event, faas.MaxEventsPage)}
	q.pages <- full
	require.True(t, w.Reached(ctx, full.Next, 5*time.Second))
	require.Equal(t, first, w.CaughtUp(), "a full page may leave events behind")

	q.pages <- faas.Events{Next: full.Next + 1, List: []faas.Event{{Kind: faas.JobFinished, JobID: "j"}}}
	require.True(t, w.Reached(ctx, full.Next+1, 5*time.Second))
	require.True(t, w.CaughtUp().After(first), "a page that is not full catches up")
}

// TestFollow: a follower gets the lines of its job only, is told it
// missed lines when it falls behind, when a batch came without lines and
// after a gap, gets the job's end, and leaves nothing behind.
func TestFollow(t *testing.T) {
	t.Parallel()
	q := &scriptedQueue{pages: make(chan faas.Events, followBuffer+8)}
	w := newTestWatch(q, &revocations{})
	f, stop := w.Follow("j")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	batch := func(job string, off int) faas.Event {
		return faas.Event{Kind: faas.JobLogs, JobID: job, Lines: []faas.LogLine{{Offset: off, Stream: "log", Line: "x"}}}
	}
	q.pages <- faas.Events{List: []faas.Event{batch("other", 0), batch("j", 0)}, Next: 2}
	require.Equal(t, 0, (<-f.Lines)[0].Offset)
	missed := func() {
		t.Helper()
		select {
		case <-f.Missed:
		case <-time.After(5 * time.Second):
			require.FailNow(t, "the follower was not told it missed lines")
		}
	}
	q.pages <- faas.Events{List: []faas.Event{{Kind: faas.JobLogs, JobID: "j"}}, Next: 3}
	missed()
	q.pages <- faas.Events{Gap: true, Next: 4}
	missed()
	// Behind by more than the buffer: the rest is missed, not waited for.
	for i := range followBuffer + 1 {
		q.pages <- faas.Events{List: []faas.Event{batch("j", i+1)}, Next: uint64(5 + i)}
	}
	missed()
	require.Len(t, f.Lines, followBuffer)
	q.pages <- faas.Events{List: []faas.Event{{Kind: faas.JobFinished, JobID: "j", Job: &faas.Job{ID: "j", State: faas.Succeeded}}}, Next: 100}
	select {
	case j := <-f.Done:
		require.Equal(t, faas.Succeeded, j.State)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the follower did not hear the job end")
	}
	stop()
	require.Empty(t, w.byJob)
}

// TestReached: a caller told a sequence number waits until the watch has
// followed the events that far and its observer has seen them, or gives
// up after its wait.
func TestReached(t *testing.T) {
	t.Parallel()
	q := &scriptedQueue{pages: make(chan faas.Events, 4)}
	w := newTestWatch(q, &revocations{})
	var observed atomic.Int64
	w.Observe(func(ev *faas.Event) {
		if ev != nil {
			observed.Store(int64(ev.Seq))
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); w.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	require.False(t, w.Reached(ctx, 5, 10*time.Millisecond), "reached events not yet followed")
	reached := make(chan bool, 1)
	go func() { reached <- w.Reached(ctx, 5, 10*time.Second) }()
	q.pages <- faas.Events{Next: 4, List: []faas.Event{{Seq: 4, Kind: faas.JobDeleted, JobID: "a"}}}
	q.pages <- faas.Events{Next: 5, List: []faas.Event{{Seq: 5, Kind: faas.JobDeleted, JobID: "b"}}}
	require.True(t, <-reached)
	require.Equal(t, int64(5), observed.Load(), "reached before the observer saw the events")
	require.True(t, w.Reached(ctx, 3, 0), "an earlier point is reached at once")
}

// TestExpectedWait: a wait registered before its job is submitted hears
// the job's finish without asking the queue about it; after a gap in the
// events, the recheck leaves it alone (the queue would not know the job
// yet) and its Wait asks the queue instead.
func TestExpectedWait(t *testing.T) {
	t.Parallel()
	q := &scriptedQueue{pages: make(chan faas.Events, 4)}
	w := newTestWatch(q, &revocations{})
	ctx := runWatch(t, w)

	a := w.Expect("a")
	defer a.Cancel()
	require.Equal(t, 1, w.Waiting("a"))
	q.pages <- faas.Events{Next: 2, List: []faas.Event{
		{Seq: 2, Kind: faas.JobFinished, JobID: "a", Job: &faas.Job{ID: "a", State: faas.Succeeded}},
	}}
	j, finished, err := a.Wait(ctx, 30*time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	require.Equal(t, faas.Succeeded, j.State)
	require.Zero(t, q.waits.Load(), "the queue was asked about a job waited for from before it existed")
	a.Cancel()
	require.Zero(t, w.Waiting("a"))

	b := w.Expect("b")
	defer b.Cancel()
	q.pages <- faas.Events{Next: 100, Gap: true}
	require.True(t, w.Reached(ctx, 100, 5*time.Second))
	require.Zero(t, q.waits.Load(), "the recheck asked about a job not submitted yet")
	q.finish.Store(&faas.Job{ID: "b", State: faas.Failed})
	j, finished, err = b.Wait(ctx, 30*time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	require.Equal(t, faas.Failed, j.State)
	require.EqualValues(t, 1, q.waits.Load(), "after the gap the wait asks the queue")
}
