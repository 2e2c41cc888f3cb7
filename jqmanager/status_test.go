package jqmanager_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestStatusIsTheStoresRecord: while the queue holds a job, Status
// answers the Store's record of it as the Store has it now, through every
// change the queue makes (queued, running, queued again after a lost
// lease), without the arguments and result the queue does not keep; once
// the job left the queue, Status says so, with how far the events go.
func TestStatusIsTheStoresRecord(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		requireStatus := func(id string) {
			t.Helper()
			stored, err := r.store.Job(r.ctx, id)
			require.NoError(t, err)
			stored.Args, stored.Result, stored.Logs, stored.Streams = nil, nil, "", ""
			st, err := q.Status(r.ctx, id)
			require.NoError(t, err)
			require.NotNil(t, st.Job, "job %s not held", id)
			require.Equal(t, stored, *st.Job)
		}
		requireGone := func(id string) {
			t.Helper()
			st, err := q.Status(r.ctx, id)
			require.NoError(t, err)
			require.Nil(t, st.Job, "job %s still held", id)
		}

		j := r.submit("ann")
		requireStatus(j.ID)

		leased, ok := r.next("w", time.Second)
		require.True(t, ok)
		requireStatus(j.ID)

		require.NoError(t, r.m.Release(r.ctx, faas.Lease{ID: j.ID, Attempt: leased.Attempt}, "stopping"))
		requireStatus(j.ID)
		st, err := q.Status(r.ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, faas.Queued, st.Job.State)
		require.Len(t, st.Job.Lost, 1, "the lost attempt is in the record")

		leased, ok = r.next("w", time.Second)
		require.True(t, ok)
		requireStatus(j.ID)
		before, err := q.Events(r.ctx, 0, 0)
		require.NoError(t, err)
		require.NoError(t, r.complete(leased))
		requireGone(j.ID)
		// The answer tells how far to follow the events to hear of it.
		st, err = q.Status(r.ctx, j.ID)
		require.NoError(t, err)
		page, err := q.Events(r.ctx, before.Next, 0)
		require.NoError(t, err)
		require.Equal(t, faas.JobFinished, page.List[0].Kind)
		require.GreaterOrEqual(t, st.Seq, page.List[0].Seq, "the job's event is after the status's Seq")
		requireGone("no-such-job")
	}, "ann")
}

// TestForgetTellsTheFrontends: every deletion is published, also of a
// job the queue no longer holds, since a frontend may remember it
// finished.
func TestForgetTellsTheFrontends(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		first, err := q.Events(r.ctx, 0, 0)
		require.NoError(t, err)
		for _, id := range []string{"finished-long-ago", "another"} {
			require.NoError(t, q.Forget(r.ctx, id))
		}
		page, err := q.Events(r.ctx, first.Next, 0)
		require.NoError(t, err)
		require.Len(t, page.List, 2)
		for i, id := range []string{"finished-long-ago", "another"} {
			require.Equal(t, faas.JobDeleted, page.List[i].Kind)
			require.Equal(t, id, page.List[i].JobID)
		}
	})
}
