package jqmanager_test

import (
	"encoding/json"
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

// TestScheduleFiresJobs: a schedule put while the scheduler sleeps with
// nothing to do fires once Reschedule wakes it, on each tick, as
// ordinary queued jobs with the schedule's arguments.
func TestScheduleFiresJobs(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		_, err := r.store.PutSchedule(r.ctx, faas.Schedule{Owner: "ann", Function: "f", Cron: "@every 1s", Args: json.RawMessage(`[7]`)})
		require.NoError(t, err)
		require.NoError(t, q.Reschedule(r.ctx))
		jobs := r.awaitScheduled("ann", 2, 5*time.Second)
		require.NotEqual(t, jobs[0].ID, jobs[1].ID)
		for _, j := range jobs {
			require.Equal(t, "f", j.Function)
			got, err := r.store.Job(r.ctx, j.ID)
			require.NoError(t, err)
			require.JSONEq(t, `[7]`, string(got.Args))
		}
		// The Store holds a job a moment before the queue does.
		require.Eventually(t, func() bool {
			st, err := r.m.Stats(r.ctx)
			return err == nil && st.Queued >= 2
		}, 5*time.Second, 10*time.Millisecond, "the jobs are queued, to run like any other")
	}, "ann")
}

// TestMissedTicksFireOnce: ticks missed while no manager ran fire as one
// job when one starts, then the schedule goes on from there.
func TestMissedTicksFireOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	// Put a minute ago: six ticks of @every 10s were missed.
	_, err := r.store.PutSchedule(r.ctx, faas.Schedule{Owner: "ann", Function: "f", Cron: "@every 10s",
		Updated: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	r.start(config())
	jobs := r.awaitScheduled("ann", 1, 5*time.Second)
	sc, err := r.store.Schedule(r.ctx, "ann", "f")
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), sc.LastTick, 10*time.Second, "the latest missed tick fired")
	// Until the next tick, nothing else fires.
	time.Sleep(time.Until(sc.LastTick.Add(9 * time.Second)))
	require.Len(t, r.scheduledJobs("ann"), 1, "%v", jobs)
}

// TestDeletedScheduleStops: once deleted and Reschedule told, a schedule
// fires no more.
func TestDeletedScheduleStops(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	_, err := r.store.PutSchedule(r.ctx, faas.Schedule{Owner: "ann", Function: "f", Cron: "@every 1s"})
	require.NoError(t, err)
	require.NoError(t, r.m.Reschedule(r.ctx))
	r.awaitScheduled("ann", 1, 5*time.Second)
	require.NoError(t, r.store.DeleteSchedule(r.ctx, "ann", "f"))
	require.NoError(t, r.m.Reschedule(r.ctx))
	time.Sleep(100 * time.Millisecond) // a tick under way when it was deleted
	n := len(r.scheduledJobs("ann"))
	time.Sleep(2500 * time.Millisecond)
	require.Len(t, r.scheduledJobs("ann"), n)
}
