package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBatchedWrites queues writes while the writer connection is held, so
// the batcher finds them waiting and commits them together; one of them
// breaks a unique constraint and must fail alone.
func TestBatchedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	insert, err := s.writer.PrepareContext(ctx, `INSERT INTO users (name, token_hash, created) VALUES (?, ?, 0) RETURNING name`)
	require.NoError(t, err)
	defer insert.Close()

	// Hold the one writer connection: the batcher's first write waits on
	// it, and the rest queue behind.
	hold, err := s.writer.BeginTx(ctx, nil)
	require.NoError(t, err)

	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			token := fmt.Sprint("token-", i)
			if i == n-1 {
				token = "token-3" // taken by another write of the batch
			}
			var name string
			errs[i] = s.writeRow(ctx, insert, func(r *sql.Row) error { return r.Scan(&name) },
				[]any{fmt.Sprint("user-", i), token})
		})
	}
	time.Sleep(200 * time.Millisecond) // all queued
	require.NoError(t, hold.Rollback())
	wg.Wait()

	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			require.Contains(t, err.Error(), "UNIQUE", "write %d", i)
		}
	}
	require.Equal(t, 1, failed, "exactly the conflicting write fails: %v", errs)
	var count int
	require.NoError(t, s.reader.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&count))
	require.Equal(t, n-1, count, "the others were all committed")
}

func TestWritesAfterCloseFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	err = s.writeRow(ctx, nil, nil, nil)
	require.ErrorIs(t, err, errClosed)
}
