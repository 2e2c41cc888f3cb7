package frontend

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// maxBuckets bounds the limiter's memory: about 100 bytes a bucket.
const maxBuckets = 100_000

// minSweepGap keeps a limiter under a flood of new keys from scanning all
// of its buckets on every request.
const minSweepGap = time.Second

// limiter is a token bucket per key: each holds up to burst tokens, refilled
// at rate per second, and a request takes one. A bucket left alone until it
// is full again behaves exactly like a new one, so it is dropped then; that
// keeps memory proportional to the keys active in the last fill time.
type limiter struct {
	rate  float64
	burst float64
	// fill is how long an empty bucket takes to fill up.
	fill time.Duration
	max  int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{
		rate:    rate,
		burst:   float64(burst),
		fill:    seconds(float64(burst) / rate),
		max:     max,
		buckets: make(map[string]*bucket),
	}
}

// allow takes a token from key's bucket at now. Without one it takes
// nothing and returns how long until one is there.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, seconds((1 - b.tokens) / l.rate)
}

// seconds converts to a Duration, saturating where a tiny rate would
// overflow it (a float converted to an int64 out of range is undefined).
func seconds(s float64) time.Duration {
	return time.Duration(min(s*float64(time.Second), math.MaxInt64/2))
}

// makeRoom drops the buckets that are full again, at most once per fill
// time (buckets then live at most two fill times past their last use),
// and if the limiter is still full, an arbitrary bucket: that only hands
// its key a fresh burst. Callers hold mu.
func (l *limiter) makeRoom(now time.Time) {
	if gap := now.Sub(l.swept); gap >= max(l.fill, minSweepGap) || len(l.buckets) >= l.max && gap >= minSweepGap {
		l.swept = now
		for k, b := range l.buckets {
			if now.Sub(b.at) >= l.fill {
				delete(l.buckets, k)
			}
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			return
		}
		delete(l.buckets, k)
	}
}

// limitRate answers 429 to a caller over its request rate: an
// authenticated caller is counted as its user, whatever address it comes
// from; anyone else (registering, or with auth off) by client address.
func (s *Server) limitRate(c *gin.Context) {
	if s.limits == nil {
		return
	}
	key := "user " + c.GetString(userKey)
	if key == "user " {
		key = "addr " + s.clientAddr(c)
	}
	if err := overLimit(s.limits, key, "user_rate", faas.Errorf(faas.TooMany,
		"more than %g requests per second (bursts of %d); slow down", s.cfg.RateLimit, s.cfg.RateBurst)); err != nil {
		s.fail(c, err)
	}
}

// clientAddr is the address a request comes from: the connection's peer,
// or, when that peer is one of the trusted reverse proxies, the last
// X-Forwarded-For hop that is not. Headers from anyone else are ignored:
// anyone can write them, and they would let a client pick a fresh bucket
// for every request. An IPv6 client counts as its /64, the block one host
// usually holds.
func (s *Server) clientAddr(c *gin.Context) string {
	addr, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return c.RemoteIP()
	}
	if s.trusts(addr) {
		hops := strings.Split(strings.Join(c.Request.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				// What lies beyond a garbled hop is unknowable: count the
				// request as the last proxy that forwarded it.
				break
			}
			addr = hop
			if !s.trusts(hop) {
				break
			}
		}
	}
	if addr.Is6() && !addr.Is4In6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.Unmap().String()
}

// trusts reports whether addr is one of the trusted reverse proxies.
func (s *Server) trusts(addr netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// pendingRetryAfter is the Retry-After of a submission refused because the
// user has too many jobs pending. A slot frees when any of them finishes;
// the queue does not say when that will be, and a second is about the
// time a typical job takes.
const pendingRetryAfter = time.Second

// retryLater is an error that knows when the request may be tried again.
type retryLater struct {
	err   error
	after time.Duration
	// reason names the limit for faas_http_rejected_total.
	reason string
}

func (e *retryLater) Error() string { return fmt.Sprintf("%v (retry after %v)", e.err, e.after) }
func (e *retryLater) Unwrap() error { return e.err }

// retryAfter is the Retry-After header for err, a too_many_requests error:
// whole seconds rounded up, at least one, since zero would invite an
// immediate retry that is bound to fail again.
func retryAfter(err error) string {
	wait := pendingRetryAfter
	if rl := (*retryLater)(nil); errors.As(err, &rl) {
		wait = rl.after
	}
	return strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10)
}
