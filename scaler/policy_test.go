package scaler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"faas/proxies/faas"
)

// testPolicy is min 1, max 8, backlog drained in 10s, 30s cooldown, two
// jobs per worker.
func testPolicy() Policy {
	return Policy{Min: 1, Max: 8, DrainTarget: 10 * time.Second, Cooldown: 30 * time.Second, Concurrency: 2}
}

// known is stats with a measured average duration.
func known(queued, running int, avg time.Duration) faas.Stats {
	return faas.Stats{Queued: queued, Running: running, Completed: 100, AvgDuration: avg}
}

func TestPolicyDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(*Policy)
		stats   faas.Stats
		current int
		// since is how long ago the current count was last needed; zero
		// means the policy's first decision.
		since time.Duration
		want  int
	}{
		{name: "idle stays at min", stats: known(0, 0, time.Second), current: 1, since: time.Hour, want: 1},
		{name: "zero stats from nothing go to min", current: 0, want: 1},
		{name: "zero stats keep what runs at start", current: 5, want: 5},
		{name: "unknown duration assumes a second", stats: faas.Stats{Queued: 30}, current: 1, want: 2},
		{name: "burst scales up at once", stats: known(100, 0, time.Second), current: 1, since: time.Second, want: 5},
		{name: "bigger burst scales up to max", stats: known(160, 0, time.Second), current: 2, want: 8},
		{name: "burst bounded by max", stats: known(10000, 0, time.Second), current: 1, want: 8},
		{name: "fast jobs need one", stats: known(20, 0, 100*time.Millisecond), current: 1, want: 1},
		{name: "slow jobs need more", stats: known(20, 0, 5*time.Second), current: 1, want: 5},
		{name: "running jobs count as backlog", stats: known(2, 2, 10*time.Second), current: 1, want: 2},
		{name: "held jobs are no backlog", stats: faas.Stats{Queued: 10000, Held: 9980, Completed: 100, AvgDuration: time.Second}, current: 1, want: 1},
		{name: "tiny average is floored", stats: known(8000, 0, time.Nanosecond), current: 1, want: 2},
		{name: "no scale down within cooldown", stats: known(0, 0, time.Second), current: 8, since: 29 * time.Second, want: 8},
		{name: "down after cooldown halves", stats: known(0, 0, time.Second), current: 8, since: 31 * time.Second, want: 4},
		{name: "halving rounds up", stats: known(0, 0, time.Second), current: 3, since: time.Minute, want: 2},
		{name: "down no further than needed", stats: known(60, 0, time.Second), current: 4, since: time.Minute, want: 3},
		{name: "never below running", stats: known(0, 12, 100*time.Millisecond), current: 8, since: time.Minute, want: 6},
		{name: "running bounded by max", stats: known(0, 40, time.Second), current: 8, want: 8},
		{name: "outcomes in flight beyond the slots do not scale up", stats: known(400, 38, 20*time.Microsecond), current: 4, want: 4},
		{
			name:   "min respected going down",
			change: func(p *Policy) { p.Min = 3 },
			stats:  known(0, 0, time.Second), current: 4, since: time.Minute, want: 3,
		},
		{
			name:    "below min goes up to min",
			change:  func(p *Policy) { p.Min = 3 },
			current: 1, since: time.Second, want: 3,
		},
		{
			name:   "min zero reaches zero",
			change: func(p *Policy) { p.Min = 0 },
			stats:  known(0, 0, time.Second), current: 1, since: time.Minute, want: 0,
		},
		{
			name:   "min zero wakes for one job",
			change: func(p *Policy) { p.Min = 0 },
			stats:  faas.Stats{Queued: 1}, current: 0, since: time.Minute, want: 1,
		},
		{
			name:   "above a lowered max drops at once",
			change: func(p *Policy) { p.Max = 4 },
			stats:  known(100, 0, time.Second), current: 8, since: time.Second, want: 4,
		},
		{
			name:   "concurrency one needs twice the workers",
			change: func(p *Policy) { p.Concurrency = 1 },
			stats:  known(40, 0, time.Second), current: 1, want: 4,
		},
		{
			name:   "zero concurrency counts as one",
			change: func(p *Policy) { p.Concurrency = 0 },
			stats:  known(40, 0, time.Second), current: 1, want: 4,
		},
		{name: "negative stats are ignored", stats: faas.Stats{Queued: -5, Running: -3, AvgDuration: -time.Second}, current: 1, want: 1},
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := testPolicy()
			if tt.change != nil {
				tt.change(&p)
			}
			if tt.since > 0 {
				p.lastNeeded = now.Add(-tt.since)
			}
			d := p.Decide(now, tt.stats, tt.current)
			assert.Equal(t, tt.want, d.Target, "decision %+v", d)
			assert.Equal(t, tt.current, d.Current)
			assert.NotEmpty(t, d.Reason)
		})
	}
}

// TestPolicyOverTime plays a burst and its aftermath through one policy:
// up at once, held through the cooldown, down by halves with a cooldown
// between steps, and a returning burst restarting the cooldown.
func TestPolicyOverTime(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	idle := known(0, 0, time.Second)
	burst := known(200, 0, time.Second)
	steps := []struct {
		at    time.Duration
		stats faas.Stats
		want  int
	}{
		{0, idle, 1},
		{2 * time.Second, burst, 8},
		{10 * time.Second, idle, 8},
		{20 * time.Second, burst, 8}, // needed again: the cooldown restarts
		{45 * time.Second, idle, 8},
		{51 * time.Second, idle, 4},
		{60 * time.Second, idle, 4},
		{82 * time.Second, idle, 2},
		{113 * time.Second, idle, 1},
		{200 * time.Second, idle, 1},
	}
	current := 1
	for _, s := range steps {
		d := p.Decide(start.Add(s.at), s.stats, current)
		assert.Equal(t, s.want, d.Target, "at %s: %+v", s.at, d)
		current = d.Target
	}
}
