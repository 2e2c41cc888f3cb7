package platform

import (
	"context"
	"runtime"
	"runtime/metrics"
	"time"
)

// The processor controller of `faas up` (adaptProcs) counts the
// goroutines running or ready to run every procsSample, decides from the
// average of procsWindow counts, and keeps processors it added for
// procsHold windows at least, so that a load at the border between two
// counts changes them once a second at most (each change stops the world
// for a moment). While the process idles on one processor it counts every
// procsIdleSample instead: counting every 10 ms took 0.8% of a core in an
// idle `faas up`, against 0.2% without counting. Every 100 ms it adds
// 1.4-3 ms of CPU a second (0.37% against 0.23% on a quick hour, 0.71-0.77%
// against 0.46-0.52% on a slow one): on this VM each wake after a rest
// costs a couple of hundred microseconds. The first goroutine seen then
// brings back the full pace, so that a burst is seen within two tenths of
// a second.
const (
	procsSample     = 10 * time.Millisecond
	procsIdleSample = 100 * time.Millisecond
	procsWindow     = 10
	procsHold       = 10
	// procsIdle is the demand up to which a process on one processor is
	// taken to idle: one goroutine seen in a window.
	procsIdle = 1.0 / procsWindow
)

// adaptProcs sets the processors of this process (GOMAXPROCS) to what it
// asks of them, between 1 and most, until ctx ends.
//
// Why: a job waited for alone crosses the frontend, the queue and the
// store one goroutine after another. On one processor each hands over to
// the next on the same thread at once; given more, the runtime wakes a
// thread on another CPU at almost every handoff, which costs more than the
// work. Under a burst, one processor is not enough for all the requests
// at once. On 2 CPUs, one processor took `faas bench`'s sync p50 from
// 0.86 to 0.61-0.68 ms and the CPU a job costs in all processes from 1.6
// to 1.0 ms, but cost 4% of the async throughput; following the demand
// keeps both.
func adaptProcs(ctx context.Context, most int) {
	counts := []metrics.Sample{
		{Name: "/sched/goroutines/running:goroutines"},
		{Name: "/sched/goroutines/runnable:goroutines"},
	}
	procs := runtime.GOMAXPROCS(0)
	tick := time.NewTicker(procsSample)
	defer tick.Stop()
	var n int         // counts in this window
	var sum uint64    // their sum
	held := procsHold // windows since processors were last added
	idle := false     // counting every procsIdleSample
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(counts)
		// Less this goroutine, which runs as it reads.
		count := max(counts[0].Value.Uint64()+counts[1].Value.Uint64(), 1) - 1
		if idle {
			if count > 0 { // work again: a window at the full pace
				idle = false
				tick.Reset(procsSample)
			}
			continue
		}
		sum += count
		if n++; n < procsWindow {
			continue
		}
		held++
		want := float64(sum) / procsWindow
		if next := nextProcs(procs, want, most); next > procs || next < procs && held >= procsHold {
			runtime.GOMAXPROCS(next)
			if next > procs {
				held = 0
			}
			procs = next
		}
		if procs == 1 && want <= procsIdle {
			idle = true
			tick.Reset(procsIdleSample)
		}
		n, sum = 0, 0
	}
}

// nextProcs is the processors to use after cur, when want goroutines
// were running or ready to run on average, between 1 and most: one more
// while more than one goroutine waited for a processor, one fewer while
// the work would have left one processor idle. Between the two a load
// stays where it is: on one processor the same work keeps more
// goroutines waiting than on two.
func nextProcs(cur int, want float64, most int) int {
	switch {
	case want > float64(cur)+1 && cur < most:
		return cur + 1
	case want < float64(cur)-0.9 && cur > 1:
		return cur - 1
	}
	return cur
}
