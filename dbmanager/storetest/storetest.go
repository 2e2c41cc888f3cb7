// Package storetest is the conformance suite every faas.Store passes: the
// embedded SQLite store, the MongoDB store and the DB manager's proxy. It
// pins down the contract written on faas.Store, including what a retried
// request answers, so that a caller cannot tell the backends apart.
package storetest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// timeout bounds each subtest, including the concurrent ones.
const timeout = 30 * time.Second

// Run runs the suite. open returns a store for one subtest; it may hand
// every subtest the same store, since they use names of their own, and
// must arrange to close it with t.Cleanup. The store must not be used by
// anything else while Run runs: PurgeJobs, which acts on every job in the
// store, is checked alone once the concurrent subtests are done.
func Run(t *testing.T, open func(t *testing.T) faas.Store) {
	// The parallel subtests finish before t.Run returns.
	t.Run("Concurrent", func(t *testing.T) { runConcurrent(t, open) })
	t.Run("PurgeJobs", func(t *testing.T) { testPurgeJobs(t, open(t)) })
	t.Run("UserCount", func(t *testing.T) { testUserCount(t, open(t)) })
	// FailedJobs spans every user, so it too runs alone: then the newest
	// failed jobs in the store are its own.
	t.Run("FailedJobs", func(t *testing.T) { testFailedJobs(t, open(t)) })
	t.Run("FinishedCounts", func(t *testing.T) { testFinishedCounts(t, open(t)) })
}

func runConcurrent(t *testing.T, open func(t *testing.T) faas.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s faas.Store)
	}{
		{"Ping", testPing},
		{"Users", testUsers},
		{"SetTokenHash", testSetTokenHash},
		{"InvalidInput", testInvalidInput},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"Functions", testFunctions},
		{"CreateJob", testCreateJob},
		{"DeleteJob", testDeleteJob},
		{"StartJob", testStartJob},
		{"CreateJobLeased", testCreateJobLeased},
		{"RequeueJob", testRequeueJob},
		{"CompleteJob", testCompleteJob},
		{"CompleteJobFailed", testCompleteJobFailed},
		{"TransitionsAnswerTheRecord", testTransitionsAnswerTheRecord},
		{"CreateJobs", testCreateJobs},
		{"StartJobs", testStartJobs},
		{"CompleteJobs", testCompleteJobs},
		{"StaleAttemptIsFenced", testStaleAttemptIsFenced},
		{"ConcurrentCompletionBillsOnce", testConcurrentCompletionBillsOnce},
		{"ConcurrentStartHasOneWinner", testConcurrentStartHasOneWinner},
		{"BilledTimeIsSumOfJobs", testBilledTimeIsSumOfJobs},
		{"PendingJobs", testPendingJobs},
		{"FunctionPages", testFunctionPages},
		{"JobPages", testJobPages},
		{"Usage", testUsage},
		{"FunctionVersions", testFunctionVersions},
		{"FunctionSettings", testFunctionSettings},
		{"DeletedFunctionFailsQueuedJobs", testDeletedFunctionFailsQueuedJobs},
		{"Hooks", testHooks},
		{"HooksGoWithTheirOwner", testHooksGoWithTheirOwner},
		{"ParentAndChildren", testParentAndChildren},
		{"Calls", testCalls},
		{"Schedules", testSchedules},
		{"SchedulesGoWithTheirOwner", testSchedulesGoWithTheirOwner},
		{"Subscriptions", testSubscriptions},
		{"SubscriptionsGoWithTheirOwner", testSubscriptionsGoWithTheirOwner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var seq atomic.Int64

// unique returns a name no other subtest (or earlier run against the same
// database) uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// requireCode fails unless err carries code.
func requireCode(t *testing.T, err error, code faas.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, faas.ErrorCode(err), "error %v", err)
}

// requireStoredTime checks the precision promise: UTC, microseconds.
func requireStoredTime(t *testing.T, tm time.Time) {
	t.Helper()
	require.False(t, tm.IsZero())
	require.Equal(t, time.UTC, tm.Location())
	require.Equal(t, tm, tm.Truncate(time.Microsecond))
	require.WithinDuration(t, time.Now(), tm, time.Minute)
}

// requireBilled checks a user's billed total.
func requireBilled(t *testing.T, ctx context.Context, s faas.Store, user string, want time.Duration) {
	t.Helper()
	billed, err := s.BilledTime(ctx, user)
	require.NoError(t, err)
	require.Equal(t, want, billed)
}

// fixture is a user with one function.
type fixture struct {
	user faas.User
	fn   faas.Function
}

func newFixture(t *testing.T, ctx context.Context, s faas.Store) fixture {
	t.Helper()
	u := faas.User{Name: unique("user"), TokenHash: unique("hash")}
	require.NoError(t, s.CreateUser(ctx, u))
	f, created, err := s.PutFunction(ctx, faas.Function{Owner: u.Name, Name: "add", Source: "function add(a,b){return a+b}", Timeout: time.Second})
	require.NoError(t, err)
	require.True(t, created)
	return fixture{user: u, fn: f}
}

func (fx fixture) job(t *testing.T, ctx context.Context, s faas.Store) faas.Job {
	t.Helper()
	j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Args: json.RawMessage(`[4,5]`)})
	require.NoError(t, err)
	return j
}

// running creates a job and starts attempt 1 on worker w1.
func (fx fixture) running(t *testing.T, ctx context.Context, s faas.Store) faas.Job {
	t.Helper()
	j, err := s.StartJob(ctx, fx.job(t, ctx, s).ID, 1, "w1")
	require.NoError(t, err)
	return j
}

// completion reports attempt j.Attempt of j a success that printed one
// line with console.error, whose stream the Store must keep.
func completion(j faas.Job, d time.Duration) faas.Completion {
	return faas.Completion{JobID: j.ID, Attempt: j.Attempt, Result: json.RawMessage(`9`), Duration: d, Logs: "log line\n", Streams: "e"}
}

func testPing(t *testing.T, s faas.Store) {
	require.NoError(t, s.Ping(testContext(t)))
}

func testUsers(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	u := faas.User{Name: unique("user"), TokenHash: unique("hash")}
	require.NoError(t, s.CreateUser(ctx, u))

	got, err := s.User(ctx, u.Name)
	require.NoError(t, err)
	require.Equal(t, u.Name, got.Name)
	require.Equal(t, u.TokenHash, got.TokenHash)
	requireStoredTime(t, got.Created)

	byToken, err := s.UserByToken(ctx, u.TokenHash)
	require.NoError(t, err)
	require.Equal(t, got, byToken)

	// A retried registration is a no-op; another token is a conflict and
	// does not overwrite the user.
	require.NoError(t, s.CreateUser(ctx, u))
	requireCode(t, s.CreateUser(ctx, faas.User{Name: u.Name, TokenHash: unique("hash")}), faas.Conflict)
	again, err := s.User(ctx, u.Name)
	require.NoError(t, err)
	require.Equal(t, got, again)

	// Another name with a token already in use is refused too.
	requireCode(t, s.CreateUser(ctx, faas.User{Name: unique("user"), TokenHash: u.TokenHash}), faas.Conflict)

	requireBilled(t, ctx, s, u.Name, 0)

	_, err = s.User(ctx, unique("nobody"))
	requireCode(t, err, faas.NotFound)
	_, err = s.UserByToken(ctx, unique("nohash"))
	requireCode(t, err, faas.NotFound)
	_, err = s.BilledTime(ctx, unique("nobody"))
	requireCode(t, err, faas.NotFound)
	requireCode(t, s.DeleteUser(ctx, unique("nobody")), faas.NotFound)
}

// testSetTokenHash replaces a token: the old hash finds no one, the new
// one the user, a retry changes nothing, and another user's hash is
// refused without a change.
func testSetTokenHash(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	u := faas.User{Name: unique("user"), TokenHash: unique("hash")}
	require.NoError(t, s.CreateUser(ctx, u))
	before, err := s.User(ctx, u.Name)
	require.NoError(t, err)

	rotated := unique("hash")
	require.NoError(t, s.SetTokenHash(ctx, u.Name, rotated))
	require.NoError(t, s.SetTokenHash(ctx, u.Name, rotated), "a retry")
	_, err = s.UserByToken(ctx, u.TokenHash)
	requireCode(t, err, faas.NotFound)
	got, err := s.UserByToken(ctx, rotated)
	require.NoError(t, err)
	before.TokenHash = rotated
	require.Equal(t, before, got, "only the hash changes")

	other := faas.User{Name: unique("user"), TokenHash: unique("hash")}
	require.NoError(t, s.CreateUser(ctx, other))
	requireCode(t, s.SetTokenHash(ctx, u.Name, other.TokenHash), faas.Conflict)
	got, err = s.User(ctx, u.Name)
	require.NoError(t, err)
	require.Equal(t, rotated, got.TokenHash)

	requireCode(t, s.SetTokenHash(ctx, unique("nobody"), unique("hash")), faas.NotFound)
	requireCode(t, s.SetTokenHash(ctx, u.Name, ""), faas.Invalid)
}

func testInvalidInput(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.running(t, ctx, s)
	for name, err := range map[string]error{
		"user without name":  s.CreateUser(ctx, faas.User{TokenHash: "h"}),
		"user without token": s.CreateUser(ctx, faas.User{Name: unique("user")}),
		"function without name": func() error {
			_, _, err := s.PutFunction(ctx, faas.Function{Owner: fx.user.Name, Source: "x"})
			return err
		}(),
		"job without id": func() error {
			_, err := s.CreateJob(ctx, faas.Job{Owner: fx.user.Name, Function: fx.fn.Name})
			return err
		}(),
		"start attempt 0": func() error {
			_, err := s.StartJob(ctx, j.ID, 0, "w1")
			return err
		}(),
		"start without worker": func() error {
			_, err := s.StartJob(ctx, j.ID, 1, "")
			return err
		}(),
		"requeue without reason": func() error {
			_, err := s.RequeueJob(ctx, j.ID, 1, nil)
			return err
		}(),
		"complete with result and error": func() error {
			c := completion(j, time.Second)
			c.Error = faas.Errorf(faas.FunctionError, "boom")
			_, err := s.CompleteJob(ctx, c)
			return err
		}(),
		"complete with negative duration": func() error {
			_, err := s.CompleteJob(ctx, completion(j, -time.Second))
			return err
		}(),
	} {
		require.Equal(t, faas.Invalid, faas.ErrorCode(err), "%s: %v", name, err)
	}
	// None of them changed the job.
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)
}

func testDeleteUserCascades(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	queued := fx.job(t, ctx, s)
	done := fx.running(t, ctx, s)
	_, err := s.CompleteJob(ctx, completion(done, 3*time.Second))
	require.NoError(t, err)

	require.NoError(t, s.DeleteUser(ctx, fx.user.Name))
	_, err = s.User(ctx, fx.user.Name)
	requireCode(t, err, faas.NotFound)
	_, err = s.UserByToken(ctx, fx.user.TokenHash)
	requireCode(t, err, faas.NotFound)
	_, err = s.Function(ctx, fx.user.Name, fx.fn.Name)
	requireCode(t, err, faas.NotFound)
	for _, id := range []string{queued.ID, done.ID} {
		_, err = s.Job(ctx, id)
		requireCode(t, err, faas.NotFound)
	}
	_, err = s.BilledTime(ctx, fx.user.Name)
	requireCode(t, err, faas.NotFound)
	for _, j := range Pending(t, ctx, s, faas.MaxPendingPage) {
		require.NotEqual(t, queued.ID, j.ID)
	}
	requireCode(t, s.DeleteUser(ctx, fx.user.Name), faas.NotFound)

	// A new user of the same name starts from nothing.
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: fx.user.Name, TokenHash: unique("hash")}))
	requireBilled(t, ctx, s, fx.user.Name, 0)
	fns, err := s.Functions(ctx, fx.user.Name, faas.FunctionPage{})
	require.NoError(t, err)
	require.Empty(t, fns)
}

func testFunctions(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	require.Positive(t, fx.fn.Version)
	require.Equal(t, owner, fx.fn.Owner)
	requireStoredTime(t, fx.fn.Updated)
	require.Equal(t, fx.fn.Updated, fx.fn.Created, "a new function is created when first updated")

	got, err := s.Function(ctx, owner, "add")
	require.NoError(t, err)
	require.Equal(t, fx.fn, got)

	// The same upload again (a retry) changes nothing.
	same, created, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: fx.fn.Source, Timeout: fx.fn.Timeout})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, fx.fn, same)

	// A replacement raises the version, however quickly it follows.
	v2, created, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a+b", Timeout: 5 * time.Second, MemoryMB: 64})
	require.NoError(t, err)
	require.False(t, created)
	require.Greater(t, v2.Version, fx.fn.Version)
	require.Equal(t, 64, v2.MemoryMB)
	require.Equal(t, fx.fn.Created, v2.Created, "a replacement keeps the creation time")
	latest := v2
	for i := range 5 {
		next, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: fmt.Sprintf("(a,b)=>a+b+%d", i)})
		require.NoError(t, err)
		require.Greater(t, next.Version, latest.Version)
		latest = next
	}
	v2, _, err = s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a+b", Timeout: 5 * time.Second, MemoryMB: 64})
	require.NoError(t, err)
	require.Greater(t, v2.Version, latest.Version)
	got, err = s.Function(ctx, owner, "add")
	require.NoError(t, err)
	require.Equal(t, v2, got)

	for _, name := range []string{"zeta", "beta"} {
		_, created, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: name, Source: "x=>x"})
		require.NoError(t, err)
		require.True(t, created)
	}
	fns, err := s.Functions(ctx, owner, faas.FunctionPage{})
	require.NoError(t, err)
	var names []string
	for _, f := range fns {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"add", "beta", "zeta"}, names)
	require.Equal(t, v2, fns[0])

	// A function deleted and created again, even with the same source,
	// never reuses a version: workers cache compiled code by version.
	beta, err := s.Function(ctx, owner, "beta")
	require.NoError(t, err)
	beta, _, err = s.PutFunction(ctx, faas.Function{Owner: owner, Name: "beta", Source: "x=>x+1"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteFunction(ctx, owner, "beta"))
	requireCode(t, s.DeleteFunction(ctx, owner, "beta"), faas.NotFound)
	_, err = s.Function(ctx, owner, "beta")
	requireCode(t, err, faas.NotFound)
	recreated, created, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "beta", Source: "x=>x+1"})
	require.NoError(t, err)
	require.True(t, created, "a function created again after deletion")
	require.Greater(t, recreated.Version, beta.Version)
	require.True(t, recreated.Created.After(beta.Created), "a function created again is new")

	// Another user sees none of it.
	other := newFixture(t, ctx, s)
	_, err = s.Function(ctx, other.user.Name, "zeta")
	requireCode(t, err, faas.NotFound)
	fns, err = s.Functions(ctx, unique("nobody"), faas.FunctionPage{})
	require.NoError(t, err)
	require.Empty(t, fns)

	_, _, err = s.PutFunction(ctx, faas.Function{Owner: "ghost-" + owner, Name: "f", Source: "x=>x"})
	requireCode(t, err, faas.NotFound)
	require.Contains(t, err.Error(), "user ghost-"+owner+" not found")
}

func testCreateJob(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	v2, _, err := s.PutFunction(ctx, faas.Function{Owner: fx.user.Name, Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(t, err)

	created := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	in := faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: "add", Args: json.RawMessage(`[1,"two",{"three":3}]`),
		Created: created, State: faas.Succeeded, Worker: "w",
		Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	j, err := s.CreateJob(ctx, in)
	require.NoError(t, err)
	require.Equal(t, in.Trace, j.Trace)
	require.Equal(t, faas.Queued, j.State)
	require.Zero(t, j.Attempt)
	require.Empty(t, j.Worker)
	require.Equal(t, v2.Version, j.Version)
	require.Equal(t, created, j.Created)
	require.JSONEq(t, string(in.Args), string(j.Args))

	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)

	// A retried submission returns the job as it is.
	started, err := s.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
	require.Equal(t, in.Trace, started.Trace, "the worker joins the submission's trace")
	again, err := s.CreateJob(ctx, faas.Job{ID: j.ID, Owner: fx.user.Name, Function: "add"})
	require.NoError(t, err)
	require.Equal(t, started, again)

	other := newFixture(t, ctx, s)
	_, err = s.CreateJob(ctx, faas.Job{ID: j.ID, Owner: other.user.Name, Function: "add"})
	requireCode(t, err, faas.Conflict)

	// A zero creation time means now; no arguments mean none.
	now, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: "add"})
	require.NoError(t, err)
	requireStoredTime(t, now.Created)
	require.JSONEq(t, `[]`, string(now.Args))

	_, err = s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: "missing"})
	requireCode(t, err, faas.NotFound)
	_, err = s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: unique("nobody"), Function: "add"})
	requireCode(t, err, faas.NotFound)
	_, err = s.Job(ctx, unique("job"))
	requireCode(t, err, faas.NotFound)
}

func testDeleteJob(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.job(t, ctx, s)
	require.NoError(t, s.DeleteJob(ctx, j.ID))
	_, err := s.Job(ctx, j.ID)
	requireCode(t, err, faas.NotFound)
	requireCode(t, s.DeleteJob(ctx, j.ID), faas.NotFound)
	// A deleted job is never run.
	_, err = s.StartJob(ctx, j.ID, 1, "w1")
	requireCode(t, err, faas.NotFound)
	_, err = s.RequeueJob(ctx, j.ID, 1, faas.Errorf(faas.Timeout, "lease expired"))
	requireCode(t, err, faas.NotFound)
	_, err = s.CompleteJob(ctx, completion(faas.Job{ID: j.ID, Attempt: 1}, time.Second))
	requireCode(t, err, faas.NotFound)
}

// testCreateJobLeased creates a job running at attempt 1 by a worker, as
// the queue does for a worker that waits: the job is then as StartJob
// would have left it, fenced and completed the same way. Any other
// running, attempt or worker asked for is ignored, as CreateJob always
// did.
func testCreateJobLeased(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	started := time.Date(2025, 1, 2, 3, 4, 5, 654321000, time.UTC)
	j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Args: json.RawMessage(`[4,5]`),
		State: faas.Running, Attempt: 1, Worker: "w1", Started: started})
	require.NoError(t, err)
	require.Equal(t, faas.Running, j.State)
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, "w1", j.Worker)
	require.Equal(t, started, j.Started)
	require.Equal(t, fx.fn.Version, j.Version)
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)

	// Leased already: no other lease, and a retried creation answers it.
	_, err = s.StartJob(ctx, j.ID, 1, "w2")
	requireCode(t, err, faas.Conflict)
	again, err := s.CreateJob(ctx, faas.Job{ID: j.ID, Owner: fx.user.Name, Function: fx.fn.Name, State: faas.Running, Attempt: 1, Worker: "w1"})
	require.NoError(t, err)
	require.Equal(t, j, again)
	pending := Pending(t, ctx, s, faas.MaxPendingPage)
	require.True(t, slices.ContainsFunc(pending, func(p faas.Job) bool { return p.ID == j.ID && p.State == faas.Running && p.Worker == "w1" }),
		"a job created leased is pending, running, for a restarted queue")

	done, err := s.CompleteJob(ctx, completion(j, time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, done.State)
	billed, err := s.BilledTime(ctx, fx.user.Name)
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, billed)

	// Not quite a lease: queued as ever, at the attempt given.
	for _, in := range []faas.Job{
		{State: faas.Running, Attempt: 2, Worker: "w1"},
		{State: faas.Running, Attempt: 1},
		{State: faas.Queued, Attempt: 1, Worker: "w1"},
		{State: faas.Running, Attempt: -1, Worker: "w1"},
	} {
		in.ID, in.Owner, in.Function = unique("job"), fx.user.Name, fx.fn.Name
		q, err := s.CreateJob(ctx, in)
		require.NoError(t, err)
		require.Equal(t, faas.Queued, q.State, "%+v", in)
		require.Equal(t, max(in.Attempt, 0), q.Attempt)
		require.Empty(t, q.Worker)
		require.True(t, q.Started.IsZero())
	}

	// Handed over at a version: created at that version only. A queued
	// job's version is the Store's to name, whatever it asks.
	at := faas.Job{Owner: fx.user.Name, Function: fx.fn.Name, State: faas.Running, Attempt: 1, Worker: "w1", Version: fx.fn.Version}
	at.ID = unique("job")
	j, err = s.CreateJob(ctx, at)
	require.NoError(t, err)
	require.Equal(t, fx.fn.Version, j.Version)
	moved := at
	moved.ID, moved.Version = unique("job"), fx.fn.Version+1
	_, err = s.CreateJob(ctx, moved)
	requireCode(t, err, faas.Conflict)
	_, err = s.Job(ctx, moved.ID)
	requireCode(t, err, faas.NotFound)
	res, err := s.CreateJobs(ctx, []faas.Job{moved})
	require.NoError(t, err)
	require.Equal(t, faas.Conflict, res[0].Error.Code, "in a batch too")
	queued := moved
	queued.State, queued.Attempt, queued.Worker = "", 0, ""
	q, err := s.CreateJob(ctx, queued)
	require.NoError(t, err)
	require.Equal(t, fx.fn.Version, q.Version)
	gone := at
	gone.ID, gone.Function = unique("job"), "missing"
	_, err = s.CreateJob(ctx, gone)
	requireCode(t, err, faas.NotFound)

	// Queued at attempt 1 (one handed over and revoked): it goes on from
	// attempt 2, so the revoked one stays fenced off.
	again1, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Attempt: 1})
	require.NoError(t, err)
	require.Equal(t, faas.Queued, again1.State)
	require.Equal(t, 1, again1.Attempt)
	require.Empty(t, again1.Lost)
	got, err = s.Job(ctx, again1.ID)
	require.NoError(t, err)
	require.Equal(t, again1, got)
	_, err = s.StartJob(ctx, again1.ID, 1, "w1")
	requireCode(t, err, faas.Conflict)
	second, err := s.StartJob(ctx, again1.ID, 2, "w1")
	require.NoError(t, err)
	_, err = s.CompleteJob(ctx, faas.Completion{JobID: again1.ID, Attempt: 1, Result: json.RawMessage("1")})
	requireCode(t, err, faas.Conflict)
	done, err = s.CompleteJob(ctx, completion(second, time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, 2, done.Attempt)
	require.Empty(t, done.Lost)
}

func testStartJob(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.job(t, ctx, s)

	_, err := s.StartJob(ctx, j.ID, 2, "w1")
	requireCode(t, err, faas.Conflict)

	started, err := s.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
	require.Equal(t, faas.Running, started.State)
	require.Equal(t, 1, started.Attempt)
	require.Equal(t, "w1", started.Worker)
	require.JSONEq(t, `[4,5]`, string(started.Args))
	requireStoredTime(t, started.Started)
	want := j
	want.State, want.Attempt, want.Worker, want.Started = faas.Running, 1, "w1", started.Started
	require.Equal(t, want, started)

	// The same worker asking again is a retry; anyone else is refused.
	again, err := s.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
	require.Equal(t, started, again)
	for _, tc := range []struct {
		attempt int
		worker  string
	}{{1, "w2"}, {2, "w1"}, {2, "w2"}, {3, "w1"}} {
		_, err = s.StartJob(ctx, j.ID, tc.attempt, tc.worker)
		requireCode(t, err, faas.Conflict)
	}
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, started, got)

	// A finished job cannot be started again.
	_, err = s.CompleteJob(ctx, completion(started, time.Millisecond))
	require.NoError(t, err)
	_, err = s.StartJob(ctx, j.ID, 2, "w1")
	requireCode(t, err, faas.Conflict)
	_, err = s.StartJob(ctx, j.ID, 1, "w1")
	requireCode(t, err, faas.Conflict)
}

func testRequeueJob(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.running(t, ctx, s)
	lost1 := faas.Errorf(faas.Timeout, "lease of w1 expired")

	_, err := s.RequeueJob(ctx, j.ID, 2, lost1)
	requireCode(t, err, faas.Conflict)

	requeued, err := s.RequeueJob(ctx, j.ID, 1, lost1)
	require.NoError(t, err)
	require.Equal(t, faas.Queued, requeued.State)
	require.Equal(t, 1, requeued.Attempt)
	require.Empty(t, requeued.Worker)
	require.Equal(t, []*faas.Error{lost1}, requeued.Lost)

	again, err := s.RequeueJob(ctx, j.ID, 1, lost1)
	require.NoError(t, err)
	require.Equal(t, requeued, again)
	_, err = s.RequeueJob(ctx, j.ID, 1, faas.Errorf(faas.Unavailable, "another reason"))
	requireCode(t, err, faas.Conflict)

	// The next attempt runs elsewhere and can be lost too, in order.
	restarted, err := s.StartJob(ctx, j.ID, 2, "w2")
	require.NoError(t, err)
	require.Equal(t, []*faas.Error{lost1}, restarted.Lost)
	lost2 := faas.Errorf(faas.Unavailable, "worker w2 drained")
	requeued, err = s.RequeueJob(ctx, j.ID, 2, lost2)
	require.NoError(t, err)
	require.Equal(t, []*faas.Error{lost1, lost2}, requeued.Lost)
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, requeued, got)

	// A queued or finished job is not requeued.
	_, err = s.RequeueJob(ctx, j.ID, 3, lost1)
	requireCode(t, err, faas.Conflict)
	third, err := s.StartJob(ctx, j.ID, 3, "w3")
	require.NoError(t, err)
	requireStored(t, ctx, s, third)
	failed := completion(third, time.Second)
	failed.Result, failed.Error = nil, faas.Errorf(faas.Timeout, "ran out of time")
	done, err := s.CompleteJob(ctx, failed)
	require.NoError(t, err)
	requireStored(t, ctx, s, done)
	_, err = s.RequeueJob(ctx, j.ID, 3, lost1)
	requireCode(t, err, faas.Conflict)
}

// requireStored checks that the job a write answered is the job as
// stored, every field of it: a store may make the answer from what it
// wrote rather than read the row back.
func requireStored(t *testing.T, ctx context.Context, s faas.Store, j faas.Job) {
	t.Helper()
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, got, j)
}

func testCompleteJob(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	queued := fx.job(t, ctx, s)
	_, err := s.CompleteJob(ctx, completion(faas.Job{ID: queued.ID, Attempt: 1}, time.Second))
	requireCode(t, err, faas.Conflict)

	j := fx.running(t, ctx, s)
	d := time.Hour + 2*time.Minute + 3*time.Second + 456789*time.Microsecond
	done, err := s.CompleteJob(ctx, completion(j, d))
	require.NoError(t, err)
	require.Equal(t, faas.Succeeded, done.State)
	require.JSONEq(t, `9`, string(done.Result))
	require.Nil(t, done.Error)
	require.Equal(t, d, done.Duration)
	require.Equal(t, d, done.Billed)
	require.Equal(t, "log line\n", done.Logs)
	require.Equal(t, "e", done.Streams)
	requireStoredTime(t, done.Finished)
	require.False(t, done.Finished.Before(done.Started))
	want := j
	want.State, want.Result, want.Duration, want.Billed, want.Logs, want.Finished = faas.Succeeded, done.Result, d, d, "log line\n", done.Finished
	want.Streams = "e"
	require.Equal(t, want, done)

	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, done, got)
	requireBilled(t, ctx, s, fx.user.Name, d)

	// A retry, even with another outcome, returns the job unchanged and
	// bills nothing more.
	retry := completion(j, 2*d)
	retry.Result = json.RawMessage(`10`)
	again, err := s.CompleteJob(ctx, retry)
	require.NoError(t, err)
	require.Equal(t, done, again)
	requireBilled(t, ctx, s, fx.user.Name, d)

	_, err = s.CompleteJob(ctx, completion(faas.Job{ID: j.ID, Attempt: 2}, time.Second))
	requireCode(t, err, faas.Conflict)
}

func testCompleteJobFailed(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.running(t, ctx, s)
	c := faas.Completion{JobID: j.ID, Attempt: 1, Error: faas.Errorf(faas.FunctionError, "TypeError: x is not a function at add:1:5"), Duration: 1500 * time.Microsecond}
	done, err := s.CompleteJob(ctx, c)
	require.NoError(t, err)
	require.Equal(t, faas.Failed, done.State)
	require.Equal(t, c.Error, done.Error)
	require.Nil(t, done.Result)
	require.Equal(t, c.Duration, done.Billed)
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, done, got)
	requireBilled(t, ctx, s, fx.user.Name, c.Duration)
}

// testTransitionsAnswerTheRecord: every change of a job answers the job
// exactly as Job reads it afterwards, since the JQ manager answers status
// reads (Status) and the frontends cache finished jobs from these
// answers instead of reading the Store.
func testTransitionsAnswerTheRecord(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	requireRecord := func(answered faas.Job, err error) faas.Job {
		t.Helper()
		require.NoError(t, err)
		stored, err := s.Job(ctx, answered.ID)
		require.NoError(t, err)
		require.Equal(t, stored, answered)
		return answered
	}
	j := requireRecord(s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name, Args: json.RawMessage(`[4,5]`),
		Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Trigger: faas.TriggerWebhook}))
	j = requireRecord(s.StartJob(ctx, j.ID, 1, "w1"))
	j = requireRecord(s.RequeueJob(ctx, j.ID, 1, faas.Errorf(faas.Lost, "worker w1 vanished")))
	j = requireRecord(s.StartJob(ctx, j.ID, 2, "w2"))
	requireRecord(s.CompleteJob(ctx, completion(j, 3*time.Millisecond)))

	failed := fx.running(t, ctx, s)
	requireRecord(s.CompleteJob(ctx, faas.Completion{JobID: failed.ID, Attempt: failed.Attempt, Error: faas.Errorf(faas.FunctionError, "boom"), Duration: time.Millisecond}))
}

func testStaleAttemptIsFenced(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	first := fx.running(t, ctx, s)
	_, err := s.RequeueJob(ctx, first.ID, 1, faas.Errorf(faas.Timeout, "lease expired"))
	require.NoError(t, err)
	second, err := s.StartJob(ctx, first.ID, 2, "w2")
	require.NoError(t, err)

	// The worker that lost its lease reports late: refused, not billed.
	_, err = s.CompleteJob(ctx, completion(first, time.Minute))
	requireCode(t, err, faas.Conflict)
	_, err = s.RequeueJob(ctx, first.ID, 1, faas.Errorf(faas.Timeout, "lease expired"))
	requireCode(t, err, faas.Conflict)
	requireBilled(t, ctx, s, fx.user.Name, 0)

	done, err := s.CompleteJob(ctx, completion(second, time.Second))
	require.NoError(t, err)
	require.Equal(t, 2, done.Attempt)
	require.Equal(t, "w2", done.Worker)
	_, err = s.CompleteJob(ctx, completion(first, time.Minute))
	requireCode(t, err, faas.Conflict)
	requireBilled(t, ctx, s, fx.user.Name, time.Second)
}

func testConcurrentCompletionBillsOnce(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.running(t, ctx, s)
	const n = 50
	d := 1234567 * time.Microsecond
	results := make([]faas.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = s.CompleteJob(ctx, completion(j, d)) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, results[0], results[i])
	}
	require.Equal(t, faas.Succeeded, results[0].State)
	requireBilled(t, ctx, s, fx.user.Name, d)
}

func testConcurrentStartHasOneWinner(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.job(t, ctx, s)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.StartJob(ctx, j.ID, 1, fmt.Sprintf("w%d", i)) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "workers %d and %d both won", winner, i)
			winner = i
			continue
		}
		requireCode(t, err, faas.Conflict)
	}
	require.NotEqual(t, -1, winner, "nobody won")
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("w%d", winner), got.Worker)
	require.Equal(t, 1, got.Attempt)
}

func testBilledTimeIsSumOfJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	other := newFixture(t, ctx, s)
	var sum time.Duration
	var ids []string
	for i := range 12 {
		j := fx.running(t, ctx, s)
		c := completion(j, time.Duration(i+1)*1001*time.Microsecond)
		if i%3 == 0 {
			c.Result, c.Error = nil, faas.Errorf(faas.Timeout, "timed out")
		}
		done, err := s.CompleteJob(ctx, c)
		require.NoError(t, err)
		sum += done.Billed
		ids = append(ids, j.ID)
	}
	// Unfinished jobs and other users' jobs cost this user nothing.
	fx.job(t, ctx, s)
	fx.running(t, ctx, s)
	oj := other.running(t, ctx, s)
	_, err := s.CompleteJob(ctx, completion(oj, time.Hour))
	require.NoError(t, err)

	var fromJobs time.Duration
	for _, id := range ids {
		j, err := s.Job(ctx, id)
		require.NoError(t, err)
		fromJobs += j.Billed
	}
	require.Equal(t, sum, fromJobs)
	requireBilled(t, ctx, s, fx.user.Name, sum)

	// Deleting a finished job does not refund it.
	require.NoError(t, s.DeleteJob(ctx, ids[0]))
	requireBilled(t, ctx, s, fx.user.Name, sum)
}

func testPendingJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	other := newFixture(t, ctx, s)
	base := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	// Arguments of a megabyte each: a restarted queue must not have to
	// take them in, or a backlog of large jobs outgrows any one reply.
	large := json.RawMessage(`["` + strings.Repeat("x", 1<<20) + `"]`)
	var want []string
	created := map[string]time.Time{}
	for i, offset := range []int{3, 1, 4, 2, 0, 5} {
		owner := fx
		if i%2 == 1 {
			owner = other
		}
		j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: owner.user.Name, Function: "add", Args: large,
			Created: base.Add(time.Duration(offset) * time.Microsecond)})
		require.NoError(t, err)
		switch i {
		case 0:
			_, err = s.StartJob(ctx, j.ID, 1, "w1")
			require.NoError(t, err)
		case 1:
			started, err := s.StartJob(ctx, j.ID, 1, "w1")
			require.NoError(t, err)
			_, err = s.CompleteJob(ctx, completion(started, time.Millisecond))
			require.NoError(t, err)
			continue
		}
		want = append(want, j.ID)
		created[j.ID] = j.Created
	}
	slices.Sort(want)

	// Pages of two, of one, and one page for all: each job once, in
	// whatever order the store pages in.
	for _, limit := range []int{2, 1, faas.MaxPendingPage} {
		var got []string
		for _, j := range Pending(t, ctx, s, limit) {
			if j.Owner == fx.user.Name || j.Owner == other.user.Name {
				got = append(got, j.ID)
				require.Contains(t, []faas.JobState{faas.Queued, faas.Running}, j.State)
				require.True(t, created[j.ID].Equal(j.Created), "job %s created at %v, listed at %v", j.ID, created[j.ID], j.Created)
			}
		}
		slices.Sort(got)
		require.Equal(t, want, got, "limit %d", limit)
	}

	for _, limit := range []int{0, -1, faas.MaxPendingPage + 1} {
		_, err := s.PendingJobs(ctx, "", limit)
		requireCode(t, err, faas.Invalid)
	}
	_, err := s.PendingJobs(ctx, "not a cursor", 10)
	requireCode(t, err, faas.Invalid)
}

// Pending pages through s's pending jobs limit at a time and returns them
// all, checking that each page keeps within limit and carries none of
// the jobs' payloads.
func Pending(t *testing.T, ctx context.Context, s faas.Store, limit int) []faas.Job {
	t.Helper()
	var all []faas.Job
	seen := map[string]bool{}
	after := ""
	for {
		page, err := s.PendingJobs(ctx, after, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Jobs), limit)
		for _, j := range page.Jobs {
			require.False(t, seen[j.ID], "job %s on two pages", j.ID)
			seen[j.ID] = true
			require.Empty(t, j.Args, "job %s comes with its arguments", j.ID)
			require.Empty(t, j.Result, "job %s comes with its result", j.ID)
			require.Empty(t, j.Logs, "job %s comes with its logs", j.ID)
		}
		all = append(all, page.Jobs...)
		if page.Next == "" {
			return all
		}
		require.Len(t, page.Jobs, limit, "a page before the last is full")
		after = page.Next
	}
}

// testPurgeJobs runs alone (see Run): the purge takes every old finished
// job in the store, so its count is exact only when nothing else runs.
func testPurgeJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	// Leave only this test's jobs to purge.
	_, err := s.PurgeJobs(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)

	fx := newFixture(t, ctx, s)
	// Creation time does not count: a job queued or running long ago stays.
	longAgo := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	queued, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: "add", Created: longAgo})
	require.NoError(t, err)
	running, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: "add", Created: longAgo})
	require.NoError(t, err)
	running, err = s.StartJob(ctx, running.ID, 1, "w1")
	require.NoError(t, err)
	requeued := fx.running(t, ctx, s)
	requeued, err = s.RequeueJob(ctx, requeued.ID, 1, faas.Errorf(faas.Timeout, "lease expired"))
	require.NoError(t, err)

	succeeded, err := s.CompleteJob(ctx, completion(fx.running(t, ctx, s), 2*time.Second))
	require.NoError(t, err)
	failedRun := fx.running(t, ctx, s)
	failed, err := s.CompleteJob(ctx, faas.Completion{JobID: failedRun.ID, Attempt: 1,
		Error: faas.Errorf(faas.FunctionError, "boom"), Duration: 3 * time.Second})
	require.NoError(t, err)
	cutoff := failed.Finished.Add(time.Microsecond)
	require.True(t, succeeded.Finished.Before(cutoff))

	// A job that finishes after the cutoff is recent.
	time.Sleep(time.Until(cutoff) + time.Millisecond)
	recent, err := s.CompleteJob(ctx, completion(fx.running(t, ctx, s), 4*time.Second))
	require.NoError(t, err)
	require.False(t, recent.Finished.Before(cutoff), "recent job finished at %v, before the cutoff %v", recent.Finished, cutoff)
	billed := 9 * time.Second
	requireBilled(t, ctx, s, fx.user.Name, billed)

	n, err := s.PurgeJobs(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for _, j := range []faas.Job{succeeded, failed} {
		_, err := s.Job(ctx, j.ID)
		requireCode(t, err, faas.NotFound)
	}
	requireKept := func() {
		t.Helper()
		for _, want := range []faas.Job{queued, running, requeued, recent} {
			got, err := s.Job(ctx, want.ID)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
	}
	requireKept()
	// Billing outlives the jobs.
	requireBilled(t, ctx, s, fx.user.Name, billed)

	// Purging again finds nothing; a zero cutoff purges nothing.
	n, err = s.PurgeJobs(ctx, cutoff)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = s.PurgeJobs(ctx, time.Time{})
	require.NoError(t, err)
	require.Zero(t, n)
	requireKept()
	requireBilled(t, ctx, s, fx.user.Name, billed)

	// A retried completion of a purged job is told it is gone, and bills
	// nothing more.
	_, err = s.CompleteJob(ctx, completion(succeeded, time.Hour))
	requireCode(t, err, faas.NotFound)
	requireBilled(t, ctx, s, fx.user.Name, billed)
}

func testFunctionPages(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	for _, name := range []string{"e", "b", "d", "c"} {
		_, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: name, Source: "x=>'" + name + "'", MemoryMB: 64})
		require.NoError(t, err)
	}
	all, err := s.Functions(ctx, owner, faas.FunctionPage{})
	require.NoError(t, err)
	require.Len(t, all, 5)

	// Walking the pages returns every function once, in name order.
	var walked []faas.Function
	page := faas.FunctionPage{Limit: 2}
	for range 10 {
		fns, err := s.Functions(ctx, owner, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(fns), 2)
		if len(fns) == 0 {
			break
		}
		walked = append(walked, fns...)
		page.After = fns[len(fns)-1].Name
	}
	require.Equal(t, all, walked)

	// Without sources, everything else is the same.
	bare, err := s.Functions(ctx, owner, faas.FunctionPage{NoSource: true, After: "b", Limit: 2})
	require.NoError(t, err)
	require.Len(t, bare, 2)
	for i, f := range bare {
		require.Empty(t, f.Source)
		f.Source = all[i+2].Source
		require.Equal(t, all[i+2], f)
	}

	_, err = s.Functions(ctx, owner, faas.FunctionPage{Limit: -1})
	requireCode(t, err, faas.Invalid)
}

func testUsage(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	u := faas.User{Name: unique("user"), TokenHash: unique("hash")}
	require.NoError(t, s.CreateUser(ctx, u))
	requireUsage := func(want faas.Usage) {
		t.Helper()
		got, err := s.Usage(ctx, u.Name)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	requireUsage(faas.Usage{})

	// Sizes are in bytes, not characters.
	small, wide := "x=>x", "x=>'éé'"
	for name, src := range map[string]string{"small": small, "wide": wide} {
		_, _, err := s.PutFunction(ctx, faas.Function{Owner: u.Name, Name: name, Source: src})
		require.NoError(t, err)
	}
	sources := int64(len(small) + len(wide))
	requireUsage(faas.Usage{Functions: 2, SourceBytes: sources})
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: u.Name, Name: "small", Source: small + small})
	require.NoError(t, err)
	sources += int64(len(small))
	requireUsage(faas.Usage{Functions: 2, SourceBytes: sources})

	// Jobs count their arguments, then their result and logs.
	j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: u.Name, Function: "small", Args: json.RawMessage(`[4,5]`)})
	require.NoError(t, err)
	requireUsage(faas.Usage{Functions: 2, SourceBytes: sources, JobBytes: 5})
	j, err = s.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
	c := completion(j, time.Millisecond)
	_, err = s.CompleteJob(ctx, c)
	require.NoError(t, err)
	jobBytes := int64(5 + len(c.Result) + len(c.Logs))
	requireUsage(faas.Usage{Functions: 2, SourceBytes: sources, JobBytes: jobBytes})

	// Deleting gives the room back.
	require.NoError(t, s.DeleteJob(ctx, j.ID))
	require.NoError(t, s.DeleteFunction(ctx, u.Name, "small"))
	requireUsage(faas.Usage{Functions: 1, SourceBytes: int64(len(wide))})

	_, err = s.Usage(ctx, unique("nobody"))
	requireCode(t, err, faas.NotFound)
}

// testFinishedCounts runs alone: the totals are the whole store's. Each
// job counts once, when it finishes, by outcome, whatever retries and
// stale attempts follow, and purging or deleting it does not uncount it.
func testFinishedCounts(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	before, err := s.FinishedCounts(ctx)
	require.NoError(t, err)
	fx := newFixture(t, ctx, s)
	fail := func(code faas.Code) {
		t.Helper()
		c := faas.Completion{JobID: fx.running(t, ctx, s).ID, Attempt: 1, Error: faas.Errorf(code, "%s here", code), Duration: time.Millisecond}
		_, err := s.CompleteJob(ctx, c)
		require.NoError(t, err)
		_, err = s.CompleteJob(ctx, c) // a retry
		require.NoError(t, err)
	}
	for range 3 {
		c := completion(fx.running(t, ctx, s), time.Millisecond)
		_, err := s.CompleteJob(ctx, c)
		require.NoError(t, err)
		_, err = s.CompleteJob(ctx, c) // a retry
		require.NoError(t, err)
	}
	fail(faas.Timeout)
	fail(faas.Timeout)
	fail(faas.FunctionError)

	// A lost lease is not an outcome; the attempt it lost is fenced off.
	lost := fx.running(t, ctx, s)
	_, err = s.RequeueJob(ctx, lost.ID, 1, faas.Errorf(faas.Timeout, "lease expired"))
	require.NoError(t, err)
	_, err = s.CompleteJob(ctx, completion(lost, time.Millisecond))
	requireCode(t, err, faas.Conflict)
	// Neither is a job still queued or running, nor deleting one.
	fx.running(t, ctx, s)
	deleted := fx.running(t, ctx, s)
	require.NoError(t, s.DeleteJob(ctx, deleted.ID))

	// A queued job whose function was deleted fails without running.
	gone := fx.job(t, ctx, s)
	require.NoError(t, s.DeleteFunction(ctx, fx.user.Name, fx.fn.Name))
	_, err = s.StartJob(ctx, gone.ID, 1, "w1")
	requireCode(t, err, faas.FunctionDeleted)

	want := maps.Clone(before)
	want[faas.OutcomeOK] += 3
	want[string(faas.Timeout)] += 2
	want[string(faas.FunctionError)]++
	want[string(faas.FunctionDeleted)]++
	got, err := s.FinishedCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = s.PurgeJobs(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	got, err = s.FinishedCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got, "purged jobs still count")
}

// testUserCount runs alone: the concurrent subtests create users.
func testUserCount(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	before, err := s.UserCount(ctx)
	require.NoError(t, err)
	var users []faas.User
	for range 2 {
		u := faas.User{Name: unique("user"), TokenHash: unique("hash")}
		require.NoError(t, s.CreateUser(ctx, u))
		users = append(users, u)
	}
	n, err := s.UserCount(ctx)
	require.NoError(t, err)
	require.Equal(t, before+2, n)
	require.NoError(t, s.DeleteUser(ctx, users[0].Name))
	n, err = s.UserCount(ctx)
	require.NoError(t, err)
	require.Equal(t, before+1, n)
}

// testFailedJobs checks that the failed jobs of every user, and only
// those, are listed newest first up to the limit, without their bulk.
func testFailedJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	var failed []faas.Job
	for i := range 3 {
		fx := newFixture(t, ctx, s)
		ok := fx.running(t, ctx, s)
		_, err := s.CompleteJob(ctx, completion(ok, time.Millisecond))
		require.NoError(t, err)
		j := fx.running(t, ctx, s)
		c := faas.Completion{JobID: j.ID, Attempt: 1, Error: faas.Errorf(faas.FunctionError, "failure %d", i), Duration: time.Millisecond, Logs: "log line\n"}
		done, err := s.CompleteJob(ctx, c)
		require.NoError(t, err)
		done.Args, done.Logs = nil, ""
		failed = append(failed, done)
	}
	// Newest first: by creation time, then ID, as the listing orders ties.
	slices.SortFunc(failed, func(a, b faas.Job) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(b.ID, a.ID))
	})
	for _, limit := range []int{1, 3} {
		got, err := s.FailedJobs(ctx, limit)
		require.NoError(t, err)
		require.Equal(t, failed[:limit], got, "limit %d", limit)
	}
	for _, limit := range []int{0, -1} {
		_, err := s.FailedJobs(ctx, limit)
		requireCode(t, err, faas.Invalid)
	}
}

// testFunctionVersions checks that a job's version, limits included,
// outlives replacements while the job is pending, and only then.
func testFunctionVersions(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner, v1 := fx.user.Name, fx.fn
	got, err := s.FunctionVersion(ctx, owner, "add", v1.Version)
	require.NoError(t, err)
	require.Equal(t, v1, got)
	_, err = s.FunctionVersion(ctx, owner, "add", v1.Version-1)
	requireCode(t, err, faas.NotFound)

	queued := fx.job(t, ctx, s)
	running := fx.running(t, ctx, s)
	require.Equal(t, v1.Version, queued.Version)
	v2, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a*b", Timeout: 5 * time.Second, MemoryMB: 512, Concurrency: 3})
	require.NoError(t, err)
	require.Equal(t, 3, v2.Concurrency)
	for _, want := range []faas.Function{v1, v2} {
		got, err := s.FunctionVersion(ctx, owner, "add", want.Version)
		require.NoError(t, err)
		require.Equal(t, want, got, "version %d", want.Version)
	}
	// A job carries its version's concurrency limit, stored with it, so
	// the job queue needs no other read to enforce it, even after a
	// restart; v1's jobs keep v1's (none).
	require.Zero(t, queued.Concurrency)
	limited := fx.job(t, ctx, s)
	require.Equal(t, 3, limited.Concurrency)
	stored, err := s.Job(ctx, limited.ID)
	require.NoError(t, err)
	require.Equal(t, 3, stored.Concurrency)
	pending := Pending(t, ctx, s, faas.MaxPendingPage)
	i := slices.IndexFunc(pending, func(j faas.Job) bool { return j.ID == limited.ID })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, 3, pending[i].Concurrency)
	require.NoError(t, s.DeleteJob(ctx, limited.ID))

	// v2 has no job: the next replacement drops it; v1 still has two.
	v3, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a-b"})
	require.NoError(t, err)
	_, err = s.FunctionVersion(ctx, owner, "add", v2.Version)
	requireCode(t, err, faas.NotFound)
	got, err = s.FunctionVersion(ctx, owner, "add", v1.Version)
	require.NoError(t, err)
	require.Equal(t, v1, got)

	// Once v1's jobs are over, a purge drops it, even one that purges no
	// job; the current version stays.
	started, err := s.StartJob(ctx, queued.ID, 1, "w1")
	require.NoError(t, err)
	require.Equal(t, v1.Version, started.Version)
	_, err = s.CompleteJob(ctx, completion(started, time.Millisecond))
	require.NoError(t, err)
	_, err = s.RequeueJob(ctx, running.ID, 1, faas.Errorf(faas.Lost, "lease expired"))
	require.NoError(t, err)
	_, err = s.PurgeJobs(ctx, time.Time{})
	require.NoError(t, err)
	_, err = s.FunctionVersion(ctx, owner, "add", v1.Version)
	require.NoError(t, err, "a requeued job still needs its version")
	restarted, err := s.StartJob(ctx, running.ID, 2, "w1")
	require.NoError(t, err)
	_, err = s.CompleteJob(ctx, completion(restarted, time.Millisecond))
	require.NoError(t, err)
	n, err := s.PurgeJobs(ctx, time.Time{})
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.FunctionVersion(ctx, owner, "add", v1.Version)
	requireCode(t, err, faas.NotFound)
	got, err = s.FunctionVersion(ctx, owner, "add", v3.Version)
	require.NoError(t, err)
	require.Equal(t, v3, got)

	// Deleting the user takes the versions along.
	require.NoError(t, s.DeleteUser(ctx, owner))
	require.NoError(t, s.CreateUser(ctx, fx.user))
	_, err = s.FunctionVersion(ctx, owner, "add", v3.Version)
	requireCode(t, err, faas.NotFound)
}

// testDeletedFunctionFailsQueuedJobs checks that a job whose function was
// deleted fails when it would start, once and unbilled, and stays failed
// when a function of the same name comes back.
func testDeletedFunctionFailsQueuedJobs(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	queued := fx.job(t, ctx, s)
	running := fx.running(t, ctx, s)
	require.NoError(t, s.DeleteFunction(ctx, owner, "add"))
	_, err := s.FunctionVersion(ctx, owner, "add", fx.fn.Version)
	requireCode(t, err, faas.NotFound)

	_, err = s.StartJob(ctx, queued.ID, 1, "w1")
	requireCode(t, err, faas.FunctionDeleted)
	require.Contains(t, err.Error(), "function add was deleted")
	failed, err := s.Job(ctx, queued.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Failed, failed.State)
	require.Equal(t, faas.FunctionDeleted, failed.Error.Code)
	require.Zero(t, failed.Attempt, "no attempt ran")
	requireStoredTime(t, failed.Finished)
	require.Zero(t, failed.Billed)

	// A retry, or another worker's try, answers the same and changes
	// nothing; the job cannot be completed either.
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: fx.fn.Source})
	require.NoError(t, err)
	for _, worker := range []string{"w1", "w2"} {
		_, err = s.StartJob(ctx, queued.ID, 1, worker)
		requireCode(t, err, faas.FunctionDeleted)
	}
	_, err = s.CompleteJob(ctx, faas.Completion{JobID: queued.ID, Attempt: 1, Result: json.RawMessage("1"), Duration: time.Second})
	requireCode(t, err, faas.Conflict)
	again, err := s.Job(ctx, queued.ID)
	require.NoError(t, err)
	require.Equal(t, failed, again)

	// A job already running when its function went finishes as usual.
	_, err = s.CompleteJob(ctx, completion(running, time.Second))
	require.NoError(t, err)
	requireBilled(t, ctx, s, owner, time.Second)
}

// testFunctionSettings checks env and secrets: they round-trip, secrets
// are answered by name except to FunctionVersion, a replacement that
// leaves them nil keeps them and one that sets them replaces them, and
// each version keeps its own, so that a job runs with its version's.
func testFunctionSettings(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	require.Nil(t, fx.fn.Env)
	require.Nil(t, fx.fn.Secrets)
	env := map[string]string{"REGION": "eu", "EMPTY": ""}
	secrets := map[string]string{"API_KEY": "s3cret-v1"}
	names := map[string]string{"API_KEY": ""}

	v1, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: fx.fn.Source, Env: env, Secrets: secrets})
	require.NoError(t, err)
	require.Greater(t, v1.Version, fx.fn.Version, "new settings are a new version")
	require.Equal(t, env, v1.Env)
	require.Equal(t, names, v1.Secrets, "PutFunction answers secret names only")
	got, err := s.Function(ctx, owner, "add")
	require.NoError(t, err)
	require.Equal(t, v1, got)
	fns, err := s.Functions(ctx, owner, faas.FunctionPage{})
	require.NoError(t, err)
	require.Equal(t, []faas.Function{v1}, fns)
	fns, err = s.Functions(ctx, owner, faas.FunctionPage{NoSource: true})
	require.NoError(t, err)
	require.Equal(t, names, fns[0].Secrets)
	full, err := s.FunctionVersion(ctx, owner, "add", v1.Version)
	require.NoError(t, err)
	require.Equal(t, env, full.Env)
	require.Equal(t, secrets, full.Secrets)

	// The same upload again changes nothing.
	same, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: fx.fn.Source, Env: env, Secrets: secrets})
	require.NoError(t, err)
	require.Equal(t, v1, same)

	// A job pins v1; v2 changes the source only and keeps the settings.
	job := fx.job(t, ctx, s)
	require.Equal(t, v1.Version, job.Version)
	v2, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a*b"})
	require.NoError(t, err)
	require.Equal(t, env, v2.Env)
	require.Equal(t, names, v2.Secrets)
	full, err = s.FunctionVersion(ctx, owner, "add", v2.Version)
	require.NoError(t, err)
	require.Equal(t, secrets, full.Secrets)

	// v3 replaces the secrets and empties the env.
	secrets3 := map[string]string{"TOKEN": "s3cret-v3"}
	v3, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: "(a,b)=>a*b", Env: map[string]string{}, Secrets: secrets3})
	require.NoError(t, err)
	require.Nil(t, v3.Env)
	require.Equal(t, map[string]string{"TOKEN": ""}, v3.Secrets)
	full, err = s.FunctionVersion(ctx, owner, "add", v3.Version)
	require.NoError(t, err)
	require.Nil(t, full.Env)
	require.Equal(t, secrets3, full.Secrets)

	// The pinned job's version still has its own.
	pinned, err := s.FunctionVersion(ctx, owner, "add", job.Version)
	require.NoError(t, err)
	require.Equal(t, env, pinned.Env)
	require.Equal(t, secrets, pinned.Secrets)
}

// testJobPages walks a user's jobs newest first in pages, whole and
// filtered, and checks that a listing leaves out what it does not show.
func testJobPages(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "mul", Source: "(a,b)=>a*b"})
	require.NoError(t, err)
	var all []faas.Job
	for i := range 7 {
		var j faas.Job
		if i%3 == 0 {
			j, err = s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: owner, Function: "mul", Args: json.RawMessage(`[2,3]`)})
			require.NoError(t, err)
		} else {
			j = fx.job(t, ctx, s)
		}
		if i%2 == 0 {
			j, err = s.StartJob(ctx, j.ID, 1, "w1")
			require.NoError(t, err)
			j, err = s.CompleteJob(ctx, completion(j, time.Millisecond))
			require.NoError(t, err)
		}
		all = append(all, j)
	}
	// Newest first; jobs created in the same microsecond by ID.
	slices.SortFunc(all, func(a, b faas.Job) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := func(jobs []faas.Job) []string {
		out := []string{}
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	want := func(keep func(faas.Job) bool) []string {
		out := []string{}
		for _, j := range all {
			if keep(j) {
				out = append(out, j.ID)
			}
		}
		return out
	}

	for _, tc := range []struct {
		name string
		page faas.JobPage
		keep func(faas.Job) bool
	}{
		{"all", faas.JobPage{}, func(faas.Job) bool { return true }},
		{"function", faas.JobPage{Function: "mul"}, func(j faas.Job) bool { return j.Function == "mul" }},
		{"state", faas.JobPage{State: faas.Succeeded}, func(j faas.Job) bool { return j.State == faas.Succeeded }},
		{"both", faas.JobPage{Function: "add", State: faas.Queued}, func(j faas.Job) bool { return j.Function == "add" && j.State == faas.Queued }},
		{"none", faas.JobPage{Function: "nothing"}, func(faas.Job) bool { return false }},
	} {
		whole, err := s.Jobs(ctx, owner, tc.page)
		require.NoError(t, err, tc.name)
		require.Equal(t, want(tc.keep), ids(whole), tc.name)

		var walked []faas.Job
		page := tc.page
		page.Limit = 2
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5, tc.name)
			got, err := s.Jobs(ctx, owner, page)
			require.NoError(t, err, tc.name)
			require.LessOrEqual(t, len(got), 2, tc.name)
			walked = append(walked, got...)
			if len(got) < 2 {
				break
			}
			last := got[len(got)-1]
			page.BeforeCreated, page.BeforeID = last.Created, last.ID
		}
		require.Equal(t, want(tc.keep), ids(walked), tc.name)
	}

	listed, err := s.Jobs(ctx, owner, faas.JobPage{Limit: 1})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	stored, err := s.Job(ctx, listed[0].ID)
	require.NoError(t, err)
	require.Empty(t, listed[0].Args)
	require.Empty(t, listed[0].Result)
	require.Empty(t, listed[0].Logs)
	stored.Args, stored.Result, stored.Logs, stored.Streams = listed[0].Args, nil, "", ""
	require.Equal(t, stored, listed[0])

	// Another user sees none of them, nor does a user who does not exist.
	other := newFixture(t, ctx, s)
	jobs, err := s.Jobs(ctx, other.user.Name, faas.JobPage{})
	require.NoError(t, err)
	require.Empty(t, jobs)
	jobs, err = s.Jobs(ctx, unique("nobody"), faas.JobPage{})
	require.NoError(t, err)
	require.Empty(t, jobs)

	for _, bad := range []faas.JobPage{
		{Limit: -1},
		{State: "done"},
		{BeforeID: "x"},
		{BeforeCreated: time.Now()},
	} {
		_, err := s.Jobs(ctx, owner, bad)
		requireCode(t, err, faas.Invalid)
	}
}

// newHook returns an unstored hook of fx's function with a hash of its own.
func (fx fixture) newHook() faas.Hook {
	sum := sha256.Sum256([]byte(unique("hook")))
	hash := hex.EncodeToString(sum[:])
	return faas.Hook{Hash: hash, ID: hash[:faas.HookIDLen], Owner: fx.user.Name, Function: fx.fn.Name}
}

func testHooks(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	a, b := fx.newHook(), fx.newHook()
	require.NoError(t, s.CreateHook(ctx, a))
	require.NoError(t, s.CreateHook(ctx, a), "a retried creation is a no-op")
	require.NoError(t, s.CreateHook(ctx, b))

	got, err := s.HookByHash(ctx, a.Hash)
	require.NoError(t, err)
	requireStoredTime(t, got.Created)
	a.Created = got.Created
	require.Equal(t, a, got)

	list, err := s.Hooks(ctx, fx.user.Name, fx.fn.Name)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.ElementsMatch(t, []string{a.ID, b.ID}, []string{list[0].ID, list[1].ID})

	// A hook's job says so, in the record and in listings.
	j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: fx.user.Name, Function: fx.fn.Name,
		Args: json.RawMessage(`[{}]`), Trigger: faas.TriggerWebhook})
	require.NoError(t, err)
	got2, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.TriggerWebhook, got2.Trigger)
	page, err := s.Jobs(ctx, fx.user.Name, faas.JobPage{})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, faas.TriggerWebhook, page[0].Trigger)

	// Hooks bind to an existing function only, and a hash to one function.
	other := a
	other.Function = "missing"
	requireCode(t, s.CreateHook(ctx, other), faas.Conflict)
	missing := fx.newHook()
	missing.Function = "missing"
	requireCode(t, s.CreateHook(ctx, missing), faas.NotFound)
	bad := fx.newHook()
	bad.ID = "not-the-prefix"
	requireCode(t, s.CreateHook(ctx, bad), faas.Invalid)

	// Revoking one leaves the other.
	require.NoError(t, s.DeleteHook(ctx, fx.user.Name, fx.fn.Name, a.ID))
	requireCode(t, s.DeleteHook(ctx, fx.user.Name, fx.fn.Name, a.ID), faas.NotFound)
	_, err = s.HookByHash(ctx, a.Hash)
	requireCode(t, err, faas.NotFound)
	require.NotContains(t, err.Error(), a.Hash, "an error shows the ID, never the whole hash")
	_, err = s.HookByHash(ctx, b.Hash)
	require.NoError(t, err)

	// Deleting the function takes its hooks; a new function of the same
	// name does not get them back.
	require.NoError(t, s.DeleteFunction(ctx, fx.user.Name, fx.fn.Name))
	_, err = s.HookByHash(ctx, b.Hash)
	requireCode(t, err, faas.NotFound)
	_, _, err = s.PutFunction(ctx, fx.fn)
	require.NoError(t, err)
	list, err = s.Hooks(ctx, fx.user.Name, fx.fn.Name)
	require.NoError(t, err)
	require.Empty(t, list)
}

func testHooksGoWithTheirOwner(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	h := fx.newHook()
	require.NoError(t, s.CreateHook(ctx, h))
	require.NoError(t, s.DeleteUser(ctx, fx.user.Name))
	_, err := s.HookByHash(ctx, h.Hash)
	requireCode(t, err, faas.NotFound)
}

// testParentAndChildren: a child names its parent, and the parent, read
// alone, lists its children oldest first; a listing shows neither.
func testParentAndChildren(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	parent := fx.running(t, ctx, s)
	got, err := s.Job(ctx, parent.ID)
	require.NoError(t, err)
	require.Nil(t, got.Children)
	var want []string
	for range 3 {
		child, err := s.CreateJob(ctx, faas.Job{ID: unique("child"), Owner: fx.user.Name, Function: fx.fn.Name,
			Parent: parent.ID, Trigger: faas.TriggerJob, Children: []string{"forged"}})
		require.NoError(t, err)
		require.Equal(t, parent.ID, child.Parent)
		require.Nil(t, child.Children, "a new job has no children, whatever it says")
		want = append(want, child.ID)
		stored, err := s.Job(ctx, child.ID)
		require.NoError(t, err)
		require.Equal(t, parent.ID, stored.Parent)
		require.Equal(t, faas.TriggerJob, stored.Trigger)
	}
	got, err = s.Job(ctx, parent.ID)
	require.NoError(t, err)
	require.Equal(t, want, got.Children)
	done, err := s.CompleteJob(ctx, completion(parent, time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, done.Parent)
	page, err := s.Jobs(ctx, fx.user.Name, faas.JobPage{})
	require.NoError(t, err)
	require.Len(t, page, 4)
	for _, j := range page {
		require.Nil(t, j.Children, "a listing leaves children out")
	}
}

// testCalls: the fused calls of a completion are kept with the job, and a
// completion listing more than faas.MaxCalls is refused.
func testCalls(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	j := fx.running(t, ctx, s)
	c := completion(j, 5*time.Millisecond)
	c.Calls = make([]faas.Call, faas.MaxCalls+1)
	_, err := s.CompleteJob(ctx, c)
	requireCode(t, err, faas.Invalid)

	calls := []faas.Call{
		{Function: "add", Version: fx.fn.Version, Duration: 1500 * time.Microsecond},
		{Function: "nope", Duration: 20 * time.Microsecond, Error: faas.Errorf(faas.NotFound, "function nope not found")},
	}
	c.Calls, c.CallsTruncated = calls, true
	done, err := s.CompleteJob(ctx, c)
	require.NoError(t, err)
	require.Equal(t, calls, done.Calls)
	require.True(t, done.CallsTruncated)
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, calls, got.Calls)
	require.True(t, got.CallsTruncated)
	again, err := s.CompleteJob(ctx, c)
	require.NoError(t, err, "a retried completion")
	require.Equal(t, calls, again.Calls)

	plain := fx.running(t, ctx, s)
	done, err = s.CompleteJob(ctx, completion(plain, time.Millisecond))
	require.NoError(t, err)
	require.Nil(t, done.Calls)
	require.False(t, done.CallsTruncated)
}

// schedulesOf is the part of the Store's every schedule that is owner's:
// other tests put theirs in the same Store at the same time.
func schedulesOf(t *testing.T, ctx context.Context, s faas.Store, owner string) []faas.Schedule {
	t.Helper()
	all, err := s.Schedules(ctx)
	require.NoError(t, err)
	var out []faas.Schedule
	for _, sc := range all {
		if sc.Owner == owner {
			out = append(out, sc)
		}
	}
	return out
}

// subscribe subscribes fx's user's function fn to topic and checks that
// it was new.
func (fx fixture) subscribe(t *testing.T, ctx context.Context, s faas.Store, fn, topic string) {
	t.Helper()
	created, err := s.Subscribe(ctx, faas.Subscription{Owner: fx.user.Name, Function: fn, Topic: topic})
	require.NoError(t, err)
	require.True(t, created, "%s to %s", fn, topic)
}

// subscribed lists the user's subscriptions that match filter as
// "topic:function".
func (fx fixture) subscribed(t *testing.T, ctx context.Context, s faas.Store, filter faas.SubscriptionFilter) []string {
	t.Helper()
	subs, err := s.Subscriptions(ctx, fx.user.Name, filter)
	require.NoError(t, err)
	out := []string{}
	for _, sub := range subs {
		require.Equal(t, fx.user.Name, sub.Owner)
		requireStoredTime(t, sub.Created)
		out = append(out, sub.Topic+":"+sub.Function)
	}
	return out
}

func testSchedules(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	_, err := s.Schedule(ctx, fx.user.Name, fx.fn.Name)
	requireCode(t, err, faas.NotFound)

	put, err := s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: fx.fn.Name, Cron: "@every 10s",
		Timezone: "Europe/Madrid", Args: json.RawMessage(`[1,{"a":2}]`)})
	require.NoError(t, err)
	requireStoredTime(t, put.Updated)
	got, err := s.Schedule(ctx, fx.user.Name, fx.fn.Name)
	require.NoError(t, err)
	require.Equal(t, put, got)
	require.True(t, got.LastTick.IsZero())
	require.Equal(t, []faas.Schedule{put}, schedulesOf(t, ctx, s, fx.user.Name))

	// A tick moves LastTick forward only, and only for the schedule put
	// at the time given: a retry, a late call or a stale one is a no-op.
	tick := put.Updated.Add(10 * time.Second)
	require.NoError(t, s.ScheduleFired(ctx, fx.user.Name, fx.fn.Name, put.Updated, tick))
	require.NoError(t, s.ScheduleFired(ctx, fx.user.Name, fx.fn.Name, put.Updated, tick))
	require.NoError(t, s.ScheduleFired(ctx, fx.user.Name, fx.fn.Name, put.Updated, tick.Add(-5*time.Second)))
	require.NoError(t, s.ScheduleFired(ctx, fx.user.Name, fx.fn.Name, put.Updated.Add(time.Microsecond), tick.Add(time.Hour)))
	got, err = s.Schedule(ctx, fx.user.Name, fx.fn.Name)
	require.NoError(t, err)
	require.Equal(t, tick, got.LastTick)

	// Putting it again replaces it, from scratch.
	again, err := s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: fx.fn.Name, Cron: "@hourly",
		Updated: put.Updated.Add(time.Second)})
	require.NoError(t, err)
	got, err = s.Schedule(ctx, fx.user.Name, fx.fn.Name)
	require.NoError(t, err)
	require.Equal(t, again, got)
	require.Equal(t, "@hourly", got.Cron)
	require.JSONEq(t, `[]`, string(got.Args))
	require.True(t, got.LastTick.IsZero(), "a replaced schedule starts over")
	require.Len(t, schedulesOf(t, ctx, s, fx.user.Name), 1, "one schedule per function")

	// Only an existing function gets one.
	_, err = s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: "missing", Cron: "@hourly"})
	requireCode(t, err, faas.NotFound)
	_, err = s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: fx.fn.Name})
	requireCode(t, err, faas.Invalid)

	require.NoError(t, s.DeleteSchedule(ctx, fx.user.Name, fx.fn.Name))
	requireCode(t, s.DeleteSchedule(ctx, fx.user.Name, fx.fn.Name), faas.NotFound)
	require.Empty(t, schedulesOf(t, ctx, s, fx.user.Name))

	// Deleting the function takes its schedule; a new function of the
	// same name does not get it back.
	_, err = s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: fx.fn.Name, Cron: "@hourly"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteFunction(ctx, fx.user.Name, fx.fn.Name))
	_, err = s.Schedule(ctx, fx.user.Name, fx.fn.Name)
	requireCode(t, err, faas.NotFound)
	_, _, err = s.PutFunction(ctx, fx.fn)
	require.NoError(t, err)
	require.Empty(t, schedulesOf(t, ctx, s, fx.user.Name))
}

func testSchedulesGoWithTheirOwner(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	_, err := s.PutSchedule(ctx, faas.Schedule{Owner: fx.user.Name, Function: fx.fn.Name, Cron: "@hourly"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteUser(ctx, fx.user.Name))
	require.Empty(t, schedulesOf(t, ctx, s, fx.user.Name))
}

func testSubscriptions(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	owner := fx.user.Name
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: owner, Name: "mul", Source: "function mul(a,b){return a*b}", Timeout: time.Second})
	require.NoError(t, err)

	fx.subscribe(t, ctx, s, "mul", "orders")
	fx.subscribe(t, ctx, s, "add", "orders")
	fx.subscribe(t, ctx, s, "add", "audit")
	created, err := s.Subscribe(ctx, faas.Subscription{Owner: owner, Function: "add", Topic: "orders"})
	require.NoError(t, err, "subscribing again is a no-op")
	require.False(t, created)

	require.Equal(t, []string{"audit:add", "orders:add", "orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))
	require.Equal(t, []string{"orders:add", "orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{Topic: "orders"}))
	require.Equal(t, []string{"audit:add", "orders:add"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{Function: "add"}))
	require.Equal(t, []string{"orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{Function: "mul", Topic: "orders"}))
	require.Empty(t, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{Topic: "nobody"}))
	none, err := s.Subscriptions(ctx, unique("nobody"), faas.SubscriptionFilter{})
	require.NoError(t, err, "no user is an empty list")
	require.Empty(t, none)

	// Only an existing function subscribes, and only to a valid name.
	_, err = s.Subscribe(ctx, faas.Subscription{Owner: owner, Function: "missing", Topic: "orders"})
	requireCode(t, err, faas.NotFound)
	for _, topic := range []string{"", "..", "a/b", strings.Repeat("t", faas.MaxNameLen+1)} {
		_, err = s.Subscribe(ctx, faas.Subscription{Owner: owner, Function: "add", Topic: topic})
		requireCode(t, err, faas.Invalid)
	}

	require.NoError(t, s.Unsubscribe(ctx, owner, "add", "audit"))
	requireCode(t, s.Unsubscribe(ctx, owner, "add", "audit"), faas.NotFound)
	requireCode(t, s.Unsubscribe(ctx, owner, "mul", "audit"), faas.NotFound)
	require.Equal(t, []string{"orders:add", "orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))

	// A function deleted loses its subscriptions, and one created again
	// under its name does not get them back; a replacement keeps them.
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: owner, Name: "mul", Source: "function mul(a,b){return b*a}", Timeout: time.Second})
	require.NoError(t, err)
	require.Equal(t, []string{"orders:add", "orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))
	require.NoError(t, s.DeleteFunction(ctx, owner, "add"))
	require.Equal(t, []string{"orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))
	_, _, err = s.PutFunction(ctx, fx.fn)
	require.NoError(t, err)
	require.Equal(t, []string{"orders:mul"}, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))

	// A topic's job says so.
	j, err := s.CreateJob(ctx, faas.Job{ID: unique("job"), Owner: owner, Function: "mul",
		Args: json.RawMessage(`[{"n":1}]`), Trigger: faas.TriggerTopic})
	require.NoError(t, err)
	got, err := s.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, faas.TriggerTopic, got.Trigger)
}

func testSubscriptionsGoWithTheirOwner(t *testing.T, s faas.Store) {
	ctx := testContext(t)
	fx := newFixture(t, ctx, s)
	fx.subscribe(t, ctx, s, fx.fn.Name, "orders")
	require.NoError(t, s.DeleteUser(ctx, fx.user.Name))
	// The same name registered again starts without them.
	require.NoError(t, s.CreateUser(ctx, fx.user))
	_, _, err := s.PutFunction(ctx, fx.fn)
	require.NoError(t, err)
	require.Empty(t, fx.subscribed(t, ctx, s, faas.SubscriptionFilter{}))
}
