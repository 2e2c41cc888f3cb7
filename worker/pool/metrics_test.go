package pool_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/worker/pool"
	"faas/worker/pool/pooltest"
)

// TestPoolMetrics checks that sandboxes replaced are counted by why, with
// the replacements among those started and the pool's size unchanged.
func TestPoolMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, kind string
		ctx        func() context.Context
		reason     string
	}{
		{"stopped under its job", pooltest.Mode, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx
		}, "stopped"},
		{"crashed", "broken", context.Background, "crash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			p := startConfig(t, tc.kind, pool.Config{Size: 1, Metrics: pool.NewMetrics(reg)})
			res := p.Run(tc.ctx(), job("mia", `function f() { return /^(a+)+(?!c)$/.test('a'.repeat(32) + 'b') }`, `[]`, time.Minute))
			require.NotNil(t, res.Err)
			want := map[string]int{"timeout": 0, "memory": 0, "crash": 0, "stopped": 0}
			want[tc.reason] = 1
			var exp strings.Builder
			exp.WriteString("# HELP faas_sandboxes Sandbox processes alive, busy or idle.\n# TYPE faas_sandboxes gauge\nfaas_sandboxes 1\n")
			exp.WriteString("# HELP faas_sandboxes_started_total Sandbox processes started and ready, replacements included.\n# TYPE faas_sandboxes_started_total counter\nfaas_sandboxes_started_total 2\n")
			exp.WriteString("# HELP faas_sandboxes_replaced_total Sandbox processes ended and replaced, by reason: timeout (killed past its job's limit), memory, crash, stopped (the job's lease was lost).\n# TYPE faas_sandboxes_replaced_total counter\n")
			for _, r := range []string{"crash", "memory", "stopped", "timeout"} {
				fmt.Fprintf(&exp, "faas_sandboxes_replaced_total{reason=%q} %d\n", r, want[r])
			}
			// The replacement starts in the background.
			assert.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.NoError(c, testutil.GatherAndCompare(reg, strings.NewReader(exp.String())))
			}, 10*time.Second, 20*time.Millisecond)
			problems, err := testutil.GatherAndLint(reg)
			require.NoError(t, err)
			require.Empty(t, problems)
		})
	}
}
