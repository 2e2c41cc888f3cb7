package jqmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/jqmanager"
	"faas/jqmanager/queuetest"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
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
	// dial secures the rig's clients, as the manager's Config.Bus asks.
	dial []wire.Option
}

func newRig(t *testing.T, cfg jqmanager.Config, users ...string) *rig {
	t.Helper()
	r := openRig(t, users...)
	r.start(cfg)
	return r
}

// openRig is a rig over a fresh store with users, the manager not
// started yet.
func openRig(t *testing.T, users ...string) *rig {
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
	return &rig{t: t, store: store, ctx: ctx}
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
	c, err := jqproxy.Dial(r.m.Endpoint(), 5*time.Second, slog.New(slog.DiscardHandler), r.dial...)
	require.NoError(r.t, err)
	defer c.Close()
	_, err = c.Stats(r.ctx)
	require.NoError(r.t, err)
}

func (r *rig) submit(owner string) faas.Job {
	r.t.Helper()
	return queuetest.Submit(r.t, r.ctx, r.m, owner, "f")
}

func (r *rig) next(worker string, wait time.Duration) (faas.Job, bool) {
	r.t.Helper()
	return queuetest.Next(r.t, r.ctx, r.m, worker, wait)
}

func (r *rig) complete(j faas.Job) error { return queuetest.Complete(r.ctx, r.m, j) }

// nextOne leases one job, or none when the wait is over.
func nextOne(q faas.JobQueue, ctx context.Context, worker string, wait time.Duration) (faas.Job, bool, error) {
	js, err := q.Next(ctx, worker, 1, wait)
	if err != nil || len(js) == 0 {
		return faas.Job{}, false, err
	}
	return js[0], true, nil
}

// completeOne hands one completion to q and returns its answer.
func completeOne(ctx context.Context, q faas.JobQueue, worker string, c faas.Completion) error {
	errs, err := q.Complete(ctx, worker, []faas.Completion{c})
	if err != nil {
		return err
	}
	if errs[0] != nil {
		return errs[0]
	}
	return nil
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

// slowStart is the real store whose first StartJobs waits for a signal,
// holding a job in the window between being popped and being leased.
type slowStart struct {
	*sqlite.Store
	once    sync.Once
	entered chan struct{}
	proceed chan struct{}
}

func (s *slowStart) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.proceed
	})
	return s.Store.StartJobs(ctx, starts)
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
		j, _, _ := nextOne(m, r.ctx, "w1", time.Second)
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

func TestConfigBindsLoopbackByDefault(t *testing.T) {
	for _, key := range []string{"PORT", "FAAS_LISTEN"} {
		t.Setenv(key, "") // restored when the test ends
		os.Unsetenv(key)
	}
	cfg, err := jqmanager.LoadConfig()
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("tcp://127.0.0.1:%d", jqproxy.DefaultPort), cfg.Endpoint())
}

// countingStore counts the leases written on their own, and can hold the
// first creation until told to go on.
type countingStore struct {
	*sqlite.Store
	starts atomic.Int64
	// entered and proceed, when set, hold the first CreateJobs.
	once             sync.Once
	entered, proceed chan struct{}
}

func (s *countingStore) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	s.starts.Add(int64(len(starts)))
	return s.Store.StartJobs(ctx, starts)
}

func (s *countingStore) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	if s.entered != nil {
		s.once.Do(func() {
			close(s.entered)
			<-s.proceed
		})
	}
	return s.Store.CreateJobs(ctx, js)
}

// runOn runs a fresh Manager over store, in place of the rig's, until the
// test ends.
func runOn(t *testing.T, r *rig, store faas.Store) *jqmanager.Manager {
	t.Helper()
	r.stop()
	m, err := jqmanager.New(config(), store, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	r.m = m
	return m
}

// awaitIdleWorker waits until a worker's poll waits on m for a job.
func awaitIdleWorker(t *testing.T, ctx context.Context, m *jqmanager.Manager) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := m.Stats(ctx)
		return err == nil && st.Workers == 1
	}, 5*time.Second, time.Millisecond, "the worker's poll never waited")
}

// TestSubmitLeasesToAWaitingWorker: a job submitted while a worker waits
// and nothing is queued is created already leased to that worker, in the
// creation's write, and handed to it; no lease is written on its own.
func TestSubmitLeasesToAWaitingWorker(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	store := &countingStore{Store: r.store}
	m := runOn(t, r, store)

	got := make(chan faas.Job, 1)
	go func() {
		j, _, _ := nextOne(m, r.ctx, "w1", 5*time.Second)
		got <- j
	}()
	awaitIdleWorker(t, r.ctx, m)
	j, err := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f", Args: json.RawMessage(`[1]`)})
	require.NoError(t, err)
	require.Equal(t, faas.Running, j.State, "the submission's answer is the leased job")
	leased := <-got
	require.Equal(t, j.ID, leased.ID)
	require.Equal(t, 1, leased.Attempt)
	require.Equal(t, "w1", leased.Worker)
	require.JSONEq(t, `[1]`, string(leased.Args))
	require.Zero(t, store.starts.Load(), "a lease was written on its own")
	stored, err := r.store.Job(r.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Running, stored.State)
	require.Equal(t, "w1", stored.Worker)

	// It runs as any leased job: renewed, completed, billed once.
	renewed, err := m.Renew(r.ctx, "w1", []faas.Lease{{ID: j.ID, Attempt: 1}})
	require.NoError(t, err)
	require.Empty(t, renewed, "the lease is held")
	// The duration claimed is below the lease's wall time, which caps
	// what is billed.
	require.NoError(t, completeOne(r.ctx, m, "w1", faas.Completion{JobID: j.ID, Attempt: 1, Result: json.RawMessage(`1`), Duration: time.Microsecond}))
	done, err := r.store.Job(r.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, done.State)
	billed, err := r.store.BilledTime(r.ctx, "ann")
	require.NoError(t, err)
	require.Equal(t, time.Microsecond, billed)

	// With a job queued, the next one queues behind it as before.
	queued := r.submit("ann")
	require.Equal(t, faas.Queued, queued.State, "nobody waits: queued")
	behind := r.submit("ann")
	require.Equal(t, faas.Queued, behind.State)
	first, _ := r.next("w1", time.Second)
	require.Equal(t, queued.ID, first.ID, "the jobs keep their order")
	require.EqualValues(t, 1, store.starts.Load())
}

// TestSubmitCannotAskForALease: what a caller sends as a job's state,
// attempt and worker is not a lease, nor its version and lost attempts
// anything the Store takes: the job is queued at its function's version
// for whoever polls, from attempt 1.
func TestSubmitCannotAskForALease(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	fn, err := r.store.Function(r.ctx, "ann", "f")
	require.NoError(t, err)
	j, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f",
		State: faas.Running, Attempt: 1, Worker: "mallory", Started: time.Now(),
		Version: fn.Version + 1, Lost: []*faas.Error{{Code: faas.Lost, Message: "made up"}}})
	require.NoError(t, err)
	require.Equal(t, faas.Queued, j.State)
	require.Empty(t, j.Worker)
	require.Zero(t, j.Attempt, "no attempt skipped")
	require.Empty(t, j.Lost)
	require.Equal(t, fn.Version, j.Version)
	got, ok := r.next("w1", time.Second)
	require.True(t, ok)
	require.Equal(t, j.ID, got.ID)
	require.Equal(t, "w1", got.Worker)
	require.Equal(t, 1, got.Attempt)
}

// TestClaimedPollThatEndsStillTakesItsJob: a worker's poll that ends while
// the job leased to it is being created still answers that job, rather
// than leave it to wait out its lease.
func TestClaimedPollThatEndsStillTakesItsJob(t *testing.T) {
	t.Parallel()
	r := newRig(t, config(), "ann")
	store := &countingStore{Store: r.store, entered: make(chan struct{}), proceed: make(chan struct{})}
	m := runOn(t, r, store)

	pollCtx, endPoll := context.WithCancel(r.ctx)
	got := make(chan faas.Job, 1)
	go func() {
		j, _, _ := nextOne(m, pollCtx, "w1", 5*time.Second)
		got <- j
	}()
	awaitIdleWorker(t, r.ctx, m)
	submitted := make(chan faas.Job, 1)
	go func() {
		j, _ := m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "f"})
		submitted <- j
	}()
	<-store.entered
	endPoll()
	close(store.proceed)
	j := <-submitted
	require.Equal(t, faas.Running, j.State)
	require.Equal(t, j.ID, (<-got).ID, "the ended poll dropped its job")
}
