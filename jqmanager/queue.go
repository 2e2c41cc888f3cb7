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
	// function is for the line logged when the queue itself fails the job.
	function string
	attempt  int
	// losses counts the attempts that lost their lease.
	losses int
	state  entryState
	worker string
	leased time.Time
	// renewed is the last heartbeat of the lease holder.
	renewed time.Time
	// released is set when the attempt being leased was released before
	// the lease was recorded here; the lease then ends at once.
	released *faas.Error
	// waiters are closed when the job leaves the queue, after outcome is
	// set if the job finished through Done.
	waiters []chan struct{}
	outcome faas.Job
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
// theirs to finish.
type fairQueue struct {
	users map[string][]*entry
	// ring lists the users with queued jobs in serving order.
	ring []string
	len  int
	// running counts each user's popped jobs; maxRunning caps it, 0
	// meaning no cap.
	running    map[string]int
	maxRunning int
}

func newFairQueue(maxRunning int) *fairQueue {
	return &fairQueue{users: make(map[string][]*entry), running: make(map[string]int), maxRunning: maxRunning}
}

// atCap reports whether owner may not start another job now.
func (q *fairQueue) atCap(owner string) bool {
	return q.maxRunning > 0 && q.running[owner] >= q.maxRunning
}

// occupy counts a job of owner's that holds a worker slot without having
// been popped: one found running when the queue is rebuilt.
func (q *fairQueue) occupy(owner string) { q.running[owner]++ }

// vacate counts a popped job of owner's that left its slot: it finished,
// was deleted, or is queued again. It reports whether the owner has jobs
// waiting that may start now, for which an idle worker should be woken.
func (q *fairQueue) vacate(owner string) bool {
	if q.running[owner]--; q.running[owner] <= 0 {
		delete(q.running, owner)
	}
	return len(q.users[owner]) > 0
}

func (q *fairQueue) push(e *entry) {
	jobs, ok := q.users[e.owner]
	if !ok || len(jobs) == 0 {
		q.ring = append(q.ring, e.owner)
	}
	q.users[e.owner] = append(jobs, e)
	q.len++
}

// held counts the queued jobs that cannot start before a job of their
// owner's ends: beyond the slots the owner has left under the cap.
func (q *fairQueue) held() int {
	if q.maxRunning == 0 {
		return 0
	}
	n := 0
	for owner, jobs := range q.users {
		n += max(len(jobs)-max(q.maxRunning-q.running[owner], 0), 0)
	}
	return n
}

// pushFront puts back a job that could not be leased, ahead of its owner's
// other jobs, giving back the slot pop counted.
func (q *fairQueue) pushFront(e *entry) {
	q.vacate(e.owner)
	jobs := q.users[e.owner]
	if len(jobs) == 0 {
		q.ring = append([]string{e.owner}, q.ring...)
	}
	q.users[e.owner] = append([]*entry{e}, jobs...)
	q.len++
}

// pop returns the oldest job of the next user below the running cap and
// moves that user to the back. Users at the cap keep their place, so they
// are served first once a job of theirs ends.
func (q *fairQueue) pop() (*entry, bool) {
	i := slices.IndexFunc(q.ring, func(owner string) bool { return !q.atCap(owner) })
	if i < 0 {
		return nil, false
	}
	owner := q.ring[i]
	q.ring = slices.Delete(q.ring, i, i+1)
	jobs := q.users[owner]
	e := jobs[0]
	jobs[0] = nil
	if len(jobs) == 1 {
		delete(q.users, owner)
	} else {
		q.users[owner] = jobs[1:]
		q.ring = append(q.ring, owner)
	}
	q.len--
	q.running[owner]++
	return e, true
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
	return &entry{id: j.ID, owner: j.Owner, function: j.Function, attempt: j.Attempt, worker: j.Worker, losses: len(j.Lost), trace: j.Trace}
}
