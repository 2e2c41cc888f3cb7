package jqproxy

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"faas/internal/backoff"
	"faas/proxies/faas"
)

// eventsHold is how long one call of the watch loop may wait for events.
// It is well below MaxHold; a shorter hold would only cost more empty
// round trips.
const eventsHold = 20 * time.Second

// watchRetry spaces out the watch loop's tries while the job queue does
// not answer: from 100ms to 5s at the least.
var watchRetry = backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second}

// Watch lets any number of callers wait for jobs without holding anything
// on the bus. One goroutine (Run) follows the job queue's events and hands
// each finished job to the callers waiting for it; a waiting caller holds
// only a channel. The same stream reports users deleted.
//
// A caller first registers, then asks the queue once, without waiting,
// whether the job is still pending: a job that finishes after that answer
// finishes after the registration too, so its event finds the caller.
// When the watch falls behind the queue's memory of events (a gap), it
// asks again about every job waited on.
type Watch struct {
	queue   faas.JobQueue
	timeout time.Duration
	revoked func(user string)
	log     *slog.Logger
	// observe is told of every event followed, and of nil after a gap.
	observe func(ev *faas.Event)
	// hold is how long one call for events may wait (HearEvery).
	hold time.Duration
	// caughtUp is when the watch last asked for events and then followed
	// all of them up to that moment, as nanoseconds since base (0: never).
	// Nanoseconds since a time.Time keep the monotonic clock and need no
	// lock on the frontend's hot path.
	base     time.Time
	caughtUp atomic.Int64

	mu    sync.Mutex
	byJob map[string][]*waiter
	// seen is the sequence number of the last event followed, and
	// advanced is closed and replaced whenever it grows (Reached).
	seen     uint64
	advanced chan struct{}
	// gaps counts the gaps in the events followed (Expected.Wait).
	gaps uint64
}

// waiter is one caller waiting for a job. done receives the job's
// outcome, or nil when the queue had none to give (the caller reads the
// Store). A follower (Follow) also has lines and missed.
type waiter struct {
	done   chan *faas.Job
	lines  chan []faas.LogLine
	missed chan struct{}
	// expected marks a wait registered before its job was submitted
	// (Expect), which a recheck leaves alone until Expected.Wait: asked
	// about then, the queue would not know the job yet.
	expected bool
}

// followBuffer is how many batches of lines a follower may be behind
// before it misses some and asks the queue for them.
const followBuffer = 16

// Follower is a caller following a running job's output (Follow).
type Follower struct {
	// Lines receives the lines of each batch the job printed.
	Lines <-chan []faas.LogLine
	// Missed is signalled when lines may have been missed (the follower
	// fell behind, or the watch did, or a batch was too large for its
	// event): the follower asks the queue's Logs for them.
	Missed <-chan struct{}
	// Done receives the job's outcome when it leaves the queue, or nil
	// when the queue had none to give.
	Done <-chan *faas.Job
}

// Follow registers a follower of job id's output until stop is called.
// Like Wait, the caller registers first and asks the queue after
// (Logs), so that no line printed in between escapes it; the lines it
// sees twice it skips by their offsets.
func (w *Watch) Follow(id string) (f Follower, stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := &waiter{
		done:   make(chan *faas.Job, 1),
		lines:  make(chan []faas.LogLine, followBuffer),
		missed: make(chan struct{}, 1),
	}
	w.byJob[id] = append(w.byJob[id], wt)
	return Follower{Lines: wt.lines, Missed: wt.missed, Done: wt.done}, func() { w.unwatch(id, wt) }
}

// deliverLines hands the lines job id printed (nil: too many for the
// event) to its followers.
func (w *Watch) deliverLines(id string, lines []faas.LogLine) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.byJob[id] {
		if wt.lines == nil {
			continue
		}
		if lines != nil {
			select {
			case wt.lines <- lines:
				continue
			default:
			}
		}
		wt.miss()
	}
}

// miss tells a follower that it missed lines.
func (wt *waiter) miss() {
	select {
	case wt.missed <- struct{}{}:
	default: // told already
	}
}

// NewWatch returns a Watch over q's events; it waits for nothing until Run
// runs. timeout bounds each question to q. revoked, if not nil, is told of
// each user deleted, and of "" after a gap, when any user may have been.
func NewWatch(q faas.JobQueue, timeout time.Duration, revoked func(user string), log *slog.Logger) *Watch {
	if revoked == nil {
		revoked = func(string) {}
	}
	return &Watch{queue: q, timeout: timeout, revoked: revoked, log: log, observe: func(*faas.Event) {}, hold: eventsHold, base: time.Now(), byJob: make(map[string][]*waiter), advanced: make(chan struct{})}
}

// HearEvery has the watch ask the queue for events at least every d
// while none come (instead of every 20s), so that CaughtUp stays within
// 2d of now while the queue answers. Call it before Run.
func (w *Watch) HearEvery(d time.Duration) { w.hold = d }

// CaughtUp is the latest time t such that the watch has followed (told
// revoked and the observer of) every event the queue added before t, or
// a gap that covers them; the zero time before the queue first answered.
// A revocation made through the queue before t is known here; if the
// queue stops answering, CaughtUp stops moving.
func (w *Watch) CaughtUp() time.Time {
	d := w.caughtUp.Load()
	if d == 0 {
		return time.Time{}
	}
	return w.base.Add(time.Duration(d))
}

// Observe has f told of every event the watch follows, in order, before
// the waiters hear of it, and of nil after a gap, when any event may have
// been missed: what a caller keeps in step with the queue (the frontend's
// cache of finished jobs) is kept in step by it. Call it before Run.
func (w *Watch) Observe(f func(ev *faas.Event)) { w.observe = f }

// Reached waits up to wait until the watch has followed the events up to
// seq (a JobStatus's Seq), and reports whether it has: what those events
// told is then known to the observer. A watch that is not running never
// gets there.
func (w *Watch) Reached(ctx context.Context, seq uint64, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		w.mu.Lock()
		seen, advanced := w.seen, w.advanced
		w.mu.Unlock()
		if seen >= seq {
			return true
		}
		if timeout == nil {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-advanced:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// advance records that the events up to seq were followed.
func (w *Watch) advance(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq != w.seen {
		w.seen = seq
		close(w.advanced)
		w.advanced = make(chan struct{})
	}
}

// Wait blocks up to wait for job id to leave the queue, with the meaning of
// faas.JobQueue's Wait.
func (w *Watch) Wait(ctx context.Context, id string, wait time.Duration) (faas.Job, bool, error) {
	wt := w.watch(id)
	defer w.unwatch(id, wt)
	if j, finished, err := w.queue.Wait(ctx, id, 0); err != nil || finished {
		return j, finished, err
	}
	return await(ctx, wt, wait)
}

// Expected is a wait registered before its job is submitted (Expect).
type Expected struct {
	w  *Watch
	id string
	wt *waiter
	// gaps is the watch's count of gaps when the wait was registered.
	gaps uint64
}

// Expect registers a wait for job id, which the caller is about to
// submit. The job's finish can only come after that, so Expected.Wait
// need not ask the queue, as Wait must, whether the job finished before
// the wait began: a bus round trip less for a request that waits for the
// job it submits. Cancel it when done, whether it waited or not.
func (w *Watch) Expect(id string) *Expected {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := &waiter{done: make(chan *faas.Job, 1), expected: true}
	w.byJob[id] = append(w.byJob[id], wt)
	return &Expected{w: w, id: id, wt: wt, gaps: w.gaps}
}

// Wait is Watch.Wait for the expected job, once it is submitted. It asks
// the queue about the job only if the events had a gap since Expect: the
// recheck after the gap passed the job over, as not submitted yet.
func (e *Expected) Wait(ctx context.Context, wait time.Duration) (faas.Job, bool, error) {
	e.w.mu.Lock()
	e.wt.expected = false
	gapped := e.w.gaps != e.gaps
	e.w.mu.Unlock()
	if gapped {
		if j, finished, err := e.w.queue.Wait(ctx, e.id, 0); err != nil || finished {
			return j, finished, err
		}
	}
	return await(ctx, e.wt, wait)
}

// Cancel unregisters the wait.
func (e *Expected) Cancel() { e.w.unwatch(e.id, e.wt) }

// await waits up to wait for wt's job to finish.
func await(ctx context.Context, wt *waiter, wait time.Duration) (faas.Job, bool, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case j := <-wt.done:
		if j == nil {
			return faas.Job{}, true, nil
		}
		return *j, true, nil
	case <-timer.C:
		return faas.Job{}, false, nil
	case <-ctx.Done():
		return faas.Job{}, false, ctx.Err()
	}
}

// Waiting is how many callers wait for job id.
func (w *Watch) Waiting(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byJob[id])
}

// watch registers a waiter for job id.
func (w *Watch) watch(id string) *waiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := &waiter{done: make(chan *faas.Job, 1)}
	w.byJob[id] = append(w.byJob[id], wt)
	return wt
}

// unwatch unregisters a waiter however its wait ended, so that waits
// that time out do not pile up on a job that never ends.
func (w *Watch) unwatch(id string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rest := slices.DeleteFunc(w.byJob[id], func(x *waiter) bool { return x == wt }); len(rest) > 0 {
		w.byJob[id] = rest
	} else {
		delete(w.byJob, id)
	}
}

// deliver hands j, the outcome of job id (or nil), to its waiters.
func (w *Watch) deliver(id string, j *faas.Job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.byJob[id] {
		select {
		case wt.done <- j:
		default: // delivered already, by a recheck
		}
	}
}

// Run follows the events until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	var since uint64
	failures := 0
	for ctx.Err() == nil {
		// The queue reads its events after the request leaves, so a page
		// holds every event added before asked, unless it is full.
		asked := time.Now()
		page, err := w.queue.Events(ctx, since, w.hold)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			w.log.Warn("watch job queue events", "err", err, "failures", failures)
			watchRetry.Sleep(ctx, failures)
			continue
		}
		failures = 0
		if page.Gap {
			w.observe(nil)
			w.revoked("")
			w.recheck(ctx)
		}
		for i := range page.List {
			ev := &page.List[i]
			w.observe(ev)
			switch ev.Kind {
			case faas.JobFinished:
				w.deliver(ev.JobID, ev.Job)
			case faas.UserRevoked:
				w.revoked(ev.User)
			case faas.JobLogs:
				w.deliverLines(ev.JobID, ev.Lines)
			}
		}
		since = page.Next
		w.advance(since)
		if len(page.List) < faas.MaxEventsPage {
			w.caughtUp.Store(max(1, int64(asked.Sub(w.base))))
		}
	}
}

// recheck asks the queue about every job waited on, after events may have
// been missed, but those not submitted yet (Expect), which count the gap
// instead.
func (w *Watch) recheck(ctx context.Context) {
	w.mu.Lock()
	w.gaps++
	ids := make([]string, 0, len(w.byJob))
	for id, wts := range w.byJob {
		if slices.ContainsFunc(wts, func(wt *waiter) bool { return !wt.expected }) {
			ids = append(ids, id)
		}
		for _, wt := range wts {
			if wt.lines != nil {
				wt.miss()
			}
		}
	}
	w.mu.Unlock()
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, w.timeout)
		j, finished, err := w.queue.Wait(cctx, id, 0)
		cancel()
		switch {
		case err != nil:
			// The wait times out unless a later event ends it.
			w.log.Warn("recheck waited job", "job_id", id, "err", err)
		case finished && j.ID == "":
			w.deliver(id, nil)
		case finished:
			w.deliver(id, &j)
		}
	}
}
