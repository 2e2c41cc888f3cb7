package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestPruneVersionsUsesIndex keeps pruning a lookup of each version's jobs:
// a user's jobs may be many, the pending ones among them few.
func TestPruneVersionsUsesIndex(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	plan := queryPlan(t, ctx, s, pruneVersions)
	require.Contains(t, plan, "SEARCH jobs USING INDEX jobs_version (owner=? AND function=? AND version=?)")
}

// TestVersionsOfOlderDatabase opens a database written before versions
// were kept, or env and secrets: its current versions become readable, so
// its queued jobs run, and functions take settings.
func TestVersionsOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	require.NoError(t, err)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	f, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b", MemoryMB: 128})
	require.NoError(t, err)
	j, err := s.CreateJob(ctx, faas.Job{ID: "j1", Owner: "ada", Function: "add"})
	require.NoError(t, err)
	_, err = s.writer.ExecContext(ctx, `DROP TRIGGER functions_created; DROP TRIGGER functions_replaced; DROP TRIGGER functions_deleted;
		DROP TABLE versions; ALTER TABLE functions DROP COLUMN settings; PRAGMA user_version = 0`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(ctx, dir)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
	require.Equal(t, f, got)
	_, err = s.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
	env := map[string]string{"K": "v"}
	f, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b", Env: env})
	require.NoError(t, err)
	got, err = s.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
	require.Equal(t, env, got.Env)
}
