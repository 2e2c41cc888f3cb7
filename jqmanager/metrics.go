package jqmanager

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// queueMetrics are the JQ manager's series. No label names a user or a
// job: outcome codes are a short fixed list.
type queueMetrics struct {
	submitted prometheus.Counter
	started   prometheus.Counter
	finished  *prometheus.CounterVec
	leaseLost prometheus.Counter
	exhausted prometheus.Counter
	queueWait prometheus.Histogram
	// ticks counts the schedules' ticks by outcome: fired, or skipped
	// because the queue refused the job for good.
	ticks *prometheus.CounterVec
}

func newQueueMetrics(reg prometheus.Registerer, m *Manager) *queueMetrics {
	q := &queueMetrics{
		submitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_jobs_submitted_total",
			Help: "Jobs accepted into the queue.",
		}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_jobs_started_total",
			Help: "Attempts handed to a worker, a job lost and run again counting once per attempt.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_jobs_finished_total",
			Help: "Jobs finished, by outcome: ok or the error code (function_error, timeout, memory_limit, lost, ...).",
		}, []string{"outcome"}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_leases_lost_total",
			Help: "Attempts whose worker went silent or let the job go.",
		}),
		exhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faas_jobs_attempts_exhausted_total",
			Help: "Jobs failed with outcome lost after FAAS_MAX_ATTEMPTS lost leases.",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "faas_job_queue_wait_seconds",
			Help:    "Time from submission to the first attempt's start.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms to ~4min
		}),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_schedule_ticks_total",
			Help: "Ticks of schedules, by outcome: fired (a job submitted) or skipped (the job refused, as by the pending limit).",
		}, []string{"outcome"}),
	}
	// Series that should start at zero, so that rate() sees the first job.
	q.finished.WithLabelValues(faas.OutcomeOK)
	q.finished.WithLabelValues(string(faas.FunctionError))
	q.finished.WithLabelValues(string(faas.Timeout))
	q.ticks.WithLabelValues(tickFired)
	q.ticks.WithLabelValues(tickSkipped)
	stat := func(name, help string, read func(faas.Stats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			st, _ := m.Stats(context.Background()) // reads memory only, never fails
			return float64(read(st))
		})
	}
	reg.MustRegister(q.submitted, q.started, q.finished, q.leaseLost, q.exhausted, q.queueWait, q.ticks,
		stat("faas_jobs_queued", "Jobs waiting for a worker.", func(s faas.Stats) int { return s.Queued }),
		stat("faas_jobs_running", "Jobs a worker holds.", func(s faas.Stats) int { return s.Running }),
		stat("faas_workers_connected", "Workers that polled or sent a heartbeat within three lease periods.", func(s faas.Stats) int { return s.Workers }),
	)
	return q
}

// jobFinished counts a finished job and logs its one line: at info when it
// succeeded, at warn when it failed, so that an operator who reads warn
// and above sees every failure and timeout.
func (m *Manager) jobFinished(j faas.Job) {
	out := faas.Outcome(j)
	m.metrics.finished.WithLabelValues(out).Inc()
	level := slog.LevelInfo
	if out != faas.OutcomeOK {
		level = slog.LevelWarn
	}
	attrs := []any{"job_id", j.ID, "user", j.Owner, "function", j.Function, "outcome", out,
		"duration_ms", float64(j.Duration.Microseconds()) / 1000, "attempt", j.Attempt}
	if j.Error != nil {
		attrs = append(attrs, "error", j.Error.Message)
	}
	if id := tracing.ID(j.Trace); id != "" {
		attrs = append(attrs, "trace_id", id)
	}
	m.log.Log(context.Background(), level, "job finished", attrs...)
}

// jobStarted counts an attempt and, for a first attempt, how long the job
// waited for it.
func (m *Manager) jobStarted(j faas.Job, now time.Time) {
	m.metrics.started.Inc()
	if j.Attempt == 1 && !j.Created.IsZero() {
		m.metrics.queueWait.Observe(now.Sub(j.Created).Seconds())
	}
}
