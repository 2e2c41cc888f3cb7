package jqmanager

import (
	"slices"
	"time"

	"faas/proxies/faas"
)

// entry is a job the queue knows: queued, being leased, or running.
type entry struct {
	id    string
	owner string
	// function names the job's function: the queue counts its running
	// jobs against limit, the function's concurrency (0: no limit), and
	// logs it when the queue itself fails the job.
	function string
	limit    int
	attempt  int
	// losses counts the attempts that lost their lease.
	losses int
	// children counts the jobs the job submitted (SubmitChild) since this
	// manager started, and those under way: MaxChildren bounds it.
	children int
	state    entryState
	worker   string
	leased   time.Time
	// renewed is the last heartbeat of the lease holder.
	renewed time.Time
	// released is set when the attempt being leased was released before
	// the lease was recorded here; the lease then ends at once.
	released *faas.Error
	// waiters are closed when the job leaves the queue, after record is
	// set to the outcome if the job finished through Complete.
	waiters []chan struct{}
	// record is the job as the Store last recorded it: while the job is
	// live, less its arguments and logs (recorded), for Status; once it
	// finished through Complete, its outcome, for waiters and the event. One
	// field for both keeps an entry as small as it was with the outcome
	// alone.
	record faas.Job
	// logs is what the running attempt printed so far (AppendLogs), from
	// line logBase on, and logBytes the size of its lines.
	logs     []faas.LogLine
	logBase  int
	logBytes int
	// trace is the job's faas.Job.Trace, and queued when it last entered
	// the queue: the start of its queue wait span.
	trace  string
	queued time.Time
}

type entryState int

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
	// functions counts the popped jobs of each function, by functionKey.
	functions map[string]int
}

func newFairQueue(maxRunning int) *fairQueue {
	return &fairQueue{users: make(map[string][]*entry), running: make(map[string]int), maxRunning: maxRunning,
		functions: make(map[string]int)}
}

// functionKey names e's function across users.
func functionKey(e *entry) string { return e.owner + "/" + e.function }

// startable reports whether e's function may start another job now, given
// taken more about to start in the same count.
func (q *fairQueue) startable(e *entry, taken int) bool {
	return e.limit == 0 || q.functions[functionKey(e)]+taken < e.limit
}

// atCap reports whether owner may not start another job now.
func (q *fairQueue) atCap(owner string) bool {
	return q.maxRunning > 0 && q.running[owner] >= q.maxRunning
}

// occupy counts a job of owner's that holds a worker slot without having
// been popped: one found running when the queue is rebuilt.
func (q *fairQueue) occupy(e *entry) {
	q.running[e.owner]++
	q.functions[functionKey(e)]++
}

// vacate counts a popped job of owner's that left its slot: it finished,
// was deleted, or is queued again. It reports whether the owner has jobs
// waiting that may start now, for which an idle worker should be woken.
func (q *fairQueue) vacate(e *entry) bool {
	if q.running[e.owner]--; q.running[e.owner] <= 0 {
		delete(q.running, e.owner)
	}
	if k := functionKey(e); q.functions[k] <= 1 {
		delete(q.functions, k)
	} else {
		q.functions[k]--
	}
	return len(q.users[e.owner]) > 0
}

func (q *fairQueue) push(e *entry) {
	jobs, ok := q.users[e.owner]
	if !ok || len(jobs) == 0 {
		q.ring = append(q.ring, e.owner)
	}
	q.users[e.owner] = append(jobs, e)
	q.len++
}

// held counts the queued jobs that cannot start before a running job
// ends: beyond the slots their function has left under its limit, or the
// owner under the per-user cap.
func (q *fairQueue) held() int {
	n := 0
	taken := make(map[string]int)
	for owner, jobs := range q.users {
		free := 0
		for _, e := range jobs {
			if q.startable(e, taken[functionKey(e)]) {
				taken[functionKey(e)]++
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
	jobs := q.users[e.owner]
	if len(jobs) == 0 {
		q.ring = append([]string{e.owner}, q.ring...)
	}
	q.users[e.owner] = append([]*entry{e}, jobs...)
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
		q.ring = slices.Delete(q.ring, i, i+1)
		if len(jobs) == 1 {
			delete(q.users, owner)
		} else {
			q.users[owner] = slices.Delete(jobs, k, k+1)
			q.ring = append(q.ring, owner)
		}
		q.len--
		q.running[owner]++
		q.functions[functionKey(e)]++
		return e, true
	}
	return nil, false
}

// remove drops a queued job that was deleted.
func (q *fairQueue) remove(e *entry) {
	jobs := q.users[e.owner]
	for i, x := range jobs {
		if x != e {
			continue
		}
		q.len--
		if len(jobs) > 1 {
			q.users[e.owner] = append(jobs[:i:i], jobs[i+1:]...)
			return
		}
		delete(q.users, e.owner)
		q.ring = slices.DeleteFunc(q.ring, func(u string) bool { return u == e.owner })
		return
	}
}

// newEntry makes the queue's record of a stored job.
func newEntry(j faas.Job) *entry {
	e := &entry{id: j.ID, owner: j.Owner, function: j.Function, limit: j.Concurrency, attempt: j.Attempt, worker: j.Worker, losses: len(j.Lost), trace: j.Trace}
	e.recorded(j)
	return e
}

// recorded keeps j, the job as the Store just recorded it, for Status:
// without its arguments, result and logs, which could be large and which
// a live job's status does not show.
func (e *entry) recorded(j faas.Job) {
	j.Args, j.Result, j.Logs, j.Streams = nil, nil, "", ""
	e.record = j
}
