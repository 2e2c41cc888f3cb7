package jqmanager

import (
	"slices"
	"strings"
	"time"
	"unique"

	"faas/proxies/faas"
)

// entry is a job the queue knows: queued, being leased, or running. A
// backlog holds one per queued job (100,000 in the bench's backlog, README,
// Performance), so an entry keeps only what a queued job needs, compactly:
// the record Status answers is built from its fields on demand, times are
// stamps rather than time.Time (a third of the size), the owner and
// function are one shared handle, and what only an attempt under way or a
// finished job has hangs off pointers that are nil while it waits.
// Its strings are copies or interned, so that an entry never pins the
// decoded message its job came in.
type entry struct {
	id string
	// fn is the job's owner and function, interned: every job of a
	// function shares one. The queue counts the function's running jobs
	// against limit, its concurrency (0: no limit).
	fn unique.Handle[fnName]
	// trace, trigger, parent, version, created, started and lost are the
	// job's fields as the Store last recorded them (faas.Job), for Status;
	// the trigger, one of a few values, interned.
	trace   string
	trigger unique.Handle[string]
	parent  string
	version int64
	created stamp
	started stamp
	lost    []*faas.Error
	// queued is when the job last entered the queue: the start of its
	// queue wait span.
	queued stamp
	limit  int32
	// attempt is the last attempt the Store recorded, 0 before the
	// first; a lease under way asks for the next.
	attempt int32
	// losses counts the attempts that lost their lease.
	losses int32
	// children counts the jobs the job submitted (SubmitChild) since this
	// manager started, and those under way: MaxChildren bounds it.
	children int32
	state    entryState
	// run is the attempt being leased or run: nil while the job waits.
	run *attempt
	// outcome is the finished job as the Store recorded it, less its
	// arguments and logs, for waiters and the event; nil until then.
	outcome *faas.Job
}

// fnName names a function across users.
type fnName struct{ owner, name string }

func (e *entry) owner() string    { return e.fn.Value().owner }
func (e *entry) function() string { return e.fn.Value().name }

// attempt is what the queue keeps of an entry's attempt while a worker
// holds it, and of the lease being recorded before that.
type attempt struct {
	worker string
	leased time.Time
	// renewed is the last heartbeat of the lease holder.
	renewed time.Time
	// released is set when the attempt being leased was released before
	// the lease was recorded here; the lease then ends at once.
	released *faas.Error
	// unconfirmed, while not nil, is closed once the Store has answered
	// the creation of a job handed over before that (Manager.handOver).
	unconfirmed chan struct{}
	// logs is what the attempt printed so far (AppendLogs), from line
	// logBase on, and logBytes the size of its lines.
	logs     []faas.LogLine
	logBase  int
	logBytes int
}

// entryState is an entry's place in the queue; one byte, as it is in every
// entry.
type entryState uint8

const (
	stateQueued entryState = iota
	// stateLeasing: popped for a worker, the Store not yet told.
	stateLeasing
	stateRunning
	// stateReaping: the lease expired or was released; the Store is being
	// told to queue the job again (or to fail it).
	stateReaping
)

// fairQueue holds queued jobs in one FIFO per user and serves the users in
// turn, so that one user flooding the queue delays another user's jobs by
// at most one job per flooding user. It also counts each user's jobs
// popped and not yet back in the queue or gone (being leased, running or
// being requeued), and skips a user who has maxRunning of them, so that no
// user can hold every worker slot; their jobs wait, in order, for one of
// theirs to finish. It counts the same per function too, and passes over a
// job whose function has as many jobs out as its concurrency limit allows
// for the owner's next job, so that a limited function waits without
// delaying the owner's other functions or other users.
type fairQueue struct {
	users map[string][]*entry
	// ring lists the users with queued jobs in serving order.
	ring []string
	len  int
	// running counts each user's popped jobs; maxRunning caps it, 0
	// meaning no cap.
	running    map[string]int
	maxRunning int
	// functions counts the popped jobs of each function.
	functions map[unique.Handle[fnName]]int
}

func newFairQueue(maxRunning int) *fairQueue {
	return &fairQueue{users: make(map[string][]*entry), running: make(map[string]int), maxRunning: maxRunning,
		functions: make(map[unique.Handle[fnName]]int)}
}

// startable reports whether e's function may start another job now, given
// taken more about to start in the same count.
func (q *fairQueue) startable(e *entry, taken int) bool {
	return e.limit == 0 || q.functions[e.fn]+taken < int(e.limit)
}

// atCap reports whether owner may not start another job now.
func (q *fairQueue) atCap(owner string) bool {
	return q.maxRunning > 0 && q.running[owner] >= q.maxRunning
}

// occupy counts a job of owner's that holds a worker slot without having
// been popped: one found running when the queue is rebuilt.
func (q *fairQueue) occupy(e *entry) {
	q.running[e.owner()]++
	q.functions[e.fn]++
}

// vacate counts a popped job of owner's that left its slot: it finished,
// was deleted, or is queued again. It reports whether the owner has jobs
// waiting that may start now, for which an idle worker should be woken.
func (q *fairQueue) vacate(e *entry) bool {
	if q.running[e.owner()]--; q.running[e.owner()] <= 0 {
		delete(q.running, e.owner())
	}
	if q.functions[e.fn] <= 1 {
		delete(q.functions, e.fn)
	} else {
		q.functions[e.fn]--
	}
	return len(q.users[e.owner()]) > 0
}

func (q *fairQueue) push(e *entry) {
	jobs, ok := q.users[e.owner()]
	if !ok || len(jobs) == 0 {
		q.ring = append(q.ring, e.owner())
	}
	q.users[e.owner()] = append(jobs, e)
	q.len++
}

// held counts the queued jobs that cannot start before a running job
// ends: beyond the slots their function has left under its limit, or the
// owner under the per-user cap.
func (q *fairQueue) held() int {
	n := 0
	taken := make(map[unique.Handle[fnName]]int)
	for owner, jobs := range q.users {
		free := 0
		for _, e := range jobs {
			if q.startable(e, taken[e.fn]) {
				taken[e.fn]++
				free++
			}
		}
		if q.maxRunning > 0 {
			free = min(free, max(q.maxRunning-q.running[owner], 0))
		}
		n += len(jobs) - free
	}
	return n
}

// pushFront puts back a job that could not be leased, ahead of its owner's
// other jobs, giving back the slot pop counted.
func (q *fairQueue) pushFront(e *entry) {
	q.vacate(e)
	jobs := q.users[e.owner()]
	if len(jobs) == 0 {
		q.ring = append([]string{e.owner()}, q.ring...)
	}
	q.users[e.owner()] = append([]*entry{e}, jobs...)
	q.len++
}

// pop returns the oldest job whose function is below its limit of the
// next user below the running cap, and moves that user to the back. Users
// with nothing to start keep their place, so they are served first once a
// job of theirs ends.
func (q *fairQueue) pop() (*entry, bool) {
	for i, owner := range q.ring {
		if q.atCap(owner) {
			continue
		}
		jobs := q.users[owner]
		k := slices.IndexFunc(jobs, func(e *entry) bool { return q.startable(e, 0) })
		if k < 0 {
			continue
		}
		e := jobs[k]
		q.ring = cut(q.ring, i)
		if len(jobs) == 1 {
			delete(q.users, owner)
		} else {
			q.users[owner] = cut(jobs, k)
			q.ring = append(q.ring, owner)
		}
		q.len--
		q.running[owner]++
		q.functions[e.fn]++
		return e, true
	}
	return nil, false
}

// cut removes s[i]. The usual case, the first, reslices instead of
// shifting the rest: a pop from a backlog of 100,000 jobs of one user
// took 29 µs shifting them. The slot is cleared so the backing array does
// not keep what it held alive; append reallocates once the slice reaches
// the end of the array, which drops the unused front too.
func cut[T any](s []T, i int) []T {
	if i == 0 {
		var zero T
		s[0] = zero
		return s[1:]
	}
	return slices.Delete(s, i, i+1)
}

// remove drops a queued job that was deleted.
func (q *fairQueue) remove(e *entry) {
	jobs := q.users[e.owner()]
	for i, x := range jobs {
		if x != e {
			continue
		}
		q.len--
		if len(jobs) > 1 {
			q.users[e.owner()] = append(jobs[:i:i], jobs[i+1:]...)
			return
		}
		delete(q.users, e.owner())
		q.ring = slices.DeleteFunc(q.ring, func(u string) bool { return u == e.owner() })
		return
	}
}

// newEntry makes the queue's record of a stored job.
func newEntry(j faas.Job) *entry {
	e := &entry{
		id:      strings.Clone(j.ID),
		fn:      unique.Make(fnName{owner: j.Owner, name: j.Function}),
		trace:   strings.Clone(j.Trace),
		trigger: unique.Make(j.Trigger),
		parent:  strings.Clone(j.Parent),
		version: j.Version,
		created: stampOf(j.Created),
		limit:   int32(j.Concurrency),
		losses:  int32(len(j.Lost)),
	}
	e.recorded(j)
	if j.State == faas.Running {
		e.run = &attempt{worker: j.Worker}
	}
	return e
}

// recorded keeps what changes of j, the job as the Store just recorded
// it, for Status: not its arguments, result and logs, which could be
// large and which a live job's status does not show, nor the fields a
// job has only once finished. Its state and worker are the entry's own,
// which follow the Store's: queued (or being leased) until the Store
// starts an attempt, and running, by the worker holding it, until the
// Store queues the job again.
func (e *entry) recorded(j faas.Job) {
	e.attempt, e.started, e.lost = int32(j.Attempt), stampOf(j.Started), j.Lost
}

// job is the record of e, as Status answers it.
func (e *entry) job() faas.Job {
	j := faas.Job{ID: e.id, Owner: e.owner(), Function: e.function(), Version: e.version, Concurrency: int(e.limit),
		State: faas.Queued, Attempt: int(e.attempt), Created: e.created.time(), Started: e.started.time(),
		Lost: e.lost, Trace: e.trace, Trigger: e.trigger.Value(), Parent: e.parent}
	if e.state == stateRunning || e.state == stateReaping {
		j.State, j.Worker = faas.Running, e.run.worker
	}
	return j
}

// stamp is a time in Unix nanoseconds, 0 for the zero time: a third of
// the size of a time.Time, in every entry.
type stamp int64

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixNano())
}

// time is s in UTC, as the stores answer times.
func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}
