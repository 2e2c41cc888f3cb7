package platform

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
)

// gcPercent is the collector's growth target (GOGC) of the platform's
// processes. Their live heaps are small (tens of MB) and they allocate per
// message, so at Go's 100 the collector ran often: at 400 `faas bench`
// gave 6-20% more async jobs/s and 8-13% more for the polling workload, for
// about 45 MB more at the peak of `faas up`.
const gcPercent = 400

// TuneRuntime sets the Go runtime of the process running role: the
// collector's target (tuneGC) and, for `faas up`, its processors, which
// follow the demand (adaptProcs) until stop, which gives back the count it
// found, so that a platform started after it (the bench's preloaded run)
// may use them all again. What the environment sets (GOGC, GOMAXPROCS)
// wins.
func TuneRuntime(role string) (stop func()) {
	tuneGC(role)
	if _, set := os.LookupEnv("GOMAXPROCS"); set || role != "up" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	most := runtime.GOMAXPROCS(0)
	go func() {
		defer close(done)
		adaptProcs(ctx, most)
	}()
	return func() {
		cancel()
		<-done
		runtime.GOMAXPROCS(most)
	}
}

// tuneGC sets the collector's target of the process running role to
// gcPercent, unless GOGC says otherwise. The JQ manager keeps Go's
// default: its heap grows with the backlog (265 bytes a queued job), and
// at 400 a backlog of 100,000 jobs took 168 MB instead of 107. So does a
// sandbox, whose heap is the user's and is held to a memory limit.
func tuneGC(role string) {
	if role == "jqmanager" || role == "sandbox" {
		return
	}
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(gcPercent)
}
