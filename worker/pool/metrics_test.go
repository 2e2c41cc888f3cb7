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
				assert.NoError(c, testutil.GatherAndCompare(reg, strings.NewReader(exp.String()),
					"faas_sandboxes", "faas_sandboxes_started_total", "faas_sandboxes_replaced_total"))
			}, 10*time.Second, 20*time.Millisecond)
			count, _ := sandboxWait(t, reg)
			assert.Equal(t, uint64(1), count, "the job's wait for its sandbox")
			problems, err := testutil.GatherAndLint(reg)
			require.NoError(t, err)
			require.Empty(t, problems)
		})
	}
}

// sandboxWait reads the count and sum of faas_sandbox_wait_seconds.
func sandboxWait(t *testing.T, reg *prometheus.Registry) (count uint64, sum float64) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "faas_sandbox_wait_seconds" {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no faas_sandbox_wait_seconds")
	return 0, 0
}

// TestPoolMetricsSandboxWait runs two jobs at once on one sandbox: the
// second waits for the first, and the wait is observed.
func TestPoolMetricsSandboxWait(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p := startConfig(t, pooltest.Mode, pool.Config{Size: 1, Metrics: pool.NewMetrics(reg)})
	// Long enough that the second run, however late its goroutine
	// starts, waits more than half of it.
	slow := job("mia", `async function f() { await new Promise(r => setTimeout(r, 500)); return 1 }`, `[]`, time.Minute)
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			assert.Nil(t, p.Run(context.Background(), slow).Err)
		}()
	}
	<-done
	<-done
	count, sum := sandboxWait(t, reg)
	assert.Equal(t, uint64(2), count)
	assert.GreaterOrEqual(t, sum, 0.25, "the second job waited out the first")
}
