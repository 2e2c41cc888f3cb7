package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
	"faas/proxies/faas"
)

// faultEnv makes failures show quickly: short leases and heartbeats, and
// enough attempts that repeated kills cannot fail a job.
var faultEnv = []string{
	"FAAS_LEASE_TIMEOUT=1500ms",
	"FAAS_WORKER_HEARTBEAT=300ms",
	"FAAS_WORKER_POLL=1s",
	"FAAS_MAX_ATTEMPTS=10",
	"FAAS_WORKER_CONCURRENCY=8",
	"FAAS_MAX_PENDING_PER_USER=100000",
	"FAAS_RATE_LIMIT=0",
}

// stream is a load of jobs submitted while something goes wrong.
type stream struct {
	t     *testing.T
	c     *cluster
	users []*api
	names []string
	// ids[i] is job i's id once its submission was acknowledged.
	ids   []string
	acked atomic.Int64
}

const (
	fastSource = "x => x * 2"
	slowSource = "async function slow(x) { await new Promise(r => setTimeout(r, 1000)); return x * 2 }"
)

func newStream(t *testing.T, c *cluster, jobs int) *stream {
	s := &stream{t: t, c: c, ids: make([]string, jobs)}
	for _, name := range []string{"ursula", "victor"} {
		a := c.register(t, name)
		for fn, src := range map[string]string{"fast": fastSource, "slow": slowSource} {
			a.upload(fn, client.Deploy{Source: src})
		}
		s.users = append(s.users, a)
		s.names = append(s.names, name)
	}
	return s
}

// job i belongs to user i%2; every fifth job is slow.
func (s *stream) user(i int) (*api, string) { return s.users[i%2], s.names[i%2] }
func (s *stream) fn(i int) string {
	if i%5 == 0 {
		return "slow"
	}
	return "fast"
}

// submit sends every job from several clients, each pausing pace between
// submissions so that the stream lasts while the faults happen. A
// submission that fails because a component is down is retried with its
// Idempotency-Key, so a retry of one that did get through cannot make a
// second job.
func (s *stream) submit(clients int, pace time.Duration) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(s.ids); i = int(next.Add(1)) - 1 {
				s.ids[i] = s.submitOne(i)
				s.acked.Add(1)
				time.Sleep(pace)
			}
		})
	}
	wg.Wait()
}

// midStream fails the test if the stream is over: a fault after it proves
// nothing.
func (s *stream) midStream() {
	require.Less(s.t, int(s.acked.Load()), len(s.ids), "the fault came after the last submission")
}

func (s *stream) submitOne(i int) string {
	a, name := s.user(i)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := a.try(http.MethodPost, fmt.Sprintf("/u/%s/fn/%s/run", name, s.fn(i)), fmt.Sprintf("[%d]", i),
			"Idempotency-Key", fmt.Sprintf("job-%d", i))
		if err == nil && r.Status == http.StatusAccepted {
			var id string
			require.NoError(s.t, json.Unmarshal(r.Res, &id))
			return id
		}
		transient := err != nil || r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests
		require.True(s.t, transient, "job %d: status %d %s", i, r.Status, r.Res)
		require.True(s.t, time.Now().Before(deadline), "job %d not accepted within 60s: %v %s", i, err, r.Res)
		time.Sleep(100 * time.Millisecond)
	}
}

// verify waits for every acknowledged job to finish and checks it
// succeeded exactly once with the right result, and that each user was
// billed exactly the sum of their jobs.
func (s *stream) verify(within time.Duration) (retried int) {
	t := s.t
	deadline := time.Now().Add(within)
	billed := make([]float64, len(s.users))
	for i, id := range s.ids {
		require.NotEmpty(t, id, "job %d was never acknowledged", i)
		a, _ := s.user(i)
		var info frontend.JobInfo
		for {
			info = a.info(id)
			if info.State == "succeeded" || info.State == "failed" {
				break
			}
			require.True(t, time.Now().Before(deadline), "job %d (%s) still %s after the faults ended; logs in %s", i, id, info.State, s.c.logsDir)
			time.Sleep(50 * time.Millisecond)
		}
		require.Equal(t, faas.Succeeded, info.State, "job %d: %+v", i, info.Error)
		r := a.do(http.MethodGet, "/j/"+id+"/res", "")
		require.JSONEq(t, fmt.Sprint(2*i), string(r.Res), "job %d", i)
		require.Len(t, info.Lost, info.Attempts-1, "job %d: every attempt but the last was lost", i)
		if info.Attempts > 1 {
			retried++
		}
		billed[i%2] += info.BilledMS
	}
	for u, a := range s.users {
		r := a.do(http.MethodGet, "/u/"+s.names[u]+"/time", "")
		var total float64
		require.NoError(t, json.Unmarshal(r.Res, &total))
		require.InDelta(t, billed[u], total, 1e-3, "user %s billed %.3f ms, jobs add up to %.3f ms", s.names[u], total, billed[u])
	}
	return retried
}

// chaos runs fault every period until the submissions are done.
func chaos(period time.Duration, done <-chan struct{}, fault func(n int)) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-time.After(period):
			}
			fault(n)
		}
	})
	return &wg
}

func TestKillWorkersMidStream(t *testing.T) {
	t.Parallel()
	c := newCluster(t, faultEnv...)
	c.startAll(3)
	s := newStream(t, c, 500)

	done := make(chan struct{})
	var kills atomic.Int64
	fault := chaos(1200*time.Millisecond, done, func(n int) {
		victim := fmt.Sprintf("worker%d", (n-1)%3)
		if n < 3 {
			s.midStream()
		}
		c.signal(victim, syscall.SIGKILL)
		kills.Add(1)
		c.start(victim, "worker")
	})
	s.submit(8, 50*time.Millisecond)
	// Keep killing while the slow jobs run.
	time.Sleep(3 * time.Second)
	close(done)
	fault.Wait()

	retried := s.verify(60 * time.Second)
	// verify passed: no job lost, none run to a second result, none billed twice.
	t.Logf("kill -9 workers: %d jobs, %d kills, %d jobs retried after a lost lease; every job succeeded once, billing equals the jobs' sum",
		len(s.ids), kills.Load(), retried)
	require.Positive(t, retried, "no kill hit a running job: the test proved nothing")
}

// TestKillManagerMidStream kills each manager twice while jobs stream in,
// restarting it each time: the JQ manager rebuilds its queue from the
// Store, and every client of the DB manager resends what went unanswered.
func TestKillManagerMidStream(t *testing.T) {
	t.Parallel()
	for _, manager := range []string{"jqmanager", "dbmanager"} {
		t.Run(manager, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, faultEnv...)
			c.startAll(2)
			s := newStream(t, c, 300)
			done := make(chan struct{})
			fault := chaos(time.Second, done, func(n int) {
				if n > 2 {
					return
				}
				s.midStream()
				c.signal(manager, syscall.SIGKILL)
				time.Sleep(300 * time.Millisecond)
				c.start(manager, manager)
			})
			s.submit(8, 100*time.Millisecond)
			close(done)
			fault.Wait()
			retried := s.verify(60 * time.Second)
			t.Logf("kill -9 %s twice: %d jobs, %d retried after a lost lease; every job succeeded once, billing equals the jobs' sum", manager, len(s.ids), retried)
		})
	}
}

// TestStoppedWorkerLosesLease freezes a worker mid-job for longer than its
// lease: the job is run again elsewhere, and the frozen worker's late
// result is refused and not billed.
func TestStoppedWorkerLosesLease(t *testing.T) {
	t.Parallel()
	c := newCluster(t, faultEnv...)
	c.startAll(1)
	a := c.register(t, "wanda")
	r := a.do(http.MethodPost, "/u/wanda/fn/slow", slowSource)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	r = a.do(http.MethodPost, "/u/wanda/fn/slow/run", "[21]")
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Res)
	var id string
	require.NoError(t, json.Unmarshal(r.Res, &id))
	require.Eventually(t, func() bool { return a.info(id).State == "running" }, 10*time.Second, 10*time.Millisecond)

	c.signal("worker0", syscall.SIGSTOP)
	c.start("worker1", "worker")
	a.await(id, 20*time.Second)
	// Let the frozen worker finish its copy of the job and report it.
	c.signal("worker0", syscall.SIGCONT)
	time.Sleep(2 * time.Second)

	info := a.info(id)
	require.Equal(t, faas.Succeeded, info.State)
	require.Equal(t, 2, info.Attempts)
	require.Len(t, info.Lost, 1)
	r = a.do(http.MethodGet, "/j/"+id+"/res", "")
	require.JSONEq(t, "42", string(r.Res))
	r = a.do(http.MethodGet, "/u/wanda/time", "")
	var total float64
	require.NoError(t, json.Unmarshal(r.Res, &total))
	require.InDelta(t, info.BilledMS, total, 1e-3, "billed once")
	require.GreaterOrEqual(t, total, 1000.0)
	require.Less(t, total, 2000.0, "the frozen attempt was billed too")
}
