package scaler

import (
	"fmt"
	"math"
	"time"

	"faas/proxies/faas"
)

// assumedDuration stands in for the average job duration before any job has
// finished. It errs long: too many workers for a burst of unknown jobs cost
// a cooldown, too few leave users waiting.
const assumedDuration = time.Second

// minDuration floors a measured average: even a trivial job costs a worker
// a few round trips to the queue and the store.
const minDuration = 5 * time.Millisecond

// Policy decides how many workers to run. It scales up at once to what the
// backlog needs and down slowly: only once Cooldown has passed since the
// last time the current number was needed, then at most halving per step,
// with a new cooldown before the next step. A burst that comes back within
// the cooldown so finds the workers still there, and counts never flap.
//
// Policy is pure apart from that one remembered time, which the caller's
// clock sets; it is not safe for concurrent use.
type Policy struct {
	Min, Max int
	// DrainTarget is how soon the backlog (queued and running jobs) should
	// be worked off.
	DrainTarget time.Duration
	Cooldown    time.Duration
	// Concurrency is how many jobs one worker runs at once.
	Concurrency int

	// lastNeeded is the last time the current count (or more) was needed.
	lastNeeded time.Time
}

// Decision is one outcome of the policy, with the numbers behind it so
// that the scaler can log why.
type Decision struct {
	// Current is the count the policy started from; Target the count it
	// wants now.
	Current, Target int
	// Need is the count that drains the backlog in time, Busy the count
	// still running jobs, both before the Min/Max bounds.
	Need, Busy int
	// Duration is the job duration the need was computed with.
	Duration time.Duration
	// Reason says in a few words why Target is what it is.
	Reason string
}

// Decide returns the worker count for stats, given that current workers are
// (meant to be) running now.
func (p *Policy) Decide(now time.Time, s faas.Stats, current int) Decision {
	if p.lastNeeded.IsZero() {
		// Whatever runs when the scaler starts was needed a moment ago as
		// far as anyone knows: do not cut it before a cooldown.
		p.lastNeeded = now
	}
	conc := max(p.Concurrency, 1)
	d := Decision{Current: current, Duration: assumedDuration}
	if s.Completed > 0 && s.AvgDuration > 0 {
		d.Duration = max(s.AvgDuration, minDuration)
	}
	// Jobs held back by their users' running limit wait for those users'
	// own jobs, not for workers: more workers would sit idle.
	queued, running := max(s.Queued-max(s.Held, 0), 0), max(s.Running, 0)
	d.Busy = ceilDiv(running, conc)
	if work := float64(queued + running); work > 0 && p.DrainTarget > 0 {
		// Workers needed = work x duration / (target x concurrency), in
		// floating point so a huge backlog cannot overflow.
		need := math.Ceil(work * float64(d.Duration) / (float64(p.DrainTarget) * float64(conc)))
		d.Need = int(min(need, math.MaxInt32))
	}
	// Busy keeps workers that still run jobs from being stopped; it never
	// scales up. Running counts a job until its outcome is in the store,
	// so under a burst it outgrows the workers' slots by the outcomes on
	// their way: scaling up on it started eight workers for a burst that
	// one drained in three seconds, and each new worker's outcomes
	// raised it again.
	want := p.bound(max(d.Need, min(d.Busy, current)))

	switch {
	case want > current:
		d.Target, d.Reason = want, "scale up"
		p.lastNeeded = now
	case want == current:
		d.Target, d.Reason = current, "steady"
		p.lastNeeded = now
	case current > p.Max:
		// Max is a hard limit (it is what the operator pays for): no
		// cooldown when it was lowered under the running count.
		d.Target, d.Reason = p.Max, "above max"
		p.lastNeeded = now
	case now.Sub(p.lastNeeded) < p.Cooldown:
		d.Target = current
		d.Reason = fmt.Sprintf("cooling down, %s left", (p.Cooldown - now.Sub(p.lastNeeded)).Round(time.Millisecond))
	default:
		// Halve, rounding up, but let a last worker go when Min allows.
		step := ceilDiv(current, 2)
		if step == current {
			step = want
		}
		d.Target, d.Reason = max(want, step), "scale down"
		p.lastNeeded = now
	}
	return d
}

// bound clamps n to [Min, Max].
func (p *Policy) bound(n int) int {
	return min(max(n, p.Min), p.Max)
}

// ceilDiv is a/b rounded up, for a >= 0 and b > 0.
func ceilDiv(a, b int) int { return (a + b - 1) / b }
