package frontend_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/faas"
)

// jobReads counts the frontend's reads of jobs from the Store.
type jobReads struct {
	faas.Store
	n atomic.Int64
}

func (s *jobReads) Job(ctx context.Context, id string) (faas.Job, error) {
	s.n.Add(1)
	return s.Store.Job(ctx, id)
}

// noStatus is a queue that never answers a job's status, so that its
// frontend reads every job from the Store, as all did before Status.
type noStatus struct{ faas.JobQueue }

func (noStatus) Status(context.Context, string) (faas.JobStatus, error) {
	return faas.JobStatus{}, nil
}

// raw is the status and body of a GET, byte for byte.
func (p *platform) raw(t testing.TB, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", p.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestStatusReadsAnswerAsTheStore: a job polled through the queue's
// memory (live) or the cache of finished jobs answers GET /j/:id, /res
// and /info byte for byte as a frontend that reads the Store every time,
// queued, running, succeeded and failed, and the status reads of a live
// job and of a finished one the frontend heard of do not touch the Store.
func TestStatusReadsAnswerAsTheStore(t *testing.T) {
	t.Parallel()
	reads := &jobReads{}
	p := startPlatform(t, serial, func(s *settings) {
		s.wrapStore = func(st faas.Store) faas.Store { reads.Store = st; return reads }
	})
	// The Store's answers: a cache entry expires as soon as it is made.
	storeOnly := p.frontendOn(t, frontend.Config{StatusCacheTTL: time.Nanosecond}, p.store, noStatus{p.queue})
	user, token := p.newUser(t, "poll")
	p.upload(t, user, token, "fails", `function fails(){ throw new Error("no") }`)

	same := func(id string, cheap ...string) {
		t.Helper()
		for _, path := range []string{"", "/res", "/info"} {
			before := reads.n.Load()
			status, body := p.raw(t, "/j/"+id+path, token)
			if path != "/info" {
				require.Equal(t, before, reads.n.Load(), "GET /j/:id%s of a job %v read the Store", path, cheap)
			}
			wantStatus, want := storeOnly.raw(t, "/j/"+id+path, token)
			require.Equal(t, wantStatus, status, "GET /j/:id%s", path)
			require.Equal(t, want, body, "GET /j/:id%s", path)
		}
	}

	running := p.startSlow(t, user, token, 3*time.Second)
	queued := p.submit(t, user, token, "slow", "")
	same(running, "running")
	same(queued, "queued")

	failed := p.submit(t, user, token, "fails", "")
	for _, id := range []string{running, queued, failed} {
		p.awaitJob(t, token, id)
		// The finished event reaches the cache soon after the job ends.
		require.Eventually(t, func() bool {
			before := reads.n.Load()
			p.raw(t, "/j/"+id, token)
			return reads.n.Load() == before
		}, 5*time.Second, 10*time.Millisecond, "job %s not cached", id)
		same(id, "finished")
		// /info read the Store once for the arguments; now it is cached.
		before := reads.n.Load()
		p.raw(t, "/j/"+id+"/info", token)
		require.Equal(t, before, reads.n.Load(), "a second /info read the Store")
	}

	// Not found and not yours stay as they were.
	_, other := p.newUser(t, "other")
	for _, tok := range []string{token, other} {
		status, body := p.raw(t, "/j/no-such-job/res", tok)
		wantStatus, want := storeOnly.raw(t, "/j/no-such-job/res", tok)
		require.Equal(t, wantStatus, status)
		require.Equal(t, want, body)
	}
	for _, path := range []string{"", "/res", "/info"} {
		status, body := p.raw(t, "/j/"+failed+path, other)
		wantStatus, want := storeOnly.raw(t, "/j/"+failed+path, other)
		require.Equal(t, http.StatusNotFound, status, "another user read a cached job")
		require.Equal(t, wantStatus, status)
		require.Equal(t, want, body)
	}
}

// finishedOnTwo runs a job to its end on a platform with two frontends
// and has both read it, so that both remember it; it returns the
// platform, the second frontend, the job's owner, their token and the job.
func finishedOnTwo(t *testing.T) (p, other *platform, user, token, id string) {
	t.Helper()
	p = startPlatform(t)
	other = p.secondFrontend(t)
	user, token = p.newUser(t, "cached")
	p.upload(t, user, token, "add", addSrc)
	id = p.submit(t, user, token, "add", "[1,2]")
	p.awaitJob(t, token, id)
	for _, fe := range []*platform{p, other} {
		status, body := fe.raw(t, "/j/"+id+"/res", token)
		require.Equal(t, http.StatusOK, status, body)
	}
	return p, other, user, token, id
}

// TestDeletedJobLeavesEveryCache: a finished job that two frontends
// remember, deleted through one, is gone from both: at once from the
// one, through the queue's JobDeleted event from the other.
func TestDeletedJobLeavesEveryCache(t *testing.T) {
	t.Parallel()
	p, other, _, token, id := finishedOnTwo(t)
	p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
	status, _ := p.raw(t, "/j/"+id+"/res", token)
	require.Equal(t, http.StatusNotFound, status, "the deleting frontend still answers the job")
	require.Eventually(t, func() bool {
		status, _ := other.raw(t, "/j/"+id+"/res", token)
		return status == http.StatusNotFound
	}, 5*time.Second, 10*time.Millisecond, "another frontend still answers the deleted job")
}

// TestDeletedUserLeavesEveryCache: the jobs of a deleted user are not
// answered to a new user of the same name, on any frontend.
func TestDeletedUserLeavesEveryCache(t *testing.T) {
	t.Parallel()
	p, other, user, token, id := finishedOnTwo(t)
	p.expect(t, http.StatusOK, "DELETE", "/u/"+user, token, nil)
	newToken := p.register(t, user)
	status, _ := p.raw(t, "/j/"+id+"/res", newToken)
	require.Equal(t, http.StatusNotFound, status, "the deleting frontend answers the old user's job")
	require.Eventually(t, func() bool {
		status, _ := other.raw(t, "/j/"+id+"/res", newToken)
		return status == http.StatusNotFound
	}, 5*time.Second, 10*time.Millisecond, "another frontend answers the old user's job")
}

// TestPollingSparesTheStore polls jobs as the reference client does,
// every 2 ms from submission to the end: the polls of a live job are the
// queue's, and the one that finds the job gone waits for its finished
// event rather than reading the Store, so that polling reads the Store
// only when an event is late.
func TestPollingSparesTheStore(t *testing.T) {
	t.Parallel()
	reads := &jobReads{}
	p := startPlatform(t, func(s *settings) {
		s.wrapStore = func(st faas.Store) faas.Store { reads.Store = st; return reads }
	})
	user, token := p.newUser(t, "spare")
	p.upload(t, user, token, "add", addSrc)
	const jobs = 20
	polls := 0
	for i := range jobs {
		id := p.submit(t, user, token, "add", fmt.Sprintf("[%d,1]", i))
		for {
			status, body := p.raw(t, "/j/"+id, token)
			require.Equal(t, http.StatusOK, status, body)
			polls++
			if body == `{"error":false,"res":1}` {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("%d jobs, %d polls, %d reads of the Store", jobs, polls, reads.n.Load())
	require.LessOrEqual(t, reads.n.Load(), int64(jobs/10), "polling read the Store")
}
