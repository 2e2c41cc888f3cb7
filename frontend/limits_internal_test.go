package frontend

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJobTallyPlan: a tally younger than its TTL is used as it is; an
// older one is used while a sum runs in the background only when the
// submission leaves at least half the quota free, and only one such sum
// runs at a time; otherwise, or without a tally, the store sums first.
func TestJobTallyPlan(t *testing.T) {
	t.Parallel()
	const ttl, limit = time.Second, 1000
	now := time.Now()
	type plan struct{ sumNow, sumLater bool }
	for _, tc := range []struct {
		name    string
		tallied bool
		bytes   int64
		age     time.Duration
		summing bool
		n       int64
		want    plan
	}{
		{"no tally", false, 0, 0, false, 10, plan{sumNow: true}},
		{"fresh, near the limit", true, 900, ttl / 2, false, 10, plan{}},
		{"stale, far from the limit", true, 100, time.Minute, false, 10, plan{sumLater: true}},
		{"stale, half the limit", true, 490, time.Minute, false, 10, plan{sumLater: true}},
		{"stale, past half the limit", true, 491, time.Minute, false, 10, plan{sumNow: true}},
		{"stale, a sum under way", true, 100, time.Minute, true, 10, plan{}},
		{"stale, a sum under way, past half the limit", true, 600, time.Minute, true, 10, plan{sumNow: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			jt := newJobTallies(ttl, 10)
			if tc.tallied {
				jt.set("ann", tc.bytes, now.Add(-tc.age))
				jt.users["ann"].summing = tc.summing
			}
			var got plan
			got.sumNow, got.sumLater = jt.plan("ann", tc.n, limit, now)
			require.Equal(t, tc.want, got)
			if got.sumLater {
				got.sumNow, got.sumLater = jt.plan("ann", tc.n, limit, now)
				require.Equal(t, plan{}, got, "a second background sum while one runs")
				jt.unplan("ann")
				got.sumNow, got.sumLater = jt.plan("ann", tc.n, limit, now)
				require.Equal(t, plan{sumLater: true}, got, "no new sum after one failed")
			}
		})
	}
}
