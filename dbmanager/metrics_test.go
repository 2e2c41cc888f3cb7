package dbmanager_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/wire"
)

// TestManagerMetrics times the operations served by method, leaves out
// methods nobody routes, whatever a peer sends, and reports the embedded
// database's size and commits.
func TestManagerMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := sqliteConfig(t)
	cfg.Metrics = reg
	m, _ := start(t, cfg, slog.New(slog.DiscardHandler))
	c := dial(t, m.Endpoint(), 0)
	roundTrip(t, c)
	ctx := context.Background()
	_, _, err := c.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x => x", Timeout: time.Second})
	require.NoError(t, err)
	_, err = c.CreateJob(ctx, faas.Job{ID: "job-1", Owner: "ada", Function: "f", Args: []byte("[]")})
	require.NoError(t, err)

	raw, err := wire.Dial(m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	err = raw.Call(ctx, "db.made_up_method", struct{}{}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))

	fams, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	ops := map[string]uint64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			switch {
			case f.GetName() == "faas_store_operation_duration_seconds":
				ops[s.GetLabel()[0].GetValue()] = s.GetHistogram().GetSampleCount()
			case s.GetCounter() != nil:
				got[f.GetName()] = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				got[f.GetName()] = s.GetGauge().GetValue()
			}
		}
	}
	// roundTrip's ping, registration and two lookups, then ours.
	require.Equal(t, map[string]uint64{
		dbproxy.MethodPing:        1,
		dbproxy.MethodCreateUser:  1,
		dbproxy.MethodUserByToken: 1,
		dbproxy.MethodUser:        1,
		dbproxy.MethodPutFunction: 1,
		dbproxy.MethodCreateJob:   1,
	}, ops)
	require.Positive(t, got["faas_store_size_bytes"])
	require.Positive(t, got["faas_store_commits_total"], "the job went through the batcher")
	require.GreaterOrEqual(t, got["faas_store_batched_writes_total"], got["faas_store_commits_total"])
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
