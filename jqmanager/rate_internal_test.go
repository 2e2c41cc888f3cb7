package jqmanager

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRateMeter: the rate is there from the first completion, whoever
// asks, and forgets what is older than the window.
func TestRateMeter(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_000_000, 0)
	r := newRateMeter(t0)
	require.Zero(t, r.perSecond(t0))
	r.add(t0.Add(100 * time.Millisecond))
	require.InDelta(t, 1.0, r.perSecond(t0.Add(500*time.Millisecond)), 1e-9, "one job in the first second")
	for i := range 10 {
		r.add(t0.Add(time.Duration(i) * time.Second))
	}
	require.InDelta(t, 11.0/10, r.perSecond(t0.Add(10*time.Second)), 1e-9, "11 jobs in 10 s")
	require.InDelta(t, 4.0/60, r.perSecond(t0.Add(65*time.Second)), 1e-9, "the last minute holds the jobs of seconds 6 to 9")
	require.Zero(t, r.perSecond(t0.Add(2*time.Minute)), "all older than the window")
}
