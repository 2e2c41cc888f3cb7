package frontend

import (
	"container/list"
	"time"

	"faas/proxies/faas"
)

// liveTTL is how long a frontend answers that a job has not finished on
// the queue's word, before it asks the queue again. The events end an
// entry as soon as its job finishes or is deleted; the TTL bounds what
// they cannot tell: a watch loop that hears nothing while the queue is
// unreachable (no events, and no gap until it answers again), or a
// deletion the queue never heard of. A job polled for longer costs a
// round trip to the queue a second, not one a poll.
const liveTTL = time.Second

// maxLive bounds the live jobs remembered, at about 200 bytes each; past
// it the oldest go first, and a poll of theirs asks the queue again.
const maxLive = 1 << 15

// recentEnds is how many of the latest JobFinished events are kept to
// check the queue's answers against (remember): an answer recorded after
// more jobs than this finished is not recorded, which at thousands of
// jobs a second leaves a reply a tenth of a second to arrive.
const recentEnds = 1024

// liveJobs remembers jobs the queue said it holds, queued or running, so
// that a poll that asks only whether its job finished (GET /j/:id) is
// answered without a round trip to the queue. It is part of finishedCache
// and guarded by its mu.
//
// An entry is right for as long as the job's JobFinished or JobDeleted
// event, or its owner's UserRevoked, has not arrived and no event was
// missed: the queue publishes them in order under the lock it answers
// Status under, so the events that can end a live job all come after the
// answer's Seq, and the watch loop hands each to observe, which evicts.
// One ordering needs care: the job's JobFinished event may be observed
// before the answer is recorded. remember refuses an answer when a
// JobFinished of its job after its Seq is among the recent ends, and an
// answer from before a deletion, revocation or gap (the cache's gen).
type liveJobs struct {
	order *list.List // of *liveJob, newest first: they expire from the back
	byID  map[string]*list.Element
	// ends is a ring of the latest JobFinished events observed, oldest at
	// next. Every one observed after endsFrom is in it.
	ends     [recentEnds]endedJob
	next     int
	endsFrom uint64
}

// liveJob is a live job as the queue last described it: no more than
// needFinished asks for.
type liveJob struct {
	id, owner string
	state     faas.JobState
	added     time.Time
}

// endedJob is one JobFinished event: its sequence number and job.
type endedJob struct {
	seq uint64
	id  string
}

// remember records j, which the queue held when its newest event was
// seq, unless the job may have finished or been deleted since: its
// JobFinished event, after seq, was already observed (or the recent ends
// no longer reach back to seq), or a job or user was evicted, or events
// missed, since gen was taken before the question.
func (fc *finishedCache) remember(j faas.Job, seq, gen uint64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if gen != fc.gen || fc.live.endedAfter(j.ID, seq) {
		return
	}
	fc.live.add(j, fc.now())
}

// get returns live job id unless its entry expired.
func (lj *liveJobs) get(id string, now time.Time) (faas.Job, bool) {
	el, ok := lj.byID[id]
	if !ok {
		return faas.Job{}, false
	}
	c := el.Value.(*liveJob)
	if now.Sub(c.added) > liveTTL {
		lj.remove(el)
		return faas.Job{}, false
	}
	return faas.Job{ID: c.id, Owner: c.owner, State: c.state}, true
}

// add records live job j, in place of any earlier record of it, dropping
// the entries expired and, past maxLive, the oldest.
func (lj *liveJobs) add(j faas.Job, now time.Time) {
	lj.forget(j.ID)
	for el := lj.order.Back(); el != nil && (lj.order.Len() >= maxLive || now.Sub(el.Value.(*liveJob).added) > liveTTL); el = lj.order.Back() {
		lj.remove(el)
	}
	lj.byID[j.ID] = lj.order.PushFront(&liveJob{id: j.ID, owner: j.Owner, state: j.State, added: now})
}

// remove drops one entry.
func (lj *liveJobs) remove(el *list.Element) {
	delete(lj.byID, lj.order.Remove(el).(*liveJob).id)
}

// forget drops job id, deleted or finished.
func (lj *liveJobs) forget(id string) {
	if el, ok := lj.byID[id]; ok {
		lj.remove(el)
	}
}

// forgetUser drops the jobs of user; "" drops all, and the recent ends,
// after a gap: the events that follow may come from another run of the
// queue, whose sequence numbers are not comparable with the old ones.
func (lj *liveJobs) forgetUser(user string) {
	if user == "" {
		lj.order.Init()
		clear(lj.byID)
		lj.ends, lj.next, lj.endsFrom = [recentEnds]endedJob{}, 0, 0
		return
	}
	for el := lj.order.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*liveJob).owner == user {
			lj.remove(el)
		}
		el = next
	}
}

// ended records job id's JobFinished event, number seq.
func (lj *liveJobs) ended(id string, seq uint64) {
	lj.forget(id)
	if old := lj.ends[lj.next]; old.id != "" {
		lj.endsFrom = old.seq
	}
	lj.ends[lj.next] = endedJob{seq: seq, id: id}
	lj.next = (lj.next + 1) % recentEnds
}

// endedAfter reports whether job id's JobFinished event after seq was
// observed, or may have been: the ring no longer reaches back to seq.
func (lj *liveJobs) endedAfter(id string, seq uint64) bool {
	if seq < lj.endsFrom {
		return true
	}
	// From the newest back, while the events are after seq.
	for i := 1; i <= recentEnds; i++ {
		e := lj.ends[(lj.next-i+recentEnds)%recentEnds]
		if e.id == "" || e.seq <= seq {
			return false
		}
		if e.id == id {
			return true
		}
	}
	return false
}
