package worker

import (
	"context"
	"sync"
	"time"

	"faas/proxies/faas"
)

// liveLogs ships a running job's console lines to the queue, so that they
// can be read and followed before the job ends. The sandbox hands them
// over in batches (sandbox.RunStreaming); one goroutine at a time sends
// them, in order, and batches that come while it sends go out together
// in its next call. The Store gets the whole output with the completion
// whatever becomes of these calls, so a failed one is only logged; but
// the run's last lines are shipped before the completion, so that the
// queue publishes them, with their streams, before the job's end. It
// also keeps the lines' stream record, which the completion carries so
// that the Store keeps each line's stream after the job ends.
type liveLogs struct {
	w     *Worker
	lease faas.Lease
	log   jobLog
	// parent is the job's context; ctx, made from it with the first
	// lines, ends the shipping. Most jobs print nothing and need neither
	// it nor close's timer.
	parent context.Context
	ctx    context.Context
	stop   context.CancelFunc

	mu      sync.Mutex
	pending []faas.LogLine
	streams []byte
	sending bool
	sent    sync.WaitGroup
}

// liveLogs ships the lines of lease's run while ctx, the job's, lasts.
func (w *Worker) liveLogs(ctx context.Context, lease faas.Lease, log jobLog) *liveLogs {
	return &liveLogs{w: w, lease: lease, log: log, parent: ctx}
}

// add queues lines for the queue; it never blocks on the bus.
func (l *liveLogs) add(lines []faas.LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		l.ctx, l.stop = context.WithCancel(l.parent)
	}
	l.pending = append(l.pending, lines...)
	l.streams = faas.AppendStreams(l.streams, lines)
	if !l.sending {
		l.sending = true
		l.sent.Add(1)
		go l.send()
	}
}

func (l *liveLogs) send() {
	defer l.sent.Done()
	for {
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		if len(batch) == 0 || l.ctx.Err() != nil {
			l.sending = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(l.ctx, l.w.cfg.RequestTimeout)
		err := l.w.queue.AppendLogs(ctx, l.w.cfg.ID, l.lease, batch)
		cancel()
		if err != nil && l.ctx.Err() == nil {
			l.log().Debug("live logs not shipped", "err", err, "lines", len(batch))
		}
	}
}

// record is the stream record of the lines added so far.
func (l *liveLogs) record() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return faas.TrimStreams(l.streams)
}

// close waits, once the run is over, for its lines to be shipped, but
// no longer than one request's timeout: a queue out of reach must not
// hold up the completion, which carries every line anyway.
func (l *liveLogs) close() {
	l.mu.Lock()
	shipped := l.ctx != nil
	l.mu.Unlock()
	if !shipped {
		return
	}
	giveUp := time.AfterFunc(l.w.cfg.RequestTimeout, l.stop)
	l.sent.Wait()
	giveUp.Stop()
	l.stop()
}
