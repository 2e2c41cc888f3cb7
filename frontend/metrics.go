package frontend

import (
	"errors"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"faas/internal/metrics"
	"faas/proxies/faas"
)

// httpMetrics are the frontend's series. Routes are Gin's templates
// (/u/:u/fn/:f/run), never paths, so a user or job id never becomes a
// label value.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
}

// newHTTPMetrics registers the frontend's series on reg; waits reads how
// many requests are waiting for jobs right now.
func newHTTPMetrics(reg prometheus.Registerer, waits func() int) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_http_requests_total",
			Help: "HTTP requests answered, by route template and status class (2xx, 4xx, ...).",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "faas_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route template, including any ?wait.",
			// From a cached token check to a ?wait of a minute.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faas_http_rejected_total",
			Help: "Requests answered 429, by the limit that refused them.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "faas_http_waits_in_progress",
			Help: "Requests waiting for a job to finish (?wait) or following its logs.",
		}, func() float64 { return float64(waits()) }))
	return m
}

// observe counts one answered request.
func (m *httpMetrics) observe(c *gin.Context, route string, took time.Duration) {
	status := c.Writer.Status()
	m.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
	if status == 429 {
		m.rejected.WithLabelValues(c.GetString(rejectKey)).Inc()
	}
}

// rejectKey is where fail leaves the name of the limit behind a 429.
const rejectKey = "faas.reject"

// rejectReason names the limit behind a too_many_requests error: one of
// the frontend's own, or else the JQ manager's bound on a user's pending
// jobs, the only one it reports.
func rejectReason(err error) string {
	if rl := (*retryLater)(nil); errors.As(err, &rl) && rl.reason != "" {
		return rl.reason
	}
	return "pending_jobs"
}

// routeOf is the request's route template, or a fixed value for requests
// that matched none, whose paths are anyone's to choose.
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// serveMetrics answers a scrape of what the configuration says to serve,
// to bearers of FAAS_METRICS_TOKEN when it is set.
func (s *Server) serveMetrics(c *gin.Context) {
	if !metrics.Authorized(c.Request, s.cfg.MetricsToken) {
		s.fail(c, faas.Errorf(faas.Unauthorized, "/metrics needs the bearer token set in FAAS_METRICS_TOKEN"))
		return
	}
	metrics.Handler(s.cfg.Scrape, "").ServeHTTP(c.Writer, c.Request)
}
