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

// firstTry runs a conditional write of one row as a statement of its own
// (the fast path: one implicit transaction), returning ok if it matched.
// On no match the caller decides inside a transaction, trying the write
// again there first, since the row may have changed in between.
func firstTry(ctx context.Context, stmt *sql.Stmt, scan func(*sql.Row) error, args ...any) (ok bool, err error) {
	err = scan(stmt.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
