package frontend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func finishedJob1(id, owner string) faas.Job {
	return faas.Job{ID: id, Owner: owner, Function: "f", State: faas.Succeeded, Args: json.RawMessage("[1]"), Result: json.RawMessage("2"), Logs: "hi\n"}
}

func TestFinishedCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// run acts on a cache with room for five small jobs, which keeps
		// them a minute; want are the ids then cached.
		run  func(fc *finishedCache)
		want []string
	}{
		{"fill caches a finished job", func(fc *finishedCache) {
			fc.fill(finishedJob1("a", "ann"), fc.generation())
		}, []string{"a"}},
		{"live jobs are not cached", func(fc *finishedCache) {
			j := finishedJob1("a", "ann")
			j.State = faas.Running
			fc.fill(j, fc.generation())
			fc.observe(&faas.Event{Kind: faas.JobFinished, JobID: "a", Job: &j})
		}, nil},
		{"a read that raced with a deletion is not cached", func(fc *finishedCache) {
			gen := fc.generation()
			fc.forgetJob("other")
			fc.fill(finishedJob1("a", "ann"), gen)
		}, nil},
		{"JobDeleted evicts", func(fc *finishedCache) {
			fc.fill(finishedJob1("a", "ann"), fc.generation())
			fc.fill(finishedJob1("b", "ann"), fc.generation())
			fc.observe(&faas.Event{Kind: faas.JobDeleted, JobID: "a"})
		}, []string{"b"}},
		{"UserRevoked evicts the user's jobs", func(fc *finishedCache) {
			fc.fill(finishedJob1("a", "ann"), fc.generation())
			fc.fill(finishedJob1("b", "bob"), fc.generation())
			fc.observe(&faas.Event{Kind: faas.UserRevoked, User: "ann"})
		}, []string{"b"}},
		{"a gap drops everything", func(fc *finishedCache) {
			fc.fill(finishedJob1("a", "ann"), fc.generation())
			fc.fill(finishedJob1("b", "bob"), fc.generation())
			fc.observe(nil)
		}, nil},
		{"the least recently used goes first", func(fc *finishedCache) {
			for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
				fc.fill(finishedJob1(id, "ann"), fc.generation())
				_, ok := fc.get("a", needStatus) // a stays in use
				require.True(t, ok)
			}
		}, []string{"a", "d", "e", "f", "g"}},
		{"a job larger than the cache is not cached", func(fc *finishedCache) {
			j := finishedJob1("a", "ann")
			j.Result = json.RawMessage(`"` + strings.Repeat("x", 5000) + `"`)
			fc.fill(j, fc.generation())
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := newFinishedCache(5*cachedOverhead+200, time.Minute)
			tc.run(fc)
			var got []string
			for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
				if _, ok := fc.get(id, needStatus); ok {
					got = append(got, id)
				}
			}
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, fc.bytes, fc.max)
		})
	}
}

// TestFinishedCacheKeepsWhatEachReadNeeds: an event's record has no
// arguments, so it answers status reads but not /info, until a read of
// the Store supplies them; no record keeps the logs.
func TestFinishedCacheKeepsWhatEachReadNeeds(t *testing.T) {
	t.Parallel()
	fc := newFinishedCache(1<<20, time.Minute)
	ev := finishedJob1("a", "ann")
	ev.Args, ev.Logs = nil, ""
	fc.observe(&faas.Event{Kind: faas.JobFinished, JobID: "a", Job: &ev})
	_, ok := fc.get("a", needArgs)
	require.False(t, ok, "an event's record answered a read that needs the arguments")
	got, ok := fc.get("a", needStatus)
	require.True(t, ok)
	require.Equal(t, ev, got)

	fc.fill(finishedJob1("a", "ann"), fc.generation())
	got, ok = fc.get("a", needArgs)
	require.True(t, ok)
	require.JSONEq(t, "[1]", string(got.Args))
	require.Empty(t, got.Logs, "the cache kept the logs")

	// A later event does not take the arguments away.
	fc.observe(&faas.Event{Kind: faas.JobFinished, JobID: "a", Job: &ev})
	_, ok = fc.get("a", needArgs)
	require.True(t, ok)
}

func TestFinishedCacheExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	fc := newFinishedCache(1<<20, time.Minute)
	fc.now = func() time.Time { return now }
	fc.fill(finishedJob1("a", "ann"), fc.generation())
	now = now.Add(time.Minute)
	_, ok := fc.get("a", needStatus)
	require.True(t, ok)
	now = now.Add(time.Nanosecond)
	_, ok = fc.get("a", needStatus)
	require.False(t, ok, "an entry outlived its ttl")
	require.Zero(t, fc.bytes)
}
