package jqmanager_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestSubmitChild: a worker holding a job's lease submits jobs as that
// job's owner, whatever the request says, and nothing else; children are
// bounded per job and count against the owner's pending limit.
func TestSubmitChild(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		parent := r.submit("ann")
		parent, ok := r.next("w1", time.Second)
		require.True(t, ok)
		lease := faas.Lease{ID: parent.ID, Attempt: parent.Attempt}
		child := func(worker string, l faas.Lease, owner, function string) (faas.Job, error) {
			return q.SubmitChild(r.ctx, worker, l, faas.Job{ID: uuid.NewString(), Owner: owner, Function: function, Args: json.RawMessage(`[2]`)})
		}

		c, err := child("w1", lease, "bob", "f")
		require.NoError(t, err)
		require.Equal(t, "ann", c.Owner, "the owner is the leased job's, not the request's")
		require.Equal(t, parent.ID, c.Parent)
		require.Equal(t, faas.TriggerJob, c.Trigger)
		stored, err := r.store.Job(r.ctx, parent.ID)
		require.NoError(t, err)
		require.Equal(t, []string{c.ID}, stored.Children)

		for _, tc := range []struct {
			name     string
			worker   string
			lease    faas.Lease
			function string
			want     faas.Code
		}{
			{"another worker", "w2", lease, "f", faas.Conflict},
			{"an old attempt", "w1", faas.Lease{ID: parent.ID, Attempt: parent.Attempt - 1}, "f", faas.Conflict},
			{"a job not leased", "w1", faas.Lease{ID: c.ID, Attempt: 1}, "f", faas.Conflict},
			{"an unknown job", "w1", faas.Lease{ID: uuid.NewString(), Attempt: 1}, "f", faas.Conflict},
			{"another user's function", "w1", lease, "bob/f", faas.Invalid},
			{"an unknown function", "w1", lease, "nope", faas.NotFound},
		} {
			_, err := child(tc.worker, tc.lease, "ann", tc.function)
			require.Equal(t, tc.want, faas.ErrorCode(err), "%s: %v", tc.name, err)
		}
		stored, err = r.store.Job(r.ctx, parent.ID)
		require.NoError(t, err)
		require.Equal(t, []string{c.ID}, stored.Children, "refused submissions leave nothing")
		bobs, err := r.store.Jobs(r.ctx, "bob", faas.JobPage{})
		require.NoError(t, err)
		require.Empty(t, bobs)

		for range faas.MaxChildren - 1 {
			// Heartbeats keep the lease through the loop, as a worker's do.
			lost, err := q.Renew(r.ctx, "w1", []faas.Lease{lease})
			require.NoError(t, err)
			require.Empty(t, lost)
			_, err = child("w1", lease, "ann", "f")
			require.NoError(t, err)
		}
		_, err = child("w1", lease, "ann", "f")
		require.Equal(t, faas.TooMany, faas.ErrorCode(err), "past %d children", faas.MaxChildren)
		stats, err := q.Stats(r.ctx)
		require.NoError(t, err)
		require.Equal(t, 1+faas.MaxChildren, stats.Queued+stats.Running)
	}, "ann", "bob")
}

// TestSubmitChildPendingLimit: children count against their owner's
// pending limit like any job.
func TestSubmitChildPendingLimit(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxPendingPerUser = 2
	r := newRig(t, cfg, "ann")
	r.submit("ann")
	parent, ok := r.next("w1", time.Second)
	require.True(t, ok)
	lease := faas.Lease{ID: parent.ID, Attempt: parent.Attempt}
	_, err := r.m.SubmitChild(r.ctx, "w1", lease, faas.Job{ID: uuid.NewString(), Function: "f"})
	require.NoError(t, err)
	_, err = r.m.SubmitChild(r.ctx, "w1", lease, faas.Job{ID: uuid.NewString(), Function: "f"})
	require.Equal(t, faas.TooMany, faas.ErrorCode(err))
}
