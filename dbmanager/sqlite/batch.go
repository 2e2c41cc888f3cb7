package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// maxBatch bounds the one-row writes committed together, past which the
// batcher stops taking more; a group of writes is never split, so one
// commit may hold a little more.
const maxBatch = 64

// rowWrite is one fast-path write waiting for the batcher: a statement
// that writes one row and returns it, and where its result goes.
type rowWrite struct {
	stmt *sql.Stmt
	args []any
	scan func(*sql.Row) error
	done chan error
}

// errClosed answers writes sent after Close.
var errClosed = errors.New("sqlite store closed")

// batchWrites commits the one-row writes of concurrent requests together
// (group commit). A commit in WAL mode writes every page it changed to the
// log, and under load most of that work is the same pages over and over:
// the jobs table's last leaf and its indexes. The batcher takes the writes
// that are already waiting when it is free, up to maxBatch, and runs them in
// one transaction, in order, as if one after another; a write that comes
// alone runs alone, so nothing waits for company. The rows of one batch
// call (CreateJobs, StartJobs, CompleteJobs) come as one group, which is
// committed whole with whatever else is waiting. It runs until Close.
func (s *Store) batchWrites() {
	defer close(s.batcherDone)
	for {
		var batch []*rowWrite
		select {
		case ws := <-s.writes:
			// Capped, so that appending copies rather than writing
			// past the end of the sender's slice.
			batch = ws[:len(ws):len(ws)]
		case <-s.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case ws := <-s.writes:
				batch = append(batch, ws...)
			default:
				break fill
			}
		}
		// Counted first: commit answers the writers, and a caller that
		// reads the metrics next must find its write counted.
		s.commits.Add(1)
		s.batched.Add(uint64(len(batch)))
		s.commit(batch)
	}
}

// Batches reports the batcher's commits and the one-row writes they held
// since Open; their ratio is the mean batch size.
func (s *Store) Batches() (commits, writes uint64) {
	return s.commits.Load(), s.batched.Load()
}

// commit runs a batch and tells each write its outcome. A statement that
// matches no row is an outcome (sql.ErrNoRows), not a failure. If any
// statement fails, or the commit does, the transaction is rolled back and
// each write runs again on its own, so that one bad write fails alone.
func (s *Store) commit(batch []*rowWrite) {
	ctx := context.Background()
	if len(batch) == 1 {
		w := batch[0]
		w.done <- w.scan(w.stmt.QueryRowContext(ctx, w.args...))
		return
	}
	results := make([]error, len(batch))
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Bound to tx once per statement, not per row: binding allocates
		// and takes database/sql's locks, and a batch's rows mostly share
		// one statement.
		bound := make(map[*sql.Stmt]*sql.Stmt, 1)
		for i, w := range batch {
			stmt, ok := bound[w.stmt]
			if !ok {
				stmt = tx.StmtContext(ctx, w.stmt)
				bound[w.stmt] = stmt
			}
			results[i] = w.scan(stmt.QueryRowContext(ctx, w.args...))
			if results[i] != nil && !errors.Is(results[i], sql.ErrNoRows) {
				return fmt.Errorf("batched write %d of %d: %w", i+1, len(batch), results[i])
			}
		}
		return nil
	})
	for i, w := range batch {
		if err != nil {
			s.commit(batch[i : i+1])
		} else {
			w.done <- results[i]
		}
	}
}

// writeRows hands fast-path writes to the batcher as one group, so that
// they share a commit, and waits for them: errs[i] is the outcome of
// ws[i].
func (s *Store) writeRows(ctx context.Context, ws []*rowWrite) (errs []error) {
	errs = make([]error, len(ws))
	if len(ws) == 0 {
		return errs
	}
	for _, w := range ws {
		w.done = make(chan error, 1)
	}
	var refused error
	select {
	case s.writes <- ws:
	case <-s.closing:
		refused = errClosed
	case <-ctx.Done():
		refused = ctx.Err()
	}
	for i, w := range ws {
		if refused != nil {
			errs[i] = refused
			continue
		}
		// Once queued the write is done however long the caller waits:
		// the batch it is in commits or fails as a whole.
		errs[i] = <-w.done
	}
	return errs
}
