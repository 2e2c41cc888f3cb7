package frontend

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"faas/proxies/faas"
)

// eventsHold is how long one call of the watch loop may wait for events.
// It is well below jqproxy.MaxHold; a shorter hold would only cost more
// empty round trips.
const eventsHold = 20 * time.Second

// The watch loop's retry delays while the job queue does not answer.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// waits lets requests wait for jobs without holding anything on the bus.
// One goroutine (run) watches the job queue's events and hands each
// finished job to the requests of this process waiting for it; a waiting
// request holds only a channel. The same stream tells this process which
// users were deleted, so their tokens stop working here at once.
//
// A request first registers, then asks the queue once, without waiting,
// whether the job is still pending: a job that finishes after that answer
// finishes after the registration too, so its event finds the request.
// When the watch loop falls behind the queue's memory of events (a gap),
// it asks again for every job waited on.
type waits struct {
	queue   faas.JobQueue
	log     *slog.Logger
	timeout time.Duration
	perUser int
	total   int
	// revoked is told of a deleted user; "" means any user may have
	// been deleted (after a gap).
	revoked func(user string)

	mu    sync.Mutex
	byJob map[string][]*waiter
	users map[string]int
	count int
}

// waiter is one request waiting for a job. done receives the job's
// outcome, or nil when the queue had none to give (the caller reads the
// Store).
type waiter struct {
	done chan *faas.Job
}

func newWaits(queue faas.JobQueue, cfg Config, revoked func(string), log *slog.Logger) *waits {
	return &waits{
		queue:   queue,
		log:     log,
		timeout: cfg.RequestTimeout,
		perUser: cfg.MaxWaitsPerUser,
		total:   cfg.MaxWaits,
		revoked: revoked,
		byJob:   make(map[string][]*waiter),
		users:   make(map[string]int),
	}
}

// admit counts a request of user that is about to wait, or refuses it
// with TooMany past the caps; release uncounts it. Requests are admitted
// before their job is submitted, so a refused one leaves nothing behind.
func (w *waits) admit(user string) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.users[user] >= w.perUser:
		return nil, faas.Errorf(faas.TooMany, "user %s already has %d requests waiting for jobs, the most allowed (FAAS_MAX_WAITS_PER_USER); retry later or poll /j/:id", user, w.perUser)
	case w.count >= w.total:
		return nil, faas.Errorf(faas.TooMany, "%d requests are waiting for jobs, the most this server allows (FAAS_MAX_WAITS); retry later or poll /j/:id", w.total)
	}
	w.users[user]++
	w.count++
	return sync.OnceFunc(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.users[user]--; w.users[user] <= 0 {
			delete(w.users, user)
		}
		w.count--
	}), nil
}

// wait blocks up to wait for job id to finish, with the meaning of
// faas.JobQueue's Wait. The caller was admitted.
func (w *waits) wait(ctx context.Context, id string, wait time.Duration) (faas.Job, bool, error) {
	wt := w.watch(id)
	defer w.unwatch(id, wt)
	if j, finished, err := w.queue.Wait(ctx, id, 0); err != nil || finished {
		return j, finished, err
	}
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

// watch registers a waiter for job id.
func (w *waits) watch(id string) *waiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := &waiter{done: make(chan *faas.Job, 1)}
	w.byJob[id] = append(w.byJob[id], wt)
	return wt
}

// unwatch unregisters a waiter however its wait ended, so that waits
// that time out do not pile up on a job that never ends.
func (w *waits) unwatch(id string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rest := slices.DeleteFunc(w.byJob[id], func(x *waiter) bool { return x == wt }); len(rest) > 0 {
		w.byJob[id] = rest
	} else {
		delete(w.byJob, id)
	}
}

// waiting reports how many requests were admitted, and how many wait
// for job id.
func (w *waits) waiting(id string) (admitted, forJob int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count, len(w.byJob[id])
}

// deliver hands j, the outcome of job id (or nil), to its waiters.
func (w *waits) deliver(id string, j *faas.Job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.byJob[id] {
		select {
		case wt.done <- j:
		default: // delivered already, by a recheck
		}
	}
}

// run is the watch loop, until ctx ends.
func (w *waits) run(ctx context.Context) {
	var since uint64
	backoff := watchBackoffMin
	for ctx.Err() == nil {
		page, err := w.queue.Events(ctx, since, eventsHold)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("watch job queue events", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, watchBackoffMax)
			continue
		}
		backoff = watchBackoffMin
		if page.Gap {
			w.revoked("")
			w.recheck(ctx)
		}
		for _, ev := range page.List {
			switch ev.Kind {
			case faas.JobFinished:
				w.deliver(ev.JobID, ev.Job)
			case faas.UserRevoked:
				w.revoked(ev.User)
			}
		}
		since = page.Next
	}
}

// recheck asks the queue about every job waited on, after events may have
// been missed.
func (w *waits) recheck(ctx context.Context) {
	w.mu.Lock()
	ids := make([]string, 0, len(w.byJob))
	for id := range w.byJob {
		ids = append(ids, id)
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
