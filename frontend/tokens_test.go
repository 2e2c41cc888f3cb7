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

// TestRevokedTokenFailsPastTheTTL: a token one frontend has kept past its
// TTL, on the strength of the queue's events, stops working there as soon
// as another frontend deletes its user or replaces it; and in moments,
// rather than at the token's longest age, when the queue missed the
// revoking frontend's first tries to tell it, since it tries again.
func TestRevokedTokenFailsPastTheTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
		// missed is how many tries to tell the queue fail.
		missed int64
		within time.Duration
	}{
		{"delete user", "DELETE", "", 0, time.Second},
		{"rotate token", "POST", "/token", 0, time.Second},
		// The request's own try and the first one behind it.
		{"delete user, the queue missed it", "DELETE", "", 2, 5 * time.Second},
		{"rotate token, the queue missed it", "POST", "/token", 2, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, withConfig(shortTokenBounds))
			var cfg frontend.Config
			shortTokenBounds(&cfg)
			keeperStore := &countingStore{Store: p.store}
			keeper := p.frontendOn(t, cfg, keeperStore, p.queue)
			queue := &deafQueue{JobQueue: p.queue}
			queue.refuse.Store(tc.missed)
			revoker := p.frontendOn(t, cfg, p.store, queue)

			user, token := p.newUser(t, "revoked")
			keeper.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			time.Sleep(pastTTL)
			keeper.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
			require.EqualValues(t, 1, keeperStore.byToken.Load(), "the keeper looked the token up again past the TTL")

			revoker.expect(t, http.StatusOK, tc.method, "/u/"+user+tc.path, token, nil)
			// Far below the longest age the entry had left: only the
			// queue's event can have voided it.
			require.Eventually(t, func() bool {
				status, _ := keeper.do(t, "GET", "/u/"+user+"/fn", token, nil)
				return status == http.StatusUnauthorized
			}, tc.within, 5*time.Millisecond, "the revoked token still works on the keeper")
			require.Negative(t, queue.refuse.Load(), "the queue never heard")
		})
	}
}
