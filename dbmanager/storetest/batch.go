package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// requireRow checks one row of a batch's answer: refused with code, or
// (code empty) stored.
func requireRow(t *testing.T, r faas.JobResult, code faas.Code, i int) {
	t.Helper()
	if code == "" {
		require.Nil(t, r.Error, "row %d", i)
		return
	}
	require.NotNil(t, r.Error, "row %d was not refused", i)
	require.Equal(t, code, r.Error.Code, "row %d: %v", i, r.Error)
}

// testCreateJobs checks that a batch of job creations stores each job as
// CreateJob does, and that the rows refused (an unknown function, an ID
// another user has) fail alone.
func testCreateJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	other := newFixture(t, ctx, s)
	taken := other.job(t, ctx, s)
	js := []faas.Job{
		{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Args: json.RawMessage(`[1]`)},
		{ID: unique("job"), Owner: fx.user.Name, Function: "missing"},
		{ID: taken.ID, Owner: fx.user.Name, Function: fx.fn.Name},
		{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Args: json.RawMessage(`[2]`)},
	}
	res, err := s.CreateJobs(ctx, js)
	require.NoError(t, err)
	require.Len(t, res, len(js))
	for i, code := range []faas.Code{"", faas.NotFound, faas.Conflict, ""} {
		requireRow(t, res[i], code, i)
	}
	for _, i := range []int{0, 3} {
		require.Equal(t, js[i].ID, res[i].Job.ID)
		require.Equal(t, faas.Queued, res[i].Job.State)
		require.Equal(t, fx.fn.Version, res[i].Job.Version)
		got, err := s.Job(ctx, js[i].ID)
		require.NoError(t, err)
		require.Equal(t, res[i].Job, got)
	}
	_, err = s.Job(ctx, js[1].ID)
	requireCode(t, err, faas.NotFound)

	// A retried batch creates nothing twice.
	again, err := s.CreateJobs(ctx, js[:1])
	require.NoError(t, err)
	require.Equal(t, res[0].Job, again[0].Job)

	_, err = s.CreateJobs(ctx, make([]faas.Job, faas.MaxBatch+1))
	requireCode(t, err, faas.Invalid)
}

// testStartJobs checks that a batch of leases starts each job as StartJob
// does, for the worker its row names, fenced by attempt row by row.
func testStartJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	a, b, c, d := fx.job(t, ctx, s), fx.job(t, ctx, s), fx.running(t, ctx, s), fx.job(t, ctx, s)
	starts := []faas.Start{{ID: a.ID, Attempt: 1, Worker: "w2"}, {ID: b.ID, Attempt: 2, Worker: "w2"},
		{ID: c.ID, Attempt: 2, Worker: "w2"}, {ID: unique("gone"), Attempt: 1, Worker: "w2"}, {ID: d.ID, Attempt: 1, Worker: "w3"}}
	res, err := s.StartJobs(ctx, starts)
	require.NoError(t, err)
	require.Len(t, res, len(starts))
	for i, code := range []faas.Code{"", faas.Conflict, faas.Conflict, faas.NotFound, ""} {
		requireRow(t, res[i], code, i)
	}
	require.Equal(t, faas.Running, res[0].Job.State)
	require.Equal(t, "w2", res[0].Job.Worker)
	require.Equal(t, 1, res[0].Job.Attempt)
	require.Equal(t, "w3", res[4].Job.Worker, "each row leases to its own worker")
	requireStored(t, ctx, s, res[0].Job)
	requireStored(t, ctx, s, res[4].Job)
	got, err := s.Job(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Queued, got.State, "a refused lease left its job alone")
	got, err = s.Job(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "w1", got.Worker, "a fenced lease took a running job")

	// The same worker retrying is answered the same.
	again, err := s.StartJobs(ctx, starts[:1])
	require.NoError(t, err)
	require.Equal(t, res[0].Job, again[0].Job)
}

// testCompleteJobs checks that a batch of completions records and bills
// each row exactly once, and that a fenced row fails alone.
func testCompleteJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	a, b, queued := fx.running(t, ctx, s), fx.running(t, ctx, s), fx.job(t, ctx, s)
	bad := completion(b, time.Second)
	bad.Attempt = 2
	cs := []faas.Completion{completion(a, 3*time.Millisecond), bad, completion(faas.Job{ID: queued.ID, Attempt: 1}, time.Second), completion(faas.Job{ID: unique("gone"), Attempt: 1}, time.Second)}
	res, err := s.CompleteJobs(ctx, cs)
	require.NoError(t, err)
	require.Len(t, res, len(cs))
	for i, code := range []faas.Code{"", faas.Conflict, faas.Conflict, faas.NotFound} {
		requireRow(t, res[i], code, i)
	}
	require.Equal(t, faas.Succeeded, res[0].Job.State)
	require.Equal(t, 3*time.Millisecond, res[0].Job.Billed)
	requireStored(t, ctx, s, res[0].Job)
	requireBilled(t, ctx, s, fx.user.Name, 3*time.Millisecond)
	got, err := s.Job(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Running, got.State, "a fenced completion finished its job")

	// A retried batch bills nothing more; the row now held completes.
	res, err = s.CompleteJobs(ctx, []faas.Completion{cs[0], completion(b, 2*time.Millisecond)})
	require.NoError(t, err)
	requireRow(t, res[0], "", 0)
	requireRow(t, res[1], "", 1)
	requireBilled(t, ctx, s, fx.user.Name, 5*time.Millisecond)
}
