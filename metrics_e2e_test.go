package main

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/metrics/metricstest"
)

// runAdds has a new user run add n times and waits for each job.
func runAdds(t testing.TB, c *cluster, user string, n int) {
	t.Helper()
	a := c.register(t, user)
	r := a.do(http.MethodPost, "/u/"+user+"/fn/add", "function add(a,b){return a+b}")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	for range n {
		r = a.do(http.MethodPost, "/u/"+user+"/fn/add/run?wait=30s", "[4,5]")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	}
}

// awaitSeries waits until the scrape of url holds every line of want,
// then lints it.
func awaitSeries(t testing.TB, url, token string, want ...string) {
	t.Helper()
	var body string
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		var status int
		status, body = metricstest.Scrape(t, url, token)
		if !assert.Equal(c, http.StatusOK, status) {
			return
		}
		for _, w := range want {
			assert.Contains(c, body, w+"\n")
		}
	}, 15*time.Second, 50*time.Millisecond)
	if t.Failed() {
		t.FailNow()
	}
	problems, err := promlint.New(bytes.NewReader([]byte(body))).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, url)
}

// TestMetricsOfSeparateProcesses scrapes each standalone role on its own
// FAAS_METRICS_LISTEN after a known workload; one of them asks for a token.
func TestMetricsOfSeparateProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ports, err := freePorts(3)
	require.NoError(t, err)
	listen := func(i int) string { return fmt.Sprintf("FAAS_METRICS_LISTEN=127.0.0.1:%d", ports[i]) }
	url := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[i]) }
	const token = "jq-scraper-token"
	c.start("dbmanager", "dbmanager", listen(0))
	c.start("jqmanager", "jqmanager", listen(1), "FAAS_METRICS_TOKEN="+token)
	c.start("worker0", "worker", listen(2))
	c.start("frontend", "frontend")
	c.waitReady()
	const jobs = 3
	runAdds(t, c, "mel", jobs)

	status, _ := metricstest.Scrape(t, url(1), "")
	require.Equal(t, http.StatusUnauthorized, status, "the JQ manager's metrics need its token")
	awaitSeries(t, url(1), token,
		fmt.Sprintf(`faas_jobs_finished_total{component="jqmanager",outcome="ok"} %d`, jobs),
		fmt.Sprintf(`faas_jobs_submitted_total{component="jqmanager"} %d`, jobs),
		`faas_workers_connected{component="jqmanager"} 1`)
	awaitSeries(t, url(2), "",
		fmt.Sprintf(`faas_job_duration_seconds_count{component="worker",outcome="ok"} %d`, jobs))
	awaitSeries(t, url(0), "",
		fmt.Sprintf(`faas_store_operation_duration_seconds_count{component="dbmanager",operation="db.CreateJobs"} %d`, jobs))
	awaitSeries(t, c.http+"/metrics", "",
		fmt.Sprintf(`faas_http_requests_total{component="frontend",route="/u/:u/fn/:f/run",status="2xx"} %d`, jobs))

	// A restarted JQ manager starts its finished counter from the
	// database's totals; its own counters start at zero.
	require.NoError(t, c.stop("jqmanager"), "jqmanager exit status")
	c.start("jqmanager", "jqmanager", listen(1), "FAAS_METRICS_TOKEN="+token)
	runAdds(t, c, "ned", 1)
	awaitSeries(t, url(1), token,
		fmt.Sprintf(`faas_jobs_finished_total{component="jqmanager",outcome="ok"} %d`, jobs+1),
		`faas_jobs_submitted_total{component="jqmanager"} 1`)

	for _, name := range []string{"frontend", "worker0", "jqmanager", "dbmanager"} {
		require.NoError(t, c.stop(name), "%s exit status", name)
	}
}

// TestUpServesEveryRegistry checks that `faas up` serves the frontend's,
// the JQ manager's and the DB manager's series on the frontend's /metrics.
func TestUpServesEveryRegistry(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.start("up", "up")
	c.waitReady()
	const jobs = 2
	runAdds(t, c, "ned", jobs)
	awaitSeries(t, c.http+"/metrics", "",
		fmt.Sprintf(`faas_jobs_finished_total{component="jqmanager",outcome="ok"} %d`, jobs),
		fmt.Sprintf(`faas_http_requests_total{component="frontend",route="/u/:u/fn/:f/run",status="2xx"} %d`, jobs),
		fmt.Sprintf(`faas_store_operation_duration_seconds_count{component="dbmanager",operation="db.CreateJobs"} %d`, jobs),
		// The scaler started the one worker the minimum asks for, which
		// ran the jobs; its series are read from the worker process.
		`faas_scaler_scalings_total{component="scaler",direction="up"} 1`,
		fmt.Sprintf(`faas_job_duration_seconds_count{component="worker",instance="worker-1",outcome="ok"} %d`, jobs))
	require.NoError(t, c.stop("up"))
}
