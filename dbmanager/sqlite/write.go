package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"faas/dbmanager/internal/lifecycle"
	"faas/proxies/faas"
)

// write runs fn in a transaction on the writer connection, committing if
// it returns nil. fn reads through tx, so what it decides on cannot change
// before it writes.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite commit: %w", err)
	}
	return nil
}

// jobWrite is one row of a job write. Its statement does the write when
// the job is as expected, and runs through the batcher, with the other
// rows of its batch call in one group (the fast path). When it matches
// nothing, refused decides what the row answers, in a transaction of its
// own in which the statement is first tried again, since the job may have
// changed in between. A row that validation refused has only err.
type jobWrite struct {
	err     error
	what    string
	stmt    *sql.Stmt
	args    []any
	scan    func(scanner) (faas.Job, error)
	refused func(ctx context.Context, tx *sql.Tx) (faas.Job, error)
}

// writeJob runs one job write.
func (s *Store) writeJob(ctx context.Context, w *jobWrite) (faas.Job, error) {
	jobs, errs := s.writeJobs(ctx, []*jobWrite{w})
	return jobs[0], errs[0]
}

// writeBatch runs the rows of a batch call, each made into its job write,
// and answers each.
func writeBatch[T any](ctx context.Context, s *Store, rows []T, write func(T) *jobWrite) ([]faas.JobResult, error) {
	if err := lifecycle.BatchSize(len(rows)); err != nil {
		return nil, err
	}
	ws := make([]*jobWrite, len(rows))
	for i, row := range rows {
		ws[i] = write(row)
	}
	return lifecycle.Results(s.writeJobs(ctx, ws)), nil
}

// writeJobs runs job writes: their statements as one group through the
// batcher, so that they share a commit (and with them whatever else is
// waiting), then, one by one, the rows whose statement matched nothing.
// A row that fails does not undo the others.
func (s *Store) writeJobs(ctx context.Context, ws []*jobWrite) (jobs []faas.Job, errs []error) {
	jobs, errs = make([]faas.Job, len(ws)), make([]error, len(ws))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return jobs, errs
	}
	rows := make([]*rowWrite, 0, len(ws))
	at := make([]int, 0, len(ws))
	for i, w := range ws {
		if w.err != nil {
			errs[i] = w.err
			continue
		}
		rows = append(rows, &rowWrite{stmt: w.stmt, args: w.args,
			scan: func(row *sql.Row) (err error) { jobs[i], err = w.scan(row); return err }})
		at = append(at, i)
	}
	for k, err := range s.writeRows(ctx, rows) {
		i := at[k]
		switch {
		case errors.Is(err, sql.ErrNoRows):
			jobs[i], errs[i] = s.settle(ctx, ws[i])
		case err != nil:
			errs[i] = fmt.Errorf("%s: %w", ws[i].what, err)
		}
	}
	return jobs, errs
}

// settle answers a job write whose statement matched nothing. A refusal
// (a *faas.Error) is an answer, not a failure: its transaction commits,
// with what refused wrote (a job failed because its function is gone).
func (s *Store) settle(ctx context.Context, w *jobWrite) (faas.Job, error) {
	var j faas.Job
	var answer error
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = w.scan(in(ctx, tx, w.stmt).QueryRowContext(ctx, w.args...))
		if !errors.Is(err, sql.ErrNoRows) {
			if err != nil {
				return fmt.Errorf("%s: %w", w.what, err)
			}
			return nil
		}
		j, err = w.refused(ctx, tx)
		if _, ok := errors.AsType[*faas.Error](err); ok {
			answer = err
			return nil
		}
		return err
	})
	if err != nil {
		return faas.Job{}, err
	}
	if answer != nil {
		return faas.Job{}, answer
	}
	return j, nil
}

// short prepares ctx for a statement that reads or writes one row by its
// key. Such a statement takes microseconds, so it is not worth interrupting
// once started, while watching a cancellable context is not free: both
// database/sql and the driver start a goroutine per statement to do it,
// measured at about 4µs of CPU, a third of a read by key. So the statement
// runs without ctx's cancellation, after a check that ctx has not ended.
// A caller whose context ends while it waits for the writer connection
// still waits its turn, one queue of such statements at most.
func short(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return ctx, err
	}
	return context.WithoutCancel(ctx), nil
}
