package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestBatchedWrites queues writes while the writer connection is held, so
// the batcher finds them waiting and commits them together; one of them
// breaks a unique constraint and must fail alone.
func TestBatchedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	insert, err := s.writer.PrepareContext(ctx, `INSERT INTO users (name, token_hash, created) VALUES (?, ?, 0) RETURNING name`)
	require.NoError(t, err)
	defer insert.Close()

	// Hold the one writer connection: the batcher's first write waits on
	// it, and the rest queue behind.
	hold, err := s.writer.BeginTx(ctx, nil)
	require.NoError(t, err)

	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			token := fmt.Sprint("token-", i)
			if i == n-1 {
				token = "token-3" // taken by another write of the batch
			}
			var name string
			errs[i] = s.writeRows(ctx, []*rowWrite{{stmt: insert, scan: func(r *sql.Row) error { return r.Scan(&name) },
				args: []any{fmt.Sprint("user-", i), token}}})[0]
		})
	}
	time.Sleep(200 * time.Millisecond) // all queued
	require.NoError(t, hold.Rollback())
	wg.Wait()

	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			require.Contains(t, err.Error(), "UNIQUE", "write %d", i)
		}
	}
	require.Equal(t, 1, failed, "exactly the conflicting write fails: %v", errs)
	var count int
	require.NoError(t, s.reader.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&count))
	require.Equal(t, n-1, count, "the others were all committed")
}

func TestWritesAfterCloseFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	errs := s.writeRows(ctx, []*rowWrite{{}})
	require.ErrorIs(t, errs[0], errClosed)
}

// TestBatchCallIsOneCommit checks that the rows of each batch call reach
// the database in one commit, and that a refused row (a missing function,
// a stale attempt) answers alone without undoing the others.
func TestBatchCallIsOneCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(t, err)

	const n = 10
	oneCommit := func(t *testing.T, call func() ([]faas.JobResult, error)) []faas.JobResult {
		t.Helper()
		before, _ := s.Batches()
		res, err := call()
		require.NoError(t, err)
		require.Len(t, res, n)
		after, _ := s.Batches()
		require.Equal(t, before+1, after, "one commit for the batch")
		return res
	}
	js := make([]faas.Job, n)
	for i := range js {
		js[i] = faas.Job{ID: fmt.Sprint("job-", i), Owner: "ada", Function: "add", Args: []byte("[1,2]")}
	}
	js[3].Function = "missing"
	res := oneCommit(t, func() ([]faas.JobResult, error) { return s.CreateJobs(ctx, js) })
	starts := make([]faas.Start, n)
	for i, r := range res {
		if i == 3 {
			require.Equal(t, faas.NotFound, faas.ErrorCode(r.Error))
			continue
		}
		require.Nil(t, r.Error, "job %d", i)
		starts[i] = faas.Start{ID: js[i].ID, Attempt: 1, Worker: fmt.Sprint("w", i%2)}
	}
	starts[3] = starts[0] // the lease of job 0 again, by another row
	res = oneCommit(t, func() ([]faas.JobResult, error) { return s.StartJobs(ctx, starts) })
	cs := make([]faas.Completion, n)
	for i, r := range res {
		require.Nil(t, r.Error, "lease %d: a retried lease by the same worker is answered", i)
		require.Equal(t, starts[i].Worker, r.Job.Worker, "lease %d goes to its own worker", i)
		cs[i] = faas.Completion{JobID: starts[i].ID, Attempt: 1, Result: []byte("3"), Duration: time.Millisecond}
	}
	cs[3].Attempt = 2 // stale: fenced
	res = oneCommit(t, func() ([]faas.JobResult, error) { return s.CompleteJobs(ctx, cs) })
	for i, r := range res {
		if i == 3 {
			require.Equal(t, faas.Conflict, faas.ErrorCode(r.Error))
			continue
		}
		require.Nil(t, r.Error, "completion %d", i)
		require.Equal(t, faas.Succeeded, r.Job.State)
	}
	billed, err := s.BilledTime(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, time.Duration(n-1)*time.Millisecond, billed, "each completed job billed once")
}
