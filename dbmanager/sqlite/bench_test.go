package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/proxies/faas"
)

// benchStore opens a store with one user and one function. The context
// can be cancelled, as the one the DB manager serves requests with.
func benchStore(b *testing.B) (*sqlite.Store, context.Context) {
	b.Helper()
	s := open(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	require.NoError(b, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(b, err)
	return s, ctx
}

var benchSeq atomic.Int64

func newJob(b *testing.B, ctx context.Context, s *sqlite.Store) faas.Job {
	j, err := s.CreateJob(ctx, faas.Job{ID: fmt.Sprintf("job-%d", benchSeq.Add(1)), Owner: "ada", Function: "add", Args: json.RawMessage(`[4,5]`)})
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// jobs creates n queued jobs, started as attempt 1 if start is set.
func jobs(b *testing.B, ctx context.Context, s *sqlite.Store, n int, start bool) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newJob(b, ctx, s).ID
		if start {
			_, err := s.StartJob(ctx, ids[i], 1, "w")
			require.NoError(b, err)
		}
	}
	return ids
}

// concurrency is the number of requests in flight, as the DB manager
// serves them with many workers and frontends calling.
const concurrency = 32

// parallel runs op b.N times over concurrency goroutines per CPU, each call
// getting its own index. Besides wall time it reports the process's CPU
// time per call, which is what bounds throughput on a fixed number of
// cores, and which other load on the machine disturbs less.
func parallel(b *testing.B, op func(i int) error) {
	var next atomic.Int64
	b.SetParallelism(concurrency)
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(next.Add(1) - 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkCreateJob(b *testing.B) {
	s, ctx := benchStore(b)
	parallel(b, func(int) error { newJob(b, ctx, s); return nil })
}

func BenchmarkStartJob(b *testing.B) {
	s, ctx := benchStore(b)
	ids := jobs(b, ctx, s, b.N, false)
	parallel(b, func(i int) error { _, err := s.StartJob(ctx, ids[i], 1, "w"); return err })
}

func BenchmarkCompleteJob(b *testing.B) {
	s, ctx := benchStore(b)
	ids := jobs(b, ctx, s, b.N, true)
	parallel(b, func(i int) error {
		_, err := s.CompleteJob(ctx, faas.Completion{JobID: ids[i], Attempt: 1, Result: json.RawMessage(`9`), Duration: time.Millisecond})
		return err
	})
}

func BenchmarkJob(b *testing.B) {
	s, ctx := benchStore(b)
	ids := jobs(b, ctx, s, 1000, true)
	parallel(b, func(i int) error { _, err := s.Job(ctx, ids[i%len(ids)]); return err })
}

func BenchmarkUserByToken(b *testing.B) {
	s, ctx := benchStore(b)
	parallel(b, func(int) error { _, err := s.UserByToken(ctx, "h"); return err })
}

// BenchmarkJobLifecycle is one job's store traffic end to end: create,
// start, complete and two reads. Its ops/s is the store's bound on jobs/s.
func BenchmarkJobLifecycle(b *testing.B) {
	s, ctx := benchStore(b)
	parallel(b, func(int) error {
		j := newJob(b, ctx, s)
		if _, err := s.StartJob(ctx, j.ID, 1, "w"); err != nil {
			return err
		}
		if _, err := s.Job(ctx, j.ID); err != nil {
			return err
		}
		if _, err := s.CompleteJob(ctx, faas.Completion{JobID: j.ID, Attempt: 1, Result: json.RawMessage(`9`), Duration: time.Millisecond}); err != nil {
			return err
		}
		_, err := s.Job(ctx, j.ID)
		return err
	})
}

// BenchmarkUsage sums the usage of a user with 10,000 retained jobs, the
// walk the frontend's job-data quota pays at most once a second per user.
func BenchmarkUsage(b *testing.B) {
	s, ctx := benchStore(b)
	jobs(b, ctx, s, 10000, false)
	for b.Loop() {
		if _, err := s.Usage(ctx, "ada"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompleteJobs completes running jobs in batches of 8, one batch
// at a time, as the JQ manager sends them; an op is one row. Its CPU time
// per row is what batching the rows into one commit saves.
func BenchmarkCompleteJobs(b *testing.B) {
	const rows = 8
	s, ctx := benchStore(b)
	ids := jobs(b, ctx, s, b.N+rows, true)
	b.ResetTimer()
	start := cpuTime(b)
	for i := 0; i < b.N; i += rows {
		cs := make([]faas.Completion, rows)
		for k := range cs {
			cs[k] = faas.Completion{JobID: ids[i+k], Attempt: 1, Result: json.RawMessage(`9`), Duration: time.Millisecond}
		}
		res, err := s.CompleteJobs(ctx, cs)
		require.NoError(b, err)
		for _, r := range res {
			require.Nil(b, r.Error)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}
