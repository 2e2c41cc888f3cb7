package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// askingQueue records the polls of the real queue client: how many are
// under way, when the last ended (in Unix nanoseconds), and the most jobs
// one asked for.
type askingQueue struct {
	faas.JobQueue
	polling, ended, most atomic.Int64
}

func (q *askingQueue) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	q.polling.Add(1)
	defer func() {
		q.ended.Store(time.Now().UnixNano())
		q.polling.Add(-1)
	}()
	for {
		most := q.most.Load()
		if int64(max) <= most || q.most.CompareAndSwap(most, int64(max)) {
			break
		}
	}
	return q.JobQueue.Next(ctx, worker, max, wait)
}

// TestWorkerLeasesAhead runs a backlog of short jobs on a worker with one
// sandbox: it asks for jobs beyond its sandbox, up to two ahead, unless
// told not to.
func TestWorkerLeasesAhead(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		noAhead bool
	}{
		{"ahead", false},
		{"no lease ahead", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPlatform(t)
			p.adder("ann")
			var jobs []faas.Job
			for i := range 40 {
				jobs = append(jobs, p.submit("ann", "add", fmt.Sprintf("[%d, 1]", i)))
			}
			cfg := config("w1")
			cfg.Concurrency, cfg.NoLeaseAhead = 1, tt.noAhead
			q := &askingQueue{JobQueue: p.queueClient(p.jq)}
			p.startWorker(cfg, nil, q)
			for i, j := range jobs {
				got := p.finished(j.ID)
				require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
				assert.JSONEq(t, fmt.Sprint(i+1), string(got.Result))
			}
			if tt.noAhead {
				assert.Equal(t, int64(1), q.most.Load(), "asked for more jobs than sandboxes")
			} else {
				assert.Greater(t, q.most.Load(), int64(1), "asked for no job ahead")
				assert.LessOrEqual(t, q.most.Load(), int64(3), "asked for more than two jobs ahead of one sandbox")
			}
		})
	}
}

// TestWorkerLeasesNothingAheadOfLongJobs lets a worker with one sandbox
// lease ahead under short jobs, then gives it a long one: once it runs,
// the worker stops asking for jobs, and a job submitted then stays in
// the queue for a worker with room rather than wait behind it.
func TestWorkerLeasesNothingAheadOfLongJobs(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.adder("ann")
	p.function("ann", "slow", `async function slow() { await new Promise(r => setTimeout(r, 3000)); return "slow" }`, 10*time.Second)
	var short []faas.Job
	for i := range 20 {
		short = append(short, p.submit("ann", "add", fmt.Sprintf("[%d, 1]", i)))
	}
	slow := p.submit("ann", "slow", `[]`)
	cfg := config("w1")
	cfg.Concurrency = 1
	q := &askingQueue{JobQueue: p.queueClient(p.jq)}
	p.startWorker(cfg, nil, q)
	// The long job is in the sandbox once the short ones before it are
	// done.
	for _, j := range short {
		require.Equal(t, faas.Succeeded, p.finished(j.ID).State)
	}
	until(t, "slow job running", func() bool { return p.state(slow.ID) == faas.Running })
	require.Greater(t, q.most.Load(), int64(1), "the short jobs were not leased ahead")
	// A poll for jobs ahead ends within the horizon, the next finds the
	// tokens ahead retired; then the worker asks for none while the long
	// job holds its sandbox.
	until(t, "polls over", func() bool {
		return q.polling.Load() == 0 && time.Since(time.Unix(0, q.ended.Load())) > 50*time.Millisecond
	})
	later := p.submit("ann", "add", `[1, 2]`)
	require.Never(t, func() bool { return p.state(later.ID) != faas.Queued }, time.Second, 5*time.Millisecond,
		"a job was leased to wait behind a long one")

	got := p.finished(later.ID)
	require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
	assert.Equal(t, faas.Succeeded, p.finished(slow.ID).State)
}
