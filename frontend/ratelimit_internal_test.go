package frontend

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	l := newLimiter(10, 3, 100) // a token every 100ms, three at once
	for i := range 3 {
		allowed, _ := l.allow("alice", t0)
		require.True(t, allowed, "request %d of the burst", i)
	}
	allowed, wait := l.allow("alice", t0)
	require.False(t, allowed, "the burst is spent")
	require.Equal(t, 100*time.Millisecond, wait)
	allowed, wait = l.allow("alice", t0.Add(40*time.Millisecond))
	require.False(t, allowed)
	require.InDelta(t, float64(60*time.Millisecond), float64(wait), float64(time.Microsecond), "the wait counts the partial refill")

	allowed, _ = l.allow("bob", t0)
	require.True(t, allowed, "another key has its own bucket")

	allowed, _ = l.allow("alice", t0.Add(100*time.Millisecond))
	require.True(t, allowed, "one token refilled")
	allowed, _ = l.allow("alice", t0.Add(100*time.Millisecond))
	require.False(t, allowed, "and only one")

	// A long pause refills to the burst, no further.
	later := t0.Add(time.Hour)
	for range 3 {
		allowed, _ := l.allow("alice", later)
		require.True(t, allowed)
	}
	allowed, _ = l.allow("alice", later)
	require.False(t, allowed)
}

func TestLimiterBoundsMemory(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	l := newLimiter(100, 200, 1000) // fills up in 2s
	require.Equal(t, 2*time.Second, l.fill)
	for i := range 500 {
		l.allow(fmt.Sprint("idle-", i), t0)
	}
	l.allow("busy", t0.Add(time.Second))
	// A fill time later the idle buckets are full again, like new ones,
	// and go; the one used since stays with its state.
	l.allow("new", t0.Add(2*time.Second))
	require.Len(t, l.buckets, 2)
	require.Contains(t, l.buckets, "busy")

	// Past the bound, arbitrary buckets make room.
	for i := range 3000 {
		l.allow(fmt.Sprint("flood-", i), t0.Add(2*time.Second))
		require.LessOrEqual(t, len(l.buckets), 1000)
	}
}

func TestLimiterTinyRate(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	l := newLimiter(1e-12, 1, 10)
	require.Positive(t, l.fill, "saturated, not overflowed")
	allowed, _ := l.allow("a", t0)
	require.True(t, allowed)
	allowed, wait := l.allow("a", t0.Add(time.Hour))
	require.False(t, allowed)
	require.Greater(t, wait, 100*365*24*time.Hour)
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tooMany := faas.Errorf(faas.TooMany, "slow down")
	for wait, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 90 * time.Second: "90",
	} {
		require.Equal(t, want, retryAfter(fmt.Errorf("wrapped: %w", &retryLater{err: tooMany, after: wait})), wait)
	}
	require.Equal(t, "1", retryAfter(fmt.Errorf("submit: %w", tooMany)), "the pending limit's default")
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	// No trusted proxies: the peer, whatever the headers say.
	direct := &Server{}
	for remote, want := range map[string]string{
		"192.0.2.7:1234":              "192.0.2.7",
		"[::ffff:192.0.2.7]:1234":     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:1234": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1234": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:1234":      "2001:db8:1:3::/64",
	} {
		require.Equal(t, want, direct.clientAddr(request(remote, "203.0.113.9")), remote)
	}

	// Behind trusted proxies: the last hop that is not one of them.
	cfg := Config{TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1"}}
	proxies, err := cfg.proxies()
	require.NoError(t, err)
	proxied := &Server{proxies: proxies}
	for _, tc := range []struct{ remote, forwarded, want string }{
		{"10.1.2.3:80", "203.0.113.9", "203.0.113.9"},
		{"[::ffff:10.1.2.3]:80", "203.0.113.9", "203.0.113.9"},
		// A client's own X-Forwarded-For comes first; the proxies append.
		{"10.1.2.3:80", "198.51.100.1, 203.0.113.9, 192.0.2.1", "203.0.113.9"},
		{"10.1.2.3:80", "2001:db8:1:2::7", "2001:db8:1:2::/64"},
		{"10.1.2.3:80", "", "10.1.2.3"},
		{"10.1.2.3:80", "203.0.113.9, garbage, 10.0.0.9", "10.0.0.9"},
		{"10.1.2.3:80", "10.0.0.8, 10.0.0.9", "10.0.0.8"},
		// Not a trusted proxy: its headers are ignored.
		{"192.0.2.7:80", "203.0.113.9", "192.0.2.7"},
	} {
		require.Equal(t, tc.want, proxied.clientAddr(request(tc.remote, tc.forwarded)), "%+v", tc)
	}

	_, err = Config{TrustedProxies: []string{"10.0.0.0/33"}}.proxies()
	require.ErrorContains(t, err, `FAAS_TRUSTED_PROXIES holds "10.0.0.0/33"`)
}

// request is a request from remote carrying X-Forwarded-For and
// X-Real-Ip headers of forwarded, if any.
func request(remote, forwarded string) *gin.Context {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/u/a", nil)
	c.Request.RemoteAddr = remote
	if forwarded != "" {
		c.Request.Header.Set("X-Forwarded-For", forwarded)
		c.Request.Header.Set("X-Real-Ip", forwarded)
	}
	return c
}
