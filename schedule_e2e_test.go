package main

import (
	"net/http"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
	"faas/jqmanager"
)

// firedTicks maps each of the user's scheduled jobs of fn to the tick that
// submitted it, found from the job's id: the id derives from the tick,
// which lies within a few seconds before the job was created. It fails
// the test for a scheduled job that matches no tick.
func firedTicks(t *testing.T, a *api, owner, fn string) map[time.Time]frontend.JobSummary {
	t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	page, err := a.Jobs(ctx, client.JobFilter{Function: fn, Limit: 500})
	require.NoError(t, err)
	ticks := make(map[time.Time]frontend.JobSummary)
	for _, j := range page.Jobs {
		if j.Trigger != "schedule" {
			continue
		}
		var tick time.Time
		for back := range 30 {
			cand := j.Created.Truncate(time.Second).Add(-time.Duration(back) * time.Second)
			if jqmanager.TickJobID(owner, fn, cand) == j.ID {
				tick = cand
			}
		}
		require.False(t, tick.IsZero(), "job %s, created %v, is no tick's", j.ID, j.Created)
		_, twice := ticks[tick]
		require.False(t, twice, "tick %v fired twice", tick)
		ticks[tick] = j
	}
	return ticks
}

// ticksSince is the ticks of fired that are not in before and come no
// later than until.
func ticksSince(fired, before map[time.Time]frontend.JobSummary, until time.Time) []time.Time {
	var out []time.Time
	for tick := range fired {
		if _, old := before[tick]; !old && !tick.After(until) {
			out = append(out, tick)
		}
	}
	return out
}

// TestScheduleAcrossJQManagerKill runs schedules through the real
// processes on the secured bus, kills the JQ manager with SIGKILL and
// restarts it several ticks later: every tick fires at most once, as one
// job whose record says trigger schedule, the ticks missed while the
// manager was down fire as one job on recovery, and deleting the function
// ends its schedule.
func TestScheduleAcrossJQManagerKill(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	a := c.register(t, "sched")
	ctx, cancel := a.ctx()
	defer cancel()
	// tick fires every second; slow every 3s, so that whatever the
	// restarted manager takes to start, a tick of slow comes between the
	// restart and the first pass of its scheduler only if that takes
	// nearly 3s: the tick that stands for the missed ones is known.
	const every = 3 * time.Second
	for fn, cron := range map[string]string{"tick": "@every 1s", "slow": "@every 3s"} {
		a.upload(fn, client.Deploy{Source: "n => n + 1"})
		_, err := a.PutSchedule(ctx, fn, frontend.ScheduleRequest{Cron: cron, Args: []byte(`[1]`)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return len(firedTicks(t, a, "sched", "tick")) >= 3 && len(firedTicks(t, a, "sched", "slow")) >= 1
	}, 20*time.Second, 100*time.Millisecond, "the schedules did not fire")

	c.signal("jqmanager", syscall.SIGKILL)
	killed := time.Now()
	before := map[string]map[time.Time]frontend.JobSummary{
		"tick": firedTicks(t, a, "sched", "tick"), "slow": firedTicks(t, a, "sched", "slow")}
	// Down for at least two ticks of slow, restarted just after one.
	restart := killed.Add(2 * every).Truncate(every).Add(every + 50*time.Millisecond)
	time.Sleep(time.Until(restart))
	restarted := time.Now()
	c.start("jqmanager", "jqmanager")
	require.Eventually(t, func() bool {
		for tick := range firedTicks(t, a, "sched", "tick") {
			if tick.After(restarted.Add(time.Second)) {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the schedule did not fire after the restart")

	slow := firedTicks(t, a, "sched", "slow")
	missed := ticksSince(slow, before["slow"], restarted)
	require.Equal(t, []time.Time{restarted.UTC().Truncate(every)}, missed,
		"the ticks of slow missed while the JQ manager was down fire once, as their latest")
	tick := firedTicks(t, a, "sched", "tick")
	require.LessOrEqual(t, len(ticksSince(tick, before["tick"], restarted)), 1,
		"the ticks of tick missed while the JQ manager was down fire at most once")

	var order []time.Time
	for at := range tick {
		order = append(order, at)
	}
	sort.Slice(order, func(i, k int) bool { return order[i].Before(order[k]) })
	for _, at := range order[len(order)-2:] {
		id := tick[at].ID
		require.Equal(t, "schedule", a.info(id).Trigger)
		a.await(id, 30*time.Second)
		require.Equal(t, "succeeded", string(a.info(id).State))
	}

	// Deleting the function ends its schedule.
	require.NoError(t, a.DeleteFunction(ctx, "tick"))
	a.upload("tick", client.Deploy{Source: "n => n"})
	r := a.do(http.MethodGet, "/u/sched/fn/tick/schedule", "")
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Res)
	n := len(firedTicks(t, a, "sched", "tick"))
	time.Sleep(2 * time.Second)
	require.Len(t, firedTicks(t, a, "sched", "tick"), n, "a deleted function's schedule fired")
}
