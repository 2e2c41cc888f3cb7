package jqmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/jqmanager"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
)

// rig is a Manager over a real SQLite store, running until the test ends.
type rig struct {
	t *testing.T
	// log is the manager's logger, quiet unless a test sets it.
	log   *slog.Logger
	store *sqlite.Store
	m     *jqmanager.Manager
	ctx   context.Context
	stop  func()
}

func newRig(t *testing.T, cfg jqmanager.Config, users ...string) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	store, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	for _, u := range users {
		require.NoError(t, store.CreateUser(ctx, faas.User{Name: u, TokenHash: "h-" + u}))
		_, _, err := store.PutFunction(ctx, faas.Function{Owner: u, Name: "f", Source: "x => x", Timeout: time.Second})
		require.NoError(t, err)
	}
	r := &rig{t: t, store: store, ctx: ctx}
	r.start(cfg)
	return r
}

// eachQueue runs test against a Manager in-process and through a jqproxy
// client, each over a rig of its own with users.
func eachQueue(t *testing.T, test func(t *testing.T, r *rig, q faas.JobQueue), users ...string) {
	t.Helper()
	for _, wire := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "over the wire"}[wire], func(t *testing.T) {
			t.Parallel()
			r := newRig(t, config(), users...)
			var q faas.JobQueue = r.m
			if wire {
				c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				q = c
			}
			test(t, r, q)
		})
	}
}

func config() jqmanager.Config {
	return jqmanager.Config{
		Listen:            "tcp://127.0.0.1:*",
		LeaseTimeout:      400 * time.Millisecond,
		MaxAttempts:       3,
		MaxPendingPerUser: 1000,
		RequestTimeout:    time.Second,
	}
}

// start runs a fresh Manager over the rig's store (a restart, if one ran)
// and waits until it serves.
func (r *rig) start(cfg jqmanager.Config) {
	r.t.Helper()
	log := r.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := jqmanager.New(cfg, r.store, log)
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	r.m = m
	r.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(r.t, <-done)
		})
	}
	r.t.Cleanup(r.stop)
	// In-process calls do not wait for the rebuild; tests start from a
	// rebuilt queue with its counters restored.
	r.awaitServing()
}

// awaitServing waits until the manager has rebuilt its queue and restored
// its counters: a client over the bus is answered only then.
func (r *rig) awaitServing() {
	r.t.Helper()
	c, err := jqproxy.Dial(r.m.Endpoint(), 5*time.Second, slog.New(slog.DiscardHandler))
	require.NoError(r.t, err)
	defer c.Close()
	_, err = c.Stats(r.ctx)
	require.NoError(r.t, err)
}

func (r *rig) submit(owner string) faas.Job {
	r.t.Helper()
	j, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: owner, Function: "f", Args: json.RawMessage("[1]")})
	require.NoError(r.t, err)
	return j
}

func (r *rig) next(worker string, wait time.Duration) (faas.Job, bool) {
	r.t.Helper()
	j, ok, err := r.m.Next(r.ctx, worker, wait)
	require.NoError(r.t, err)
	return j, ok
}

func (r *rig) complete(j faas.Job) error {
	done, err := r.store.CompleteJob(r.ctx, faas.Completion{JobID: j.ID, Attempt: j.Attempt, Result: json.RawMessage("1"), Duration: time.Millisecond})
	if err == nil {
		err = r.m.Done(r.ctx, done)
	}
	return err
}

func TestJobLifecycle(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	j := r.submit("ann")
	require.Equal(t, faas.Queued, j.State)

	st, _ := r.m.Stats(r.ctx)
	require.Equal(t, 1, st.Queued)

	got, ok := r.next("w1", time.Second)
	require.True(t, ok)
	require.Equal(t, j.ID, got.ID)
	require.Equal(t, 1, got.Attempt)
	require.Equal(t, "w1", got.Worker)
	require.JSONEq(t, "[1]", string(got.Args))

	_, finished, err := r.m.Wait(r.ctx, j.ID, 50*time.Millisecond)
	require.NoError(t, err)
	require.False(t, finished, "running job reported finished")

	waited := make(chan faas.Job)
	go func() {
		j, f, _ := r.m.Wait(r.ctx, j.ID, 10*time.Second)
		if f {
			waited <- j
		}
		close(waited)
	}()
	time.Sleep(100 * time.Millisecond) // the waiter is parked before the job ends
	require.NoError(t, r.complete(got))
	outcome := <-waited
	require.Equal(t, faas.Succeeded, outcome.State, "the waiter is handed the outcome")
	require.JSONEq(t, "1", string(outcome.Result))
	// Once it has left the queue, a waiter is told to read the Store.
	late, finished, err := r.m.Wait(r.ctx, j.ID, time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	require.Empty(t, late.ID)

	st, _ = r.m.Stats(r.ctx)
	require.Equal(t, faas.Stats{Completed: 1, Workers: 1, AvgDuration: st.AvgDuration, JobsPerSec: st.JobsPerSec}, st)
	require.Positive(t, st.AvgDuration)
	require.Positive(t, st.JobsPerSec, "the rate is known from the first completion on")

	// Resubmitting the same ID (a retried request) does not queue it again.
	again, err := r.m.Submit(r.ctx, faas.Job{ID: j.ID, Owner: "ann", Function: "f"})
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, again.State)
	_, ok = r.next("w1", 100*time.Millisecond)
	require.False(t, ok)
}

func TestNextWaitsForSubmission(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	got := make(chan faas.Job)
	for w := range 3 {
		go func() {
			j, ok, err := r.m.Next(r.ctx, fmt.Sprint("w", w), 5*time.Second)
			if err == nil && ok {
				got <- j
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	j := r.submit("ann")
	select {
	case leased := <-got:
		require.Equal(t, j.ID, leased.ID)
	case <-time.After(3 * time.Second):
		t.Fatal("an idle worker was not woken by a submission")
	}
}

func TestUnknownFunctionIsRejected(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	_, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "nope"})
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	st, _ := r.m.Stats(r.ctx)
	require.Zero(t, st.Queued)
}

func TestUsersAreServedFairly(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "flood", "quiet")
	for range 20 {
		r.submit("flood")
	}
	q := r.submit("quiet")
	for i := range 3 {
		j, ok := r.next("w", time.Second)
		require.True(t, ok)
		if j.ID == q.ID {
			return
		}
		require.Equal(t, "flood", j.Owner, "pop %d", i)
	}
	t.Fatal("the quiet user's job waited behind the flood")
}

func TestPendingLimitPerUser(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxPendingPerUser = 3
	r := newRig(t, cfg, "flood", "quiet")
	for range 3 {
		r.submit("flood")
	}
	_, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "flood", Function: "f"})
	require.Equal(t, faas.TooMany, faas.ErrorCode(err))
	r.submit("quiet")

	// A finished job frees a slot.
	j, ok := r.next("w", time.Second)
	require.True(t, ok)
	require.Equal(t, "flood", j.Owner)
	require.NoError(t, r.complete(j))
	r.submit("flood")
}

func TestRunningLimitPerUser(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxRunningPerUser = 2
	r := newRig(t, cfg, "flood", "quiet")
	for range 5 {
		r.submit("flood")
	}
	var running []faas.Job
	for range 2 {
		j, ok := r.next("w", time.Second)
		require.True(t, ok)
		running = append(running, j)
	}
	_, ok := r.next("w", 50*time.Millisecond)
	require.False(t, ok, "a third job of a user at the running limit was leased")
	st, err := r.m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, 3, st.Queued, "the held-back jobs stay queued")
	require.Equal(t, 3, st.Held)

	// Another user's job goes to a worker already waiting, at once.
	got := make(chan faas.Job, 1)
	go func() {
		j, _, _ := r.m.Next(r.ctx, "w", 5*time.Second)
		got <- j
	}()
	q := r.submit("quiet")
	select {
	case j := <-got:
		require.Equal(t, q.ID, j.ID)
	case <-time.After(time.Second):
		t.Fatal("the other user's job waited behind a user at the running limit")
	}

	// A finished job frees its owner's slot, and so does a released one,
	// and the waiting worker is woken for the held-back job.
	go func() {
		j, _, _ := r.m.Next(r.ctx, "w", 5*time.Second)
		got <- j
	}()
	require.NoError(t, r.complete(running[0]))
	select {
	case j := <-got:
		require.Equal(t, "flood", j.Owner)
		running[0] = j
	case <-time.After(time.Second):
		t.Fatal("a job finished but its owner's next job was not started")
	}
	require.NoError(t, r.m.Release(r.ctx, faas.Lease{ID: running[1].ID, Attempt: running[1].Attempt}, "stopping"))
	again, ok := r.next("w", time.Second)
	require.True(t, ok, "a released job did not give back its slot")
	require.Equal(t, "flood", again.Owner)

	// A restarted queue counts the jobs the Store has running.
	r.stop()
	r.start(cfg)
	_, ok = r.next("w", 50*time.Millisecond)
	require.False(t, ok, "a restarted queue leased past the running limit")
}

// TestFunctionConcurrencyLimit checks that a burst of a function limited
// to 2 never has more than 2 jobs out, held and not counted as backlog,
// while the owner's other function runs freely, and that the limit holds
// across a restart of the queue.
func TestFunctionConcurrencyLimit(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ada")
	_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ada", Name: "limited", Source: "x => x", Concurrency: 2})
	require.NoError(t, err)
	for range 6 {
		_, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ada", Function: "limited", Args: json.RawMessage("[1]")})
		require.NoError(t, err)
	}
	for range 3 {
		r.submit("ada")
	}
	out := map[string][]faas.Job{}
	for {
		j, ok := r.next("w", 50*time.Millisecond)
		if !ok {
			break
		}
		out[j.Function] = append(out[j.Function], j)
	}
	require.Len(t, out["limited"], 2, "the limited function ran more jobs at once than its limit")
	require.Len(t, out["f"], 3, "the other function waited behind the limited one")
	st, err := r.m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, 4, st.Queued)
	require.Equal(t, 4, st.Held, "held jobs would make the scaler add workers")

	// A finished job frees a slot of its function, and only one.
	require.NoError(t, r.complete(out["limited"][0]))
	j, ok := r.next("w", time.Second)
	require.True(t, ok, "a job of the limited function finished but the next did not start")
	require.Equal(t, "limited", j.Function)
	_, ok = r.next("w", 50*time.Millisecond)
	require.False(t, ok, "the limited function went past its limit")

	// A restarted queue reads the limit from the stored jobs.
	r.stop()
	r.start(config())
	_, ok = r.next("w", 50*time.Millisecond)
	require.False(t, ok, "a restarted queue leased past the function's limit")
}

func TestExpiredLeaseIsRequeuedAndLateResultFenced(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	j := r.submit("ann")
	first, ok := r.next("dead", time.Second)
	require.True(t, ok)

	// No heartbeat from "dead": after the lease the job goes to another.
	second, ok := r.next("alive", 3*time.Second)
	require.True(t, ok, "the expired job was not queued again")
	require.Equal(t, j.ID, second.ID)
	require.Equal(t, 2, second.Attempt)
	require.Len(t, second.Lost, 1)
	require.Equal(t, faas.Lost, second.Lost[0].Code)
	require.Contains(t, second.Lost[0].Message, "dead")

	// The dead worker wakes up: its result and its heartbeat are refused.
	require.Equal(t, faas.Conflict, faas.ErrorCode(r.complete(first)))
	lost, err := r.m.Renew(r.ctx, "dead", []faas.Lease{{ID: j.ID, Attempt: 1}})
	require.NoError(t, err)
	require.Len(t, lost, 1)

	require.NoError(t, r.complete(second))
	billed, err := r.store.BilledTime(r.ctx, "ann")
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, billed, "billed once")
}

func TestHeartbeatsKeepLease(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.submit("ann")
	j, ok := r.next("w", time.Second)
	require.True(t, ok)
	for range 6 {
		time.Sleep(150 * time.Millisecond)
		lost, err := r.m.Renew(r.ctx, "w", []faas.Lease{{ID: j.ID, Attempt: j.Attempt}})
		require.NoError(t, err)
		require.Empty(t, lost)
	}
	require.NoError(t, r.complete(j))
	info, err := r.store.Job(r.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, 1, info.Attempt)
	require.Equal(t, faas.Succeeded, info.State)
}

func TestJobLostTooOftenFails(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxAttempts = 2
	r := newRig(t, cfg, "ann")
	j := r.submit("ann")
	_, ok := r.next("w1", time.Second)
	require.True(t, ok)
	_, ok = r.next("w2", 3*time.Second)
	require.True(t, ok)
	_, finished, err := r.m.Wait(r.ctx, j.ID, 3*time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	info, err := r.store.Job(r.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Failed, info.State)
	require.Equal(t, faas.Lost, info.Error.Code)
	require.Zero(t, info.Billed)
}

func TestReleaseRequeuesAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	j := r.submit("ann")
	first, _ := r.next("w1", time.Second)
	require.NoError(t, r.m.Release(r.ctx, faas.Lease{ID: j.ID, Attempt: first.Attempt}, "shutting down"))
	second, ok := r.next("w2", 100*time.Millisecond)
	require.True(t, ok)
	require.Equal(t, 2, second.Attempt)
	require.Contains(t, second.Lost[0].Message, "shutting down")
}

func TestDeletedJobIsNeverRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	gone := r.submit("ann")
	kept := r.submit("ann")
	require.NoError(t, r.store.DeleteJob(r.ctx, gone.ID))
	j, ok := r.next("w", time.Second)
	require.True(t, ok)
	require.Equal(t, kept.ID, j.ID)
	_, finished, err := r.m.Wait(r.ctx, gone.ID, time.Second)
	require.NoError(t, err)
	require.True(t, finished)
}

func TestRestartRebuildsQueue(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	first := r.submit("ann")
	queued := r.submit("ann")
	running, ok := r.next("w", time.Second)
	require.True(t, ok)
	require.Equal(t, first.ID, running.ID)
	r.stop()

	r.start(config())
	// The running job's worker is still alive and renews across the restart.
	require.Eventually(t, func() bool {
		lost, err := r.m.Renew(r.ctx, "w", []faas.Lease{{ID: running.ID, Attempt: running.Attempt}})
		return err == nil && len(lost) == 0
	}, 5*time.Second, 20*time.Millisecond)
	j, ok := r.next("w2", 3*time.Second)
	require.True(t, ok)
	require.Equal(t, queued.ID, j.ID)
	require.NoError(t, r.complete(running))
}

func TestOverTheWire(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()

	idle, ok, err := c.Next(r.ctx, "w", 100*time.Millisecond)
	require.NoError(t, err)
	require.False(t, ok, "got %+v from an empty queue", idle)

	j, err := c.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f", Args: json.RawMessage("[2]")})
	require.NoError(t, err)
	got, ok, err := c.Next(r.ctx, "w", time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, got.ID)
	lost, err := c.Renew(r.ctx, "w", []faas.Lease{{ID: got.ID, Attempt: got.Attempt}, {ID: "other", Attempt: 1}})
	require.NoError(t, err)
	require.Equal(t, []faas.Lease{{ID: "other", Attempt: 1}}, lost)
	waited := make(chan faas.Job, 1)
	go func() {
		j, _, _ := c.Wait(r.ctx, got.ID, 5*time.Second)
		waited <- j
	}()
	time.Sleep(100 * time.Millisecond)
	done, err := r.store.CompleteJob(r.ctx, faas.Completion{JobID: got.ID, Attempt: got.Attempt, Result: json.RawMessage("2")})
	require.NoError(t, err)
	require.NoError(t, c.Done(r.ctx, done))
	outcome := <-waited
	require.Equal(t, got.ID, outcome.ID, "the outcome crossed the wire")
	require.JSONEq(t, "2", string(outcome.Result))
	st, err := c.Stats(r.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Completed)

	_, err = c.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "missing"})
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	_, _, err = c.Next(r.ctx, "w", 2*jqproxy.MaxHold)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
}

// slowStart is the real store whose first StartJob waits for a signal,
// holding a job in the window between being popped and being leased.
type slowStart struct {
	*sqlite.Store
	once    sync.Once
	entered chan struct{}
	proceed chan struct{}
}

func (s *slowStart) StartJob(ctx context.Context, id string, attempt int, worker string) (faas.Job, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.proceed
	})
	return s.Store.StartJob(ctx, id, attempt, worker)
}

func TestReleaseWhileLeasing(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	r.stop()
	slow := &slowStart{Store: r.store, entered: make(chan struct{}), proceed: make(chan struct{})}
	m, err := jqmanager.New(config(), slow, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	j, err := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f"})
	require.NoError(t, err)
	got := make(chan faas.Job, 1)
	go func() {
		j, _, _ := m.Next(r.ctx, "w1", time.Second)
		got <- j
	}()
	<-slow.entered
	require.NoError(t, m.Release(r.ctx, faas.Lease{ID: j.ID, Attempt: 1}, "taken away"))
	close(slow.proceed)
	// The worker polling on gets the job again, as attempt 2.
	again := <-got
	require.Equal(t, j.ID, again.ID, "the released job was not queued again")
	require.Equal(t, 2, again.Attempt, "the released attempt was handed out")
	require.Contains(t, again.Lost[0].Message, "taken away")
}

func TestForgetDeletedJobs(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	running := r.submit("ann")
	queued := r.submit("ann")
	got, ok := r.next("w", time.Second)
	require.True(t, ok)
	require.Equal(t, running.ID, got.ID)

	waited := make(chan bool, 1)
	go func() {
		_, finished, _ := r.m.Wait(r.ctx, running.ID, 5*time.Second)
		waited <- finished
	}()
	time.Sleep(100 * time.Millisecond)
	for _, id := range []string{running.ID, queued.ID} {
		require.NoError(t, r.store.DeleteJob(r.ctx, id))
		require.NoError(t, r.m.Forget(r.ctx, id))
	}
	require.True(t, <-waited, "a waiter on a deleted job was not woken")

	// The running job's worker learns at its next heartbeat.
	lost, err := r.m.Renew(r.ctx, "w", []faas.Lease{{ID: got.ID, Attempt: got.Attempt}})
	require.NoError(t, err)
	require.Len(t, lost, 1)
	// The queued one left the queue and its owner's count.
	st, _ := r.m.Stats(r.ctx)
	require.Zero(t, st.Queued)
	require.Zero(t, st.Running)
	require.NoError(t, r.m.Forget(r.ctx, "unknown"))
}

func TestConfigBindsLoopbackByDefault(t *testing.T) {
	for _, key := range []string{"PORT", "FAAS_LISTEN"} {
		t.Setenv(key, "") // restored when the test ends
		os.Unsetenv(key)
	}
	cfg, err := jqmanager.LoadConfig()
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("tcp://127.0.0.1:%d", jqproxy.DefaultPort), cfg.Endpoint())
}
