package platform

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// Not parallel: the collector's target is the process's.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	current := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }

	for _, tc := range []struct {
		role, gogc string
		want       int
	}{
		{role: "up", want: gcPercent},
		{role: "frontend", want: gcPercent},
		{role: "worker", want: gcPercent},
		{role: "jqmanager", want: 100},
		{role: "sandbox", want: 100},
		{role: "frontend", gogc: "150", want: 100}, // GOGC is the runtime's to apply
	} {
		debug.SetGCPercent(100)
		if tc.gogc != "" {
			t.Setenv("GOGC", tc.gogc)
		}
		TuneGC(tc.role)
		require.Equal(t, tc.want, current(), "role %s, GOGC %q", tc.role, tc.gogc)
	}
}
