package sqlite

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager/storetest"
	"faas/proxies/faas"
)

// TestPruneVersionsUsesIndex keeps pruning a lookup of each version's jobs:
// a user's jobs may be many, the pending ones among them few.
func TestPruneVersionsUsesIndex(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	plan := queryPlan(t, ctx, s, pruneVersions)
	require.Contains(t, plan, "SEARCH jobs USING INDEX jobs_unfinished (owner=? AND function=? AND version=?)")
}

// TestJobPageUsesIndex keeps a page of a user's jobs a walk of the
// jobs_history index from the cursor, in its order: without it, each
// page would read and sort every job of the user.
func TestJobPageUsesIndex(t *testing.T) {
	t.Parallel()
	requireIndexWalk(t, "SEARCH jobs USING INDEX jobs_history (owner=? AND (created,id)<(?,?))", jobPage, "ada", int64(1), "j", "", "", 50)
}

// requireIndexWalk checks that query's plan has step and sorts nothing,
// the rows coming in the index's order.
func requireIndexWalk(t *testing.T, step, query string, args ...any) {
	t.Helper()
	s, ctx := openTemp(t)
	plan := queryPlan(t, ctx, s, query, args...)
	require.Contains(t, plan, step)
	for _, p := range plan {
		require.NotContains(t, p, "TEMP B-TREE", "the rows must come in the index's order")
	}
}

// TestFailedJobsUsesIndex keeps the operator's list of failures a walk of
// the partial index jobs_failed: without it, the list would read every job
// of every user.
func TestFailedJobsUsesIndex(t *testing.T) {
	t.Parallel()
	requireIndexWalk(t, "SCAN jobs USING INDEX jobs_failed", failedJobs, 20)
}

// olderDatabase makes a database with user ada, her function add and a
// queued job j1 of it, turns it into one an earlier release wrote by
// running past, and opens it again, closed at the end of the test.
func olderDatabase(t *testing.T, past string) (context.Context, *Store, faas.Function) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	require.NoError(t, err)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	f, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b", MemoryMB: 128})
	require.NoError(t, err)
	_, err = s.CreateJob(ctx, faas.Job{ID: "j1", Owner: "ada", Function: "add"})
	require.NoError(t, err)
	_, err = s.writer.ExecContext(ctx, past)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(ctx, dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return ctx, s, f
}

// TestVersionsOfOlderDatabase opens a database written before versions
// were kept, or env and secrets, or creation times: its current versions
// become readable, so its queued jobs run, and functions take settings.
func TestVersionsOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, f := olderDatabase(t, `DROP TRIGGER functions_created; DROP TRIGGER functions_replaced; DROP TRIGGER functions_deleted;
		DROP TABLE versions; ALTER TABLE functions DROP COLUMN settings; ALTER TABLE functions DROP COLUMN created;
		PRAGMA user_version = 0`)
	got, err := s.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
	require.Equal(t, f, got)
	_, err = s.StartJob(ctx, "j1", 1, "w1")
	require.NoError(t, err)
	env := map[string]string{"K": "v"}
	f, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b", Env: env})
	require.NoError(t, err)
	got, err = s.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
	require.Equal(t, env, got.Env)
}

// TestCreatedOfOlderDatabase opens a database written before functions
// kept their creation time: their last update stands in for it, and a
// replacement keeps that.
func TestCreatedOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, f := olderDatabase(t, `DROP TRIGGER functions_created; DROP TRIGGER functions_replaced;
		ALTER TABLE functions DROP COLUMN created; ALTER TABLE versions DROP COLUMN created; PRAGMA user_version = 2`)
	got, err := s.Function(ctx, "ada", "add")
	require.NoError(t, err)
	require.Equal(t, f, got)
	v2, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>b+a"})
	require.NoError(t, err)
	require.Equal(t, f.Created, v2.Created)
	kept, err := s.FunctionVersion(ctx, "ada", "add", v2.Version)
	require.NoError(t, err)
	require.Equal(t, v2, kept, "the triggers created anew copy the creation time")
}

// TestStreamsOfOlderDatabase opens a database written before jobs kept
// their lines' streams: its jobs read with none, and a job finished now
// keeps them.
func TestStreamsOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, _ := olderDatabase(t, `ALTER TABLE jobs DROP COLUMN streams; PRAGMA user_version = 4`)
	j, err := s.Job(ctx, "j1")
	require.NoError(t, err)
	require.Empty(t, j.Streams)
	_, err = s.StartJob(ctx, "j1", 1, "w1")
	require.NoError(t, err)
	done, err := s.CompleteJob(ctx, faas.Completion{JobID: "j1", Attempt: 1, Result: json.RawMessage("1"), Logs: "a\nb\n", Streams: "lw"})
	require.NoError(t, err)
	require.Equal(t, "lw", done.Streams)
}

// TestFinishedOfOlderDatabase opens a database written before finished
// jobs were counted: the upgrade counts the ones it still holds, by
// outcome, and from then on the trigger counts.
func TestFinishedOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, _ := olderDatabase(t, `DROP TRIGGER jobs_finished; DROP TABLE finished;
		INSERT INTO jobs SELECT 'j2', owner, function, version, args, 'failed', attempt, worker, created, started,
			finished, result, '{"code":"timeout","message":"slow"}', duration, billed, logs, lost, trace, streams, concurrency, triggered_by, parent, calls FROM jobs WHERE id = 'j1';
		INSERT INTO jobs SELECT 'j3', owner, function, version, args, 'succeeded', attempt, worker, created, started,
			finished, result, NULL, duration, billed, logs, lost, trace, streams, concurrency, triggered_by, parent, calls FROM jobs WHERE id = 'j1';
		PRAGMA user_version = 6`)
	got, err := s.FinishedCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{faas.OutcomeOK: 1, string(faas.Timeout): 1}, got)

	_, err = s.StartJob(ctx, "j1", 1, "w1")
	require.NoError(t, err)
	_, err = s.CompleteJob(ctx, faas.Completion{JobID: "j1", Attempt: 1, Error: faas.Errorf(faas.Timeout, "slow"), Duration: time.Millisecond})
	require.NoError(t, err)
	got, err = s.FinishedCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{faas.OutcomeOK: 1, string(faas.Timeout): 2}, got)
}

// TestChildrenUseIndex keeps the children of a job a lookup in the
// partial index jobs_parent, not a scan of every job.
func TestChildrenUseIndex(t *testing.T) {
	t.Parallel()
	requireIndexWalk(t, "SEARCH jobs USING COVERING INDEX jobs_parent (parent=?)", children, "j1", 100)
}

// TestParentOfOlderDatabase opens a database written before jobs had a
// parent or calls: its jobs have neither, and new ones get both.
func TestParentOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, _ := olderDatabase(t, `DROP INDEX jobs_parent; ALTER TABLE jobs DROP COLUMN parent; ALTER TABLE jobs DROP COLUMN calls; PRAGMA user_version = 8`)
	old, err := s.Job(ctx, "j1")
	require.NoError(t, err)
	require.Empty(t, old.Parent)
	require.Nil(t, old.Children)

	_, err = s.CreateJob(ctx, faas.Job{ID: "j2", Owner: "ada", Function: "add", Parent: "j1"})
	require.NoError(t, err)
	old, err = s.Job(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, []string{"j2"}, old.Children)
	_, err = s.StartJob(ctx, "j1", 1, "w1")
	require.NoError(t, err)
	done, err := s.CompleteJob(ctx, faas.Completion{JobID: "j1", Attempt: 1, Result: json.RawMessage(`1`),
		Calls: []faas.Call{{Function: "add", Version: 3, Duration: time.Millisecond}}, CallsTruncated: true})
	require.NoError(t, err)
	require.Equal(t, []faas.Call{{Function: "add", Version: 3, Duration: time.Millisecond}}, done.Calls)
	require.True(t, done.CallsTruncated)
}

// TestPendingJobsUsesIndex keeps a page of the pending jobs, which the JQ
// manager lists when it starts, a walk of the partial index
// jobs_unfinished from the page's key, in the index's order: without it
// each page would read every job ever kept, or sort all pending ones.
func TestPendingJobsUsesIndex(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	require.Equal(t, []string{"SEARCH jobs USING INDEX jobs_unfinished ((owner,function,version,created,id)>(?,?,?,?,?))"},
		queryPlan(t, ctx, s, pendingJobs, "ada", "f", 1, 2, "j", 10))
}

// TestStartWritesNoIndex keeps a start to the jobs row: an index the
// update opens for writing is one whose entry it may move, a page more in
// the commit of every start. jobs_failed is opened, since its condition
// names the state, but holds failed jobs only, so the update checks the
// condition on the row before and after and writes nothing to it.
func TestStartWritesNoIndex(t *testing.T) {
	t.Parallel()
	s, ctx := openTemp(t)
	indexes := map[int64]string{}
	rows, err := s.writer.QueryContext(ctx, `SELECT rootpage, name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'`)
	require.NoError(t, err)
	for rows.Next() {
		var root int64
		var name string
		require.NoError(t, rows.Scan(&root, &name))
		indexes[root] = name
	}
	require.NoError(t, rows.Err())
	require.Contains(t, slices.Collect(maps.Values(indexes)), "jobs_unfinished")

	// EXPLAIN lists the program's steps; OpenWrite's p2 is the root page
	// of the table or index it opens.
	rows, err = s.writer.QueryContext(ctx, "EXPLAIN "+startJob, 1, "w", 1, "j", 0)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var addr, p1, p2, p3, p5 int64
		var opcode string
		var p4, comment any
		require.NoError(t, rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment))
		if name, ok := indexes[p2]; ok && opcode == "OpenWrite" && name != "jobs_failed" {
			t.Errorf("a start opens index %s for writing", name)
		}
	}
	require.NoError(t, rows.Err())
}

// TestPendingIndexOfOlderDatabase opens a database whose pending jobs
// were indexed by state, and every job by version, with triggers that
// looked them up there: the upgrade drops both indexes and recreates the
// triggers, which find a version's pending jobs in jobs_unfinished, and
// the pending jobs are listed from it.
func TestPendingIndexOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, s, f := olderDatabase(t, `DROP INDEX jobs_unfinished;
		CREATE INDEX jobs_pending ON jobs(created, id) WHERE state IN ('queued', 'running');
		CREATE INDEX jobs_version ON jobs(owner, function, version);
		DROP TRIGGER functions_created; DROP TRIGGER functions_replaced;`+
		strings.ReplaceAll(versionTriggers, "jobs.finished = 0 AND ", "")+`; PRAGMA user_version = 9`)
	var names []string
	rows, err := s.writer.QueryContext(ctx, `SELECT name FROM sqlite_master
		WHERE name IN ('jobs_pending', 'jobs_version', 'jobs_unfinished')
			OR (name = 'functions_replaced' AND sql LIKE '%jobs.finished = 0%')
		ORDER BY name`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		names = append(names, name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"functions_replaced", "jobs_unfinished"}, names)
	pending := storetest.Pending(t, ctx, s, faas.MaxPendingPage)
	require.Len(t, pending, 1)
	require.Equal(t, "j1", pending[0].ID)

	// The replaced version stays while j1 is pending.
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>b+a"})
	require.NoError(t, err)
	_, err = s.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
}
