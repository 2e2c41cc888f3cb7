package dbmanager

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/wire"
)

// instrument registers the DB manager's series on cfg.Metrics and returns
// mux's handler timing each operation. The embedded database's size is
// what its directory holds; MongoDB's is the server's business.
func instrument(cfg Config, mux *wire.Mux) wire.Handler {
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
