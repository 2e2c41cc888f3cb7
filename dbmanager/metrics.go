package dbmanager

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/wire"
)

// batcher is a store that commits concurrent writes together and counts
// its commits (the embedded database).
type batcher interface {
	Batches() (commits, writes uint64)
}

// instrument registers the DB manager's series on cfg.Metrics and returns
// mux's handler timing each operation. The embedded database's size is
// what its directory holds; MongoDB's is the server's business.
func instrument(cfg Config, raw store, mux *wire.Mux) wire.Handler {
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ops := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "faas_store_operation_duration_seconds",
		Help:    "Time the DB manager took to answer a store operation, by operation (the bus method).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs to ~26s
	}, []string{"operation"})
	reg.MustRegister(ops)
	if cfg.DBURL == "" {
		dir := cfg.DataDir
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "faas_store_size_bytes",
			Help: "Bytes the embedded database's files take on disk, its write-ahead log included.",
		}, func() float64 { return float64(dirSize(dir)) }))
	}
	if b, ok := raw.(batcher); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "faas_store_commits_total",
				Help: "Transactions the embedded database's write batcher committed.",
			}, func() float64 { commits, _ := b.Batches(); return float64(commits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "faas_store_batched_writes_total",
				Help: "One-row writes those transactions held; divided by the commits, the mean batch size.",
			}, func() float64 { _, writes := b.Batches(); return float64(writes) }),
		)
	}
	return func(ctx context.Context, method string, body []byte) (any, error) {
		start := time.Now()
		res, err := mux.Serve(ctx, method, body)
		if mux.Has(method) {
			ops.WithLabelValues(method).Observe(time.Since(start).Seconds())
		}
		return res, err
	}
}

// dirSize is the size of the regular files under dir; files that vanish
// while it walks (a checkpointed log) are skipped.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}
