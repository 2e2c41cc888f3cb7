package frontend

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// liveAt is job id of ann as the queue describes a running job.
func liveAt(id string) faas.Job {
	return faas.Job{ID: id, Owner: "ann", Function: "f", State: faas.Running}
}

// finishedEvent is job id's JobFinished event, number seq, with its
// outcome when withJob.
func finishedEvent(id string, seq uint64, withJob bool) *faas.Event {
	ev := &faas.Event{Seq: seq, Kind: faas.JobFinished, JobID: id}
	if withJob {
		j := finishedJob1(id, "ann")
		j.Args, j.Logs = nil, ""
		ev.Job = &j
	}
	return ev
}

// TestLiveJobs: a job the queue said it holds, as of its event 100, is
// answered as live to the polls that ask only whether it finished, until
// an event or an eviction says otherwise, in whichever order the event
// and the queue's answer arrive.
func TestLiveJobs(t *testing.T) {
	t.Parallel()
	const seq = 100
	remember := func(fc *finishedCache) { fc.remember(liveAt("a"), seq, fc.generation()) }
	for _, tc := range []struct {
		name string
		run  func(fc *finishedCache)
		// want is the state GET /j/a would be answered with from the
		// cache, "" if it asks the queue.
		want faas.JobState
	}{
		{"the queue's answer is remembered", remember, faas.Running},
		{"its finished event evicts", func(fc *finishedCache) {
			remember(fc)
			fc.observe(finishedEvent("a", seq+1, false))
		}, ""},
		{"its finished event caches the outcome", func(fc *finishedCache) {
			remember(fc)
			fc.observe(finishedEvent("a", seq+1, true))
		}, faas.Succeeded},
		{"its finished event observed before the answer is recorded", func(fc *finishedCache) {
			gen := fc.generation()
			fc.observe(finishedEvent("a", seq+1, false))
			fc.remember(liveAt("a"), seq, gen)
		}, ""},
		{"with its outcome, observed before the answer is recorded", func(fc *finishedCache) {
			gen := fc.generation()
			fc.observe(finishedEvent("a", seq+1, true))
			fc.remember(liveAt("a"), seq, gen)
		}, faas.Succeeded},
		{"other jobs' ends before and after the answer do not matter", func(fc *finishedCache) {
			gen := fc.generation()
			fc.observe(finishedEvent("b", seq-1, false))
			fc.observe(finishedEvent("c", seq+1, true))
			fc.remember(liveAt("a"), seq, gen)
		}, faas.Running},
		{"ends that no longer reach back to the answer refuse it", func(fc *finishedCache) {
			gen := fc.generation()
			for i := range recentEnds + 1 {
				fc.observe(finishedEvent(fmt.Sprint("x", i), seq+1+uint64(i), false))
			}
			fc.remember(liveAt("a"), seq, gen)
		}, ""},
		{"ends overwritten before the answer do not matter", func(fc *finishedCache) {
			for i := range recentEnds + 1 {
				fc.observe(finishedEvent(fmt.Sprint("x", i), uint64(i+1), false))
			}
			fc.remember(liveAt("a"), 10*recentEnds, fc.generation())
		}, faas.Running},
		{"a gap evicts", func(fc *finishedCache) {
			remember(fc)
			fc.observe(nil)
		}, ""},
		{"a gap while the queue answered refuses the answer", func(fc *finishedCache) {
			gen := fc.generation()
			fc.observe(nil)
			fc.remember(liveAt("a"), seq, gen)
		}, ""},
		{"JobDeleted evicts", func(fc *finishedCache) {
			remember(fc)
			fc.observe(&faas.Event{Seq: seq + 1, Kind: faas.JobDeleted, JobID: "a"})
		}, ""},
		{"a deletion while the queue answered refuses the answer", func(fc *finishedCache) {
			gen := fc.generation()
			fc.forgetJob("a")
			fc.remember(liveAt("a"), seq, gen)
		}, ""},
		{"another job's JobDeleted keeps it", func(fc *finishedCache) {
			remember(fc)
			fc.observe(&faas.Event{Seq: seq + 1, Kind: faas.JobDeleted, JobID: "b"})
		}, faas.Running},
		{"its owner's UserRevoked evicts", func(fc *finishedCache) {
			remember(fc)
			fc.observe(&faas.Event{Seq: seq + 1, Kind: faas.UserRevoked, User: "ann"})
		}, ""},
		{"another user's UserRevoked keeps it", func(fc *finishedCache) {
			remember(fc)
			fc.observe(&faas.Event{Seq: seq + 1, Kind: faas.UserRevoked, User: "bob"})
		}, faas.Running},
		{"deleted here, by job or by user", func(fc *finishedCache) {
			remember(fc)
			fc.forgetJob("a")
			fc.remember(liveAt("b"), seq, fc.generation())
			fc.forgetUser("ann")
			_, ok := fc.get("b", needFinished)
			require.False(t, ok, "a deleted user's job is remembered")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := newFinishedCache(1<<20, time.Minute)
			now := time.Now() // stopped: expiry is TestLiveJobsExpire's
			fc.now = func() time.Time { return now }
			tc.run(fc)
			j, ok := fc.get("a", needFinished)
			require.Equal(t, tc.want, j.State)
			require.Equal(t, tc.want != "", ok)
			if ok {
				require.Equal(t, "ann", j.Owner, "the owner, for the authorisation check")
			}
		})
	}
}

// TestLiveJobsAnswerOnlyWhetherFinished: the state a live job is
// remembered with may be a moment old, so reads that answer it (/res
// names it) ask the queue.
func TestLiveJobsAnswerOnlyWhetherFinished(t *testing.T) {
	t.Parallel()
	fc := newFinishedCache(1<<20, time.Minute)
	fc.remember(liveAt("a"), 1, fc.generation())
	for _, needs := range []jobNeeds{needStatus, needArgs} {
		_, ok := fc.get("a", needs)
		require.False(t, ok, "needs %d answered from the memory of live jobs", needs)
	}
}

func TestLiveJobsExpire(t *testing.T) {
	t.Parallel()
	now := time.Now()
	fc := newFinishedCache(1<<20, time.Minute)
	fc.now = func() time.Time { return now }
	fc.remember(liveAt("a"), 1, fc.generation())
	now = now.Add(liveTTL)
	_, ok := fc.get("a", needFinished)
	require.True(t, ok)
	now = now.Add(time.Nanosecond)
	_, ok = fc.get("a", needFinished)
	require.False(t, ok, "an entry outlived its ttl")
	require.Zero(t, fc.live.order.Len())
}

func TestLiveJobsBounded(t *testing.T) {
	t.Parallel()
	fc := newFinishedCache(1<<20, time.Minute)
	// A stopped clock: under the race detector, filling it takes longer
	// than an entry lasts.
	now := time.Now()
	fc.now = func() time.Time { return now }
	for i := range maxLive + 1 {
		fc.remember(liveAt(fmt.Sprint(i)), 1, fc.generation())
	}
	require.Equal(t, maxLive, fc.live.order.Len())
	require.Len(t, fc.live.byID, maxLive)
	_, ok := fc.get("0", needFinished)
	require.False(t, ok, "the oldest entry stayed past the cap")
	_, ok = fc.get(fmt.Sprint(maxLive), needFinished)
	require.True(t, ok)
}
