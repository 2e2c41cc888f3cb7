package jqmanager_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestChildrenPerJob: one job submits at most faas.MaxChildren jobs, even
// when its owner may have more pending (the conformance suite's
// SubmitChild checks the fencing with a lower pending limit).
func TestChildrenPerJob(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		r.submit("ann")
		parent, ok := r.next("w1", time.Second)
		require.True(t, ok)
		l := faas.Lease{ID: parent.ID, Attempt: parent.Attempt}
		child := func() error {
			_, err := q.SubmitChild(r.ctx, "w1", l, faas.Job{ID: uuid.NewString(), Function: "f"})
			return err
		}
		for range faas.MaxChildren {
			// Heartbeats keep the lease through the loop, as a worker's do.
			lost, err := q.Renew(r.ctx, "w1", []faas.Lease{l})
			require.NoError(t, err)
			require.Empty(t, lost)
			require.NoError(t, child())
		}
		require.Equal(t, faas.TooMany, faas.ErrorCode(child()), "past %d children", faas.MaxChildren)
		stored, err := r.store.Job(r.ctx, parent.ID)
		require.NoError(t, err)
		require.Len(t, stored.Children, faas.MaxChildren)
	}, "ann")
}
