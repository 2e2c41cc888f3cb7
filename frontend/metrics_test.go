package frontend_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads the frontend's /metrics with the given Authorization
// header value (none if empty) and returns the status and body.
func (p *platform) scrape(t testing.TB, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", p.url+"/metrics", nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := p.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// series is a scrape parsed: family name, then the label pairs of one
// series (name=value, sorted, as expfmt keeps them), to its value.
type series map[string]map[string]float64

func parseScrape(t testing.TB, body []byte) series {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	out := series{}
	for name, f := range fams {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			out[name][key] = value(f.GetType(), m)
		}
	}
	return out
}

// value is a series' number: a histogram's is its count of observations.
func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// TestMetricsAfterWorkload runs a known mix of jobs through the real
// platform and checks that the frontend's /metrics, which serves every
// role's registry as `faas up` does, counts exactly that mix, names no user
// and no job, and passes the client library's linter.
func TestMetricsAfterWorkload(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "metrics")
	p.upload(t, user, token, "add", addSrc)
	p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/spin?timeout=200ms", token, []byte(`function spin(){ for(;;){} }`))
	p.upload(t, user, token, "boom", `function boom(){ throw new Error("no") }`)

	const oks, timeouts, failures = 3, 2, 1
	var ids []string
	for range oks {
		ids = append(ids, p.submit(t, user, token, "add", "[1,2]"))
	}
	for range timeouts {
		ids = append(ids, p.submit(t, user, token, "spin", ""))
	}
	for range failures {
		ids = append(ids, p.submit(t, user, token, "boom", ""))
	}
	for _, id := range ids {
		p.awaitJob(t, token, id)
	}
	p.expect(t, http.StatusNotFound, "GET", "/no/such/"+user, token, nil)

	want := map[string]map[string]float64{
		"faas_jobs_finished_total": {
			"component=jqmanager,outcome=ok,":             oks,
			"component=jqmanager,outcome=timeout,":        timeouts,
			"component=jqmanager,outcome=function_error,": failures,
		},
		"faas_jobs_submitted_total":   {"component=jqmanager,": oks + timeouts + failures},
		"faas_jobs_started_total":     {"component=jqmanager,": oks + timeouts + failures},
		"faas_job_queue_wait_seconds": {"component=jqmanager,": oks + timeouts + failures},
		"faas_jobs_queued":            {"component=jqmanager,": 0},
		"faas_jobs_running":           {"component=jqmanager,": 0},
		"faas_leases_lost_total":      {"component=jqmanager,": 0},
		"faas_job_duration_seconds": {
			"component=worker,outcome=ok,":             oks,
			"component=worker,outcome=timeout,":        timeouts,
			"component=worker,outcome=function_error,": failures,
		},
		// The sandbox's own interrupt ends a spinning job in time:
		// nothing was killed.
		"faas_sandboxes_replaced_total": {
			"component=worker,reason=timeout,": 0,
			"component=worker,reason=memory,":  0,
			"component=worker,reason=crash,":   0,
			"component=worker,reason=stopped,": 0,
		},
		"faas_sandboxes":                        {"component=worker,": 2},
		"faas_sandbox_wait_seconds":             {"component=worker,": oks + timeouts + failures},
		"faas_sandboxes_started_total":          {"component=worker,": 2},
		"faas_workers_connected":                {"component=jqmanager,": 1},
		"faas_http_waits_in_progress":           {"component=frontend,": 0},
		"faas_store_operation_duration_seconds": nil, // present, counts vary
		"faas_store_size_bytes":                 nil,
		"faas_build_info":                       nil,
		"go_goroutines":                         nil,
		"process_cpu_seconds_total":             nil,
	}
	var got series
	var body []byte
	// The client may see a job finished in the Store a moment before the
	// worker and the queue have counted it.
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		status, b := p.scrape(t, "")
		if !assert.Equal(c, http.StatusOK, status) {
			return
		}
		body, got = b, parseScrape(t, b)
		for name, values := range want {
			assert.Contains(c, got, name)
			for labels, v := range values {
				assert.Equal(c, v, got[name][labels], "%s{%s}", name, labels)
			}
		}
	}, 20*time.Second, 50*time.Millisecond)
	if t.Failed() {
		t.FailNow()
	}

	runs := got["faas_http_requests_total"]["component=frontend,route=/u/:u/fn/:f/run,status=2xx,"]
	require.Equal(t, float64(oks+timeouts+failures), runs)
	require.Equal(t, 1.0, got["faas_http_requests_total"]["component=frontend,route=unmatched,status=4xx,"])
	require.Positive(t, got["faas_billed_seconds_total"]["component=worker,"])
	for _, role := range []string{"frontend", "jqmanager", "dbmanager", "worker"} {
		require.Contains(t, got["go_goroutines"], "component="+role+",", "runtime series of %s", role)
	}
	// No label holds a user or a job: the scrape never names them.
	require.NotContains(t, string(body), user)
	for _, id := range ids {
		require.NotContains(t, string(body), id)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestMetricsToken checks that FAAS_METRICS_TOKEN closes /metrics to
// scrapers without it, and that 429s are counted by the limit behind them.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	const metricsToken = "scraper-token-for-tests"
	p := startPlatform(t, rateLimit(0.001, 2), func(s *settings) { s.frontend.MetricsToken = metricsToken })
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"operator token", "Bearer " + adminToken, http.StatusUnauthorized},
		{"not bearer", "Basic " + metricsToken, http.StatusUnauthorized},
		{"metrics token", "Bearer " + metricsToken, http.StatusOK},
	} {
		status, body := p.scrape(t, tc.auth)
		require.Equal(t, tc.status, status, "%s: %s", tc.name, body)
	}

	user, token := p.newUser(t, "limited")
	// The user's bucket holds two requests; the third is refused.
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	p.expect(t, http.StatusTooManyRequests, "GET", "/u/"+user+"/fn", token, nil)
	status, body := p.scrape(t, "Bearer "+metricsToken)
	require.Equal(t, http.StatusOK, status)
	got := parseScrape(t, body)
	require.Equal(t, map[string]float64{"component=frontend,reason=user_rate,": 1}, got["faas_http_rejected_total"])
	require.Equal(t, 1.0, got["faas_http_requests_total"]["component=frontend,route=/u/:u/fn,status=4xx,"])
}

// TestAccessAndJobLog checks the lines an operator reads at info: one per
// request, naming the route template and the user, never the token nor
// the query; and one per finished job, from the JQ manager.
func TestAccessAndJobLog(t *testing.T) {
	t.Parallel()
	logs := filepath.Join(t.TempDir(), "logs")
	p := startPlatform(t, logTo(createFile(t, logs)))
	user, token := p.newUser(t, "logged")
	p.upload(t, user, token, "add", addSrc)
	p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/add/run?wait=20s&secret=in-query", token, []byte("[1,2]"))

	var requests []string
	require.Eventually(t, func() bool {
		requests = nil
		finished := false
		for l := range strings.Lines(readFile(t, logs)) {
			switch {
			case strings.Contains(l, "msg=request "):
				requests = append(requests, l)
			case strings.Contains(l, `msg="job finished"`):
				// The worker's own line, at debug, may come after it.
				finished = finished || strings.Contains(l, "level=INFO") && strings.Contains(l, "user="+user) &&
					strings.Contains(l, "function=add") && strings.Contains(l, "outcome=ok") && strings.Contains(l, "duration_ms=")
			}
		}
		return finished
	}, 10*time.Second, 20*time.Millisecond, "no info line for the finished job")
	var run string
	for _, l := range requests {
		require.Contains(t, l, "level=INFO")
		require.NotContains(t, l, token)
		require.NotContains(t, l, "in-query")
		if strings.Contains(l, "route=/u/:u/fn/:f/run") {
			run = l
		}
	}
	require.NotEmpty(t, run, "the run has its access line")
	for _, want := range []string{"method=POST", "status=200", "user=" + user, "duration_ms="} {
		require.Contains(t, run, want)
	}
}
