package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
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

// batchSizes are the rows per call the batch benchmarks send: a lone row,
// the few the JQ manager coalesces under moderate load, and up to
// faas.MaxBatch.
var batchSizes = []int{1, 4, 16, 64}

// stage is how far benchBatches brings the jobs before timing the call.
type stage int

const (
	fresh   stage = iota // not created
	queued               // created
	running              // started as attempt 1 by worker w
)

// jobIDs are the kinds of job ID the batch benchmarks key jobs by:
// random ones as the frontend makes them today (UUIDv4), and time-ordered
// ones (UUIDv7). The jobs table is keyed by ID, so random IDs put the rows
// of one batch, and of consecutive commits, on different pages, each a
// page read, written to the log and checkpointed; time-ordered ones put
// them on the same few.
var jobIDs = []struct {
	name string
	make func() string
}{
	{"random", uuid.NewString},
	{"ordered", func() string { return uuid.Must(uuid.NewV7()).String() }},
}

// benchBatches times call over b.N jobs, brought to from first, sent size
// rows at a time and one call at a time, as the JQ manager's batcher sends
// them, for each of batchSizes and jobIDs. An op is one job, so ns/op,
// allocs/op and cpu-ns/op are per job; every row must be stored.
func benchBatches(b *testing.B, from stage, call func(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error)) {
	for _, kind := range jobIDs {
		for _, size := range batchSizes {
			b.Run(fmt.Sprintf("ids=%s/rows=%d", kind.name, size), func(b *testing.B) {
				s, ctx := benchStore(b)
				ids := make([]string, b.N)
				for i := range ids {
					ids[i] = kind.make()
				}
				steps := []func(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error){createJobs, startJobs}
				for _, step := range steps[:from] {
					inBatches(b, ctx, s, ids, faas.MaxBatch, step)
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := cpuTime(b)
				inBatches(b, ctx, s, ids, size, call)
				b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// inBatches runs call over ids, size at a time, requiring every row stored.
func inBatches(b *testing.B, ctx context.Context, s *sqlite.Store, ids []string, size int,
	call func(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error)) {
	b.Helper()
	for i := 0; i < len(ids); i += size {
		res, err := call(ctx, s, ids[i:min(i+size, len(ids))])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Error != nil {
				b.Fatal(r.Error)
			}
		}
	}
}

func createJobs(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error) {
	js := make([]faas.Job, len(ids))
	for k, id := range ids {
		js[k] = faas.Job{ID: id, Owner: "ada", Function: "add", Args: json.RawMessage(`[4,5]`)}
	}
	return s.CreateJobs(ctx, js)
}

func startJobs(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error) {
	starts := make([]faas.Start, len(ids))
	for k, id := range ids {
		starts[k] = faas.Start{ID: id, Attempt: 1, Worker: "w"}
	}
	return s.StartJobs(ctx, starts)
}

func completeJobs(ctx context.Context, s *sqlite.Store, ids []string) ([]faas.JobResult, error) {
	cs := make([]faas.Completion, len(ids))
	for k, id := range ids {
		cs[k] = faas.Completion{JobID: id, Attempt: 1, Result: json.RawMessage(`9`), Logs: "log line\n", Duration: time.Millisecond}
	}
	return s.CompleteJobs(ctx, cs)
}

func BenchmarkCreateJobs(b *testing.B)   { benchBatches(b, fresh, createJobs) }
func BenchmarkStartJobs(b *testing.B)    { benchBatches(b, queued, startJobs) }
func BenchmarkCompleteJobs(b *testing.B) { benchBatches(b, running, completeJobs) }
