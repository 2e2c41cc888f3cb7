// Package backoff spaces out the retries of an operation that keeps
// failing: exponentially longer waits, capped, with jitter so that many
// processes that failed together do not retry in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff. The wait after n consecutive failures
// is Base doubled n-1 times, capped at Max, of which the upper half is
// random: it lies in [d/2, d).
type Policy struct {
	// Base is the longest wait after the first failure.
	Base time.Duration
	// Max caps the longest wait.
	Max time.Duration
}

// Delay is the wait after the given number of consecutive failures (one
// or more).
func (p Policy) Delay(failures int) time.Duration { return p.delay(failures, rand.Float64()) }

// delay is Delay with the jitter r in [0, 1) given, for tests.
func (p Policy) delay(failures int, r float64) time.Duration {
	d := p.Base
	// Doubling in a loop rather than by shifting: failures can grow past
	// any shift a Duration survives.
	for i := 1; i < failures && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d/2 + time.Duration(r*float64(d/2))
}

// Sleep waits Delay(failures) or until ctx ends, and reports whether ctx
// is still live.
func (p Policy) Sleep(ctx context.Context, failures int) bool {
	t := time.NewTimer(p.Delay(failures))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
