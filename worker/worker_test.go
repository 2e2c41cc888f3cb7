package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/internal/reexec"
	"faas/jqmanager"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
	"faas/worker"
	"faas/worker/internal/leakcheck"
	"faas/worker/pool/pooltest"
)

// TestMain serves as a sandbox when started as one (the workers under
// test start this binary, so their sandboxes run the code under test);
// otherwise it runs the tests and fails the package if they leave
// goroutines behind.
func TestMain(m *testing.M) {
	reexec.Serve(map[string]func() int{pooltest.Mode: pooltest.Sandbox})
	leakcheck.Main(m)
}

// leaseTimeout is the queue's lease in these tests: short, so that a
// worker that stops beating loses its jobs quickly.
const leaseTimeout = time.Second

// platform is the real back end a worker talks to: a SQLite store served
// over loopback ZeroMQ, and a job queue served the same way, using the
// store through its proxy like the real JQ manager.
type platform struct {
	t     *testing.T
	ctx   context.Context
	store *sqlite.Store
	db    string // the DB manager's endpoint
	jq    string // the JQ manager's endpoint
	queue *jqproxy.Client
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	store, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)

	srv, err := wire.Listen("tcp://127.0.0.1:*", dbproxy.NewMux(store).Serve, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	p := &platform{t: t, ctx: ctx, store: store, db: srv.Endpoint()}
	p.serve(srv.Run, func() { require.NoError(t, store.Close()) })

	qm, err := jqmanager.New(jqmanager.Config{
		Listen:            "tcp://127.0.0.1:*",
		LeaseTimeout:      leaseTimeout,
		MaxAttempts:       3,
		MaxPendingPerUser: 1000,
		RequestTimeout:    time.Second,
	}, p.storeClient(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	p.serve(qm.Run, nil)
	p.jq = qm.Endpoint()
	p.queue = p.queueClient(p.jq)
	return p
}

// serve runs a server until the test ends, then stops it and calls after.
func (p *platform) serve(run func(context.Context) error, after func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	p.t.Cleanup(func() {
		cancel()
		require.NoError(p.t, <-done)
		if after != nil {
			after()
		}
	})
}

func (p *platform) storeClient() *dbproxy.Client {
	c, err := dbproxy.Dial(p.db, time.Second, slog.New(slog.DiscardHandler))
	require.NoError(p.t, err)
	p.t.Cleanup(func() { c.Close() })
	return c
}

func (p *platform) queueClient(endpoint string) *jqproxy.Client {
	c, err := jqproxy.Dial(endpoint, time.Second, slog.New(slog.DiscardHandler))
	require.NoError(p.t, err)
	p.t.Cleanup(func() { c.Close() })
	return c
}

// config is a worker's settings for tests: quick polls and heartbeats.
func config(id string) worker.Config {
	sandboxCmd, sandboxEnv := pooltest.Command()
	return worker.Config{
		ID:             id,
		Concurrency:    2,
		RequestTimeout: time.Second,
		Heartbeat:      50 * time.Millisecond,
		PollWait:       200 * time.Millisecond,
		SandboxCommand: sandboxCmd,
		SandboxEnv:     sandboxEnv,
	}
}

// longPolls is a worker's settings whose polls wait 30 s for a job, so
// that a stop which waits for them shows.
func longPolls() worker.Config {
	cfg := config("w1")
	cfg.PollWait = 30 * time.Second
	return cfg
}

// running is a started Worker; stop ends it and returns how long that took.
type running struct {
	stop func() time.Duration
}

// startWorker runs a worker against the platform through its own proxies,
// as the worker process does, until the test ends or stop is called.
func (p *platform) startWorker(cfg worker.Config, store faas.Store, queue faas.JobQueue) running {
	p.t.Helper()
	if store == nil {
		store = p.storeClient()
	}
	if queue == nil {
		queue = p.queueClient(p.jq)
	}
	w, err := worker.New(cfg, store, queue, slog.New(slog.DiscardHandler))
	require.NoError(p.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				require.NoError(p.t, err)
			case <-time.After(10 * time.Second):
				p.t.Error("worker did not stop")
			}
			took = time.Since(start)
		})
		return took
	}
	p.t.Cleanup(func() { stop() })
	return running{stop: stop}
}

func (p *platform) user(name string) {
	p.t.Helper()
	require.NoError(p.t, p.store.CreateUser(p.ctx, faas.User{Name: name, TokenHash: "hash-" + name}))
}

func (p *platform) function(owner, name, src string, timeout time.Duration) faas.Function {
	p.t.Helper()
	f, _, err := p.store.PutFunction(p.ctx, faas.Function{Owner: owner, Name: name, Source: src, Timeout: timeout})
	require.NoError(p.t, err)
	return f
}

// adder adds the user owner and its function add(a, b).
func (p *platform) adder(owner string) {
	p.t.Helper()
	p.user(owner)
	p.function(owner, "add", `function add(a, b) { return a + b }`, 5*time.Second)
}

// submit queues a job as the frontend does.
func (p *platform) submit(owner, fn, args string) faas.Job {
	p.t.Helper()
	j, err := p.queue.Submit(p.ctx, faas.Job{ID: uuid.NewString(), Owner: owner, Function: fn, Args: json.RawMessage(args)})
	require.NoError(p.t, err)
	return j
}

// finished waits for a job to finish and returns its record.
func (p *platform) finished(id string) faas.Job {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	for {
		_, done, err := p.queue.Wait(ctx, id, 5*time.Second)
		require.NoError(p.t, err)
		if done {
			break
		}
	}
	j, err := p.store.Job(p.ctx, id)
	require.NoError(p.t, err)
	require.True(p.t, j.State.Finished(), "job %s is %s", id, j.State)
	return j
}

// until polls cond until it holds, failing the test after a while.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond, what)
}

func (p *platform) state(id string) faas.JobState {
	j, err := p.store.Job(p.ctx, id)
	if err != nil {
		return ""
	}
	return j.State
}

func TestWorkerRunsJobs(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("ann")
	p.function("ann", "add", `function add(a, b) { console.log("adding", a, b); return a + b }`, 5*time.Second)
	p.function("ann", "slow", `async function slow(x) { await new Promise(r => setTimeout(r, 30)); return {x} }`, 5*time.Second)
	p.startWorker(config("w1"), nil, nil)

	var jobs []faas.Job
	for i := range 20 {
		jobs = append(jobs, p.submit("ann", "add", fmt.Sprintf("[%d, %d]", i, i)))
	}
	slow := p.submit("ann", "slow", `["s"]`)
	var billed time.Duration
	for i, j := range jobs {
		got := p.finished(j.ID)
		require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
		assert.JSONEq(t, fmt.Sprint(2*i), string(got.Result))
		assert.Equal(t, fmt.Sprintf("adding %d %d\n", i, i), got.Logs)
		assert.Equal(t, "w1", got.Worker)
		assert.Positive(t, got.Billed)
		assert.Equal(t, got.Duration, got.Billed)
		billed += got.Billed
	}
	got := p.finished(slow.ID)
	require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
	assert.JSONEq(t, `{"x":"s"}`, string(got.Result))
	assert.GreaterOrEqual(t, got.Duration, 30*time.Millisecond, "async waits are billed")
	billed += got.Billed

	total, err := p.store.BilledTime(p.ctx, "ann")
	require.NoError(t, err)
	assert.Equal(t, billed, total)
}

func TestWorkerFailedJobs(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	p := newPlatform(t)
	p.user("bob")
	p.function("bob", "throws", `function throws() { null.x }`, 5*time.Second)
	p.function("bob", "loops", `function loops() { for (;;) {} }`, limit)
	p.function("bob", "waits", `function waits() { return new Promise(r => setTimeout(r, 1e9)) }`, limit)
	p.function("bob", "big", `function big() { return "x".repeat(2 << 20) }`, 5*time.Second)
	p.function("bob", "ok", `() => "still serving"`, 5*time.Second)
	p.startWorker(config("w1"), nil, nil)

	tests := []struct {
		fn   string
		code faas.Code
		msg  string
	}{
		{"throws", faas.FunctionError, "TypeError: "},
		{"loops", faas.Timeout, "function exceeded its 300ms time limit"},
		{"waits", faas.Timeout, "function exceeded its 300ms time limit"},
		{"big", faas.TooLarge, "exceeds the 1 MiB limit"},
	}
	for _, tt := range tests {
		j := p.finished(p.submit("bob", tt.fn, `[]`).ID)
		require.Equal(t, faas.Failed, j.State, tt.fn)
		require.NotNil(t, j.Error, tt.fn)
		assert.Equal(t, tt.code, j.Error.Code, tt.fn)
		assert.Contains(t, j.Error.Message, tt.msg, tt.fn)
		if tt.code == faas.Timeout {
			assert.Equal(t, limit, j.Billed, "a timeout bills the limit, no more")
		}
		// The worker keeps serving.
		ok := p.finished(p.submit("bob", "ok", `[]`).ID)
		assert.Equal(t, faas.Succeeded, ok.State, tt.fn)
		assert.JSONEq(t, `"still serving"`, string(ok.Result))
	}
}

// TestWorkerDeletedFunction deletes a function while a job of it is
// queued, on a worker that has the function cached: the job fails, and
// does not run from the cache.
func TestWorkerDeletedFunction(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("cat")
	p.function("cat", "gone", `function gone() { return 1 }`, time.Second)
	p.function("cat", "busy", `() => new Promise(r => setTimeout(r, 300))`, 5*time.Second)
	// Leasing nothing ahead, so that the job below stays queued whenever
	// the first one ended.
	cfg := config("w1")
	cfg.NoLeaseAhead = true
	p.startWorker(cfg, nil, nil)
	require.Equal(t, faas.Succeeded, p.finished(p.submit("cat", "gone", `[]`).ID).State)

	// Both slots busy, so the next job stays queued.
	var busy []faas.Job
	for range config("").Concurrency {
		j := p.submit("cat", "busy", `[]`)
		until(t, "busy job running", func() bool { return p.state(j.ID) == faas.Running })
		busy = append(busy, j)
	}
	j := p.submit("cat", "gone", `[]`)
	require.NoError(t, p.store.DeleteFunction(p.ctx, "cat", "gone"))

	got := p.finished(j.ID)
	require.Equal(t, faas.Failed, got.State)
	require.NotNil(t, got.Error)
	assert.Equal(t, faas.FunctionDeleted, got.Error.Code)
	assert.Equal(t, fmt.Sprintf("function gone was deleted before job %s ran", j.ID), got.Error.Message)
	assert.Zero(t, got.Billed)
	for _, b := range busy {
		assert.Equal(t, faas.Succeeded, p.finished(b.ID).State)
	}
}

// TestWorkerRunsSubmittedVersion replaces a function while a job of it is
// queued: the job runs the version it was submitted with, its source and
// its limits, and a job submitted after the replacement runs the new one.
func TestWorkerRunsSubmittedVersion(t *testing.T) {
	t.Parallel()
	// grow needs more than 64 MiB and less than 512.
	const grow = `function f() { const a = []; for (let i = 0; i < 3e5; i++) a.push({i}); return a.length }`
	const slow = `async function f() { await new Promise(r => setTimeout(r, 300)); return "slow" }`
	const env = `() => faas.env.A + "/" + faas.env.S`
	tests := []struct {
		name   string
		v1, v2 faas.Function
		// want1 is the first job's result; the second's is want2, or an
		// error with code.
		want1, want2 string
		code         faas.Code
	}{
		{"source", faas.Function{Source: `() => "v1"`}, faas.Function{Source: `() => "v2"`}, `"v1"`, `"v2"`, ""},
		{"memory", faas.Function{Source: grow, MemoryMB: 512}, faas.Function{Source: grow, MemoryMB: 64}, `300000`, "", faas.MemoryLimit},
		{"timeout", faas.Function{Source: slow, Timeout: 5 * time.Second}, faas.Function{Source: slow, Timeout: 100 * time.Millisecond}, `"slow"`, "", faas.Timeout},
		{"env and secrets",
			faas.Function{Source: env, Env: map[string]string{"A": "a1"}, Secrets: map[string]string{"S": "s1"}},
			faas.Function{Source: env, Env: map[string]string{"A": "a2"}, Secrets: map[string]string{"S": "s2"}},
			`"a1/s1"`, `"a2/s2"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPlatform(t)
			p.user("eve")
			put := func(f faas.Function) {
				t.Helper()
				f.Owner, f.Name = "eve", "f"
				if f.Timeout == 0 {
					f.Timeout = 20 * time.Second
				}
				_, _, err := p.store.PutFunction(p.ctx, f)
				require.NoError(t, err)
			}
			put(tt.v1)
			first := p.submit("eve", "f", `[]`)
			put(tt.v2)
			second := p.submit("eve", "f", `[]`)
			p.startWorker(config("w1"), nil, nil)

			got := p.finished(first.ID)
			require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
			assert.JSONEq(t, tt.want1, string(got.Result))
			got = p.finished(second.ID)
			if tt.code != "" {
				require.NotNil(t, got.Error, "result %s", got.Result)
				assert.Equal(t, tt.code, got.Error.Code)
				return
			}
			require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
			assert.JSONEq(t, tt.want2, string(got.Result))
		})
	}
}

// countingStore counts the function reads that reach the real Store.
type countingStore struct {
	faas.Store
	reads atomic.Int64
}

func (s *countingStore) FunctionVersion(ctx context.Context, owner, name string, version int64) (faas.Function, error) {
	s.reads.Add(1)
	return s.Store.FunctionVersion(ctx, owner, name, version)
}

func TestWorkerCachesPrograms(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("dan")
	p.function("dan", "f", `() => 1`, time.Second)
	store := &countingStore{Store: p.storeClient()}
	p.startWorker(config("w1"), store, nil)

	for range 5 {
		assert.JSONEq(t, `1`, string(p.finished(p.submit("dan", "f", `[]`).ID).Result))
	}
	assert.EqualValues(t, 1, store.reads.Load(), "one version is fetched once")

	// A job of the new version runs the new source.
	p.function("dan", "f", `() => 2`, time.Second)
	for range 3 {
		assert.JSONEq(t, `2`, string(p.finished(p.submit("dan", "f", `[]`).ID).Result))
	}
	assert.EqualValues(t, 2, store.reads.Load())
}

func TestWorkerJobDeletedWhileRunning(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("eve")
	p.function("eve", "slow", `async function slow() { await new Promise(r => setTimeout(r, 300)); return 1 }`, 5*time.Second)
	p.function("eve", "ok", `() => 2`, 5*time.Second)
	p.startWorker(config("w1"), nil, nil)

	j := p.submit("eve", "slow", `[]`)
	until(t, "job running", func() bool { return p.state(j.ID) == faas.Running })
	require.NoError(t, p.store.DeleteJob(p.ctx, j.ID))

	// The worker survives the vanished job and serves the next ones.
	first := p.finished(p.submit("eve", "ok", `[]`).ID)
	assert.Equal(t, faas.Succeeded, first.State)
	time.Sleep(400 * time.Millisecond) // the slow job has ended by now
	_, err := p.store.Job(p.ctx, j.ID)
	assert.Equal(t, faas.NotFound, faas.ErrorCode(err))
	second := p.finished(p.submit("eve", "ok", `[]`).ID)
	assert.Equal(t, faas.Succeeded, second.State)
	total, err := p.store.BilledTime(p.ctx, "eve")
	require.NoError(t, err)
	assert.Equal(t, first.Billed+second.Billed, total, "the deleted job is not billed")
}

// TestWorkerLostLease runs a job on a worker whose heartbeats are too slow
// for the queue: the queue gives the job to a second worker, and the first
// one's late outcome is refused without harm.
func TestWorkerLostLease(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("fay")
	p.function("fay", "slow", `async function slow() { await new Promise(r => setTimeout(r, 3 * 1000)); return "done" }`, 10*time.Second)
	lazy := config("lazy")
	lazy.Concurrency = 1
	lazy.Heartbeat = 5 * time.Second
	p.startWorker(lazy, nil, nil)

	j := p.submit("fay", "slow", `[]`)
	until(t, "job leased by the lazy worker", func() bool {
		got, err := p.store.Job(p.ctx, j.ID)
		return err == nil && got.Worker == "lazy"
	})
	p.startWorker(config("busy"), nil, nil)

	got := p.finished(j.ID)
	require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
	assert.Equal(t, "busy", got.Worker)
	assert.Equal(t, 2, got.Attempt)
	require.Len(t, got.Lost, 1)
	assert.Equal(t, faas.Lost, got.Lost[0].Code)
	time.Sleep(time.Second) // the lazy worker's outcome comes in, and is refused
	total, err := p.store.BilledTime(p.ctx, "fay")
	require.NoError(t, err)
	assert.Equal(t, got.Billed, total, "billed once")
}

// TestWorkerStopsLostRun takes a running job's lease away: the worker must
// hear it on its next heartbeat and stop that run, freeing its only slot
// for the job's next attempt long before the first run would have ended.
func TestWorkerStopsLostRun(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("hal")
	p.function("hal", "slow", `async function slow() { await new Promise(r => setTimeout(r, 2000)); return 1 }`, 5*time.Second)
	cfg := config("w1")
	cfg.Concurrency = 1
	p.startWorker(cfg, nil, nil)

	j := p.submit("hal", "slow", `[]`)
	until(t, "job running", func() bool { return p.state(j.ID) == faas.Running })
	taken := time.Now()
	require.NoError(t, p.queue.Release(p.ctx, faas.Lease{ID: j.ID, Attempt: 1}, "taken away by the test"))
	until(t, "second attempt running", func() bool {
		got, err := p.store.Job(p.ctx, j.ID)
		return err == nil && got.State == faas.Running && got.Attempt == 2
	})
	assert.Less(t, time.Since(taken), time.Second, "the lost run was stopped")
	got := p.finished(j.ID)
	assert.Equal(t, faas.Succeeded, got.State)
	assert.Equal(t, 2, got.Attempt)
}

func TestWorkerDrainGraceGivesJobsBack(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("ida")
	p.function("ida", "slow", `async function slow() { await new Promise(r => setTimeout(r, 3000)); return "done" }`, 10*time.Second)
	cfg := config("w1")
	cfg.DrainGrace = 200 * time.Millisecond
	w := p.startWorker(cfg, nil, nil)

	j := p.submit("ida", "slow", `[]`)
	until(t, "job running", func() bool { return p.state(j.ID) == faas.Running })
	took := w.stop()
	assert.Less(t, took, cfg.DrainGrace+cfg.PollWait+2*time.Second, "the stop waited for the whole job")

	// Given back at once, not left for its lease to expire.
	got, err := p.store.Job(p.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Queued, got.State)
	require.Len(t, got.Lost, 1)
	assert.Contains(t, got.Lost[0].Message, "stopping")

	p.startWorker(config("w2"), nil, nil)
	done := p.finished(j.ID)
	assert.Equal(t, faas.Succeeded, done.State)
	assert.Equal(t, 2, done.Attempt)
}

func TestWorkerGracefulStop(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("gus")
	p.function("gus", "slow", `async function slow() { await new Promise(r => setTimeout(r, 500)); return "finished" }`, 5*time.Second)
	w := p.startWorker(config("w1"), nil, nil)

	j := p.submit("gus", "slow", `[]`)
	until(t, "job running", func() bool { return p.state(j.ID) == faas.Running })
	took := w.stop()
	assert.Less(t, took, 500*time.Millisecond+config("").PollWait+2*time.Second)

	got, err := p.store.Job(p.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, got.State, "the running job finished before the worker stopped")
	assert.JSONEq(t, `"finished"`, string(got.Result))
	assert.Empty(t, got.Lost)

	// A stopped worker takes nothing more.
	later := p.submit("gus", "slow", `[]`)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, faas.Queued, p.state(later.ID))
}

// TestWorkerStopWithdrawsPolls: an idle worker whose polls wait 30s for
// a job stops at once, its polls withdrawn from the queue, and a job
// submitted after the stop is left to another worker.
func TestWorkerStopWithdrawsPolls(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.adder("una")
	cfg := longPolls()
	q := &countingQueue{JobQueue: p.queueClient(p.jq)}
	w := p.startWorker(cfg, nil, q)
	until(t, "worker polling", func() bool { return q.polls.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // for the polls to reach the queue
	assert.Less(t, w.stop(), 3*time.Second, "the stop waited out the polls")

	j := p.submit("una", "add", `[1, 2]`)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, faas.Queued, p.state(j.ID), "a withdrawn poll took a job")
	p.startWorker(config("w2"), nil, nil)
	assert.Equal(t, faas.Succeeded, p.finished(j.ID).State)
}

// withdrawals is a queue that tells of the worker's first withdrawal by
// closing withdrawn.
type withdrawals struct {
	faas.JobQueue
	once      sync.Once
	withdrawn chan struct{}
}

func newWithdrawals(q faas.JobQueue) *withdrawals {
	return &withdrawals{JobQueue: q, withdrawn: make(chan struct{})}
}

func (q *withdrawals) Withdraw(ctx context.Context, worker string) error {
	err := q.JobQueue.Withdraw(ctx, worker)
	q.once.Do(func() { close(q.withdrawn) })
	return err
}

// lateToTheQueue is a queue whose polls reach it only after the worker's
// first withdrawal, as a poll sent just before a stop may.
type lateToTheQueue struct {
	*withdrawals
	polls atomic.Int64
}

func (q *lateToTheQueue) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	q.polls.Add(1)
	select {
	case <-q.withdrawn:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return q.JobQueue.Next(ctx, worker, max, wait)
}

// TestWorkerStopWithdrawsALatePoll: a poll that reaches the queue after
// the first withdrawal is withdrawn by the next one.
func TestWorkerStopWithdrawsALatePoll(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	cfg := longPolls()
	q := &lateToTheQueue{withdrawals: newWithdrawals(p.queueClient(p.jq))}
	w := p.startWorker(cfg, nil, q)
	until(t, "worker polling", func() bool { return q.polls.Load() > 0 })
	assert.Less(t, w.stop(), 3*time.Second, "the stop waited out the late poll")
}

// leasedAsItStops is a queue that hands a poll its job just as the worker
// stops: the answer reaches the worker after its first withdrawal.
type leasedAsItStops struct {
	*withdrawals
	leased chan struct{} // closed when a poll gets a job
	once   sync.Once
}

func (q *leasedAsItStops) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	jobs, err := q.JobQueue.Next(ctx, worker, max, wait)
	if len(jobs) > 0 {
		q.once.Do(func() { close(q.leased) })
		select {
		case <-q.withdrawn:
		case <-ctx.Done():
		}
	}
	return jobs, err
}

// TestWorkerStopRunsAJobLeasedAsItStops: a job the queue leased to a poll
// as the worker began to stop is run by that worker before it stops, not
// left to wait out its lease for another.
func TestWorkerStopRunsAJobLeasedAsItStops(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.adder("ida")
	cfg := longPolls()
	q := &leasedAsItStops{withdrawals: newWithdrawals(p.queueClient(p.jq)), leased: make(chan struct{})}
	w := p.startWorker(cfg, nil, q)

	j := p.submit("ida", "add", `[1, 2]`)
	select {
	case <-q.leased:
	case <-time.After(10 * time.Second):
		t.Fatal("no poll got the job")
	}
	assert.Less(t, w.stop(), 3*time.Second)
	got, err := p.store.Job(p.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, got.State, "the stopped worker did not run the job it leased")
	assert.JSONEq(t, `3`, string(got.Result))
	assert.Equal(t, 1, got.Attempt)
	assert.Empty(t, got.Lost)
}

// refusingWithdraw is a JQ manager older than Withdraw: it refuses the
// method, and counts the refusals.
type refusingWithdraw struct {
	faas.JobQueue
	calls atomic.Int64
}

func (q *refusingWithdraw) Withdraw(context.Context, string) error {
	q.calls.Add(1)
	return faas.Errorf(faas.Forbidden, "role worker may not call jq.withdraw")
}

// TestWorkerStopWithOlderQueue: a queue that refuses Withdraw is asked
// once, and the stop waits for the polls as it used to.
func TestWorkerStopWithOlderQueue(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	cfg := config("w1")
	cfg.PollWait = time.Second
	q := &refusingWithdraw{JobQueue: p.queueClient(p.jq)}
	counted := &countingQueue{JobQueue: q}
	w := p.startWorker(cfg, nil, counted)
	until(t, "worker polling", func() bool { return counted.polls.Load() > 0 })
	assert.Less(t, w.stop(), cfg.PollWait+2*time.Second)
	assert.Equal(t, int64(1), q.calls.Load(), "a refused withdrawal was asked again")
}

// deafToWithdraw is a queue whose Withdraw is never answered.
type deafToWithdraw struct{ faas.JobQueue }

func (deafToWithdraw) Withdraw(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestWorkerStopsDespiteUnansweredWithdraw: a withdrawal the queue never
// answers is given up once the polls end by themselves, rather than
// holding the stop for the request timeout.
func TestWorkerStopsDespiteUnansweredWithdraw(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	cfg := config("w1")
	cfg.RequestTimeout = 5 * time.Second
	q := &countingQueue{JobQueue: deafToWithdraw{p.queueClient(p.jq)}}
	w := p.startWorker(cfg, nil, q)
	until(t, "worker polling", func() bool { return q.polls.Load() > 0 })
	assert.Less(t, w.stop(), cfg.PollWait+2*time.Second, "the stop waited for the withdrawal")
}

// countingQueue counts the polls that reach the real queue client.
type countingQueue struct {
	faas.JobQueue
	polls atomic.Int64
}

func (q *countingQueue) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	q.polls.Add(1)
	return q.JobQueue.Next(ctx, worker, max, wait)
}

// TestWorkerQueueUnreachable points a worker at a queue client that fails
// every call at once: the worker must back off, not spin, and still stop.
func TestWorkerQueueUnreachable(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	client := p.queueClient(p.jq)
	require.NoError(t, client.Close())
	queue := &countingQueue{JobQueue: client}
	w := p.startWorker(config("w1"), nil, queue)
	time.Sleep(time.Second)
	assert.Less(t, w.stop(), time.Second)
	polls := queue.polls.Load()
	assert.Positive(t, polls)
	assert.Less(t, polls, int64(40), "two slots polling a dead queue for a second")
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	for _, mod := range []func(*worker.Config){
		func(c *worker.Config) { c.Concurrency = -1 },
		func(c *worker.Config) { c.Heartbeat = time.Millisecond },
		func(c *worker.Config) { c.PollWait = time.Hour },
		func(c *worker.Config) { c.RequestTimeout = -time.Second },
		func(c *worker.Config) { c.SandboxMemoryMB = 1 },
		func(c *worker.Config) { c.SandboxMaxMemoryMB = 128 }, // below the default cap
		func(c *worker.Config) { c.SandboxMaxMemoryMB = 1 << 20 },
		func(c *worker.Config) { c.SandboxMaxMemoryMB, c.MemoryMB = 1024, 512 }, // a job at the ceiling never fits
	} {
		cfg := config("w1")
		mod(&cfg)
		_, err := worker.New(cfg, p.store, p.queue, slog.New(slog.DiscardHandler))
		assert.Error(t, err, "%+v", cfg)
	}
	_, err := worker.New(config("w1"), nil, p.queue, slog.New(slog.DiscardHandler))
	assert.Error(t, err)
}

func TestLoadConfig(t *testing.T) {
	// Set, then unset: t.Setenv restores the environment afterwards.
	for _, name := range []string{"DB_URL", "FAAS_WORKER_CONCURRENCY", "FAAS_WORKER_ID", "FAAS_WORKER_POLL", "FAAS_SANDBOX_MEMORY_MB",
		"FAAS_SANDBOX_MAX_MEMORY_MB", "FAAS_WORKER_MEMORY_MB", "FAAS_MAX_CALL_DEPTH", "FAAS_WORKER_PROCS"} {
		t.Setenv(name, "")
		require.NoError(t, os.Unsetenv(name))
	}
	t.Setenv("JQ_URL", "tcp://jq:1")
	t.Setenv("FAAS_REQUEST_TIMEOUT", "2s")
	cfg, err := worker.LoadConfig()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("tcp://127.0.0.1:%d", dbproxy.DefaultPort), cfg.DBURL)
	assert.Equal(t, "tcp://jq:1", cfg.JQURL)
	assert.Equal(t, runtime.NumCPU()*faas.SlotsPerCPU, cfg.Concurrency)
	host, _ := os.Hostname()
	assert.Equal(t, fmt.Sprintf("%s-%d", host, os.Getpid()), cfg.ID)
	assert.Equal(t, 2*time.Second, cfg.RequestTimeout)
	assert.Equal(t, 5*time.Second, cfg.PollWait)
	assert.Equal(t, 256, cfg.SandboxMemoryMB)
	assert.Equal(t, 1024, cfg.SandboxMaxMemoryMB)
	assert.Equal(t, max(runtime.NumCPU()*faas.SlotsPerCPU*256, 1024), cfg.MemoryMB)
	assert.Equal(t, 8, cfg.MaxCallDepth)
	assert.Zero(t, cfg.Procs, "the runtime's default")

	t.Setenv("FAAS_WORKER_CONCURRENCY", "-2")
	_, err = worker.LoadConfig()
	assert.ErrorContains(t, err, "FAAS_WORKER_CONCURRENCY")
	t.Setenv("FAAS_WORKER_CONCURRENCY", "many")
	_, err = worker.LoadConfig()
	assert.Error(t, err)
	t.Setenv("FAAS_WORKER_CONCURRENCY", "1")
	t.Setenv("FAAS_SANDBOX_MEMORY_MB", "8")
	_, err = worker.LoadConfig()
	assert.ErrorContains(t, err, "FAAS_SANDBOX_MEMORY_MB")
	t.Setenv("FAAS_SANDBOX_MEMORY_MB", "256")
	t.Setenv("FAAS_WORKER_MEMORY_MB", "1000")
	_, err = worker.LoadConfig()
	assert.ErrorContains(t, err, "FAAS_WORKER_MEMORY_MB is 1000, want at least the most one job may have, 1024")
	t.Setenv("FAAS_WORKER_MEMORY_MB", "4096")
	for _, depth := range []string{"-1", "65"} {
		t.Setenv("FAAS_MAX_CALL_DEPTH", depth)
		_, err = worker.LoadConfig()
		assert.ErrorContains(t, err, "FAAS_MAX_CALL_DEPTH is "+depth+", want 1 to 64")
	}
	t.Setenv("FAAS_MAX_CALL_DEPTH", "8")
	t.Setenv("FAAS_WORKER_PROCS", "-1")
	_, err = worker.LoadConfig()
	assert.ErrorContains(t, err, "FAAS_WORKER_PROCS is -1, want 0 (one per CPU) or more")
	t.Setenv("FAAS_WORKER_PROCS", "1")
	cfg, err = worker.LoadConfig()
	require.NoError(t, err)
	assert.Equal(t, 1, cfg.Procs)
	assert.False(t, cfg.NoLeaseAhead, "leasing ahead is the default")
	t.Setenv("FAAS_WORKER_NO_LEASE_AHEAD", "true")
	cfg, err = worker.LoadConfig()
	require.NoError(t, err)
	assert.True(t, cfg.NoLeaseAhead)
}

// memoryFunction stores a function of eve's that asks for mb of memory
// and returns when it started and ended, in milliseconds.
func (p *platform) memoryFunction(name string, mb int, wait time.Duration) {
	p.t.Helper()
	src := fmt.Sprintf(`async function f() { const start = Date.now(); await new Promise(r => setTimeout(r, %d)); return [start, Date.now()] }`, wait.Milliseconds())
	_, _, err := p.store.PutFunction(p.ctx, faas.Function{Owner: "eve", Name: name, Source: src, Timeout: 10 * time.Second, MemoryMB: mb})
	require.NoError(p.t, err)
}

// span is when a memoryFunction job ran.
func (p *platform) span(id string) (start, end int64) {
	p.t.Helper()
	j := p.finished(id)
	require.Equal(p.t, faas.Succeeded, j.State, "error %v", j.Error)
	var s [2]int64
	require.NoError(p.t, json.Unmarshal(j.Result, &s))
	return s[0], s[1]
}

// TestWorkerMemoryBudget runs two jobs of 400 MB caps on a worker with two
// slots: they run together when the budget holds both, one after the
// other when it does not.
func TestWorkerMemoryBudget(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		budgetMB int
		together bool
	}{
		{"room for both", 1024, true},
		{"room for one", 512, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPlatform(t)
			p.user("eve")
			p.memoryFunction("f", 400, time.Second)
			a, b := p.submit("eve", "f", `[]`), p.submit("eve", "f", `[]`)
			cfg := config("w1")
			cfg.SandboxMaxMemoryMB, cfg.MemoryMB = 512, tt.budgetMB
			p.startWorker(cfg, nil, nil)

			aStart, aEnd := p.span(a.ID)
			bStart, bEnd := p.span(b.ID)
			overlap := aStart < bEnd && bStart < aEnd
			assert.Equal(t, tt.together, overlap, "a ran %d-%d, b %d-%d", aStart, aEnd, bStart, bEnd)
		})
	}
}

// inFlightQueue tracks the polls of the real queue client under way.
type inFlightQueue struct {
	faas.JobQueue
	polling atomic.Int64
}

func (q *inFlightQueue) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	q.polling.Add(1)
	defer q.polling.Add(-1)
	return q.JobQueue.Next(ctx, worker, max, wait)
}

// TestWorkerLeavesJobsItHasNoMemoryFor fills a worker's memory budget with
// one job: its free slot stops asking for jobs, so another worker takes
// the next one rather than it waiting for memory there.
func TestWorkerLeavesJobsItHasNoMemoryFor(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("eve")
	// Long enough to outlast the checks on a loaded machine.
	p.memoryFunction("big", 400, 5*time.Second)
	p.memoryFunction("small", 0, 0)
	cfg := config("full")
	cfg.SandboxMaxMemoryMB, cfg.MemoryMB = 512, 512
	q := &inFlightQueue{JobQueue: p.queueClient(p.jq)}
	p.startWorker(cfg, nil, q)
	big := p.submit("eve", "big", `[]`)
	until(t, "big job running", func() bool { return p.state(big.ID) == faas.Running })
	// The free slot's last poll ends within a poll wait; then it polls no
	// more while the big job holds the budget.
	until(t, "polls over", func() bool { return q.polling.Load() == 0 })
	require.Never(t, func() bool { return q.polling.Load() > 0 }, 2*cfg.PollWait, 5*time.Millisecond,
		"a worker with no memory to spare asked for a job")

	p.startWorker(config("free"), nil, nil)
	small := p.finished(p.submit("eve", "small", `[]`).ID)
	require.Equal(t, faas.Succeeded, small.State, "error %v", small.Error)
	assert.Equal(t, "free", small.Worker)
	assert.Equal(t, faas.Running, p.state(big.ID))
}

// TestWorkerMemoryCeiling runs a job whose function asks for more memory
// than the ceiling allows, as one stored before the ceiling was lowered.
func TestWorkerMemoryCeiling(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("eve")
	p.memoryFunction("huge", 2048, 0)
	cfg := config("w1")
	cfg.SandboxMaxMemoryMB = 1024
	p.startWorker(cfg, nil, nil)
	got := p.finished(p.submit("eve", "huge", `[]`).ID)
	require.Equal(t, faas.Failed, got.State)
	assert.Equal(t, faas.TooLarge, got.Error.Code)
	assert.Equal(t, "function huge asks for 2048 MB of memory, above this platform's ceiling of 1024 MB (FAAS_SANDBOX_MAX_MEMORY_MB)", got.Error.Message)
	assert.Zero(t, got.Billed)
}

// hungLogs is a queue whose AppendLogs never answers.
type hungLogs struct{ faas.JobQueue }

func (hungLogs) AppendLogs(ctx context.Context, _ string, _ faas.Lease, _ []faas.LogLine) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestLiveLogsDoNotHoldUpCompletion: a queue that takes the lines but
// never answers delays a job's completion by at most one request timeout
// (1s here), whatever the number of batches, and the Store has every line.
func TestLiveLogsDoNotHoldUpCompletion(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	p.user("liv")
	p.function("liv", "talk", `async function talk() { console.log("a"); await new Promise(r => setTimeout(r, 5)); console.log("b"); await new Promise(r => setTimeout(r, 5)); console.log("c"); return 1 }`, 5*time.Second)
	p.startWorker(config("w1"), nil, hungLogs{p.queueClient(p.jq)})
	begin := time.Now()
	got := p.finished(p.submit("liv", "talk", `[]`).ID)
	require.Equal(t, faas.Succeeded, got.State, "error %v", got.Error)
	assert.Equal(t, "a\nb\nc\n", got.Logs)
	assert.Less(t, time.Since(begin), 1800*time.Millisecond, "the completion waited for each batch in turn")
}
