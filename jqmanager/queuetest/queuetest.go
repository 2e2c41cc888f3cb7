// Package queuetest is the conformance suite every faas.JobQueue passes:
// the JQ manager in-process and through jqproxy, in plaintext and over
// CURVE. It pins down the contract written on faas.JobQueue (idempotent
// submission and publishing, fair leasing within the limits, fenced
// leases and logs, waits and events), so that a caller cannot tell the
// implementations apart.
package queuetest

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// The settings the queue under test must have. They are small so that
// the limits are reached with a handful of jobs and a lost lease is
// noticed within seconds; the lease is still long enough for heartbeats
// over the bus to keep it on a machine busy with other tests.
const (
	// LeaseTimeout is how long a lease lasts without a heartbeat.
	LeaseTimeout = 2 * time.Second
	// MaxAttempts is how many lost leases fail a job.
	MaxAttempts = 2
	// MaxPendingPerUser bounds one user's queued and running jobs.
	MaxPendingPerUser = 8
	// MaxRunningPerUser bounds one user's running jobs.
	MaxRunningPerUser = 3
)

// The queue must also cap a job's live output between 40 and 80 KiB and
// the lines one JobLogs event carries below 40 KiB (the JQ manager's caps
// are 64 and 8 KiB): LiveLogs passes one line of each size.
const bigLine = 40 << 10

// timeout bounds each subtest.
const timeout = 30 * time.Second

// soon is how long a test gives the queue for something it does at once
// (a waiting worker woken, a released job handed out), generous for a
// machine busy with other tests.
const soon = 3 * time.Second

// Run runs the suite. open returns, for one subtest, a fresh queue with
// the settings above and the Store it keeps its jobs in, and arranges to
// close both with t.Cleanup. Each subtest has a queue of its own, since
// Next and Stats span every user; the subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) (faas.JobQueue, faas.Store)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, fx *fixture)
	}{
		{"SubmitIsIdempotent", testSubmitIsIdempotent},
		{"UnknownFunction", testUnknownFunction},
		{"InvalidInput", testInvalidInput},
		{"NextWaitsForSubmission", testNextWaitsForSubmission},
		{"Withdraw", testWithdraw},
		{"FairAcrossUsers", testFairAcrossUsers},
		{"PendingLimitPerUser", testPendingLimitPerUser},
		{"RunningLimitPerUser", testRunningLimitPerUser},
		{"FunctionConcurrency", testFunctionConcurrency},
		{"Wait", testWait},
		{"ExpiredLeaseIsFenced", testExpiredLeaseIsFenced},
		{"HeartbeatsKeepLease", testHeartbeatsKeepLease},
		{"LostTooOftenFails", testLostTooOftenFails},
		{"Release", testRelease},
		{"StaleCompletionIsRefused", testStaleCompletionIsRefused},
		{"NextLeasesSeveral", testNextLeasesSeveral},
		{"CompleteIsFencedAndCapped", testCompleteIsFencedAndCapped},
		{"Forget", testForget},
		{"DeletedJobIsNeverRun", testDeletedJobIsNeverRun},
		{"ForgetUser", testForgetUser},
		{"RevokeTokens", testRevokeTokens},
		{"Schedules", testSchedules},
		{"Events", testEvents},
		{"Status", testStatus},
		{"ForgetIsPublished", testForgetIsPublished},
		{"LiveLogs", testLiveLogs},
		{"Stats", testStats},
		{"SubmitChild", testSubmitChild},
		{"Publish", testPublish},
		{"PublishInvalidInput", testPublishInvalidInput},
		{"PublishOverPendingLimit", testPublishOverPendingLimit},
		{"PublishChild", testPublishChild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, s := open(t)
			tc.fn(t, newFixture(t, q, s))
		})
	}
}

// fixture is one subtest's queue and store, with its users.
type fixture struct {
	t   *testing.T
	ctx context.Context
	q   faas.JobQueue
	s   faas.Store

	// held is the leases of each worker that next leased, which the
	// fixture's heartbeat renews as a worker does, so that a job held
	// through a slow test is not lost; nextSilent leases without.
	mu   sync.Mutex
	held map[string][]faas.Lease
}

// newFixture returns a fixture whose context ends with the subtest, before
// the queue is closed: calls still under way in goroutines end with it,
// and the heartbeat has stopped.
func newFixture(t *testing.T, q faas.JobQueue, s faas.Store) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	fx := &fixture{t: t, ctx: ctx, q: q, s: s, held: make(map[string][]faas.Lease)}
	stopped := make(chan struct{})
	go func() { defer close(stopped); fx.heartbeat() }()
	t.Cleanup(func() { cancel(); <-stopped })
	return fx
}

// heartbeat renews the held leases four times per lease period until the
// subtest ends, and forgets those the queue says are gone.
func (fx *fixture) heartbeat() {
	tick := time.NewTicker(LeaseTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-fx.ctx.Done():
			return
		case <-tick.C:
		}
		fx.mu.Lock()
		held := maps.Clone(fx.held)
		fx.mu.Unlock()
		for worker, leases := range held {
			lost, err := fx.q.Renew(fx.ctx, worker, leases)
			if err != nil {
				continue // the subtest ended, or the next beat tries again
			}
			fx.mu.Lock()
			fx.held[worker] = slices.DeleteFunc(fx.held[worker], func(l faas.Lease) bool { return slices.Contains(lost, l) })
			fx.mu.Unlock()
		}
	}
}

// users creates each user with a function f.
func (fx *fixture) users(names ...string) {
	fx.t.Helper()
	for _, u := range names {
		require.NoError(fx.t, fx.s.CreateUser(fx.ctx, faas.User{Name: u, TokenHash: "h-" + u}))
		fx.function(u, "f", 0)
	}
}

// function stores a function with a concurrency limit (0: none).
func (fx *fixture) function(owner, name string, concurrency int) {
	fx.t.Helper()
	_, _, err := fx.s.PutFunction(fx.ctx, faas.Function{Owner: owner, Name: name, Source: "x => x", Timeout: time.Second, Concurrency: concurrency})
	require.NoError(fx.t, err)
}

// submit queues a job of owner's function f.
func (fx *fixture) submit(owner string) faas.Job {
	fx.t.Helper()
	return fx.submitTo(owner, "f")
}

// submitTo queues a job of owner's function, or has it leased at once to
// a worker that waits with nothing queued.
func (fx *fixture) submitTo(owner, function string) faas.Job {
	fx.t.Helper()
	j := Submit(fx.t, fx.ctx, fx.q, owner, function)
	if j.State != faas.Running {
		require.Equal(fx.t, faas.Queued, j.State)
	} else {
		require.Equal(fx.t, 1, j.Attempt, "a job leased as it is submitted")
	}
	return j
}

// Submit submits a new job of owner's function with arguments [1]; the
// test fails if q refuses it. Other tests of a queue use it too.
func Submit(t testing.TB, ctx context.Context, q faas.JobQueue, owner, function string) faas.Job {
	t.Helper()
	j, err := q.Submit(ctx, faas.Job{ID: uuid.NewString(), Owner: owner, Function: function, Args: json.RawMessage("[1]")})
	require.NoError(t, err)
	return j
}

// Next leases a job to worker, waiting up to wait; the test fails on an
// error. Other tests of a queue use it too.
func Next(t testing.TB, ctx context.Context, q faas.JobQueue, worker string, wait time.Duration) (faas.Job, bool) {
	t.Helper()
	js, err := q.Next(ctx, worker, 1, wait)
	require.NoError(t, err)
	if len(js) == 0 {
		return faas.Job{}, false
	}
	require.Len(t, js, 1)
	return js[0], true
}

// next leases a job to worker, waiting up to wait, and keeps its lease
// alive.
func (fx *fixture) next(worker string, wait time.Duration) (faas.Job, bool) {
	fx.t.Helper()
	j, ok := fx.nextSilent(worker, wait)
	if ok {
		fx.mu.Lock()
		fx.held[worker] = append(fx.held[worker], lease(j))
		fx.mu.Unlock()
	}
	return j, ok
}

// nextSilent leases a job to a worker that sends no heartbeats of its
// own accord, as one that died would.
func (fx *fixture) nextSilent(worker string, wait time.Duration) (faas.Job, bool) {
	fx.t.Helper()
	return Next(fx.t, fx.ctx, fx.q, worker, wait)
}

// mustNext leases a job that is there to lease, or comes soon.
func (fx *fixture) mustNext(worker string) faas.Job {
	fx.t.Helper()
	j, ok := fx.next(worker, soon)
	require.True(fx.t, ok, "no job for worker %s", worker)
	return j
}

// nextLater polls for a job in the background, as an idle worker does;
// the channel receives the job, or a zero one if none came in time.
func (fx *fixture) nextLater(worker string) <-chan faas.Job {
	got := make(chan faas.Job, 1)
	go func() {
		var j faas.Job
		if js, _ := fx.q.Next(fx.ctx, worker, 1, 2*soon); len(js) > 0 {
			j = js[0]
			fx.mu.Lock()
			fx.held[worker] = append(fx.held[worker], lease(j))
			fx.mu.Unlock()
		}
		got <- j
	}()
	return got
}

// receive waits soon for a value from ch.
func receive[T any](t *testing.T, ch <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(soon):
		require.FailNow(t, msg)
		var zero T
		return zero
	}
}

// parked gives a caller started in the background the time to be waiting
// in the queue: the interface has no way to tell, and a caller that comes
// late gets an answer that is right too, only not the one under test.
func parked() { time.Sleep(100 * time.Millisecond) }

// Complete hands q the success of attempt j.Attempt (result 1, 1ms) from
// the worker that leased it, as a worker does, and returns the queue's
// answer for it; other tests of a queue use it too.
func Complete(ctx context.Context, q faas.JobQueue, j faas.Job) error {
	// An attempt bills at most the time its lease has lasted: let the
	// millisecond it claims pass.
	time.Sleep(time.Millisecond)
	refused, err := q.Complete(ctx, j.Worker, []faas.Completion{{JobID: j.ID, Attempt: j.Attempt, Result: json.RawMessage("1"), Duration: time.Millisecond}})
	if err != nil {
		return err
	}
	if refused[0] != nil {
		return refused[0]
	}
	return nil
}

func (fx *fixture) complete(j faas.Job) error { return Complete(fx.ctx, fx.q, j) }

func (fx *fixture) stats() faas.Stats {
	fx.t.Helper()
	st, err := fx.q.Stats(fx.ctx)
	require.NoError(fx.t, err)
	return st
}

func lease(j faas.Job) faas.Lease { return faas.Lease{ID: j.ID, Attempt: j.Attempt} }

func requireCode(t *testing.T, err error, code faas.Code) {
	t.Helper()
	require.Equal(t, code, faas.ErrorCode(err), "error %v", err)
}

// testSubmitIsIdempotent: a retried submission returns the job as it is
// and never queues it twice, before or after it ran.
func testSubmitIsIdempotent(t *testing.T, fx *fixture) {
	fx.users("ann")
	j := fx.submit("ann")
	again, err := fx.q.Submit(fx.ctx, faas.Job{ID: j.ID, Owner: "ann", Function: "f", Args: json.RawMessage("[1]")})
	require.NoError(t, err)
	require.Equal(t, j.ID, again.ID)
	require.Equal(t, faas.Queued, again.State)
	require.Equal(t, 1, fx.stats().Queued)

	got := fx.mustNext("w1")
	require.Equal(t, j.ID, got.ID)
	require.Equal(t, 1, got.Attempt)
	require.Equal(t, "w1", got.Worker)
	require.Equal(t, faas.Running, got.State)
	require.JSONEq(t, "[1]", string(got.Args))
	_, ok := fx.next("w2", 50*time.Millisecond)
	require.False(t, ok, "a resubmitted job was queued twice")

	require.NoError(t, fx.complete(got))
	again, err = fx.q.Submit(fx.ctx, faas.Job{ID: j.ID, Owner: "ann", Function: "f"})
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, again.State)
	_, ok = fx.next("w1", 50*time.Millisecond)
	require.False(t, ok, "a finished job was queued again")
}

// testUnknownFunction: a job of a function the Store does not have is
// refused and queues nothing.
func testUnknownFunction(t *testing.T, fx *fixture) {
	fx.users("ann")
	_, err := fx.q.Submit(fx.ctx, faas.Job{ID: uuid.NewString(), Owner: "ann", Function: "nope"})
	requireCode(t, err, faas.NotFound)
	require.Zero(t, fx.stats().Queued)
}

// testInvalidInput: the calls name what they need.
func testInvalidInput(t *testing.T, fx *fixture) {
	_, err := fx.q.Next(fx.ctx, "", 1, 0)
	requireCode(t, err, faas.Invalid)
	for _, max := range []int{0, faas.MaxBatch + 1} {
		_, err = fx.q.Next(fx.ctx, "w", max, 0)
		requireCode(t, err, faas.Invalid)
	}
	_, err = fx.q.Complete(fx.ctx, "", nil)
	requireCode(t, err, faas.Invalid)
	_, err = fx.q.Complete(fx.ctx, "w", make([]faas.Completion, faas.MaxBatch+1))
	requireCode(t, err, faas.Invalid)
	_, err = fx.q.Renew(fx.ctx, "", nil)
	requireCode(t, err, faas.Invalid)
	requireCode(t, fx.q.ForgetUser(fx.ctx, ""), faas.Invalid)
	requireCode(t, fx.q.RevokeTokens(fx.ctx, ""), faas.Invalid)
	_, _, err = fx.q.Logs(fx.ctx, "any", -1)
	requireCode(t, err, faas.Invalid)
}

// testNextWaitsForSubmission: an empty queue answers no job once the wait
// is over; a worker waiting is handed a job submitted meanwhile.
func testNextWaitsForSubmission(t *testing.T, fx *fixture) {
	fx.users("ann")
	_, ok := fx.next("w", 50*time.Millisecond)
	require.False(t, ok)
	got := fx.nextLater("w")
	parked()
	j := fx.submit("ann")
	leased := receive(t, got, "a waiting worker was not handed the job submitted")
	require.Equal(t, j.ID, leased.ID)
	require.Equal(t, 1, leased.Attempt)
	require.Equal(t, "w", leased.Worker)
}

// testWithdraw: Withdraw ends a worker's waiting poll at once with no
// job, leaves another worker's poll waiting, and holds nothing against
// the worker's next poll.
func testWithdraw(t *testing.T, fx *fixture) {
	fx.users("ann", "bob")
	withdrawn, other := fx.nextLater("w"), fx.nextLater("other")
	parked()
	// Withdrawn again until it answers, as a stopping worker does: a poll
	// may reach the queue after a withdrawal.
	deadline := time.After(soon)
	var got faas.Job
	for answered := false; !answered; {
		require.NoError(t, fx.q.Withdraw(fx.ctx, "w"))
		select {
		case got = <-withdrawn:
			answered = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			require.FailNow(t, "a withdrawn poll kept waiting")
		}
	}
	require.Zero(t, got, "a withdrawn poll leases nothing")
	j := fx.submit("ann")
	require.Equal(t, j.ID, receive(t, other, "another worker's poll was withdrawn too").ID)
	later := fx.nextLater("w")
	parked()
	j = fx.submit("bob")
	require.Equal(t, j.ID, receive(t, later, "a poll after the withdrawal got no job").ID)
	require.NoError(t, fx.q.Withdraw(fx.ctx, "nobody"), "a worker with no poll")
	requireCode(t, fx.q.Withdraw(fx.ctx, ""), faas.Invalid)
}

// testFairAcrossUsers: users take turns, so one user's backlog does not
// hold back another's job.
func testFairAcrossUsers(t *testing.T, fx *fixture) {
	fx.users("flood", "quiet")
	for range MaxPendingPerUser {
		fx.submit("flood")
	}
	q := fx.submit("quiet")
	require.Equal(t, "flood", fx.mustNext("w").Owner)
	require.Equal(t, q.ID, fx.mustNext("w").ID, "the quiet user's job waited behind the flood")
}

// testPendingLimitPerUser: a user at the limit of jobs queued and running
// is refused more, but not a retry of one of them, nor another user; a
// finished job frees a place.
func testPendingLimitPerUser(t *testing.T, fx *fixture) {
	fx.users("flood", "quiet")
	var first faas.Job
	for i := range MaxPendingPerUser {
		j := fx.submit("flood")
		if i == 0 {
			first = j
		}
	}
	_, err := fx.q.Submit(fx.ctx, faas.Job{ID: uuid.NewString(), Owner: "flood", Function: "f"})
	requireCode(t, err, faas.TooMany)
	again, err := fx.q.Submit(fx.ctx, faas.Job{ID: first.ID, Owner: "flood", Function: "f"})
	require.NoError(t, err, "a retried submission was refused at the limit")
	require.Equal(t, first.ID, again.ID)
	fx.submit("quiet")

	j := fx.mustNext("w")
	require.Equal(t, "flood", j.Owner)
	require.NoError(t, fx.complete(j))
	fx.submit("flood")
}

// testRunningLimitPerUser: a user at the running limit waits while other
// users' jobs start at once; their held jobs count as queued and held; a
// finished or released job gives its place back and wakes a worker.
func testRunningLimitPerUser(t *testing.T, fx *fixture) {
	fx.users("flood", "quiet")
	for range MaxRunningPerUser + 2 {
		fx.submit("flood")
	}
	var running []faas.Job
	for range MaxRunningPerUser {
		running = append(running, fx.mustNext("w"))
	}
	_, ok := fx.next("w", 50*time.Millisecond)
	require.False(t, ok, "a user at the running limit was handed another job")
	st := fx.stats()
	require.Equal(t, 2, st.Queued, "the held jobs stay queued")
	require.Equal(t, 2, st.Held)
	require.Equal(t, MaxRunningPerUser, st.Running)

	got := fx.nextLater("w")
	parked()
	q := fx.submit("quiet")
	require.Equal(t, q.ID, receive(t, got, "another user's job waited behind a user at the running limit").ID)

	got = fx.nextLater("w")
	parked()
	require.NoError(t, fx.complete(running[0]))
	require.Equal(t, "flood", receive(t, got, "a job finished but its owner's next did not start").Owner)

	require.NoError(t, fx.q.Release(fx.ctx, lease(running[1]), "stopping"))
	require.Equal(t, "flood", fx.mustNext("w").Owner, "a released job did not give back its place")
}

// testFunctionConcurrency: a function at its concurrency limit waits
// without holding back its owner's other functions; its held jobs count
// as held; a finished job frees one place.
func testFunctionConcurrency(t *testing.T, fx *fixture) {
	fx.users("ada")
	fx.function("ada", "limited", 1)
	for range 3 {
		fx.submitTo("ada", "limited")
	}
	other := fx.submit("ada")
	first := fx.mustNext("w")
	require.Equal(t, "limited", first.Function)
	require.Equal(t, other.ID, fx.mustNext("w").ID, "the other function waited behind the limited one")
	_, ok := fx.next("w", 50*time.Millisecond)
	require.False(t, ok, "the limited function ran past its limit")
	st := fx.stats()
	require.Equal(t, 2, st.Queued)
	require.Equal(t, 2, st.Held, "held jobs would make the scaler add workers")

	require.NoError(t, fx.complete(first))
	require.Equal(t, "limited", fx.mustNext("w").Function)
	_, ok = fx.next("w", 50*time.Millisecond)
	require.False(t, ok, "the limited function ran past its limit")
}

// testWait: a job queued or running is not finished when the wait is
// over; a waiter is handed the outcome when the job ends; a job that left
// the queue before, or never was in it, is finished with no outcome.
func testWait(t *testing.T, fx *fixture) {
	fx.users("ann")
	j, finished, err := fx.q.Wait(fx.ctx, "never-submitted", time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	require.Empty(t, j.ID)

	sub := fx.submit("ann")
	_, finished, err = fx.q.Wait(fx.ctx, sub.ID, 50*time.Millisecond)
	require.NoError(t, err)
	require.False(t, finished, "a queued job was reported finished")
	got := fx.mustNext("w")
	_, finished, err = fx.q.Wait(fx.ctx, sub.ID, 0)
	require.NoError(t, err)
	require.False(t, finished, "a running job was reported finished")

	type waited struct {
		job      faas.Job
		finished bool
		err      error
	}
	results := make(chan waited, 1)
	go func() {
		j, finished, err := fx.q.Wait(fx.ctx, sub.ID, 2*soon)
		results <- waited{j, finished, err}
	}()
	parked()
	require.NoError(t, fx.complete(got))
	w := receive(t, results, "a waiter was not woken by the job's end")
	require.NoError(t, w.err)
	require.True(t, w.finished)
	require.Equal(t, sub.ID, w.job.ID, "the waiter is handed the outcome")
	require.Equal(t, faas.Succeeded, w.job.State)
	require.JSONEq(t, "1", string(w.job.Result))

	late, finished, err := fx.q.Wait(fx.ctx, sub.ID, time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	require.Empty(t, late.ID, "a job that left the queue is the Store's to tell")
}

// testExpiredLeaseIsFenced: a lease without heartbeats expires and the
// job goes to another worker as a new attempt; the old attempt can then
// neither renew nor finish it, and the job is billed once.
func testExpiredLeaseIsFenced(t *testing.T, fx *fixture) {
	fx.users("ann")
	j := fx.submit("ann")
	first, ok := fx.nextSilent("dead", soon)
	require.True(t, ok)

	second, ok := fx.next("alive", 4*LeaseTimeout+soon)
	require.True(t, ok, "the expired job was not queued again")
	require.Equal(t, j.ID, second.ID)
	require.Equal(t, 2, second.Attempt)
	require.Len(t, second.Lost, 1)
	require.Equal(t, faas.Lost, second.Lost[0].Code)
	require.Contains(t, second.Lost[0].Message, "dead")

	requireCode(t, fx.complete(first), faas.Conflict)
	lost, err := fx.q.Renew(fx.ctx, "dead", []faas.Lease{lease(first)})
	require.NoError(t, err)
	require.Equal(t, []faas.Lease{lease(first)}, lost)

	require.NoError(t, fx.complete(second))
	billed, err := fx.s.BilledTime(fx.ctx, "ann")
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, billed, "billed once")
}

// testHeartbeatsKeepLease: a worker with nothing to renew still counts as
// present; a worker renewing its lease keeps the job past the lease
// timeout; a lease it never held comes back as lost.
func testHeartbeatsKeepLease(t *testing.T, fx *fixture) {
	fx.users("ann")
	lost, err := fx.q.Renew(fx.ctx, "idle", nil)
	require.NoError(t, err)
	require.Empty(t, lost)
	require.Equal(t, 1, fx.stats().Workers, "an idle worker's heartbeat was not seen")

	fx.submit("ann")
	j, ok := fx.nextSilent("w", soon)
	require.True(t, ok)
	other := faas.Lease{ID: "other", Attempt: 1}
	for end := time.Now().Add(2 * LeaseTimeout); time.Now().Before(end); {
		time.Sleep(LeaseTimeout / 4)
		lost, err := fx.q.Renew(fx.ctx, "w", []faas.Lease{lease(j), other})
		require.NoError(t, err)
		require.Equal(t, []faas.Lease{other}, lost)
	}
	_, ok = fx.next("thief", 50*time.Millisecond)
	require.False(t, ok, "a renewed lease was given to another worker")
	require.NoError(t, fx.complete(j))
	info, err := fx.s.Job(fx.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, 1, info.Attempt)
	require.Equal(t, faas.Succeeded, info.State)
}

// testLostTooOftenFails: after MaxAttempts lost leases the job fails with
// code lost, unbilled, and its waiters are told.
func testLostTooOftenFails(t *testing.T, fx *fixture) {
	fx.users("ann")
	j := fx.submit("ann")
	for i := 1; i <= MaxAttempts; i++ {
		_, ok := fx.nextSilent("w", 4*LeaseTimeout+soon)
		require.True(t, ok, "attempt %d did not come", i)
	}
	_, finished, err := fx.q.Wait(fx.ctx, j.ID, 4*LeaseTimeout+soon)
	require.NoError(t, err)
	require.True(t, finished)
	info, err := fx.s.Job(fx.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Failed, info.State)
	require.Equal(t, faas.Lost, info.Error.Code)
	require.Zero(t, info.Billed)
}

// testRelease: a released job is queued again at once as a new attempt
// that says why; releasing an attempt that no longer holds the job does
// nothing.
func testRelease(t *testing.T, fx *fixture) {
	fx.users("ann")
	j := fx.submit("ann")
	first := fx.mustNext("w1")
	require.NoError(t, fx.q.Release(fx.ctx, lease(first), "shutting down"))
	second := fx.mustNext("w2")
	require.Equal(t, j.ID, second.ID)
	require.Equal(t, 2, second.Attempt)
	require.Contains(t, second.Lost[0].Message, "shutting down")

	require.NoError(t, fx.q.Release(fx.ctx, lease(first), "again"))
	lost, err := fx.q.Renew(fx.ctx, "w2", []faas.Lease{lease(second)})
	require.NoError(t, err)
	require.Empty(t, lost, "a stale release took the job from its holder")
	require.NoError(t, fx.q.Release(fx.ctx, faas.Lease{ID: "unknown", Attempt: 1}, "never held"))
}

// testStaleCompletionIsRefused: a completion from an attempt that no
// longer holds the job is refused, neither ends it nor wakes its waiters,
// and bills nothing.
func testStaleCompletionIsRefused(t *testing.T, fx *fixture) {
	fx.users("ann")
	fx.submit("ann")
	first := fx.mustNext("w1")
	require.NoError(t, fx.q.Release(fx.ctx, lease(first), "moving"))
	second := fx.mustNext("w2")
	requireCode(t, fx.complete(first), faas.Conflict)
	_, finished, err := fx.q.Wait(fx.ctx, first.ID, 50*time.Millisecond)
	require.NoError(t, err)
	require.False(t, finished, "a stale attempt ended the job")
	lost, err := fx.q.Renew(fx.ctx, "w2", []faas.Lease{lease(second)})
	require.NoError(t, err)
	require.Empty(t, lost)
	billed, err := fx.s.BilledTime(fx.ctx, "ann")
	require.NoError(t, err)
	require.Zero(t, billed)
}

// testNextLeasesSeveral: one Next for more jobs than the running limit
// allows hands out the users' jobs in turn, each leased in the Store, and
// none past the limit.
func testNextLeasesSeveral(t *testing.T, fx *fixture) {
	fx.users("flood", "quiet")
	for range MaxRunningPerUser + 2 {
		fx.submit("flood")
	}
	quiet := fx.submit("quiet")
	js, err := fx.q.Next(fx.ctx, "w1", MaxRunningPerUser+2, soon)
	require.NoError(t, err)
	owners := make([]string, len(js))
	for i, j := range js {
		owners[i] = j.Owner
		require.Equal(t, "w1", j.Worker)
		stored, err := fx.s.Job(fx.ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, faas.Running, stored.State, "a job handed out was not leased in the Store")
	}
	require.Equal(t, []string{"flood", "quiet", "flood", "flood"}, owners, "users served in turn, flood up to its limit")
	require.Equal(t, quiet.ID, js[1].ID)
	st := fx.stats()
	require.Equal(t, 2, st.Queued)
	require.Equal(t, 2, st.Held)
}

// testCompleteIsFencedAndCapped: Complete refuses the completions of a
// worker that does not hold their leases, and bills one that claims more
// time than its lease has lasted no more than that wall time; each
// completion of a batch is answered on its own.
func testCompleteIsFencedAndCapped(t *testing.T, fx *fixture) {
	fx.users("ann")
	a, b := fx.submit("ann"), fx.submit("ann")
	// The leases begin after this, in the queue, and end before the
	// answer to Complete comes back.
	begin := time.Now()
	js, err := fx.q.Next(fx.ctx, "w1", 2, soon)
	require.NoError(t, err)
	require.Len(t, js, 2)

	forged := []faas.Completion{
		{JobID: a.ID, Attempt: 1, Result: json.RawMessage("666"), Duration: time.Microsecond},
		{JobID: b.ID, Attempt: 2, Result: json.RawMessage("666"), Duration: time.Microsecond},
	}
	refused, err := fx.q.Complete(fx.ctx, "w2", forged)
	require.NoError(t, err)
	require.Len(t, refused, 2)
	for i := range refused {
		require.NotNil(t, refused[i], "forged completion %d was accepted", i)
		require.Equal(t, faas.Conflict, refused[i].Code)
	}
	for _, id := range []string{a.ID, b.ID} {
		got, err := fx.s.Job(fx.ctx, id)
		require.NoError(t, err)
		require.Equal(t, faas.Running, got.State)
	}

	// The lease holder claims a thousand hours for one job; the queue
	// does not believe it.
	time.Sleep(5 * time.Millisecond)
	refused, err = fx.q.Complete(fx.ctx, "w1", []faas.Completion{
		{JobID: a.ID, Attempt: 1, Result: json.RawMessage("1"), Duration: 1000 * time.Hour},
		{JobID: b.ID, Attempt: 1, Error: faas.Errorf(faas.FunctionError, "boom"), Duration: time.Microsecond},
	})
	lasted := time.Since(begin)
	require.NoError(t, err)
	require.Equal(t, []*faas.Error{nil, nil}, refused)
	done, err := fx.s.Job(fx.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, done.State)
	require.GreaterOrEqual(t, done.Billed, 5*time.Millisecond)
	require.LessOrEqual(t, done.Billed, lasted, "billed past the lease's wall time")
	failed, err := fx.s.Job(fx.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Failed, failed.State)
	require.Equal(t, time.Microsecond, failed.Billed, "an honest duration is billed as claimed")

	// The leases are released: a retry is refused and bills nothing more.
	refused, err = fx.q.Complete(fx.ctx, "w1", forged[:1])
	require.NoError(t, err)
	require.Equal(t, faas.Conflict, refused[0].Code)
	billed, err := fx.s.BilledTime(fx.ctx, "ann")
	require.NoError(t, err)
	require.Equal(t, done.Billed+failed.Billed, billed)
	require.Zero(t, fx.stats().Running)
}

// testForget: a job deleted from the Store leaves the queue; a running
// one's lease is revoked and its waiters are woken; an unknown id is no
// error.
func testForget(t *testing.T, fx *fixture) {
	fx.users("ann")
	running := fx.submit("ann")
	queued := fx.submit("ann")
	got := fx.mustNext("w")
	require.Equal(t, running.ID, got.ID)

	woken := make(chan bool, 1)
	go func() {
		_, finished, _ := fx.q.Wait(fx.ctx, running.ID, 2*soon)
		woken <- finished
	}()
	parked()
	for _, id := range []string{running.ID, queued.ID} {
		require.NoError(t, fx.s.DeleteJob(fx.ctx, id))
		require.NoError(t, fx.q.Forget(fx.ctx, id))
	}
	require.True(t, receive(t, woken, "a waiter on a deleted job was not woken"))

	lost, err := fx.q.Renew(fx.ctx, "w", []faas.Lease{lease(got)})
	require.NoError(t, err)
	require.Len(t, lost, 1, "the deleted job's lease was not revoked")
	st := fx.stats()
	require.Zero(t, st.Queued)
	require.Zero(t, st.Running)
	require.NoError(t, fx.q.Forget(fx.ctx, "unknown"))
}

// testDeletedJobIsNeverRun: a job deleted from the Store while queued is
// skipped, even before the queue is told.
func testDeletedJobIsNeverRun(t *testing.T, fx *fixture) {
	fx.users("ann")
	gone := fx.submit("ann")
	kept := fx.submit("ann")
	require.NoError(t, fx.s.DeleteJob(fx.ctx, gone.ID))
	require.Equal(t, kept.ID, fx.mustNext("w").ID)
	_, finished, err := fx.q.Wait(fx.ctx, gone.ID, time.Second)
	require.NoError(t, err)
	require.True(t, finished)
}

// testForgetUser: a deleted user's jobs, queued and running, are stopped,
// other users' are left alone, and the watchers are told.
func testForgetUser(t *testing.T, fx *fixture) {
	fx.users("eve", "bob")
	start, err := fx.q.Events(fx.ctx, 0, 0)
	require.NoError(t, err)
	running := fx.submit("eve")
	got := fx.mustNext("w")
	require.Equal(t, running.ID, got.ID)
	queued := fx.submit("eve")
	fx.submit("bob")

	require.NoError(t, fx.q.ForgetUser(fx.ctx, "eve"))
	lost, err := fx.q.Renew(fx.ctx, "w", []faas.Lease{lease(got)})
	require.NoError(t, err)
	require.Len(t, lost, 1, "the running job's lease was not revoked")
	st := fx.stats()
	require.Equal(t, 1, st.Queued, "only bob's job is left")
	require.Zero(t, st.Running)
	require.Equal(t, "bob", fx.mustNext("w").Owner)

	page, err := fx.q.Events(fx.ctx, start.Next, 0)
	require.NoError(t, err)
	var finished []string
	revoked := ""
	for _, ev := range page.List {
		switch ev.Kind {
		case faas.JobFinished:
			require.Nil(t, ev.Job, "a forgotten job has no outcome to hand over")
			finished = append(finished, ev.JobID)
		case faas.UserRevoked:
			revoked = ev.User
		}
	}
	require.ElementsMatch(t, []string{running.ID, queued.ID}, finished)
	require.Equal(t, "eve", revoked)
}

// testRevokeTokens: a replaced token tells the watchers and leaves the
// user's jobs alone.
func testRevokeTokens(t *testing.T, fx *fixture) {
	fx.users("eve")
	start, err := fx.q.Events(fx.ctx, 0, 0)
	require.NoError(t, err)
	queued := fx.submit("eve")

	require.NoError(t, fx.q.RevokeTokens(fx.ctx, "eve"))
	page, err := fx.q.Events(fx.ctx, start.Next, 0)
	require.NoError(t, err)
	require.Len(t, page.List, 1)
	require.Equal(t, faas.UserRevoked, page.List[0].Kind)
	require.Equal(t, "eve", page.List[0].User)
	require.Equal(t, queued.ID, fx.mustNext("w").ID, "the user's queued job stays")
}

// testSchedules: a schedule put in the Store fires once Reschedule tells
// the queue, as jobs that a worker leases like any other, each tick its
// own job, marked as the schedule's; deleted, it fires no more.
func testSchedules(t *testing.T, fx *fixture) {
	fx.users("sam")
	_, err := fx.s.PutSchedule(fx.ctx, faas.Schedule{Owner: "sam", Function: "f", Cron: "@every 1s", Args: json.RawMessage(`[3]`)})
	require.NoError(t, err)
	require.NoError(t, fx.q.Reschedule(fx.ctx))
	a, b := fx.mustNext("w"), fx.mustNext("w")
	require.NotEqual(t, a.ID, b.ID)
	for _, j := range []faas.Job{a, b} {
		require.Equal(t, faas.TriggerSchedule, j.Trigger)
		require.JSONEq(t, `[3]`, string(j.Args))
		require.NoError(t, fx.complete(j))
	}
	require.NoError(t, fx.s.DeleteSchedule(fx.ctx, "sam", "f"))
	require.NoError(t, fx.q.Reschedule(fx.ctx))
	// A tick under way when it was deleted may still come: take it, then
	// nothing more.
	fx.next("w", 1500*time.Millisecond)
	_, ok := fx.next("w", 1500*time.Millisecond)
	require.False(t, ok, "a deleted schedule fired")
}

// testEvents: a first read reports a gap; a read with nothing new ends
// with the wait and keeps the cursor; a long poll is woken at once by a
// job finishing, with its outcome, kept small.
func testEvents(t *testing.T, fx *fixture) {
	fx.users("ann")
	first, err := fx.q.Events(fx.ctx, 0, time.Second)
	require.NoError(t, err)
	require.True(t, first.Gap, "a first call has nothing to go on")
	idle, err := fx.q.Events(fx.ctx, first.Next, 10*time.Millisecond)
	require.NoError(t, err)
	require.False(t, idle.Gap)
	require.Empty(t, idle.List)
	require.Equal(t, first.Next, idle.Next)

	j := fx.submit("ann")
	got := fx.mustNext("w")
	type page struct {
		ev  faas.Events
		err error
	}
	polled := make(chan page, 1)
	go func() {
		ev, err := fx.q.Events(fx.ctx, first.Next, 20*time.Second)
		polled <- page{ev, err}
	}()
	parked()
	require.NoError(t, fx.complete(got))
	p := receive(t, polled, "the long poll was not woken")
	require.NoError(t, p.err)
	require.Len(t, p.ev.List, 1)
	ev := p.ev.List[0]
	require.Equal(t, faas.JobFinished, ev.Kind)
	require.Equal(t, j.ID, ev.JobID)
	require.NotNil(t, ev.Job)
	require.Equal(t, faas.Succeeded, ev.Job.State)
	require.JSONEq(t, "1", string(ev.Job.Result))
	require.Empty(t, ev.Job.Logs, "events stay small")
	require.Equal(t, ev.Seq, p.ev.Next)
}

// testStatus: while the queue holds a job, Status answers the Store's
// record of it as the Store has it now, through every change the queue
// makes (queued, running, queued again after a lost lease), without the
// arguments and result the queue does not keep; once the job left the
// queue, Status says so, with how far the events go to tell of it.
func testStatus(t *testing.T, fx *fixture) {
	fx.users("ann")
	requireStatus := func(id string) faas.Job {
		t.Helper()
		stored, err := fx.s.Job(fx.ctx, id)
		require.NoError(t, err)
		stored.Args, stored.Result, stored.Logs, stored.Streams = nil, nil, "", ""
		st, err := fx.q.Status(fx.ctx, id)
		require.NoError(t, err)
		require.NotNil(t, st.Job, "job %s not held", id)
		require.Equal(t, stored, *st.Job)
		return *st.Job
	}
	j := fx.submit("ann")
	requireStatus(j.ID)
	leased := fx.mustNext("w")
	require.Equal(t, faas.Running, requireStatus(j.ID).State)
	require.NoError(t, fx.q.Release(fx.ctx, lease(leased), "stopping"))
	requeued := requireStatus(j.ID)
	require.Equal(t, faas.Queued, requeued.State)
	require.Len(t, requeued.Lost, 1, "the lost attempt is not in the record")
	leased = fx.mustNext("w")
	requireStatus(j.ID)

	before, err := fx.q.Events(fx.ctx, 0, 0)
	require.NoError(t, err)
	require.NoError(t, fx.complete(leased))
	st, err := fx.q.Status(fx.ctx, j.ID)
	require.NoError(t, err)
	require.Nil(t, st.Job, "a finished job is still held")
	page, err := fx.q.Events(fx.ctx, before.Next, 0)
	require.NoError(t, err)
	require.NotEmpty(t, page.List)
	require.Equal(t, faas.JobFinished, page.List[0].Kind)
	require.GreaterOrEqual(t, st.Seq, page.List[0].Seq, "the job's event is past the status's Seq")

	st, err = fx.q.Status(fx.ctx, "no-such-job")
	require.NoError(t, err)
	require.Nil(t, st.Job)
}

// testForgetIsPublished: every deletion is published, also of a job the
// queue no longer holds, since a frontend may remember it finished.
func testForgetIsPublished(t *testing.T, fx *fixture) {
	first, err := fx.q.Events(fx.ctx, 0, 0)
	require.NoError(t, err)
	ids := []string{"finished-long-ago", "another"}
	for _, id := range ids {
		require.NoError(t, fx.q.Forget(fx.ctx, id))
	}
	page, err := fx.q.Events(fx.ctx, first.Next, 0)
	require.NoError(t, err)
	require.Len(t, page.List, len(ids))
	for i, id := range ids {
		require.Equal(t, faas.JobDeleted, page.List[i].Kind)
		require.Equal(t, id, page.List[i].JobID)
	}
}

// testLiveLogs: a running attempt's lines are kept and published, fenced
// by the lease, deduplicated by offset, bounded, and gone with the job.
func testLiveLogs(t *testing.T, fx *fixture) {
	fx.users("ann")
	ctx, q := fx.ctx, fx.q
	line := func(off int, stream, text string) faas.LogLine {
		return faas.LogLine{Offset: off, Stream: stream, Line: text}
	}
	fx.submit("ann")
	j := fx.mustNext("w")
	l := lease(j)
	start, err := q.Events(ctx, 0, 0)
	require.NoError(t, err)

	require.NoError(t, q.AppendLogs(ctx, "w", l, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b")}))
	// A retried batch adds only what is new.
	require.NoError(t, q.AppendLogs(ctx, "w", l, []faas.LogLine{line(1, "warn", "b"), line(2, "error", "c")}))
	got, running, err := q.Logs(ctx, j.ID, 0)
	require.NoError(t, err)
	require.True(t, running)
	require.Equal(t, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b"), line(2, "error", "c")}, got)
	got, _, err = q.Logs(ctx, j.ID, 2)
	require.NoError(t, err)
	require.Equal(t, []faas.LogLine{line(2, "error", "c")}, got)

	page, err := q.Events(ctx, start.Next, time.Second)
	require.NoError(t, err)
	require.Len(t, page.List, 2)
	require.Equal(t, faas.JobLogs, page.List[0].Kind)
	require.Equal(t, []faas.LogLine{line(0, "log", "a"), line(1, "warn", "b")}, page.List[0].Lines)
	require.Equal(t, []faas.LogLine{line(2, "error", "c")}, page.List[1].Lines)

	// Only the lease holder writes: another worker, or a stale attempt,
	// is refused.
	requireCode(t, q.AppendLogs(ctx, "x", l, []faas.LogLine{line(3, "log", "x")}), faas.Conflict)
	requireCode(t, q.AppendLogs(ctx, "w", faas.Lease{ID: j.ID, Attempt: j.Attempt - 1}, []faas.LogLine{line(3, "log", "x")}), faas.Conflict)

	// A batch too large for an event is announced without lines; past
	// the cap, lines are dropped.
	big := strings.Repeat("x", bigLine)
	require.NoError(t, q.AppendLogs(ctx, "w", l, []faas.LogLine{line(3, "log", big), line(4, "log", big), line(5, "log", "y")}))
	page, err = q.Events(ctx, page.Next, time.Second)
	require.NoError(t, err)
	require.Len(t, page.List, 1)
	require.Equal(t, faas.JobLogs, page.List[0].Kind)
	require.Nil(t, page.List[0].Lines)
	got, _, err = q.Logs(ctx, j.ID, 3)
	require.NoError(t, err)
	require.Equal(t, []faas.LogLine{line(3, "log", big)}, got)

	// A new attempt prints from line 0 again; the old one is fenced.
	require.NoError(t, q.Release(ctx, l, "stopping"))
	j2 := fx.mustNext("w2")
	got, running, err = q.Logs(ctx, j.ID, 0)
	require.NoError(t, err)
	require.True(t, running)
	require.Empty(t, got)
	requireCode(t, q.AppendLogs(ctx, "w", l, []faas.LogLine{line(0, "log", "stale")}), faas.Conflict)

	// Finished, the job's lines are the Store's business.
	require.NoError(t, fx.complete(j2))
	got, running, err = q.Logs(ctx, j.ID, 0)
	require.NoError(t, err)
	require.False(t, running)
	require.Empty(t, got)
}

// testStats: the counts follow the jobs, and a completion is counted,
// timed and rated from the first.
func testStats(t *testing.T, fx *fixture) {
	fx.users("ann")
	require.Equal(t, faas.Stats{}, fx.stats(), "a fresh queue")
	fx.submit("ann")
	fx.submit("ann")
	j := fx.mustNext("w")
	st := fx.stats()
	require.Equal(t, 1, st.Queued)
	require.Equal(t, 1, st.Running)
	require.Equal(t, 1, st.Workers)
	require.Zero(t, st.Held)

	// The lease outlasts the run: the average is of the run, which is
	// what a worker's slot is busy with.
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, fx.complete(j))
	st = fx.stats()
	require.Equal(t, faas.Stats{Queued: 1, Completed: 1, Workers: 1, AvgDuration: st.AvgDuration, JobsPerSec: st.JobsPerSec}, st)
	require.Equal(t, time.Millisecond, st.AvgDuration, "the execution time the worker measured, not the lease's age")
	require.Positive(t, st.JobsPerSec, "the rate is known from the first completion on")
}

// testSubmitChild: a worker holding a job's lease submits jobs as that
// job's owner, whatever the request says, and nothing else: another
// worker, an old attempt, a job not running, another user's function name
// are refused and leave no job; children count against their owner's
// pending limit.
func testSubmitChild(t *testing.T, fx *fixture) {
	fx.users("ann", "bob")
	fx.submit("ann")
	parent := fx.mustNext("w1")
	l := lease(parent)
	child := func(worker string, l faas.Lease, function string) (faas.Job, error) {
		return fx.q.SubmitChild(fx.ctx, worker, l, faas.Job{ID: uuid.NewString(), Owner: "bob", Function: function, Args: json.RawMessage(`[2]`)})
	}
	c, err := child("w1", l, "f")
	require.NoError(t, err)
	require.Equal(t, "ann", c.Owner, "the owner is the leased job's, not the request's")
	require.Equal(t, parent.ID, c.Parent)
	require.Equal(t, faas.TriggerJob, c.Trigger)
	require.Equal(t, faas.Queued, c.State)

	for _, tc := range []struct {
		name     string
		worker   string
		lease    faas.Lease
		function string
		want     faas.Code
	}{
		{"another worker", "w2", l, "f", faas.Conflict},
		{"an old attempt", "w1", faas.Lease{ID: parent.ID, Attempt: parent.Attempt - 1}, "f", faas.Conflict},
		{"a queued job", "w1", faas.Lease{ID: c.ID, Attempt: 1}, "f", faas.Conflict},
		{"an unknown job", "w1", faas.Lease{ID: uuid.NewString(), Attempt: 1}, "f", faas.Conflict},
		{"another user's function", "w1", l, "bob/f", faas.Invalid},
		{"not a name", "w1", l, "..", faas.Invalid},
		{"an unknown function", "w1", l, "nope", faas.NotFound},
	} {
		_, err := child(tc.worker, tc.lease, tc.function)
		requireCode(t, err, tc.want)
	}
	stored, err := fx.s.Job(fx.ctx, parent.ID)
	require.NoError(t, err)
	require.Equal(t, []string{c.ID}, stored.Children, "refused submissions leave no job")
	bobs, err := fx.s.Jobs(fx.ctx, "bob", faas.JobPage{})
	require.NoError(t, err)
	require.Empty(t, bobs)

	for range MaxPendingPerUser - 2 {
		_, err := child("w1", l, "f")
		require.NoError(t, err)
	}
	_, err = child("w1", l, "f")
	requireCode(t, err, faas.TooMany)
}
