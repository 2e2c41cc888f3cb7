package platform

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Not parallel: the collector's target and the processors are the
// process's.
func TestTuneRuntime(t *testing.T) {
	prevGC, prevProcs := debug.SetGCPercent(100), runtime.GOMAXPROCS(0)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); runtime.GOMAXPROCS(prevProcs) })
	current := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }

	for _, tc := range []struct {
		role, gogc, gomaxprocs string
		wantGC                 int
		adapts                 bool
	}{
		{role: "up", wantGC: gcPercent, adapts: true},
		{role: "frontend", wantGC: gcPercent},
		{role: "worker", wantGC: gcPercent},
		{role: "jqmanager", wantGC: 100},
		{role: "sandbox", wantGC: 100},
		// What the environment sets is the runtime's to apply.
		{role: "frontend", gogc: "150", wantGC: 100},
		{role: "up", gomaxprocs: "6", wantGC: gcPercent},
	} {
		t.Run(tc.role+"/"+tc.gogc+tc.gomaxprocs, func(t *testing.T) {
			debug.SetGCPercent(100)
			runtime.GOMAXPROCS(6)
			if tc.gogc != "" {
				t.Setenv("GOGC", tc.gogc)
			}
			if tc.gomaxprocs != "" {
				t.Setenv("GOMAXPROCS", tc.gomaxprocs)
			}
			stop := TuneRuntime(tc.role)
			defer stop()
			require.Equal(t, tc.wantGC, current(), "GOGC")
			if tc.adapts {
				// This test process is idle: down to one processor,
				// where nothing changes any more.
				require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, procsSample)
				stop()
				require.Equal(t, 6, runtime.GOMAXPROCS(0), "GOMAXPROCS after stop")
				return
			}
			time.Sleep(3 * procsWindow * procsSample)
			require.Equal(t, 6, runtime.GOMAXPROCS(0), "GOMAXPROCS")
		})
	}
}

// Not parallel either: it loads the process's processors.
func TestAdaptProcsAddsUnderLoad(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { adaptProcs(ctx, 2) })
	// Three goroutines always ready to run keep two waiting on one
	// processor.
	busy, stop := context.WithCancel(context.Background())
	for range 3 {
		wg.Go(func() {
			for busy.Err() == nil {
				runtime.Gosched()
			}
		})
	}
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 2 }, 10*time.Second, procsSample)
	stop()
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, procsSample, "back to one once idle")
	cancel()
	wg.Wait()
}

func TestNextProcs(t *testing.T) {
	for _, tc := range []struct {
		cur        int
		want       float64
		most, next int
	}{
		{cur: 1, want: 0, most: 2, next: 1},
		{cur: 1, want: 1.9, most: 2, next: 1}, // a chain with some handoffs queued: stays
		{cur: 1, want: 2.1, most: 2, next: 2}, // more than one waits
		{cur: 2, want: 9, most: 2, next: 2},   // no more than most
		{cur: 2, want: 1.5, most: 2, next: 2}, // between the two: stays
		{cur: 2, want: 1, most: 2, next: 1},   // one would do
		{cur: 4, want: 0.2, most: 8, next: 3}, // one at a time
		{cur: 1, want: 0, most: 1, next: 1},   // one CPU
		{cur: 4, want: 5.5, most: 8, next: 5}, //
	} {
		require.Equal(t, tc.next, nextProcs(tc.cur, tc.want, tc.most), "%+v", tc)
	}
}
