package jqmanager_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestLiveLogs: a running attempt's lines are kept and published, fenced
// by the lease, deduplicated by offset, bounded, and gone with the job;
// in-process and over the wire alike.
func TestLiveLogs(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		ctx := r.ctx
		line := func(off int, stream, text string) faas.LogLine {
			return faas.LogLine{Offset: off, Stream: stream, Line: text}
		}
		r.submit("ann")
		j, ok := r.next("w", time.Second)
		require.True(t, ok)
		lease := faas.Lease{ID: j.ID, Attempt: j.Attempt}
		start, err := q.Events(ctx, 0, 0)
		require.NoError(t, err)

		require.NoError(t, q.AppendLogs(ctx, "w", lease, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b")}))
		// A retried batch adds only what is new.
		require.NoError(t, q.AppendLogs(ctx, "w", lease, []faas.LogLine{line(1, "warn", "b"), line(2, "error", "c")}))
		got, running, err := q.Logs(ctx, j.ID, 0)
		require.NoError(t, err)
		require.True(t, running)
		require.Equal(t, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b"), line(2, "error", "c")}, got)
		got, _, err = q.Logs(ctx, j.ID, 2)
		require.NoError(t, err)
		require.Equal(t, []faas.LogLine{line(2, "error", "c")}, got)
		_, _, err = q.Logs(ctx, j.ID, -1)
		require.Equal(t, faas.Invalid, faas.ErrorCode(err))

		page, err := q.Events(ctx, start.Next, time.Second)
		require.NoError(t, err)
		require.Len(t, page.List, 2)
		require.Equal(t, faas.JobLogs, page.List[0].Kind)
		require.Equal(t, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b")}, page.List[0].Lines)
		require.Equal(t, []faas.LogLine{line(2, "error", "c")}, page.List[1].Lines)

		// Only the lease holder writes: another worker, or a stale
		// attempt, is refused.
		require.Equal(t, faas.Conflict, faas.ErrorCode(q.AppendLogs(ctx, "x", lease, []faas.LogLine{line(3, "log", "x")})))
		require.Equal(t, faas.Conflict, faas.ErrorCode(q.AppendLogs(ctx, "w", faas.Lease{ID: j.ID, Attempt: j.Attempt - 1}, []faas.LogLine{line(3, "log", "x")})))

		// A batch too large for an event is announced without lines;
		// past the cap, lines are dropped.
		big := strings.Repeat("x", 40<<10)
		require.NoError(t, q.AppendLogs(ctx, "w", lease, []faas.LogLine{line(3, "log", big), line(4, "log", big), line(5, "log", "y")}))
		page, err = q.Events(ctx, page.Next, time.Second)
		require.NoError(t, err)
		require.Len(t, page.List, 1)
		require.Equal(t, faas.JobLogs, page.List[0].Kind)
		require.Nil(t, page.List[0].Lines)
		got, _, err = q.Logs(ctx, j.ID, 3)
		require.NoError(t, err)
		require.Equal(t, []faas.LogLine{line(3, "log", big)}, got)

		// A new attempt prints from line 0 again; the old one is fenced.
		require.NoError(t, q.Release(ctx, lease, "stopping"))
		j2, ok := r.next("w2", time.Second)
		require.True(t, ok)
		got, running, err = q.Logs(ctx, j.ID, 0)
		require.NoError(t, err)
		require.True(t, running)
		require.Empty(t, got)
		require.Equal(t, faas.Conflict, faas.ErrorCode(q.AppendLogs(ctx, "w", lease, []faas.LogLine{line(0, "log", "stale")})))

		// Finished, the job's lines are the Store's business.
		require.NoError(t, r.complete(j2))
		got, running, err = q.Logs(ctx, j.ID, 0)
		require.NoError(t, err)
		require.False(t, running)
		require.Empty(t, got)
	}, "ann")
}
