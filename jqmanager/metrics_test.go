package jqmanager_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// syncBuffer is a log sink the manager's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines decodes the JSON log lines whose message is msg.
func (s *syncBuffer) lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for l := range strings.Lines(s.b.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// finishedAfterWorkload is faas_jobs_finished_total after the workload
// of TestFinishedJobsCountedAndLogged, before and after a restart.
const finishedAfterWorkload = `
# HELP faas_jobs_finished_total Jobs finished, by outcome: ok or the error code (function_error, timeout, memory_limit, lost, ...).
# TYPE faas_jobs_finished_total counter
faas_jobs_finished_total{outcome="function_error"} 1
faas_jobs_finished_total{outcome="lost"} 1
faas_jobs_finished_total{outcome="ok"} 1
faas_jobs_finished_total{outcome="timeout"} 0
`

// TestFinishedJobsCountedAndLogged finishes one job of each kind the
// manager sees (succeeded, failed by its function, lost too often) and
// checks the counters exactly, the lint, and that each job has exactly one
// "job finished" line, at warn unless it succeeded.
func TestFinishedJobsCountedAndLogged(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxAttempts = 2
	r := newRig(t, cfg, "ann")
	r.stop()
	var logs syncBuffer
	r.log = slog.New(slog.NewJSONHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	r.start(cfg)

	good, bad, lost := r.submit("ann"), r.submit("ann"), r.submit("ann")
	for range 2 {
		j, ok := r.next("w1", time.Second)
		require.True(t, ok)
		var c faas.Completion
		if j.ID == good.ID {
			c = faas.Completion{Result: json.RawMessage("1")}
		} else {
			require.Equal(t, bad.ID, j.ID)
			c = faas.Completion{Error: faas.Errorf(faas.FunctionError, "boom")}
		}
		c.JobID, c.Attempt, c.Duration = j.ID, j.Attempt, 5*time.Millisecond
		time.Sleep(c.Duration) // no more is billed than the lease lasted
		require.NoError(t, completeOne(r.ctx, r.m, "w1", c))
	}
	// Two workers in turn take the last job and go silent.
	for _, w := range []string{"w2", "w3"} {
		j, ok := r.next(w, 3*time.Second)
		require.True(t, ok)
		require.Equal(t, lost.ID, j.ID)
	}
	_, finished, err := r.m.Wait(r.ctx, lost.ID, 3*time.Second)
	require.NoError(t, err)
	require.True(t, finished)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(finishedAfterWorkload+`
# HELP faas_jobs_submitted_total Jobs accepted into the queue.
# TYPE faas_jobs_submitted_total counter
faas_jobs_submitted_total 3
# HELP faas_jobs_started_total Attempts handed to a worker, a job lost and run again counting once per attempt.
# TYPE faas_jobs_started_total counter
faas_jobs_started_total 4
# HELP faas_leases_lost_total Attempts whose worker went silent or let the job go.
# TYPE faas_leases_lost_total counter
faas_leases_lost_total 2
# HELP faas_jobs_attempts_exhausted_total Jobs failed with outcome lost after FAAS_MAX_ATTEMPTS lost leases.
# TYPE faas_jobs_attempts_exhausted_total counter
faas_jobs_attempts_exhausted_total 1
# HELP faas_jobs_queued Jobs waiting for a worker.
# TYPE faas_jobs_queued gauge
faas_jobs_queued 0
# HELP faas_jobs_running Jobs a worker holds.
# TYPE faas_jobs_running gauge
faas_jobs_running 0
`), "faas_jobs_finished_total", "faas_jobs_submitted_total", "faas_jobs_started_total", "faas_leases_lost_total",
		"faas_jobs_attempts_exhausted_total", "faas_jobs_queued", "faas_jobs_running"))
	// Only first attempts count toward the queue wait: three, not four.
	fams, err := reg.Gather()
	require.NoError(t, err)
	waits := -1
	for _, f := range fams {
		if f.GetName() == "faas_job_queue_wait_seconds" {
			waits = int(f.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	require.Equal(t, 3, waits)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)

	byJob := map[string]map[string]any{}
	for _, l := range logs.lines(t, "job finished") {
		id, _ := l["job_id"].(string)
		require.NotContains(t, byJob, id, "one line per job")
		byJob[id] = l
	}
	require.Len(t, byJob, 3)
	for _, tc := range []struct {
		id, level, outcome string
	}{
		{good.ID, "INFO", "ok"},
		{bad.ID, "WARN", "function_error"},
		{lost.ID, "WARN", "lost"},
	} {
		l := byJob[tc.id]
		require.Equal(t, tc.level, l["level"], tc.outcome)
		require.Equal(t, tc.outcome, l["outcome"])
		require.Equal(t, "ann", l["user"])
		require.Equal(t, "f", l["function"])
		require.Contains(t, l, "duration_ms")
	}
	require.Equal(t, 5.0, byJob[good.ID]["duration_ms"])

	// A restart starts from the Store's totals, even once the jobs are
	// purged. Over the wire, Stats is answered only after the rebuild.
	r.stop()
	n, err := r.store.PurgeJobs(r.ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	reg = prometheus.NewRegistry()
	cfg.Metrics = reg
	r.start(cfg)
	st, err := r.m.Stats(r.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Completed)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(finishedAfterWorkload), "faas_jobs_finished_total"))
}
