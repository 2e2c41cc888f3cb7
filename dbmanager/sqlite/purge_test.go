package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestPurgeUsesKeys keeps each purge batch a lookup by key: a scan of the
// jobs table from its start per batch would make a purge quadratic in the
// table's size, and hold the writer for as long.
func TestPurgeUsesKeys(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	for query, want := range map[string]string{
		purgeable: "SEARCH jobs USING PRIMARY KEY (id>?)",
		purgeJobs: "SEARCH jobs USING PRIMARY KEY (id=?)",
	} {
		plan := queryPlan(t, ctx, s, query, "[]", 1, 10)
		require.Contains(t, plan, want)
		for _, step := range plan {
			require.NotContains(t, step, "SCAN jobs", "plan %q", plan)
		}
	}
}

// openTemp opens a store in a directory of t's, with a context bounding
// the test.
func openTemp(t *testing.T) (*Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, ctx
}

func queryPlan(t *testing.T, ctx context.Context, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.writer.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return plan
}

// TestPurgeInBatches purges more jobs than one batch holds, with jobs to
// keep spread among them.
func TestPurgeInBatches(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x=>x"})
	require.NoError(t, err)
	const finished = 2*purgeBatch + 7
	var kept []string
	for i := range finished {
		id := fmt.Sprintf("job-%05d", i)
		_, err := s.CreateJob(ctx, faas.Job{ID: id, Owner: "ada", Function: "f"})
		require.NoError(t, err)
		_, err = s.StartJob(ctx, id, 1, "w")
		require.NoError(t, err)
		_, err = s.CompleteJob(ctx, faas.Completion{JobID: id, Attempt: 1, Duration: time.Microsecond})
		require.NoError(t, err)
		if i%300 == 0 {
			// Keys right after a finished job, in every batch.
			queued := id + "-queued"
			_, err := s.CreateJob(ctx, faas.Job{ID: queued, Owner: "ada", Function: "f"})
			require.NoError(t, err)
			kept = append(kept, queued)
		}
	}
	n, err := s.PurgeJobs(ctx, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, finished, n)
	for _, id := range kept {
		_, err := s.Job(ctx, id)
		require.NoError(t, err)
	}
	billed, err := s.BilledTime(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, finished*time.Microsecond, billed)
}
