package jqmanager

import (
	"context"
	"time"

	"faas/proxies/faas"
)

// maxEventResult is the largest result an event carries, so that the ring
// holds at most EventRing times this much (32 MiB by default). A larger
// result stays out of it; the frontend reads it from the Store instead.
const maxEventResult = 8 << 10

// ring is the bounded memory of recent events. Sequence numbers start at
// the time the manager started, in nanoseconds, so that a cursor from an
// earlier run of the manager is always before the oldest event of this
// one and reads as a gap.
type ring struct {
	buf []faas.Event
	// head is the sequence number of the newest event; start that of the
	// first ever, minus one.
	head, start uint64
	// grown is closed and replaced whenever an event is added.
	grown chan struct{}
}

func newRing(size int, now time.Time) *ring {
	seq := uint64(now.UnixNano())
	return &ring{buf: make([]faas.Event, size), head: seq, start: seq, grown: make(chan struct{})}
}

func (r *ring) add(ev faas.Event) {
	r.head++
	ev.Seq = r.head
	r.buf[r.head%uint64(len(r.buf))] = ev
	close(r.grown)
	r.grown = make(chan struct{})
}

// oldest is the sequence number of the oldest event still held.
func (r *ring) oldest() uint64 {
	return r.head + 1 - min(r.head-r.start, uint64(len(r.buf)))
}

// after returns the page of events after since.
func (r *ring) after(since uint64) faas.Events {
	if since == 0 || since > r.head || since+1 < r.oldest() {
		return faas.Events{Next: r.head, Gap: true}
	}
	var page faas.Events
	for s := since + 1; s <= r.head && len(page.List) < faas.MaxEventsPage; s++ {
		page.List = append(page.List, r.buf[s%uint64(len(r.buf))])
	}
	page.Next = since + uint64(len(page.List))
	return page
}

// publishFinished records that e left the queue. Callers hold mu.
func (m *Manager) publishFinished(e *entry) {
	ev := faas.Event{Kind: faas.JobFinished, JobID: e.id}
	if e.outcome != nil && len(e.outcome.Result) <= maxEventResult {
		j := *e.outcome
		j.Logs, j.Args = "", nil
		ev.Job = &j
	}
	m.events.add(ev)
}

// Events implements faas.JobQueue.
func (m *Manager) Events(ctx context.Context, since uint64, hold time.Duration) (faas.Events, error) {
	timer := time.NewTimer(hold)
	defer timer.Stop()
	for {
		m.mu.Lock()
		page := m.events.after(since)
		grown := m.events.grown
		m.mu.Unlock()
		if page.Gap || len(page.List) > 0 {
			return page, nil
		}
		select {
		case <-grown:
		case <-timer.C:
			return page, nil
		case <-ctx.Done():
			return page, ctx.Err()
		}
	}
}
