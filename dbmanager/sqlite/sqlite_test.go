package sqlite_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/dbmanager/storetest"
	"faas/proxies/faas"
)

func open(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	storetest.Run(t, func(t *testing.T) faas.Store { return s })
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := open(t, dir)
	u := faas.User{Name: "ada", TokenHash: "h"}
	require.NoError(t, s.CreateUser(ctx, u))
	f, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(t, err)
	queued, err := s.CreateJob(ctx, faas.Job{ID: "j1", Owner: "ada", Function: "add", Args: json.RawMessage(`[1,2]`)})
	require.NoError(t, err)
	_, err = s.CreateJob(ctx, faas.Job{ID: "j2", Owner: "ada", Function: "add"})
	require.NoError(t, err)
	_, err = s.StartJob(ctx, "j2", 1, "w")
	require.NoError(t, err)
	done, err := s.CompleteJob(ctx, faas.Completion{JobID: "j2", Attempt: 1, Result: json.RawMessage(`3`), Duration: 1234567 * time.Nanosecond})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = open(t, dir)
	defer s.Close()
	got, err := s.User(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, u.TokenHash, got.TokenHash)
	gotF, err := s.Function(ctx, "ada", "add")
	require.NoError(t, err)
	require.Equal(t, f, gotF)
	gotQ, err := s.Job(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, queued, gotQ)
	gotD, err := s.Job(ctx, "j2")
	require.NoError(t, err)
	require.Equal(t, done, gotD)
	billed, err := s.BilledTime(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, done.Billed, billed)
	// Listed for a restarted queue without its arguments.
	queued.Args = nil
	require.Equal(t, []faas.Job{queued}, storetest.Pending(t, ctx, s, faas.MaxPendingPage))
}

// TestOpenUsesWAL reads the database file's header: the store's
// readers run beside its writer only in WAL mode, which each connection
// sets when the driver opens it.
func TestOpenUsesWAL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	require.NoError(t, s.CreateUser(context.Background(), faas.User{Name: "ada", TokenHash: "h"}))
	header := make([]byte, 20)
	f, err := os.Open(filepath.Join(dir, sqlite.FileName))
	require.NoError(t, err)
	defer f.Close()
	_, err = io.ReadFull(f, header)
	require.NoError(t, err)
	// Bytes 18 and 19 are the file format's write and read versions: 2
	// is WAL, 1 the rollback journal.
	require.Equal(t, []byte{2, 2}, header[18:20], "the database is not in WAL mode")
}

func TestOpenFailsOnUnusableDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	require.NoError(t, s.Close())
	// A file where the directory should be.
	_, err := sqlite.Open(context.Background(), dir+"/"+sqlite.FileName+"/sub")
	require.Error(t, err)
}

// TestEndedContextIsRefused checks the fast paths, which run their
// statement without the context's cancellation, still refuse to start
// for a context that has ended.
func TestEndedContextIsRefused(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := open(t, t.TempDir())
	defer s.Close()
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(t, err)
	_, err = s.CreateJob(ctx, faas.Job{ID: "started", Owner: "ada", Function: "add"})
	require.NoError(t, err)

	ended, endNow := context.WithCancel(ctx)
	endNow()
	_, err = s.CreateJob(ended, faas.Job{ID: "new", Owner: "ada", Function: "add"})
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.StartJob(ended, "started", 1, "w")
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Job(ended, "started")
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.UserByToken(ended, "h")
	require.ErrorIs(t, err, context.Canceled)

	_, err = s.Job(ctx, "new")
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	queued, err := s.Job(ctx, "started")
	require.NoError(t, err)
	require.Equal(t, faas.Queued, queued.State)
}
