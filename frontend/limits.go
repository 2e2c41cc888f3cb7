package frontend

import (
	"context"
	"crypto/subtle"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// badTokenTTL is how long a well-formed token that matched no user is
// refused without asking the store again. A token cannot become valid
// later (this process draws them at random), so the only reason to keep
// it short is memory, which badTokenCacheSize bounds anyway.
const badTokenTTL = 2 * time.Second

// badTokenCacheSize bounds the negative cache; random tokens evict each
// other, never a real user's entry, which lives in another cache.
const badTokenCacheSize = 10000

// jobTallyTTL is how long a user's job data, as the store summed it, is
// trusted. Summing walks the user's retained jobs (about 3µs a job on
// SQLite), too much for every submission; in between, this process adds
// the arguments it submits, so only results, logs and other frontends'
// submissions go uncounted for up to a TTL. Past it, a tally that still
// leaves half the quota free after the submission is used while a new sum
// runs in the background (jobTallies.plan), so that the first submission
// after a quiet second does not wait for the sum.
const jobTallyTTL = time.Second

// jobTallySize bounds the users tallied at once.
const jobTallySize = 10000

// initLimits builds the limiters and caches the configuration turns on.
func (s *Server) initLimits() {
	cfg := s.cfg
	if cfg.RateLimitPerAddr > 0 {
		s.addrLimits = newLimiter(cfg.RateLimitPerAddr, burstOf(cfg.RateLimitPerAddr), maxBuckets)
	}
	if cfg.TokenLookupsPerAddr > 0 {
		s.lookups = newLimiter(cfg.TokenLookupsPerAddr, burstOf(cfg.TokenLookupsPerAddr), maxBuckets)
	}
	if n := cfg.MaxRegistrationsPerAddrHour; n > 0 {
		s.registrations = newLimiter(float64(n)/time.Hour.Seconds(), n, maxBuckets)
	}
	if cfg.HookRate > 0 {
		s.hookLimits = newLimiter(cfg.HookRate, burstOf(cfg.HookRate), maxBuckets)
	}
	s.badTokens = newTokenCache(badTokenTTL, badTokenCacheSize)
	s.jobTallies = newJobTallies(jobTallyTTL, jobTallySize)
}

// burstOf is the burst of the per-address limits: two seconds' worth.
func burstOf(rate float64) int { return max(1, int(math.Ceil(2*rate))) }

// overLimit takes a token from key's bucket in l and returns nil, or,
// with none left, err to be retried once the bucket has one again; reason
// names the limit in the metrics.
func overLimit(l *limiter, key, reason string, err *faas.Error) error {
	if allowed, wait := l.allow(key, time.Now()); !allowed {
		return &retryLater{err: err, after: wait, reason: reason}
	}
	return nil
}

// limitAddr answers 429 to a client address over its request rate. It
// runs before authentication, so it also bounds what guessing costs.
func (s *Server) limitAddr(c *gin.Context) {
	if s.addrLimits == nil {
		return
	}
	if err := overLimit(s.addrLimits, s.clientAddr(c), "addr_rate", faas.Errorf(faas.TooMany,
		"more than %g requests per second from one address (FAAS_RATE_LIMIT_PER_ADDR=%g); slow down",
		s.cfg.RateLimitPerAddr, s.cfg.RateLimitPerAddr)); err != nil {
		s.fail(c, err)
	}
}

// mayLookUp decides whether a token in no positive cache may be looked up
// in the store: not if it matched no user moments ago, nor if its client
// address has spent its lookups.
func (s *Server) mayLookUp(hash tokenKey, addr string) error {
	if _, bad := s.badTokens.get(hash, time.Now()); bad {
		return errBadToken
	}
	if s.lookups == nil {
		return nil
	}
	return overLimit(s.lookups, addr, "token_lookups", faas.Errorf(faas.TooMany,
		"more than %g unknown tokens per second from one address (FAAS_TOKEN_LOOKUPS_PER_ADDR=%g); slow down",
		s.cfg.TokenLookupsPerAddr, s.cfg.TokenLookupsPerAddr))
}

// rememberBad records a token that matched no user. Nothing forgets bad
// tokens, so the cache's generation never stands in the way.
func (s *Server) rememberBad(hash tokenKey) {
	s.badTokens.put(hash, "", time.Now(), s.badTokens.generation())
}

// isAdmin reports whether the request bears the operator's token. The
// comparison takes the same time wherever the tokens differ.
func (s *Server) isAdmin(c *gin.Context) bool {
	token, ok := bearer(c.GetHeader("Authorization"))
	return ok && s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}

// requireAdmin lets only the operator through, or everyone with auth off.
// A user's token is refused without a lookup: it would be refused anyway.
func (s *Server) requireAdmin(c *gin.Context) {
	if !s.cfg.authOn() || s.isAdmin(c) {
		return
	}
	code := faas.Forbidden
	if c.GetHeader("Authorization") == "" {
		code = faas.Unauthorized
	}
	s.fail(c, faas.Errorf(code, "%s needs the operator's token (FAAS_ADMIN_TOKEN)", c.Request.URL.Path))
}

// mayRegister decides whether the request may create a user at all: the
// operator always may; anyone else only with registration open and within
// their address's registrations per hour, which are counted whatever the
// outcome, so that probing for taken names costs the same.
func (s *Server) mayRegister(c *gin.Context) error {
	if s.isAdmin(c) {
		return nil
	}
	if s.cfg.registrationClosed() {
		return faas.Errorf(faas.Forbidden, "registration is closed: only the operator's token (FAAS_ADMIN_TOKEN) may create users")
	}
	if s.registrations == nil {
		return nil
	}
	n := s.cfg.MaxRegistrationsPerAddrHour
	return overLimit(s.registrations, s.clientAddr(c), "registrations", faas.Errorf(faas.TooMany,
		"more than %d registrations per hour from one address (FAAS_MAX_REGISTRATIONS_PER_ADDR_HOUR=%d); try again later", n, n))
}

// checkUserQuota refuses a registration once the platform holds MaxUsers.
// The caller holds s.registering, so that this process's concurrent
// registrations cannot all pass the count.
func (s *Server) checkUserQuota(ctx context.Context) error {
	limit := s.cfg.MaxUsers
	if limit == 0 {
		return nil
	}
	n, err := s.store.UserCount(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n >= limit {
		return faas.Errorf(faas.QuotaExceeded, "the platform has %d users, the most FAAS_MAX_USERS allows (%d)", n, limit)
	}
	return nil
}

// checkFunctionQuota refuses an upload of size bytes as owner's function
// name that would take the user over their function count or source
// bytes. The caller holds the user's upload lock, so that this process's
// concurrent uploads cannot all pass the check.
func (s *Server) checkFunctionQuota(ctx context.Context, owner, name string, size int) error {
	maxFns, maxBytes := s.cfg.MaxFunctionsPerUser, s.cfg.MaxSourceBytesPerUser
	if maxFns == 0 && maxBytes == 0 {
		return nil
	}
	u, err := s.store.Usage(ctx, owner)
	if err != nil {
		return fmt.Errorf("usage of %s: %w", owner, err)
	}
	fns, bytes := u.Functions+1, u.SourceBytes+int64(size)
	over := func() bool { return maxFns > 0 && fns > maxFns || maxBytes > 0 && bytes > maxBytes }
	if over() {
		// A replacement takes the place of the function it replaces; only
		// near a limit is it worth reading that function.
		old, err := s.store.Function(ctx, owner, name)
		switch {
		case err == nil:
			fns, bytes = fns-1, bytes-int64(len(old.Source))
		case faas.ErrorCode(err) != faas.NotFound:
			return fmt.Errorf("read function %s/%s: %w", owner, name, err)
		}
	}
	switch {
	case maxFns > 0 && fns > maxFns:
		return faas.Errorf(faas.QuotaExceeded, "user %s has %d functions, the most FAAS_MAX_FUNCTIONS_PER_USER allows (%d); delete one to make room",
			owner, u.Functions, maxFns)
	case maxBytes > 0 && bytes > maxBytes:
		return faas.Errorf(faas.QuotaExceeded, "this upload would bring the function sources of user %s to %d bytes, over FAAS_MAX_SOURCE_BYTES_PER_USER (%d bytes)",
			owner, bytes, maxBytes)
	}
	return nil
}

// checkJobQuota reserves room for args more bytes of owner's job data,
// refusing the submission if that would take the user past
// MaxJobBytesPerUser.
func (s *Server) checkJobQuota(ctx context.Context, owner string, args int) error {
	limit := s.cfg.MaxJobBytesPerUser
	if limit == 0 {
		return nil
	}
	switch sumNow, sumLater := s.jobTallies.plan(owner, int64(args), limit, time.Now()); {
	case sumNow:
		u, err := s.store.Usage(ctx, owner)
		if err != nil {
			return fmt.Errorf("usage of %s: %w", owner, err)
		}
		s.jobTallies.set(owner, u.JobBytes, time.Now())
	case sumLater:
		s.sumJobData(owner)
	}
	if kept, ok := s.jobTallies.reserve(owner, int64(args), limit); !ok {
		return faas.Errorf(faas.QuotaExceeded, "user %s keeps %d bytes of job arguments, results and logs; %d more would pass FAAS_MAX_JOB_BYTES_PER_USER (%d bytes): delete jobs or wait for them to be purged",
			owner, kept, args, limit)
	}
	return nil
}

// sumJobData renews owner's tally in the background, for the submissions
// after this one; Run waits for it before it returns.
func (s *Server) sumJobData(owner string) {
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		u, err := s.store.Usage(ctx, owner)
		if err != nil {
			// The next submission tries again.
			s.jobTallies.unplan(owner)
			s.log.Warn("sum job data", "user", owner, "err", err)
			return
		}
		s.jobTallies.set(owner, u.JobBytes, time.Now())
	})
}

// jobTallies is each user's job data: the store's sum, at most ttl old,
// plus the arguments this process has submitted since.
type jobTallies struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	users map[string]*jobTally
}

type jobTally struct {
	bytes  int64
	summed time.Time
	// summing is set while a sum runs in the background.
	summing bool
}

func newJobTallies(ttl time.Duration, max int) *jobTallies {
	return &jobTallies{ttl: ttl, max: max, users: make(map[string]*jobTally)}
}

// plan says how to check a submission of n more bytes against user's
// tally: as it is, after a sum (sumNow: none yet, or one older than ttl
// near the limit), or as it is while a sum runs in the background
// (sumLater: older than ttl, but with this submission at most half of
// limit, so that only more than half the quota written since the last
// sum could make it wrong). sumLater is answered once per sum; the
// submissions until it ends use the tally as it is.
func (jt *jobTallies) plan(user string, n, limit int64, now time.Time) (sumNow, sumLater bool) {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	t, ok := jt.users[user]
	switch {
	case !ok:
		return true, false
	case now.Sub(t.summed) < jt.ttl:
		return false, false
	case t.bytes+n > limit/2:
		return true, false
	case t.summing:
		return false, false
	}
	t.summing = true
	return false, true
}

// unplan records that the background sum of user's tally failed.
func (jt *jobTallies) unplan(user string) {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	if t, ok := jt.users[user]; ok {
		t.summing = false
	}
}

// set records the store's sum, making room first if needed: stale tallies
// go, then arbitrary ones, which only costs their users a sum.
func (jt *jobTallies) set(user string, bytes int64, now time.Time) {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	if _, ok := jt.users[user]; !ok && len(jt.users) >= jt.max {
		for u, t := range jt.users {
			if now.Sub(t.summed) >= jt.ttl || len(jt.users) >= jt.max {
				delete(jt.users, u)
			}
		}
	}
	jt.users[user] = &jobTally{bytes: bytes, summed: now}
}

// reserve adds n bytes to user's tally unless that would pass limit, and
// returns what the tally held before. Checking and adding under one lock
// keeps concurrent submissions from all passing.
func (jt *jobTallies) reserve(user string, n, limit int64) (int64, bool) {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	t, ok := jt.users[user]
	if !ok {
		// Evicted since it was set: count from nothing until the next sum.
		t = &jobTally{}
		jt.users[user] = t
	}
	if t.bytes+n > limit {
		return t.bytes, false
	}
	t.bytes += n
	return t.bytes - n, true
}

// stripedLocks serializes work per key on a fixed set of mutexes; keys
// that share one merely wait for each other.
type stripedLocks [64]sync.Mutex

func (l *stripedLocks) lock(key string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
