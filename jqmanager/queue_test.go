package jqmanager

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// testEntry is the entry of owner's job id of function, whose concurrency
// is limit.
func testEntry(id, owner, function string, limit int) *entry {
	return newEntry(faas.Job{ID: id, Owner: owner, Function: function, Concurrency: limit})
}

func drain(q *fairQueue) []string {
	var ids []string
	for {
		e, ok := q.pop()
		if !ok {
			return ids
		}
		ids = append(ids, e.id)
	}
}

func TestFairQueueServesUsersInTurn(t *testing.T) {
	t.Parallel()
	q := newFairQueue(0)
	for i := range 3 {
		q.push(testEntry(fmt.Sprintf("flood%d", i), "flood", "f", 0))
	}
	q.push(testEntry("quiet0", "quiet", "f", 0))
	q.push(testEntry("flood3", "flood", "f", 0))
	q.push(testEntry("quiet1", "quiet", "f", 0))
	require.Equal(t, 6, q.len)
	require.Equal(t, []string{"flood0", "quiet0", "flood1", "quiet1", "flood2", "flood3"}, drain(q))
	require.Zero(t, q.len)
	require.Empty(t, q.users)
}

func TestFairQueuePushFront(t *testing.T) {
	t.Parallel()
	q := newFairQueue(0)
	a0, a1, b0 := testEntry("a0", "a", "f", 0), testEntry("a1", "a", "f", 0), testEntry("b0", "b", "f", 0)
	q.push(a0)
	q.push(a1)
	q.push(b0)
	e, _ := q.pop()
	require.Same(t, a0, e)
	q.pushFront(e)
	require.Equal(t, 3, q.len)
	require.Equal(t, []string{"b0", "a0", "a1"}, drain(q))

	// A user whose only job comes back is served first.
	q.push(b0)
	q.push(a1)
	e, _ = q.pop()
	require.Same(t, b0, e)
	q.pushFront(e)
	require.Equal(t, []string{"b0", "a1"}, drain(q))
	require.Empty(t, q.ring, "a user without jobs leaves the ring")
}

func TestFairQueueRemove(t *testing.T) {
	t.Parallel()
	q := newFairQueue(0)
	a0, a1, b0 := testEntry("a0", "a", "f", 0), testEntry("a1", "a", "f", 0), testEntry("b0", "b", "f", 0)
	q.push(a0)
	q.push(a1)
	q.push(b0)
	q.remove(a0)
	q.remove(testEntry("zz", "nobody", "f", 0))
	q.remove(b0)
	require.Equal(t, 1, q.len)
	require.Equal(t, []string{"a"}, q.ring, "a user without jobs leaves the ring")
	require.Equal(t, []string{"a1"}, drain(q))
}

func TestFairQueueRunningCap(t *testing.T) {
	t.Parallel()
	q := newFairQueue(1)
	for _, id := range []string{"a0", "a1", "b0", "b1"} {
		q.push(testEntry(id, id[:1], "f", 0))
	}
	a0, _ := q.pop()
	require.Equal(t, "a0", a0.id)
	b0, _ := q.pop()
	require.Equal(t, "b0", b0.id)
	_, ok := q.pop()
	require.False(t, ok, "both users are at the cap")
	require.Equal(t, 2, q.len)

	require.Equal(t, 2, q.held(), "a1 and b1 wait for their owners")
	q.push(testEntry("c0", "c", "f", 0))
	require.Equal(t, 2, q.held(), "c0 can start")
	require.True(t, q.vacate(b0), "b has a job waiting")
	require.Equal(t, 1, q.held())
	b1, _ := q.pop()
	require.Equal(t, "b1", b1.id)
	require.False(t, q.vacate(b1), "b has nothing waiting")
	require.True(t, q.vacate(a0))
	require.Zero(t, q.held())
	require.Equal(t, []string{"a1", "c0"}, drain(q))
}

// TestFairQueueFunctionLimit checks that a function at its concurrency
// limit waits without holding back its owner's other functions or other
// users, counts as held, and is served again once one of its jobs ends.
func TestFairQueueFunctionLimit(t *testing.T) {
	t.Parallel()
	q := newFairQueue(0)
	for i := range 4 {
		q.push(testEntry(fmt.Sprintf("slow%d", i), "a", "slow", 2))
	}
	q.push(testEntry("fast0", "a", "fast", 0))
	q.push(testEntry("b0", "b", "slow", 2))
	require.Equal(t, 2, q.held(), "two of a's four slow jobs can start")

	var out []*entry
	for {
		e, ok := q.pop()
		if !ok {
			break
		}
		out = append(out, e)
	}
	ids := make([]string, len(out))
	for i, e := range out {
		ids[i] = e.id
	}
	require.Equal(t, []string{"slow0", "b0", "slow1", "fast0"}, ids,
		"a's third slow job waits; fast0 and b's function of the same name do not")
	require.Equal(t, 2, q.len)
	require.Equal(t, 2, q.held())

	require.True(t, q.vacate(out[0]), "a has jobs waiting")
	require.Equal(t, 1, q.held())
	e, ok := q.pop()
	require.True(t, ok)
	require.Equal(t, "slow2", e.id)
	_, ok = q.pop()
	require.False(t, ok, "slow is at its limit again")
	require.Equal(t, 1, q.held())
}

// TestEntryKeepsTheRecord: what Status answers of a live job, built from
// the entry's compact fields, is the Store's record of it less its
// arguments, whatever fields the record sets.
func TestEntryKeepsTheRecord(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 5, 3, 14, 7, 123456000, time.UTC)
	queued := faas.Job{ID: "j1", Owner: "ann", Function: "f", Version: 7, Concurrency: 2, Args: json.RawMessage("[1]"),
		State: faas.Queued, Attempt: 1, Created: created, Started: created.Add(time.Second),
		Lost: []*faas.Error{faas.Errorf(faas.Lost, "gone")}, Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Trigger: faas.TriggerJob, Parent: "j0"}
	running := queued
	running.State, running.Attempt, running.Worker = faas.Running, 2, "w1"
	for _, j := range []faas.Job{queued, running, {ID: "j2", Owner: "bob", Function: "g", State: faas.Queued}} {
		t.Run(j.ID+"/"+string(j.State), func(t *testing.T) {
			t.Parallel()
			e := newEntry(j)
			if j.State == faas.Running {
				e.state = stateRunning
			}
			want := j
			want.Args = nil
			require.Equal(t, want, e.job())
		})
	}
}

// BenchmarkFairQueuePop pops one job from a backlog of one user's jobs and
// pushes another: a pop costs the same whatever the backlog.
func BenchmarkFairQueuePop(b *testing.B) {
	for _, backlog := range []int{1000, 100000} {
		b.Run(fmt.Sprint(backlog), func(b *testing.B) {
			q := newFairQueue(0)
			for i := range backlog {
				q.push(testEntry(fmt.Sprint(i), "flood", "f", 0))
			}
			for b.Loop() {
				e, _ := q.pop()
				q.vacate(e)
				q.push(e)
			}
		})
	}
}
