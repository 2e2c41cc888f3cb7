package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// firstTry runs a conditional write of one row on its own (the fast path:
// no explicit transaction of its own, though the batcher may commit it
// with others), returning ok if it matched. On no match the caller decides
// inside a transaction, trying the write again there first, since the row
// may have changed in between.
func (s *Store) firstTry(ctx context.Context, stmt *sql.Stmt, scan func(*sql.Row) error, args ...any) (ok bool, err error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	err = s.writeRow(ctx, stmt, scan, args)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
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
