package frontend_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
	"faas/proxies/faas"
)

// countingStore is the real store, counting the calls the limits are
// meant to bound.
type countingStore struct {
	faas.Store
	byToken, pings atomic.Int64
}

func (s *countingStore) UserByToken(ctx context.Context, hash string) (faas.User, error) {
	s.byToken.Add(1)
	return s.Store.UserByToken(ctx, hash)
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.pings.Add(1)
	return s.Store.Ping(ctx)
}

// counting wraps the frontend's store in a countingStore, left in *into.
func counting(into **countingStore) option {
	return func(s *settings) {
		s.wrapStore = func(store faas.Store) faas.Store {
			*into = &countingStore{Store: store}
			return *into
		}
	}
}

// withConfig changes the frontend's configuration.
func withConfig(change func(c *frontend.Config)) option {
	return func(s *settings) { change(&s.frontend) }
}

// randomToken is a well-formed token that belongs to no one.
func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// requireRefusal checks a refusal's status and code, and that its message
// names the limit and its value.
func requireRefusal(t testing.TB, status int, rep reply, wantStatus int, code string, names ...string) {
	t.Helper()
	require.Equal(t, wantStatus, status, "res %s", rep.Res)
	require.Equal(t, code, rep.Code)
	for _, n := range names {
		require.Contains(t, rep.str(t), n)
	}
}

// TestFunctionQuotas checks the count and size quotas on a user's
// functions: a refusal past either, replacements that fit, and that
// concurrent uploads at the limit cannot overshoot it.
func TestFunctionQuotas(t *testing.T) {
	t.Parallel()
	const maxFns, maxBytes = 3, 1000
	p := startPlatform(t, withConfig(func(c *frontend.Config) {
		c.MaxFunctionsPerUser, c.MaxSourceBytesPerUser = maxFns, maxBytes
	}))
	user, token := p.newUser(t, "quota")
	for i := range maxFns {
		p.upload(t, user, token, fmt.Sprint("f", i), addSrc)
	}
	status, rep := p.do(t, "POST", "/u/"+user+"/fn/extra", token, []byte(addSrc))
	requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_FUNCTIONS_PER_USER", fmt.Sprint(maxFns))
	// Replacing one still fits: it takes the old one's place.
	p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/f0", token, []byte("(a,b)=>a-b"))

	// Sizes: a replacement that would pass the byte quota is refused.
	big := "x=>x//" + strings.Repeat("y", maxBytes)
	status, rep = p.do(t, "POST", "/u/"+user+"/fn/f1", token, []byte(big))
	requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_SOURCE_BYTES_PER_USER", fmt.Sprint(maxBytes))
	p.expect(t, http.StatusOK, "DELETE", "/u/"+user+"/fn/f1", token, nil)
	status, rep = p.do(t, "POST", "/u/"+user+"/fn/f1", token, []byte(big))
	requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_SOURCE_BYTES_PER_USER")

	// Twenty uploads at once with one slot free: exactly one gets it.
	other, otherToken := p.newUser(t, "race")
	for i := range maxFns - 1 {
		p.upload(t, other, otherToken, fmt.Sprint("f", i), addSrc)
	}
	var created atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			status, rep := p.do(t, "POST", fmt.Sprintf("/u/%s/fn/new%d", other, i), otherToken, []byte(addSrc))
			switch status {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusRequestEntityTooLarge:
			default:
				t.Errorf("upload %d: status %d, res %s", i, status, rep.Res)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, created.Load())
	rep = p.expect(t, http.StatusOK, "GET", "/u/"+other+"/fn?fields=settings", otherToken, nil)
	var fns map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rep.Res, &fns))
	require.Len(t, fns, maxFns)
}

// TestJobQuota checks that submissions stop once a user's retained job
// data reaches the quota, and start again once jobs are deleted.
func TestJobQuota(t *testing.T) {
	t.Parallel()
	const maxBytes = 200
	p := startPlatform(t, withConfig(func(c *frontend.Config) { c.MaxJobBytesPerUser = maxBytes }))
	user, token := p.newUser(t, "jobs")
	p.upload(t, user, token, "echo", "s => s")
	arg := `["` + strings.Repeat("a", 60) + `"]`
	var ids []string
	var refused reply
	require.Eventually(t, func() bool {
		status, rep := p.do(t, "POST", "/u/"+user+"/fn/echo/run", token, []byte(arg))
		if status == http.StatusAccepted {
			ids = append(ids, rep.str(t))
			p.awaitJob(t, token, ids[len(ids)-1])
			return false
		}
		refused = rep
		requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_JOB_BYTES_PER_USER", fmt.Sprint(maxBytes))
		return true
	}, 20*time.Second, time.Millisecond)
	require.NotEmpty(t, refused.Code)
	// Each job keeps its arguments and its result, a little over 120
	// bytes: the quota is reached by the second, and the verdict is
	// reused for a second, so a few more may pass.
	require.GreaterOrEqual(t, len(ids), 2)

	for _, id := range ids {
		p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
	}
	require.Eventually(t, func() bool {
		status, _ := p.do(t, "POST", "/u/"+user+"/fn/echo/run", token, []byte(arg))
		return status == http.StatusAccepted
	}, 5*time.Second, 50*time.Millisecond, "room made by deleting jobs")
}

// TestJobQuotaBurst submits a burst faster than the store's sums are
// renewed: the arguments submitted in between still count.
func TestJobQuotaBurst(t *testing.T) {
	t.Parallel()
	const maxBytes = 1000
	p := startPlatform(t, withConfig(func(c *frontend.Config) { c.MaxJobBytesPerUser = maxBytes }))
	user, token := p.newUser(t, "burst")
	p.upload(t, user, token, "echo", "s => s")
	arg := `["` + strings.Repeat("a", 96) + `"]` // 100 bytes
	var accepted int
	for range 30 {
		status, rep := p.do(t, "POST", "/u/"+user+"/fn/echo/run", token, []byte(arg))
		if status == http.StatusAccepted {
			accepted++
			continue
		}
		requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_JOB_BYTES_PER_USER", fmt.Sprint(maxBytes))
	}
	require.LessOrEqual(t, accepted, maxBytes/len(arg))
	require.Positive(t, accepted)
}

// gatedUsage is the real store whose Usage, once armed, waits for open.
type gatedUsage struct {
	faas.Store
	armed atomic.Bool
	open  chan struct{}
	sums  atomic.Int64
}

func (s *gatedUsage) Usage(ctx context.Context, owner string) (faas.Usage, error) {
	if s.armed.Load() {
		select {
		case <-s.open:
		case <-ctx.Done():
			return faas.Usage{}, ctx.Err()
		}
	}
	s.sums.Add(1)
	return s.Store.Usage(ctx, owner)
}

// TestJobQuotaAfterQuiet: the first submission after the sum of a user's
// job data went stale does not wait for a new sum when the user is far
// from the quota; the sum runs behind it.
func TestJobQuotaAfterQuiet(t *testing.T) {
	t.Parallel()
	store := &gatedUsage{open: make(chan struct{})}
	p := startPlatform(t, withConfig(func(c *frontend.Config) { c.MaxJobBytesPerUser = 1 << 20 }), func(s *settings) {
		s.wrapStore = func(st faas.Store) faas.Store { store.Store = st; return store }
	})
	user, token := p.newUser(t, "quiet")
	p.upload(t, user, token, "echo", "s => s")
	p.expect(t, http.StatusAccepted, "POST", "/u/"+user+"/fn/echo/run", token, []byte(`["a"]`))
	require.EqualValues(t, 1, store.sums.Load())

	time.Sleep(1100 * time.Millisecond) // past the sum's one-second TTL
	store.armed.Store(true)
	answered := make(chan int, 1)
	go func() {
		status, _ := p.do(t, "POST", "/u/"+user+"/fn/echo/run", token, []byte(`["b"]`))
		answered <- status
	}()
	select {
	case status := <-answered:
		require.Equal(t, http.StatusAccepted, status)
	case <-time.After(5 * time.Second):
		close(store.open)
		require.FailNow(t, "the submission waited for the store's sum")
	}
	close(store.open)
	require.Eventually(t, func() bool { return store.sums.Load() == 2 }, 5*time.Second, time.Millisecond, "no sum behind the submission")
}

// TestRegistrationLimits checks the registrations one address may make,
// the platform's total, and that the operator is not counted per address.
func TestRegistrationLimits(t *testing.T) {
	t.Parallel()
	const perAddr, maxUsers = 3, 5
	p := startPlatform(t, withConfig(func(c *frontend.Config) {
		c.MaxRegistrationsPerAddrHour, c.MaxUsers = perAddr, maxUsers
	}))
	for i := range perAddr {
		p.register(t, fmt.Sprint("reg", i))
	}
	status, rep := p.do(t, "POST", "/u/reg-over", "", nil)
	requireRefusal(t, status, rep, http.StatusTooManyRequests, "too_many_requests", "FAAS_MAX_REGISTRATIONS_PER_ADDR_HOUR", fmt.Sprint(perAddr))
	// A bucket of 3 refilled over an hour: the next one is 20 minutes off.
	require.Equal(t, "1200", rep.Header.Get("Retry-After"))

	// The operator registers whatever the address has spent, but not past
	// the platform's total.
	for i := perAddr; i < maxUsers; i++ {
		p.expect(t, http.StatusCreated, "POST", fmt.Sprint("/u/reg", i), adminToken, nil)
	}
	status, rep = p.do(t, "POST", "/u/reg-full", adminToken, nil)
	requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "quota_exceeded", "FAAS_MAX_USERS", fmt.Sprint(maxUsers))
}

// TestClosedRegistration checks that only the operator registers users
// when registration is closed.
func TestClosedRegistration(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, withConfig(func(c *frontend.Config) { c.Registration = "closed" }))
	for _, token := range []string{"", randomToken(t), adminToken + "x"} {
		status, rep := p.do(t, "POST", "/u/someone", token, nil)
		requireRefusal(t, status, rep, http.StatusForbidden, "forbidden", "registration is closed", "FAAS_ADMIN_TOKEN")
	}
	rep := p.expect(t, http.StatusCreated, "POST", "/u/someone", adminToken, nil)
	var res struct{ Token string }
	require.NoError(t, json.Unmarshal(rep.Res, &res))
	// The new user's own token works as usual.
	p.expect(t, http.StatusOK, "GET", "/u/someone/fn", res.Token, nil)

	// The typed client registers with the operator's token it holds.
	cr, err := p.rest().As("", adminToken).Register(context.Background(), "someone-else")
	require.NoError(t, err)
	require.Equal(t, "someone-else", cr.Name)
}

// TestFunctionListPages walks a listing page by page, with and without
// sources, and checks that a short list keeps the reference shape.
func TestFunctionListPages(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "pages")
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		p.upload(t, user, token, n, addSrc)
	}
	// Shorter than a page: {name: source}, and no cursor.
	rep := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.JSONEq(t, `{"a":"`+addSrc+`","b":"`+addSrc+`","c":"`+addSrc+`","d":"`+addSrc+`","e":"`+addSrc+`"}`, string(rep.Res))
	require.Empty(t, nextCursor(t, p, "/u/"+user+"/fn", token))

	for _, fields := range []string{"src", "settings"} {
		var walked []string
		path := "/u/" + user + "/fn?limit=2&fields=" + fields
		for cursor, pages := "", 0; ; pages++ {
			require.Less(t, pages, 3)
			rep := p.expect(t, http.StatusOK, "GET", path+cursor, token, nil)
			var page map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(rep.Res, &page))
			require.LessOrEqual(t, len(page), 2)
			for name, v := range page {
				walked = append(walked, name)
				if fields == "settings" {
					var st map[string]any
					require.NoError(t, json.Unmarshal(v, &st))
					require.NotContains(t, st, "src")
					require.Contains(t, st, "version")
					require.Contains(t, st, "timeout_ms")
				} else {
					require.JSONEq(t, `"`+addSrc+`"`, string(v))
				}
			}
			next := nextCursor(t, p, path+cursor, token)
			if next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		require.ElementsMatch(t, names, walked, fields)
	}

	for _, q := range []string{"cursor=!!", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("..")), "limit=0", "limit=1001", "fields=all"} {
		status, rep := p.do(t, "GET", "/u/"+user+"/fn?"+q, token, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, rep.Res)
	}
}

// nextCursor fetches path and returns the next_cursor of its answer.
func nextCursor(t testing.TB, p *platform, path, token string) string {
	t.Helper()
	resp, err := p.rest().Do(context.Background(), client.Request{Method: "GET", Path: path, Header: bearer(token)})
	require.NoError(t, err)
	return resp.NextCursor
}

// TestBadTokensAreNotFree sends 1,000 random tokens from one address and
// checks that they cost a bounded number of store lookups and meet 429s;
// then that one bad token sent again is answered from the negative cache.
func TestBadTokensAreNotFree(t *testing.T) {
	t.Parallel()
	const lookupsPerSec = 10
	var store *countingStore
	p := startPlatform(t, counting(&store), withConfig(func(c *frontend.Config) { c.TokenLookupsPerAddr = lookupsPerSec }))
	start := time.Now()
	var tooMany int
	for range 1000 {
		status, rep := p.do(t, "GET", "/u/someone/fn", randomToken(t), nil)
		switch status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			tooMany++
			require.Contains(t, rep.str(t), "FAAS_TOKEN_LOOKUPS_PER_ADDR")
		default:
			t.Fatalf("status %d: %s", status, rep.Res)
		}
	}
	// A burst of two seconds' worth, then the rate.
	bound := 2*lookupsPerSec + int64(time.Since(start).Seconds()*lookupsPerSec) + 1
	t.Logf("1000 random tokens in %v: %d store lookups (bound %d), %d answered 429",
		time.Since(start).Round(time.Millisecond), store.byToken.Load(), bound, tooMany)
	require.LessOrEqual(t, store.byToken.Load(), bound)
	require.Positive(t, tooMany)

	q := startPlatform(t, counting(&store))
	bad := randomToken(t)
	for range 100 {
		q.expect(t, http.StatusUnauthorized, "GET", "/u/someone/fn", bad, nil)
	}
	require.EqualValues(t, 1, store.byToken.Load(), "a bad token is remembered")
}

// TestAddressLimitComesFirst checks that the per-address limit answers
// before any token is looked up.
func TestAddressLimitComesFirst(t *testing.T) {
	t.Parallel()
	var store *countingStore
	p := startPlatform(t, counting(&store), withConfig(func(c *frontend.Config) { c.RateLimitPerAddr = 5 }))
	var tooMany int
	start := time.Now()
	for range 50 {
		status, rep := p.do(t, "GET", "/j/"+uuid.NewString(), randomToken(t), nil)
		if status == http.StatusTooManyRequests {
			tooMany++
			require.Contains(t, rep.str(t), "FAAS_RATE_LIMIT_PER_ADDR=5")
			require.NotEmpty(t, rep.Header.Get("Retry-After"))
		}
	}
	require.Positive(t, tooMany)
	// Startup's readiness polls took from the same bucket; what is left
	// reached the store.
	require.LessOrEqual(t, store.byToken.Load(), int64(50-tooMany))
	require.LessOrEqual(t, store.byToken.Load(), 10+int64(time.Since(start).Seconds()*5)+1, "a burst of 10, then 5/s")
}

// TestReadyzIsCheap floods /readyz and checks that it pings the DB
// manager at most about once a second.
func TestReadyzIsCheap(t *testing.T) {
	t.Parallel()
	var store *countingStore
	p := startPlatform(t, counting(&store))
	before := store.pings.Load()
	start := time.Now()
	var probes atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			// Past a second, so that the verdict has to be renewed.
			for time.Since(start) < 1500*time.Millisecond {
				status, _ := p.do(t, "GET", "/readyz", "", nil)
				require.Equal(t, http.StatusOK, status)
				probes.Add(1)
			}
		})
	}
	wg.Wait()
	pings := store.pings.Load() - before
	t.Logf("%d probes in %v: %d pings", probes.Load(), time.Since(start).Round(time.Millisecond), pings)
	require.Positive(t, pings, "the verdict is renewed")
	require.LessOrEqual(t, pings, int64(time.Since(start)/time.Second)+1)
}

// TestMemoryCeiling checks that ?memory above the operator's ceiling is
// refused naming it, and that the ceiling itself is accepted.
func TestMemoryCeiling(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, withConfig(func(c *frontend.Config) { c.SandboxMaxMemoryMB = 256 }))
	user, token := p.newUser(t, "mem")
	status, rep := p.do(t, "POST", "/u/"+user+"/fn/f?memory=4096", token, []byte(addSrc))
	requireRefusal(t, status, rep, http.StatusRequestEntityTooLarge, "too_large", "256 MB", "FAAS_SANDBOX_MAX_MEMORY_MB")
	p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/f?memory=256", token, []byte(addSrc))
}
