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
	q := newFairQueue()
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
	q := newFairQueue()
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
	q := newFairQueue()
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
