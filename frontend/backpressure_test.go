package frontend_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// answer is one request's outcome, gathered from a goroutine and checked
// in the test's own.
type answer struct {
	status int
	rep    reply
}

// runKeyed runs fn with an Idempotency-Key; query may add ?wait.
func (p *platform) runKeyed(t testing.TB, user, token, key, fn, args, query string) (int, reply) {
	t.Helper()
	h := bearer(token)
	h.Set("Idempotency-Key", key)
	return p.doHeader(t, "POST", "/u/"+user+"/fn/"+fn+"/run"+query, []byte(args), h)
}

// retryAfter returns a 429's Retry-After in seconds, failing the test
// unless it is a whole number of at least one.
func retryAfter(t testing.TB, rep reply) int {
	t.Helper()
	secs, err := strconv.Atoi(rep.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", rep.Header.Get("Retry-After"))
	require.GreaterOrEqual(t, secs, 1)
	return secs
}

// lookupBarrier is the real Store, except that its first n job lookups
// are answered only once all n have been: n submissions under one key
// then all find no job and race to create it, instead of most of them
// finding the job some other created, which depends on timing.
type lookupBarrier struct {
	faas.Store
	left    atomic.Int64
	allDone chan struct{}
}

func newLookupBarrier(store faas.Store, n int) *lookupBarrier {
	b := &lookupBarrier{Store: store, allDone: make(chan struct{})}
	b.left.Store(int64(n))
	return b
}

func (b *lookupBarrier) Job(ctx context.Context, id string) (faas.Job, error) {
	j, err := b.Store.Job(ctx, id)
	switch left := b.left.Add(-1); {
	case left == 0:
		close(b.allDone)
	case left > 0:
		select {
		case <-b.allDone:
		case <-ctx.Done():
		}
	}
	return j, err
}

// TestIdempotentSubmission fires 50 concurrent submissions under one
// Idempotency-Key and checks that they made one job, run and billed once,
// then that the key answers replays, refuses another request, and
// belongs to its user alone.
func TestIdempotentSubmission(t *testing.T) {
	t.Parallel()
	const n = 50
	var barrier *lookupBarrier
	p := startPlatform(t, func(s *settings) {
		s.wrapStore = func(store faas.Store) faas.Store {
			barrier = newLookupBarrier(store, n)
			return barrier
		}
	})
	alice, aliceToken := p.newUser(t, "idem")
	bob, bobToken := p.newUser(t, "idem")
	// It runs long enough that a second run would show in the bill.
	const slowAdd = `async function add(a,b){ await new Promise(r => setTimeout(r, 50)); return a+b }`
	p.upload(t, alice, aliceToken, "add", slowAdd)
	p.upload(t, alice, aliceToken, "mul", `(a,b) => a*b`)
	p.upload(t, bob, bobToken, "add", slowAdd)
	const key = "order-42"

	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			<-start
			status, rep := p.runKeyed(t, alice, aliceToken, key, "add", "[4,5]", "")
			answers[i] = answer{status, rep}
		})
	}
	close(start)
	wg.Wait()
	id := answers[0].rep.str(t)
	created := 0
	for _, a := range answers {
		require.Equal(t, http.StatusAccepted, a.status, "res: %s", a.rep.Res)
		require.Equal(t, id, a.rep.str(t), "one id for one key")
		require.Equal(t, "/j/"+id, a.rep.Header.Get("Location"))
		switch replayed := a.rep.Header.Get("Idempotent-Replayed"); replayed {
		case "":
			created++
		default:
			require.Equal(t, "true", replayed)
		}
	}
	require.Equal(t, 1, created, "exactly one submission created the job, the others are flagged replays")
	require.Zero(t, barrier.left.Load(), "every submission looked the key up")

	p.awaitJob(t, aliceToken, id)
	info := p.info(t, aliceToken, id)
	require.Equal(t, faas.Succeeded, info.State)
	require.Equal(t, 1, info.Attempts)
	require.JSONEq(t, "[4,5]", string(info.Args))
	// The queue counts a job done just after the store records it.
	require.Eventually(t, func() bool {
		rep := p.expect(t, http.StatusOK, "GET", "/stats", adminToken, nil)
		var st faas.Stats
		require.NoError(t, json.Unmarshal(rep.Res, &st))
		require.LessOrEqual(t, st.Completed, int64(1), "one job ran")
		return st.Completed == 1 && st.Queued == 0 && st.Running == 0
	}, 5*time.Second, 10*time.Millisecond)
	rep := p.expect(t, http.StatusOK, "GET", "/u/"+alice+"/time", aliceToken, nil)
	require.InDelta(t, info.BilledMS, rep.num(t), 0.0015, "billed once")

	// A replay answers like the first submission would, with ?wait the
	// result; spacing and key order do not make another request.
	status, rep := p.runKeyed(t, alice, aliceToken, key, "add", " [ 4, 5.0 ] ", "?wait=10s")
	require.Equal(t, http.StatusOK, status, "res: %s", rep.Res)
	require.JSONEq(t, "9", string(rep.Res))
	require.Equal(t, "/j/"+id, rep.Header.Get("Location"))
	require.Equal(t, "true", rep.Header.Get("Idempotent-Replayed"))
	status, rep = p.runKeyed(t, alice, aliceToken, key, "add", "[4,5]", "")
	require.Equal(t, http.StatusAccepted, status, "res: %s", rep.Res)
	require.Equal(t, id, rep.str(t))
	require.Equal(t, "true", rep.Header.Get("Idempotent-Replayed"))

	for _, tc := range []struct{ name, fn, args string }{
		{"other arguments", "add", "[4,6]"},
		{"more arguments", "add", "[4,5,6]"},
		{"other function", "mul", "[4,5]"},
	} {
		status, rep := p.runKeyed(t, alice, aliceToken, key, tc.fn, tc.args, "")
		require.Equal(t, http.StatusConflict, status, "%s: res %s", tc.name, rep.Res)
		require.Equal(t, "conflict", rep.Code, tc.name)
		require.Equal(t, "Idempotency-Key reused with a different request", rep.str(t), tc.name)
		require.Empty(t, rep.Header.Get("Location"), tc.name)
	}

	// The key is alice's: bob's use of it is another job, his own.
	bobJob := p.submitKeyed(t, bob, bobToken, key, "add", "[4,5]")
	require.NotEqual(t, id, bobJob)
	p.awaitJob(t, bobToken, bobJob)
	p.expect(t, http.StatusNotFound, "GET", "/j/"+bobJob, aliceToken, nil)
	// Another key of alice's is another job.
	require.NotEqual(t, id, p.submitKeyed(t, alice, aliceToken, "order-43", "add", "[4,5]"))

	// A key names its job as long as the job exists; once deleted, the key
	// submits afresh.
	p.expect(t, http.StatusOK, "DELETE", "/j/"+id, aliceToken, nil)
	require.Equal(t, id, p.submitKeyed(t, alice, aliceToken, key, "add", "[1,2]"))
	p.awaitJob(t, aliceToken, id)
	rep = p.expect(t, http.StatusOK, "GET", "/j/"+id+"/res", aliceToken, nil)
	require.JSONEq(t, "3", string(rep.Res))
}

// submitKeyed runs fn under key, expecting a job this request created.
func (p *platform) submitKeyed(t testing.TB, user, token, key, fn, args string) string {
	t.Helper()
	status, rep := p.runKeyed(t, user, token, key, fn, args, "")
	require.Equal(t, http.StatusAccepted, status, "res: %s", rep.Res)
	require.Empty(t, rep.Header.Get("Idempotent-Replayed"), "a new job")
	return rep.str(t)
}

// TestIdempotencyKeyInvalid checks that a malformed key is refused before
// anything is submitted.
func TestIdempotencyKeyInvalid(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "badkey")
	p.upload(t, user, token, "add", addSrc)
	path := "/u/" + user + "/fn/add/run"
	for _, tc := range []struct {
		name   string
		keys   []string
		status int
	}{
		{"empty", []string{""}, http.StatusBadRequest},
		{"256 characters", []string{strings.Repeat("k", 256)}, http.StatusBadRequest},
		{"not ASCII", []string{"café"}, http.StatusBadRequest},
		{"control character", []string{"a\tb"}, http.StatusBadRequest},
		{"two keys", []string{"a", "b"}, http.StatusBadRequest},
		// The controls, accepted.
		{"255 characters", []string{strings.Repeat("k", 255)}, http.StatusAccepted},
		{"printable ASCII", []string{` !"#$%&'()*+,-./09:;<=>?@AZ[\]^_` + "`az{|}~"}, http.StatusAccepted},
	} {
		// Not parallel: the count below needs them done.
		t.Run(tc.name, func(t *testing.T) {
			h := bearer(token)
			h["Idempotency-Key"] = tc.keys
			status, rep := p.doHeader(t, "POST", path, []byte("[1,2]"), h)
			require.Equal(t, tc.status, status, "res: %s", rep.Res)
			if tc.status == http.StatusBadRequest {
				require.Equal(t, "invalid", rep.Code)
				require.Contains(t, rep.str(t), "Idempotency-Key")
			}
		})
	}
	// Nothing was submitted by the refused requests: only the two accepted.
	require.Eventually(t, func() bool {
		rep := p.expect(t, http.StatusOK, "GET", "/stats", adminToken, nil)
		var st faas.Stats
		require.NoError(t, json.Unmarshal(rep.Res, &st))
		return st.Completed == 2 && st.Queued == 0 && st.Running == 0
	}, 10*time.Second, 10*time.Millisecond)
}

// TestFloodingUserVsQuietUser floods the queue from one user while another
// runs a few jobs. The flooder is held to its pending limit with 429s; the
// quiet user's jobs overtake the flood's backlog, because the JQ manager
// serves users in turn rather than jobs in order of arrival.
func TestFloodingUserVsQuietUser(t *testing.T) {
	t.Parallel()
	const (
		limit   = 40
		jobTime = 200 * time.Millisecond
		// drain is how long the one serial worker takes to run a full
		// backlog of the flooder's. Served in order of arrival, a quiet
		// job submitted behind that backlog would wait about that long.
		drain = limit * jobTime
		// bound is half of it. Served in turn, a quiet job waits for at
		// most the flood job running and one more, 2*jobTime; the quiet
		// user's five jobs together for at most 5 flood jobs and their own
		// (about 1s). Half the drain leaves four times that for a slow
		// machine and the race detector, and is still far from what
		// waiting behind the backlog would take.
		bound     = drain / 2
		quietJobs = 5
	)
	p := startPlatform(t, serial, maxPending(limit))
	flooder, floodToken := p.newUser(t, "flood")
	quiet, quietToken := p.newUser(t, "quiet")
	p.upload(t, flooder, floodToken, "slow", `async function slow(){ await new Promise(r => setTimeout(r, 200)); return 1 }`)
	p.upload(t, quiet, quietToken, "add", addSrc)
	floodPath := "/u/" + flooder + "/fn/slow/run"

	// The flood: many submissions at once, far past the limit.
	burst := make([]answer, 3*limit)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			status, rep := p.do(t, "POST", floodPath, floodToken, nil)
			burst[i] = answer{status, rep}
		})
	}
	wg.Wait()
	accepted, refused := 0, 0
	for _, a := range burst {
		switch a.status {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			require.Equal(t, "too_many_requests", a.rep.Code)
			retryAfter(t, a.rep)
		default:
			t.Fatalf("flood submission answered %d: %s", a.status, a.rep.Res)
		}
	}
	// Every slot is taken before anyone is refused.
	require.GreaterOrEqual(t, accepted, limit)
	require.Positive(t, refused, "the flooder got 429s")

	// The flooder keeps the backlog full while the quiet user runs jobs,
	// ignoring Retry-After as a flooder would.
	stop := make(chan struct{})
	var pressing sync.WaitGroup
	var mu sync.Mutex
	var refusedLater []reply
	for range 4 {
		pressing.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if status, rep := p.do(t, "POST", floodPath, floodToken, nil); status == http.StatusTooManyRequests {
					mu.Lock()
					refusedLater = append(refusedLater, rep)
					mu.Unlock()
				}
			}
		})
	}
	// Stopped at the end, or early if the test fails on the way.
	stopFlood := sync.OnceFunc(func() { close(stop); pressing.Wait() })
	defer stopFlood()

	begin := time.Now()
	quietAnswers := make([]answer, quietJobs)
	var quietWG sync.WaitGroup
	for i := range quietAnswers {
		quietWG.Go(func() {
			status, rep := p.do(t, "POST", "/u/"+quiet+"/fn/add/run?wait=30s", quietToken, []byte("[1,"+strconv.Itoa(i)+"]"))
			quietAnswers[i] = answer{status, rep}
		})
	}
	quietWG.Wait()
	took := time.Since(begin)
	// The backlog the quiet jobs overtook, still there when they are done.
	rep := p.expect(t, http.StatusOK, "GET", "/stats", adminToken, nil)
	var st faas.Stats
	require.NoError(t, json.Unmarshal(rep.Res, &st))

	for i, a := range quietAnswers {
		require.Equal(t, http.StatusOK, a.status, "quiet job %d: res %s", i, a.rep.Res)
		require.JSONEq(t, strconv.Itoa(1+i), string(a.rep.Res))
		id := strings.TrimPrefix(a.rep.Header.Get("Location"), "/j/")
		info := p.info(t, quietToken, id)
		require.NotNil(t, info.WaitMS)
		require.Less(t, *info.WaitMS, float64(bound.Milliseconds()), "quiet job %d waited in the queue", i)
	}
	t.Logf("flood: %d accepted, %d refused at once; quiet jobs done in %v, %d flood jobs still queued", accepted, refused, took, st.Queued)
	require.Less(t, took, bound, "the quiet user's jobs took %v with the flood's backlog at %d", took, st.Queued)
	// The bound means something only if the backlog would have taken
	// longer than it to drain: at least half the limit still queued.
	require.Greater(t, time.Duration(st.Queued)*jobTime, bound, "the flood's backlog was %d jobs", st.Queued)

	stopFlood()
	require.NotEmpty(t, refusedLater, "the flooder kept hitting its limit")
	for _, rep := range refusedLater {
		require.Equal(t, "too_many_requests", rep.Code)
		retryAfter(t, rep)
	}
}

// TestRateLimit checks each user's request rate limit and the one on
// registrations by client address.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	// One token every 100s: none comes back while the test runs, so the
	// counts are exact.
	const (
		rate  = 0.01
		burst = 10
	)
	p := startPlatform(t, rateLimit(rate, burst))
	// Registering takes two of this address's tokens.
	alice, aliceToken := p.newUser(t, "rate")
	bob, bobToken := p.newUser(t, "rate")

	for range burst {
		p.expect(t, http.StatusOK, "GET", "/u/"+alice+"/fn", aliceToken, nil)
	}
	for _, path := range []string{"/u/" + alice + "/fn", "/u/" + alice + "/time", "/j/" + uuid.NewString()} {
		rep := p.expect(t, http.StatusTooManyRequests, "GET", path, aliceToken, nil)
		require.Equal(t, "too_many_requests", rep.Code, path)
		// Computed from the bucket: nearly a whole token to wait for, at
		// a token per 100s (less what refilled while the test ran).
		require.InDelta(t, 1/rate, retryAfter(t, rep), 10, path)
	}

	// Bob has a bucket of his own.
	for range burst {
		p.expect(t, http.StatusOK, "GET", "/u/"+bob+"/fn", bobToken, nil)
	}
	p.expect(t, http.StatusTooManyRequests, "GET", "/u/"+bob+"/fn", bobToken, nil)

	// Registrations count by address: the burst less alice and bob.
	for range burst - 2 {
		p.newUser(t, "rate")
	}
	rep := p.expect(t, http.StatusTooManyRequests, "POST", "/u/one-too-many", "", nil)
	require.Equal(t, "too_many_requests", rep.Code)
	retryAfter(t, rep)
}

// TestRateLimitOff checks that a rate of 0 turns the limit off, however
// small the burst.
func TestRateLimitOff(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, rateLimit(0, 1))
	user, token := p.newUser(t, "unlimited")
	p.newUser(t, "unlimited")
	for range 20 {
		p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	}
}
