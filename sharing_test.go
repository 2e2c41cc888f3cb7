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
	a.upload("slow", client.Deploy{Source: fmt.Sprintf(`async function slow() { await new Promise(r => setTimeout(r, %d)); return 1 }`, slow.Milliseconds())})
	b.upload("quick", client.Deploy{Source: `() => 2`})

	var ids []string
	for range jobs {
		ids = append(ids, a.submit("slow", "[]"))
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

	start := time.Now()
	r := b.do(http.MethodPost, "/u/bob/fn/quick/run?wait=10s", "[]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.Less(t, time.Since(start), slow/2, "bob waited for alice's jobs")

	// Each job held its slot from its start to its finish, as the Store
	// recorded them: the slot is given back only after the finish is
	// recorded, so a sweep over those times counts exactly.
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
	require.Equal(t, limit, most, "the most of alice's jobs running at once")
}
