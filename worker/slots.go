package worker

import (
	"context"
	"sync"
	"time"

	"faas/proxies/faas"
)

// aheadHorizon is how soon a job leased ahead is expected to start: the
// worker leases ahead as many jobs as its sandboxes finished in this
// time, since about as many will free up in the next. It is also the
// longest a request for jobs ahead waits for one.
const aheadHorizon = 10 * time.Millisecond

// aheadPerSandbox is the most jobs leased ahead per sandbox. In
// `faas bench` on 2 CPUs, one took the async throughput from about 3,300
// to 4,000 jobs/s, two to 4,400; four gave no more.
const aheadPerSandbox = 2

// slots hands out the worker's leases as tokens: one for each sandbox,
// and, while at least half of them are taken and they turn over fast, up
// to ahead more. A job leased ahead waits in the worker for the first
// sandbox to free up, instead of for a request to the queue after it did: under a backlog of short jobs
// that round trip left the sandboxes idle about as long as they ran
// (README, Performance). The turnover bounds how long a job leased ahead
// waits: when the jobs get long, the sandboxes finish few in aheadHorizon
// and the worker stops leasing ahead, leaving new jobs to workers with
// room.
type slots struct {
	// free holds the tokens not taken: a poll takes one per job it asks
	// for, and a job gives its own back when its run is over.
	free        chan struct{}
	size, ahead int
	now         func() time.Time

	mu sync.Mutex
	// tokens counts the tokens in circulation, from size to size+ahead;
	// jobs those held by leased jobs whose run is not over.
	tokens, jobs int
	// ends holds the times the last ahead runs ended, a ring at next.
	ends []time.Time
	next int
}

// newSlots returns the slots of size sandboxes that lease up to ahead
// jobs beyond them.
func newSlots(size, ahead int, now func() time.Time) *slots {
	s := &slots{
		free:   make(chan struct{}, size+ahead),
		size:   size,
		ahead:  ahead,
		now:    now,
		tokens: size,
		ends:   make([]time.Time, ahead),
	}
	for range size {
		s.free <- struct{}{}
	}
	return s
}

// take waits for a token and takes the others free then, up to
// faas.MaxBatch, for the jobs of one request to the queue. ahead says
// that some of the jobs would wait for a sandbox: the request should not
// wait long for them, lest the jobs that come meanwhile find the
// sandboxes busy with long ones. It returns 0 once ctx has ended.
func (s *slots) take(ctx context.Context) (n int, ahead bool) {
	for {
		select {
		case <-s.free:
		case <-ctx.Done():
			return 0, false
		}
		n = 1
	more:
		for n < faas.MaxBatch {
			select {
			case <-s.free:
				n++
			default:
				break more
			}
		}
		if n, ahead = s.trim(n); n > 0 {
			return n, ahead
		}
	}
}

// trim retires, of n tokens just taken, those beyond what the turnover
// allows now: after a pause, the tokens minted under the last burst are
// not spent on jobs that would wait for long ones. It returns how many
// are kept, and whether jobs for all of them would outnumber the
// sandboxes.
func (s *slots) trim(n int) (kept int, ahead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	retire := min(max(s.tokens-s.want(), 0), n)
	s.tokens -= retire
	kept = n - retire
	return kept, s.jobs+kept > s.size
}

// leased spends k of n tokens taken on the jobs the queue leased, and
// gives the rest back.
func (s *slots) leased(n, k int) {
	s.mu.Lock()
	s.jobs += k
	s.mu.Unlock()
	s.give(n - k)
}

// give puts n tokens back for the polls.
func (s *slots) give(n int) {
	for range n {
		s.free <- struct{}{}
	}
}

// ran gives back the token of a job whose run is over, and mints one more
// while the turnover allows more jobs ahead than are in circulation.
func (s *slots) ran() {
	s.mu.Lock()
	// Only runs that ended while at least half the sandboxes were taken
	// count: jobs that come one at a time need no job ahead.
	if s.ahead > 0 && 2*s.jobs >= s.size {
		s.ends[s.next] = s.now()
		s.next = (s.next + 1) % s.ahead
	}
	s.jobs--
	back := 1
	switch want := s.want(); {
	case s.tokens > want:
		s.tokens--
		back = 0
	case s.tokens < want:
		s.tokens++
		back = 2
	}
	s.mu.Unlock()
	s.give(back)
}

// want is the tokens the turnover allows now: one per sandbox, plus one
// per run that ended within aheadHorizon while at least half the
// sandboxes were taken, up to ahead. s.mu is held.
func (s *slots) want() int {
	since := s.now().Add(-aheadHorizon)
	recent := 0
	for _, t := range s.ends {
		if t.After(since) {
			recent++
		}
	}
	return s.size + recent
}
