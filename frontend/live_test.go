package frontend_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/faas"
)

// statusCalls counts a frontend's questions to the queue about a job.
type statusCalls struct {
	faas.JobQueue
	n atomic.Int64
}

func (q *statusCalls) Status(ctx context.Context, id string) (faas.JobStatus, error) {
	q.n.Add(1)
	return q.JobQueue.Status(ctx, id)
}

// Answers of GET /j/:id.
const (
	notFinished = `{"error":false,"res":0}`
	isFinished  = `{"error":false,"res":1}`
)

// bigSrc runs 2 s and returns a result larger than an event carries, so
// that nothing but the end of the memory of the job as live makes a poll
// answer that it finished.
const bigSrc = `async function big(){ await new Promise(r => setTimeout(r, 2000)); return "x".repeat(9000) }`

// poll is GET /j/:id, which must answer 200 with want.
func (p *platform) poll(t testing.TB, token, id, want string) {
	t.Helper()
	status, body := p.raw(t, "/j/"+id, token)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, want, body)
}

// closed waits for a stream of events to end, whatever it sends first.
func closed(t testing.TB, events <-chan sseEvent) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-events:
			if !open {
				return
			}
		case <-timeout:
			require.FailNow(t, "the stream did not end in 10s")
		}
	}
}

// TestPollsOfALiveJobSpareTheQueue: a frontend asks the queue about a
// live job polled every 2 ms once a second at most, answers the other
// polls from memory, never to another user, and answers that it finished
// from the first poll after the job's finished event reached it.
func TestPollsOfALiveJobSpareTheQueue(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	calls := &statusCalls{JobQueue: p.queue}
	fe := p.frontendOn(t, frontend.Config{}, p.store, calls)
	user, token := p.newUser(t, "live")
	_, nosy := p.newUser(t, "nosy")
	p.upload(t, user, token, "big", bigSrc)
	id := p.submit(t, user, token, "big", "")
	// A follower on the same frontend hears of the job's end after the
	// frontend's memory did: the watch loop tells the cache first.
	events := fe.follow(t, token, id, "", nil)

	start, polls := time.Now(), 0
	for ended := false; !ended; polls++ {
		select {
		case ev := <-events:
			require.Equal(t, "end", ev.name, "%+v", ev)
			ended = true
		case <-time.After(2 * time.Millisecond):
			// The job may end between the two.
			if status, body := fe.raw(t, "/j/"+id, token); body != isFinished {
				require.Equal(t, http.StatusOK, status, body)
				require.Equal(t, notFinished, body)
			}
		}
		if polls == 0 {
			status, body := fe.raw(t, "/j/"+id, nosy)
			require.Equal(t, http.StatusNotFound, status, "another user's poll of a remembered job: %s", body)
		}
	}
	elapsed := time.Since(start)
	// An entry lasts a second, then the next poll asks again; and the
	// poll that finds the job gone asks too.
	require.LessOrEqual(t, calls.n.Load(), 2+int64(elapsed/time.Second), "%d polls of a live job in %v asked the queue", polls, elapsed)
	fe.poll(t, token, id, isFinished)
}

// TestDeletedLiveJobLeavesEveryMemory: a running job that two frontends
// remember as live, deleted through one (the job, or its owner), is not
// found on that one at once, and on the other as soon as the queue's
// events reach it: not even by a new user of the deleted one's name.
func TestDeletedLiveJobLeavesEveryMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// del deletes through p and returns the token that polls after.
		del func(t testing.TB, p *platform, user, token, id string) string
	}{
		{"the job", func(t testing.TB, p *platform, _, token, id string) string {
			p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
			return token
		}},
		{"its owner", func(t testing.TB, p *platform, user, token, _ string) string {
			p.expect(t, http.StatusOK, "DELETE", "/u/"+user, token, nil)
			return p.register(t, user)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t)
			other := p.secondFrontend(t)
			user, token := p.newUser(t, "dellive")
			id := p.startSlow(t, user, token, 20*time.Second)
			for _, fe := range []*platform{p, other} {
				fe.poll(t, token, id, notFinished)
			}
			// The follower's stream ends once the other frontend heard
			// that the job left the queue.
			events := other.follow(t, token, id, "", nil)
			token = tc.del(t, p, user, token, id)
			status, _ := p.raw(t, "/j/"+id, token)
			require.Equal(t, http.StatusNotFound, status, "the deleting frontend still answers the job")
			closed(t, events)
			status, _ = other.raw(t, "/j/"+id, token)
			require.Equal(t, http.StatusNotFound, status, "another frontend still answers the deleted job")
		})
	}
}
