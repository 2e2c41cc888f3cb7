package pool

import (
	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/faas"
)

// Metrics are a pool's series, registered by its worker.
type Metrics struct {
	started  prometheus.Counter
	replaced *prometheus.CounterVec
	live     prometheus.Gauge
	wait     prometheus.Histogram
}

// NewMetrics registers a pool's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_sandboxes_started_total",
			Help: "Sandbox processes started and ready, replacements included.",
		}),
		replaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_sandboxes_replaced_total",
			Help: "Sandbox processes ended and replaced, by reason: timeout (killed past its job's limit), memory, crash, stopped (the job's lease was lost).",
		}, []string{"reason"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faas_sandboxes",
			Help: "Sandbox processes alive, busy or idle.",
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "faas_sandbox_wait_seconds",
			Help: "Time a job ready to run waited in its worker for memory and an idle sandbox; the jobs a worker leases ahead wait here.",
			// From a sandbox that was idle to one behind long jobs.
			Buckets: []float64{.0001, .001, .005, .01, .025, .1, .5, 1, 5, 30},
		}),
	}
	for _, r := range []string{"timeout", "memory", "crash", "stopped"} {
		m.replaced.WithLabelValues(r)
	}
	reg.MustRegister(m.started, m.replaced, m.live, m.wait)
	return m
}

// replaceReason names why a sandbox that broke under a job had to go,
// from what became of the job.
func replaceReason(err *faas.Error) string {
	if err == nil {
		return "crash"
	}
	switch err.Code {
	case faas.Timeout:
		return "timeout"
	case faas.MemoryLimit:
		return "memory"
	case faas.Unavailable:
		return "stopped"
	}
	return "crash"
}
