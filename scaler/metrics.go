package scaler

import "github.com/prometheus/client_golang/prometheus"

// scalerMetrics are the scaler's series: what it asked for, what runs, and
// how often it changed its mind.
type scalerMetrics struct {
	workers  prometheus.Gauge
	target   prometheus.Gauge
	scalings *prometheus.CounterVec
	failures prometheus.Counter
}

func newScalerMetrics(reg prometheus.Registerer) *scalerMetrics {
	m := &scalerMetrics{
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faas_scaler_workers",
			Help: "Workers the backend reported at the last scaling step.",
		}),
		target: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faas_scaler_target_workers",
			Help: "Workers the policy asked for at the last scaling step.",
		}),
		scalings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_scaler_scalings_total",
			Help: "Changes of the worker count the backend carried out, by direction (up or down).",
		}, []string{"direction"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_scaler_step_failures_total",
			Help: "Scaling steps that failed: the queue or the backend did not answer.",
		}),
	}
	m.scalings.WithLabelValues("up")
	m.scalings.WithLabelValues("down")
	if reg == nil {
		reg = prometheus.NewRegistry() // nobody reads it
	}
	reg.MustRegister(m.workers, m.target, m.scalings, m.failures)
	return m
}

// scaled counts a change from one worker count to another.
func (m *scalerMetrics) scaled(from, to int) {
	if to > from {
		m.scalings.WithLabelValues("up").Inc()
	} else if to < from {
		m.scalings.WithLabelValues("down").Inc()
	}
}
