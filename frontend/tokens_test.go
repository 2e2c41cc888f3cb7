package frontend_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/faas"
)

// Short token bounds, so that the tests see a token outlive its TTL, or
// not, in seconds rather than minutes. The TTL leaves the watch, which
// asks for events every quarter of it, room for a slow round trip on a
// loaded machine.
const (
	testTokenTTL    = time.Second
	testTokenMaxAge = time.Minute
)

// pastTTL is long enough for an entry to outlive the TTL.
const pastTTL = testTokenTTL + testTokenTTL/4

// shortTokenBounds gives the frontend the test's token bounds.
func shortTokenBounds(c *frontend.Config) {
	frontend.ShortTokenBounds(c, testTokenTTL, testTokenMaxAge)
}

// TestTokenOutlivesTTLWhileTheQueueAnswers: while the frontend keeps up
// with the queue's events, a token is not looked up again after its TTL;
// once the JQ manager stops, the frontend can no longer prove it would
// hear of a revocation, and a token is looked up again a TTL after the
// last lookup, as if the events did not exist.
func TestTokenOutlivesTTLWhileTheQueueAnswers(t *testing.T) {
	t.Parallel()
	var store *countingStore
	p := startPlatform(t, counting(&store), withConfig(shortTokenBounds))
	user, token := p.newUser(t, "idle")
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	looked := store.byToken.Load()

	time.Sleep(pastTTL)
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.Equal(t, looked, store.byToken.Load(), "looked up again past the TTL while the queue answered")

	p.stopJQ()
	// The watch caught up last before the stop: a TTL later nothing
	// vouches for the entry, now older than that.
	time.Sleep(testTokenTTL)
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.Equal(t, looked+1, store.byToken.Load(), "not looked up again with the queue stopped")
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.Equal(t, looked+1, store.byToken.Load(), "a fresh entry lasts its TTL")
	time.Sleep(testTokenTTL)
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.Equal(t, looked+2, store.byToken.Load(), "an entry outlived its TTL with the queue stopped")
}

// TestRevokedTokenFailsAtOncePastTheTTL: a token another frontend has
// kept past its TTL, on the strength of the queue's events, stops working
// there as soon as its user is deleted or the token replaced.
func TestRevokedTokenFailsAtOncePastTheTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
	}{
		{"delete user", "DELETE", ""},
		{"rotate token", "POST", "/token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, withConfig(shortTokenBounds))
			var cfg frontend.Config
			shortTokenBounds(&cfg)
			otherStore := &countingStore{Store: p.store}
			other := p.frontendOn(t, cfg, otherStore, p.queue)

			user, token := p.newUser(t, "revoked")
			other.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			time.Sleep(pastTTL)
			other.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			require.EqualValues(t, 1, otherStore.byToken.Load(), "the other frontend looked the token up again")

			p.expect(t, http.StatusOK, tc.method, "/u/"+user+tc.path, token, nil)
			// Far below the longest age the entry had left: only the
			// event can have voided it.
			require.Eventually(t, func() bool {
				status, _ := other.do(t, "GET", "/u/"+user+"/fn", token, nil)
				return status == http.StatusUnauthorized
			}, time.Second, 5*time.Millisecond, "the revoked token still works on the other frontend")
		})
	}
}

// deafQueue is the real queue, refusing the first calls that tell it of
// void tokens (refuse of them), as a queue this frontend cannot reach
// for a moment would.
type deafQueue struct {
	faas.JobQueue
	refuse atomic.Int64
}

func (q *deafQueue) deaf() error {
	if q.refuse.Add(-1) >= 0 {
		return faas.Errorf(faas.Unavailable, "queue unreachable for the test")
	}
	return nil
}

func (q *deafQueue) ForgetUser(ctx context.Context, name string) error {
	if err := q.deaf(); err != nil {
		return err
	}
	return q.JobQueue.ForgetUser(ctx, name)
}

func (q *deafQueue) RevokeTokens(ctx context.Context, name string) error {
	if err := q.deaf(); err != nil {
		return err
	}
	return q.JobQueue.RevokeTokens(ctx, name)
}

// TestMissedRevocationIsToldAgain: when the frontend that deletes a user
// or replaces a token cannot tell the queue, it tells it again until the
// queue hears, so another frontend that keeps the token past its TTL
// stops honouring it in moments rather than at the token's longest age.
func TestMissedRevocationIsToldAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
	}{
		{"delete user", "DELETE", ""},
		{"rotate token", "POST", "/token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var store *countingStore
			p := startPlatform(t, counting(&store), withConfig(shortTokenBounds))
			var cfg frontend.Config
			shortTokenBounds(&cfg)
			queue := &deafQueue{JobQueue: p.queue}
			// The request's own try and the first one behind it.
			queue.refuse.Store(2)
			deaf := p.frontendOn(t, cfg, p.store, queue)

			user, token := p.newUser(t, "missed")
			p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			looked := store.byToken.Load()
			time.Sleep(pastTTL)
			p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			require.Equal(t, looked, store.byToken.Load(), "looked the token up again past the TTL")

			deaf.expect(t, http.StatusOK, tc.method, "/u/"+user+tc.path, token, nil)
			// Far below the longest age the entry had left.
			require.Eventually(t, func() bool {
				status, _ := p.do(t, "GET", "/u/"+user+"/fn", token, nil)
				return status == http.StatusUnauthorized
			}, 5*time.Second, 5*time.Millisecond, "the revoked token still works on the frontend the queue could tell")
			require.Negative(t, queue.refuse.Load(), "the queue was not told again")
		})
	}
}
