package sqlite

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// loadJobs are a success and a failure, with the fields a completion
// carries, for two users.
var loadJobs = []Finished{
	{Job: faas.Job{ID: "j1", Owner: "ada", Function: "add", Args: json.RawMessage(`[1,2]`), Trace: "00-t-s-01"},
		Completion: faas.Completion{Result: json.RawMessage(`3`), Duration: 2 * time.Millisecond, Logs: "hi\n", Streams: "w"}},
	{Job: faas.Job{ID: "j2", Owner: "bob", Function: "add", Args: json.RawMessage(`[1]`), Trigger: faas.TriggerWebhook},
		Completion: faas.Completion{Error: faas.Errorf(faas.Timeout, "too slow"), Duration: time.Second}},
}

// loadStore opens a store whose users ada and bob each have the function
// add.
func loadStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	s, ctx := openTemp(t)
	for _, name := range []string{"ada", "bob"} {
		require.NoError(t, s.CreateUser(ctx, faas.User{Name: name, TokenHash: "h-" + name}))
		_, _, err := s.PutFunction(ctx, faas.Function{Owner: name, Name: "add", Source: "function add(a, b) { return a + b }"})
		require.NoError(t, err)
	}
	return s, ctx
}

// dump is every row of the tables a finished job touches, with the times
// the two stores cannot share blanked (a function's version is one).
func dump(t *testing.T, ctx context.Context, s *Store) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	for table, query := range map[string]string{
		"jobs":     `SELECT * FROM jobs ORDER BY id`,
		"users":    `SELECT name, billed FROM users ORDER BY name`,
		"finished": `SELECT * FROM finished ORDER BY outcome`,
	} {
		rows, err := s.reader.QueryContext(ctx, query)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, c := range cols {
				if c == "created" || c == "started" || c == "finished" || c == "version" {
					vals[i] = nil
				}
			}
			out[table] = append(out[table], vals)
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return out
}

// TestLoadFinishedMatchesTheAPI loads jobs in one store and runs the same
// jobs through CreateJob, StartJob and CompleteJob in another: every row,
// bill and count must be the same.
func TestLoadFinishedMatchesTheAPI(t *testing.T) {
	t.Parallel()
	loaded, ctx := loadStore(t)
	require.NoError(t, loaded.LoadFinished(ctx, "bench", loadJobs))

	called, _ := loadStore(t)
	for _, f := range loadJobs {
		_, err := called.CreateJob(ctx, f.Job)
		require.NoError(t, err)
		_, err = called.StartJob(ctx, f.Job.ID, 1, "bench")
		require.NoError(t, err)
		c := f.Completion
		c.JobID, c.Attempt = f.Job.ID, 1
		_, err = called.CompleteJob(ctx, c)
		require.NoError(t, err)
	}
	want := dump(t, ctx, called)
	require.Len(t, want["jobs"], len(loadJobs))
	require.Equal(t, want, dump(t, ctx, loaded))
}

// TestLoadFinishedIsAllOrNothing: a bad job fails its batch, and the
// good jobs before it are not written either.
func TestLoadFinishedIsAllOrNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bad  Finished
	}{
		{"id taken", loadJobs[0]},
		{"no such function", Finished{Job: faas.Job{ID: "j3", Owner: "ada", Function: "nope"}}},
		{"both result and error", Finished{Job: faas.Job{ID: "j3", Owner: "ada", Function: "add"},
			Completion: faas.Completion{Result: json.RawMessage(`1`), Error: faas.Errorf(faas.Internal, "x")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ctx := loadStore(t)
			require.Error(t, s.LoadFinished(ctx, "bench", []Finished{loadJobs[0], loadJobs[1], tt.bad}))
			require.Empty(t, dump(t, ctx, s)["jobs"])
			counts, err := s.FinishedCounts(ctx)
			require.NoError(t, err)
			require.Empty(t, counts)
		})
	}
}

// BenchmarkLoadFinished is the bench's preload: a job per op, written in
// batches of 10,000 with random IDs, as the frontend makes them, each
// batch in ID order.
func BenchmarkLoadFinished(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	require.NoError(b, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "function add(a, b) { return a + b }"})
	require.NoError(b, err)
	batch := make([]Finished, 0, 10000)
	flush := func() {
		slices.SortFunc(batch, func(x, y Finished) int { return strings.Compare(x.Job.ID, y.Job.ID) })
		require.NoError(b, s.LoadFinished(ctx, "bench", batch))
		batch = batch[:0]
	}
	for b.Loop() {
		batch = append(batch, Finished{Job: faas.Job{ID: uuid.NewString(), Owner: "ada", Function: "add", Args: json.RawMessage(`[1,2]`)},
			Completion: faas.Completion{Result: json.RawMessage(`3`), Duration: time.Millisecond}})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}
