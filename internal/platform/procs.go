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
// for a moment).
const (
	procsSample = 10 * time.Millisecond
	procsWindow = 10
	procsHold   = 10
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
	var sum uint64
	held := procsHold // windows since processors were last added
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(counts)
		// Less this goroutine, which runs as it reads.
		sum += counts[0].Value.Uint64() + counts[1].Value.Uint64() - 1
		if n < procsWindow {
			continue
		}
		held++
		next := nextProcs(procs, float64(sum)/procsWindow, most)
		if next > procs || next < procs && held >= procsHold {
			runtime.GOMAXPROCS(next)
			if next > procs {
				held = 0
			}
			procs = next
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
