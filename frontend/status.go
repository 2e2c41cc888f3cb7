package frontend

import (
	"container/list"
	"context"
	"sync"
	"time"

	"faas/proxies/faas"
)

// finishedCache remembers finished jobs, so that clients polling a job
// (GET /j/:id, /res, /info) are answered without a trip to the Store once
// it finished; while it is queued or running the JQ manager answers
// (Status), or, for GET /j/:id, the memory of its answer (liveJobs). A
// finished job changes only by being deleted, so an entry is right until
// its job, or its owner, is deleted: the queue's JobDeleted and
// UserRevoked events evict it on every frontend, and a gap in the events,
// when some may have been missed, drops everything. Entries also
// expire after ttl, which bounds what a missed deletion (a queue that did
// not hear of it) or a purge of old jobs can leave behind.
//
// It is bounded by an estimate of the bytes it holds and evicts the least
// recently used entry first.
//
// It also remembers, for a moment, the jobs the queue said are live
// (liveJobs), under the same lock: the event that ends a job and the
// recording of the queue's answer about it are then ordered one way or
// the other, and either way no finished job is left remembered as live.
type finishedCache struct {
	max int64
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	order *list.List // of *finishedJob, most recently used first
	byID  map[string]*list.Element
	bytes int64
	// gen counts evictions of jobs and users, and gaps, so that a job
	// read from the Store or the queue before one is not cached after it
	// (fill, remember).
	gen  uint64
	live liveJobs
}

// finishedJob is one cached job. The record keeps no logs; args says whether
// it holds the job's arguments (a record from the Store) or not (from an
// event, which leaves them out): only /info needs them.
type finishedJob struct {
	job   faas.Job
	args  bool
	size  int64
	added time.Time
}

// cachedOverhead is what an entry costs beyond its strings: the record,
// the list element and the map slot.
const cachedOverhead = 512

func newFinishedCache(maxBytes int64, ttl time.Duration) *finishedCache {
	return &finishedCache{
		max: maxBytes, ttl: ttl, now: time.Now, order: list.New(), byID: make(map[string]*list.Element),
		live: liveJobs{order: list.New(), byID: make(map[string]*list.Element)},
	}
}

// get returns job id, if the cache holds as much of it as needs asks for:
// a finished job (with its arguments for needArgs), or for needFinished
// also a live one, as the queue last described it.
func (fc *finishedCache) get(id string, needs jobNeeds) (faas.Job, bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	el, ok := fc.byID[id]
	if !ok {
		if needs == needFinished {
			return fc.live.get(id, fc.now())
		}
		return faas.Job{}, false
	}
	c := el.Value.(*finishedJob)
	if fc.now().Sub(c.added) > fc.ttl {
		fc.remove(el)
		return faas.Job{}, false
	}
	if needs == needArgs && !c.args {
		return faas.Job{}, false
	}
	fc.order.MoveToFront(el)
	return c.job, true
}

// generation is the count of evictions so far, to hand to fill.
func (fc *finishedCache) generation() uint64 {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.gen
}

// fill caches j, read from the Store, unless it is not finished or a job
// or user was evicted since gen was taken before the read: the job may
// have been deleted after the Store answered.
func (fc *finishedCache) fill(j faas.Job, gen uint64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if gen == fc.gen {
		fc.add(j, true)
	}
}

// add caches the finished job j, keeping a cached record with arguments
// over one without. Callers hold mu.
func (fc *finishedCache) add(j faas.Job, args bool) {
	if !j.State.Finished() {
		return
	}
	if el, ok := fc.byID[j.ID]; ok {
		if el.Value.(*finishedJob).args && !args {
			return
		}
		fc.remove(el)
	}
	j.Logs, j.Streams = "", ""
	if !args {
		j.Args = nil
	}
	c := &finishedJob{job: j, args: args, size: jobSize(j), added: fc.now()}
	if c.size > fc.max {
		return
	}
	fc.byID[j.ID] = fc.order.PushFront(c)
	fc.bytes += c.size
	for fc.bytes > fc.max {
		fc.remove(fc.order.Back())
	}
}

// remove drops one entry. Callers hold mu.
func (fc *finishedCache) remove(el *list.Element) {
	c := fc.order.Remove(el).(*finishedJob)
	delete(fc.byID, c.job.ID)
	fc.bytes -= c.size
}

// forgetJob evicts job id, deleted.
func (fc *finishedCache) forgetJob(id string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.gen++
	if el, ok := fc.byID[id]; ok {
		fc.remove(el)
	}
	fc.live.forget(id)
}

// forgetUser evicts the jobs of user, deleted (or whose token was
// replaced, which costs only their next reads); "" evicts every job.
func (fc *finishedCache) forgetUser(user string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.gen++
	fc.live.forgetUser(user)
	if user == "" {
		fc.order.Init()
		clear(fc.byID)
		fc.bytes = 0
		return
	}
	for el := fc.order.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*finishedJob).job.Owner == user {
			fc.remove(el)
		}
		el = next
	}
}

// observe keeps the cache in step with the queue's events (Watch.Observe):
// a finished job's outcome is cached, since the queue publishes it after
// the Store recorded it, and the job is no longer live; deletions evict;
// a gap (nil) evicts everything.
func (fc *finishedCache) observe(ev *faas.Event) {
	switch {
	case ev == nil:
		fc.forgetUser("")
	case ev.Kind == faas.JobFinished:
		fc.mu.Lock()
		fc.live.ended(ev.JobID, ev.Seq)
		if ev.Job != nil {
			fc.add(*ev.Job, false)
		}
		fc.mu.Unlock()
	case ev.Kind == faas.JobDeleted:
		fc.forgetJob(ev.JobID)
	case ev.Kind == faas.UserRevoked:
		fc.forgetUser(ev.User)
	}
}

// jobSize estimates the bytes a cached record holds.
func jobSize(j faas.Job) int64 {
	n := cachedOverhead + len(j.ID) + len(j.Owner) + len(j.Function) + len(j.Args) + len(j.Result) +
		len(j.Worker) + len(j.Trace) + len(j.Trigger)
	for _, e := range append([]*faas.Error{j.Error}, j.Lost...) {
		if e != nil {
			n += len(e.Code) + len(e.Message) + 64
		}
	}
	return int64(n)
}

// jobNeeds says how much of a job record a handler needs, which decides
// where readJob may find it.
type jobNeeds int

const (
	// needFinished: whether the job finished, and its owner, which the
	// memory of live jobs has too (the state it holds may be a moment
	// old: queued when the job has started, or running when it was
	// queued again).
	needFinished jobNeeds = iota
	// needStatus: the state, result and error, which the cache, the
	// queue (for a live job) and the Store all have.
	needStatus
	// needArgs: with the arguments too, which the queue and the events
	// leave out.
	needArgs
	// needLogs: the whole record, logs included, which only the Store has.
	needLogs
)

// eventLag bounds how long a status read waits for the watch loop to
// hear of a job that left the queue: longer than an event takes to
// arrive, short enough that a watch behind costs a poll little.
const eventLag = 25 * time.Millisecond

// readJob returns job id as cheaply as needs allows: a finished job from
// the cache, a live one from the memory of live jobs or the queue, else
// from the Store, whose finished jobs are then cached for the next read.
// The calls on the managers are bounded by the request timeout, whose
// timer a hit in the cache does without.
func (s *Server) readJob(ctx context.Context, id string, needs jobNeeds) (faas.Job, error) {
	if needs < needLogs {
		if j, ok := s.finished.get(id, needs); ok {
			return j, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	// Before asking anyone: an eviction after this may concern the answer.
	gen := s.finished.generation()
	if needs <= needStatus {
		st, err := s.queue.Status(ctx, id)
		switch {
		case err != nil:
			// The Store knows as well; the queue's trouble is for those
			// who need it to report it.
			s.log.Debug("job status from the queue", "job_id", id, "err", err)
		case st.Job != nil:
			s.finished.remember(*st.Job, st.Seq, gen)
			return *st.Job, nil
		case s.watch.Reached(ctx, st.Seq, eventLag):
			// A poll that comes just after its job finished is answered
			// by the job's event, usually a moment away, not the Store.
			if j, ok := s.finished.get(id, needStatus); ok {
				return j, nil
			}
		}
	}
	j, err := s.store.Job(ctx, id)
	if err == nil {
		s.finished.fill(j, gen)
	}
	return j, err
}
