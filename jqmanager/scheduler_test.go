package jqmanager_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// scheduledJobs lists owner's jobs that a schedule submitted, oldest first.
func (r *rig) scheduledJobs(owner string) []faas.Job {
	r.t.Helper()
	all, err := r.store.Jobs(r.ctx, owner, faas.JobPage{})
	require.NoError(r.t, err)
	var out []faas.Job
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Trigger == faas.TriggerSchedule {
			out = append(out, all[i])
		}
	}
	return out
}

// awaitScheduled waits until owner has at least n scheduled jobs.
func (r *rig) awaitScheduled(owner string, n int, within time.Duration) []faas.Job {
	r.t.Helper()
	var jobs []faas.Job
	require.Eventually(r.t, func() bool {
		jobs = r.scheduledJobs(owner)
		return len(jobs) >= n
	}, within, 20*time.Millisecond, "%d scheduled jobs, want %d", len(jobs), n)
	return jobs
}

// TestMissedTicksFireOnce: ticks missed while no manager ran fire as one
// job when one starts, then the schedule goes on from there.
func TestMissedTicksFireOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	// Put a minute ago: twenty ticks of @every 3s were missed.
	_, err := r.store.PutSchedule(r.ctx, faas.Schedule{Owner: "ann", Function: "f", Cron: "@every 3s",
		Updated: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	// Start just after a tick of the grid, so that the next one is
	// almost 3s away and cannot be taken for a second missed one.
	const every = 3 * time.Second
	time.Sleep(time.Until(time.Now().Truncate(every).Add(every + 100*time.Millisecond)))
	r.start(config())
	jobs := r.awaitScheduled("ann", 1, 5*time.Second)
	// The tick is recorded only once its job exists: a moment later.
	var sc faas.Schedule
	require.Eventually(t, func() bool {
		sc, err = r.store.Schedule(r.ctx, "ann", "f")
		require.NoError(t, err)
		return !sc.LastTick.IsZero()
	}, 5*time.Second, 10*time.Millisecond, "the fired tick is recorded")
	require.WithinDuration(t, time.Now(), sc.LastTick, 3*time.Second, "the latest missed tick fired")
	// Until the next tick, nothing else fires.
	time.Sleep(time.Until(sc.LastTick.Add(2500 * time.Millisecond)))
	require.Len(t, r.scheduledJobs("ann"), 1, "%v", jobs)
}
