package lifecycle

import (
	"context"
	"sync"

	"faas/proxies/faas"
)

// Batch answers a batch call of n rows (CreateJobs, StartJobs,
// CompleteJobs) by running row for every index at once. Each row keeps
// the single-row operation's guarantees (its validation, fencing and
// exactly-once billing) because it is that operation; what the batch adds
// is that the rows travel in one request and their round trips to the
// database overlap. A row that fails
// fails alone. The error is for a batch refused as a whole.
func Batch(ctx context.Context, n int, row func(ctx context.Context, i int) (faas.Job, error)) ([]faas.JobResult, error) {
	if err := BatchSize(n); err != nil {
		return nil, err
	}
	jobs, errs := make([]faas.Job, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { jobs[i], errs[i] = row(ctx, i) })
	}
	wg.Wait()
	return Results(jobs, errs), nil
}

// BatchSize refuses a batch call of more than faas.MaxBatch rows.
func BatchSize(n int) error {
	if n > faas.MaxBatch {
		return faas.Errorf(faas.Invalid, "batch of %d rows: at most %d are allowed", n, faas.MaxBatch)
	}
	return nil
}

// Results answers the rows of a batch call: each its job, or its error.
func Results(jobs []faas.Job, errs []error) []faas.JobResult {
	out := make([]faas.JobResult, len(jobs))
	for i, err := range errs {
		if err != nil {
			out[i].Error = faas.AsError(err)
			continue
		}
		out[i].Job = jobs[i]
	}
	return out
}

// Rows is the single-row job writes of a backend.
type Rows interface {
	CreateJob(ctx context.Context, j faas.Job) (faas.Job, error)
	StartJob(ctx context.Context, id string, attempt int, worker string) (faas.Job, error)
	CompleteJob(ctx context.Context, c faas.Completion) (faas.Job, error)
}

// JobBatches gives a backend, which embeds it, the batch forms of its
// single-row job writes, through Batch.
type JobBatches struct{ Rows Rows }

// CreateJobs implements faas.Store.
func (b JobBatches) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	return Batch(ctx, len(js), func(ctx context.Context, i int) (faas.Job, error) { return b.Rows.CreateJob(ctx, js[i]) })
}

// StartJobs implements faas.Store.
func (b JobBatches) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	return Batch(ctx, len(starts), func(ctx context.Context, i int) (faas.Job, error) {
		return b.Rows.StartJob(ctx, starts[i].ID, starts[i].Attempt, starts[i].Worker)
	})
}

// CompleteJobs implements faas.Store.
func (b JobBatches) CompleteJobs(ctx context.Context, cs []faas.Completion) ([]faas.JobResult, error) {
	return Batch(ctx, len(cs), func(ctx context.Context, i int) (faas.Job, error) { return b.Rows.CompleteJob(ctx, cs[i]) })
}
