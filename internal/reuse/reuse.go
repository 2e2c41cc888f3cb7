// Package reuse runs tasks on goroutines that have run tasks before.
//
// A goroutine keeps the stack it grew. Work that needs a deep stack
// (decoding and encoding a batch of jobs, handling a job through the
// sandbox pipe) grew and copied a new goroutine's stack on every task
// when each had a goroutine of its own: 5-6% of the bench process's CPU
// serving the bus, and as much of a worker's handling jobs. gRPC's
// NumStreamWorkers reuses goroutines for the same reason.
package reuse

import (
	"context"
	"sync"
	"time"
)

// Goroutines runs tasks on idle goroutines of its own, starting one when
// none is idle. A goroutine waits idle for its next task, then exits; it
// also exits once ctx (given to Go) has ended and it is idle.
type Goroutines struct {
	idle time.Duration
	work chan func()
	wg   sync.WaitGroup
}

// New returns Goroutines whose goroutines wait idle for their next task.
func New(idle time.Duration) *Goroutines {
	return &Goroutines{idle: idle, work: make(chan func())}
}

// Go runs task on an idle goroutine, or on a new one that stays for
// later tasks until it has waited idle for one or ctx has ended.
func (g *Goroutines) Go(ctx context.Context, task func()) {
	select {
	case g.work <- task:
		return
	default:
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		timer := time.NewTimer(g.idle)
		defer timer.Stop()
		for {
			task()
			timer.Reset(g.idle)
			select {
			case task = <-g.work:
			case <-timer.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Wait waits until every goroutine has exited: call it after the last Go,
// once their ctx has ended.
func (g *Goroutines) Wait() { g.wg.Wait() }
