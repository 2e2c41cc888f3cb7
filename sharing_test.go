package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
)

// TestJobsRunWhatWasSubmitted queues jobs while no worker runs, then
// replaces one function (source and memory) and deletes another, through
// the API of the platform running as separate processes. When a worker
// comes, the queued jobs run what they were submitted with, and the
// deleted function's job fails with function_deleted.
func TestJobsRunWhatWasSubmitted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(0)
	a := c.register(t, "alice")

	// grow needs more than 64 MB and less than 512.
	a.upload("f", client.Deploy{MemoryMB: 512, Source: `function f() { const a = []; for (let i = 0; i < 3e5; i++) a.push({i}); return "v1 " + a.length }`})
	first := a.submit("f", "[]")
	a.upload("f", client.Deploy{MemoryMB: 64, Source: `() => "v2"`})
	second := a.submit("f", "[]")
	a.upload("g", client.Deploy{Source: `() => "g"`})
	orphan := a.submit("g", "[]")
	r := a.do(http.MethodDelete, "/u/alice/fn/g", "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)

	c.start("worker0", "worker")
	for id, want := range map[string]string{first: `"v1 300000"`, second: `"v2"`} {
		a.await(id, 30*time.Second)
		r := a.do(http.MethodGet, "/j/"+id+"/res", "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
		require.JSONEq(t, want, string(r.Res))
	}
	a.await(orphan, 30*time.Second)
	r = a.do(http.MethodGet, "/j/"+orphan+"/res", "")
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Res)
	require.Equal(t, "function_deleted", r.Code)
	require.Contains(t, string(r.Res), "function g was deleted before job "+orphan+" ran")
	require.Zero(t, a.info(orphan).BilledMS)
}

// TestRunningLimitAcrossProcesses gives one user more long jobs than the
// running limit, on a worker with more slots: no more than the limit run
// at once, and another user's job starts at once.
func TestRunningLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	const limit, jobs = 2, 5
	// Long, so that bob's wait is told apart from alice's jobs even on a
	// loaded machine.
	const slow = 3 * time.Second
	// The polling of the jobs' states would exceed the rate limit.
	c := newCluster(t, "FAAS_MAX_RUNNING_PER_USER=2", "FAAS_WORKER_CONCURRENCY=4", "FAAS_RATE_LIMIT=0")
	c.startAll(1)
	a := c.register(t, "alice")
	b := c.register(t, "bob")
	a.upload("slow", client.Deploy{Source: sleeper(slow)})
	b.upload("quick", client.Deploy{Source: `() => 2`})

	ids := burst(t, a, "slow", jobs, limit)

	start := time.Now()
	r := b.do(http.MethodPost, "/u/bob/fn/quick/run?wait=10s", "[]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.Less(t, time.Since(start), slow/2, "bob waited for alice's jobs")

	require.Equal(t, limit, mostAtOnce(t, a, ids), "the most of alice's jobs running at once")
}

// TestFunctionConcurrencyAcrossProcesses gives one function a concurrency
// limit of 2 and a burst of long jobs, on a worker with more slots and no
// per-user limit in the way: no more than 2 run at once, and the same
// user's other function runs at once beside them.
func TestFunctionConcurrencyAcrossProcesses(t *testing.T) {
	t.Parallel()
	const limit, jobs = 2, 5
	c := newCluster(t, "FAAS_MAX_RUNNING_PER_USER=0", "FAAS_WORKER_CONCURRENCY=4", "FAAS_RATE_LIMIT=0")
	c.startAll(1)
	a := c.register(t, "alice")
	// Long, so that the other function's wait is told apart from the
	// slow jobs even on a loaded machine.
	const slow = 3 * time.Second
	n := limit
	a.upload("slow", client.Deploy{Concurrency: &n, Source: sleeper(slow)})
	a.upload("quick", client.Deploy{Source: `() => 2`})
	r := a.do(http.MethodGet, "/u/alice/fn/slow", "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	var view struct {
		Concurrency int `json:"concurrency"`
	}
	require.NoError(t, json.Unmarshal(r.Res, &view))
	require.Equal(t, limit, view.Concurrency)

	ids := burst(t, a, "slow", jobs, limit)

	start := time.Now()
	r = a.do(http.MethodPost, "/u/alice/fn/quick/run?wait=10s", "[]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.Less(t, time.Since(start), slow/2, "the other function waited for the limited one")

	require.Equal(t, limit, mostAtOnce(t, a, ids), "the most of the function's jobs running at once")
}

// sleeper is the source of a function slow that answers after d.
func sleeper(d time.Duration) string {
	return fmt.Sprintf(`async function slow() { await new Promise(r => setTimeout(r, %d)); return 1 }`, d.Milliseconds())
}

// burst submits jobs jobs of fn and waits until limit of them run.
func burst(t *testing.T, a *api, fn string, jobs, limit int) []string {
	t.Helper()
	var ids []string
	for range jobs {
		ids = append(ids, a.submit(fn, "[]"))
	}
	running := func() int {
		n := 0
		for _, id := range ids {
			if a.info(id).State == "running" {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return running() == limit }, 10*time.Second, 20*time.Millisecond)
	return ids
}

// mostAtOnce awaits the jobs ids and counts the most of them that ran at
// once. Each job held its slot from its start to its finish, as the Store
// recorded them: the slot is given back only after the finish is
// recorded, so a sweep over those times counts exactly.
func mostAtOnce(t *testing.T, a *api, ids []string) int {
	t.Helper()
	type event struct {
		at    time.Time
		delta int
	}
	var events []event
	for _, id := range ids {
		a.await(id, 60*time.Second)
		r := a.do(http.MethodGet, "/j/"+id+"/info", "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
		var times struct {
			Started  time.Time `json:"started"`
			Finished time.Time `json:"finished"`
		}
		require.NoError(t, json.Unmarshal(r.Res, &times))
		events = append(events, event{times.Started, 1}, event{times.Finished, -1})
	}
	// At the same instant a finish comes before a start.
	slices.SortFunc(events, func(x, y event) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.delta, y.delta))
	})
	most, now := 0, 0
	for _, e := range events {
		now += e.delta
		most = max(most, now)
	}
	return most
}
