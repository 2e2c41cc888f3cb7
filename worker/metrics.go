package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/faas"
	"faas/worker/pool"
)

// jobMetrics are the worker's series about the jobs it ran.
type jobMetrics struct {
	duration *prometheus.HistogramVec
	billed   prometheus.Counter
}

func newJobMetrics(reg prometheus.Registerer) *jobMetrics {
	m := &jobMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "faas_job_duration_seconds",
			Help: "Execution time of the jobs this worker recorded, by outcome (ok or the error code).",
			// From a trivial function to the longest time limit.
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"outcome"}),
		billed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_billed_seconds_total",
			Help: "Execution time billed to users for the jobs this worker recorded.",
		}),
	}
	reg.MustRegister(m.duration, m.billed)
	return m
}

// recorded counts a job whose outcome the Store holds now. The Store
// bills what the completion says, which the queue caps only for attempts
// that claim more than their lease lasted, which this worker never does.
func (m *jobMetrics) recorded(c faas.Completion) {
	out := "ok"
	if c.Error != nil {
		out = string(c.Error.Code)
	}
	m.duration.WithLabelValues(out).Observe(c.Duration.Seconds())
	m.billed.Add(c.Duration.Seconds())
}

// registries builds the worker's series and its pool's on reg, or on a
// registry nobody reads when reg is nil.
func registries(reg prometheus.Registerer) (*jobMetrics, *pool.Metrics) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return newJobMetrics(reg), pool.NewMetrics(reg)
}
