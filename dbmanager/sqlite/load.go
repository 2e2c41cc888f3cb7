package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"faas/dbmanager/internal/lifecycle"
	"faas/proxies/faas"
)

// loadCacheKiB is the page cache of LoadFinished's transactions, in
// SQLite's negative-KiB notation: 256 MB.
const loadCacheKiB = -256 << 10

// Finished is a job to load with the outcome of its one attempt.
type Finished struct {
	Job faas.Job
	// Completion's JobID and Attempt are filled in by LoadFinished.
	Completion faas.Completion
}

// LoadFinished writes jobs that ran once and finished, all in one
// transaction, for a benchmark that needs a store with a million of them:
// through the Store's API each would cost three commits. Each job goes
// through the statements CreateJob, StartJob (leased to worker) and
// CompleteJob run, with the same checks, so the rows, the billing and the
// finished counts are exactly what those calls leave. Unlike them it is
// not idempotent: a job whose ID is taken fails the whole batch. Jobs in
// ID order touch fewer pages.
func (s *Store) LoadFinished(ctx context.Context, worker string, jobs []Finished) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// A large batch changes more pages than SQLite's default cache of
		// 2 MB holds, which then spills them to the log mid-transaction
		// and reads them back: a slowdown that grows with the store. The
		// cache is the writer connection's, so it goes back afterwards.
		var cache int64
		if err := tx.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, loadCacheKiB)); err != nil {
			return err
		}
		defer tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, cache))
		create, start, complete := in(ctx, tx, s.stmts.createJob), in(ctx, tx, s.stmts.startJob), in(ctx, tx, s.stmts.completeJob)
		for _, f := range jobs {
			j, err := lifecycle.Job(f.Job)
			if err != nil {
				return err
			}
			var version int64
			var concurrency int
			if err := create.QueryRowContext(ctx, createJobArgs(j)...).Scan(&version, &concurrency); err != nil {
				return fmt.Errorf("load job %s: create: %w", j.ID, err)
			}
			if err := lifecycle.Start(j.ID, 1, worker); err != nil {
				return err
			}
			args, scan := startRow(j.ID, 1, worker, lifecycle.Now())
			if _, err := scan(start.QueryRowContext(ctx, args...)); err != nil {
				return fmt.Errorf("load job %s: start: %w", j.ID, err)
			}
			c := f.Completion
			c.JobID, c.Attempt = j.ID, 1
			args, scan, err = completeRow(c, lifecycle.Now())
			if err != nil {
				return err
			}
			if _, err := scan(complete.QueryRowContext(ctx, args...)); err != nil {
				return fmt.Errorf("load job %s: complete: %w", j.ID, err)
			}
		}
		return nil
	})
}
