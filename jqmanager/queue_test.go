package jqmanager

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

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
		q.push(&entry{id: fmt.Sprintf("flood%d", i), owner: "flood"})
	}
	q.push(&entry{id: "quiet0", owner: "quiet"})
	q.push(&entry{id: "flood3", owner: "flood"})
	q.push(&entry{id: "quiet1", owner: "quiet"})
	require.Equal(t, 6, q.len)
	require.Equal(t, []string{"flood0", "quiet0", "flood1", "quiet1", "flood2", "flood3"}, drain(q))
	require.Zero(t, q.len)
	require.Empty(t, q.users)
}

func TestFairQueuePushFront(t *testing.T) {
	t.Parallel()
	q := newFairQueue(0)
	a0, a1, b0 := &entry{id: "a0", owner: "a"}, &entry{id: "a1", owner: "a"}, &entry{id: "b0", owner: "b"}
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
	a0, a1, b0 := &entry{id: "a0", owner: "a"}, &entry{id: "a1", owner: "a"}, &entry{id: "b0", owner: "b"}
	q.push(a0)
	q.push(a1)
	q.push(b0)
	q.remove(a0)
	q.remove(&entry{id: "zz", owner: "nobody"})
	q.remove(b0)
	require.Equal(t, 1, q.len)
	require.Equal(t, []string{"a"}, q.ring, "a user without jobs leaves the ring")
	require.Equal(t, []string{"a1"}, drain(q))
}

func TestFairQueueRunningCap(t *testing.T) {
	t.Parallel()
	q := newFairQueue(1)
	for _, id := range []string{"a0", "a1", "b0", "b1"} {
		q.push(&entry{id: id, owner: id[:1]})
	}
	e, _ := q.pop()
	require.Equal(t, "a0", e.id)
	e, _ = q.pop()
	require.Equal(t, "b0", e.id)
	_, ok := q.pop()
	require.False(t, ok, "both users are at the cap")
	require.Equal(t, 2, q.len)

	require.Equal(t, 2, q.held(), "a1 and b1 wait for their owners")
	q.push(&entry{id: "c0", owner: "c"})
	require.Equal(t, 2, q.held(), "c0 can start")
	require.True(t, q.vacate("b"), "b has a job waiting")
	require.Equal(t, 1, q.held())
	e, _ = q.pop()
	require.Equal(t, "b1", e.id)
	require.False(t, q.vacate("b"), "b has nothing waiting")
	require.True(t, q.vacate("a"))
	require.Zero(t, q.held())
	require.Equal(t, []string{"a1", "c0"}, drain(q))
}
