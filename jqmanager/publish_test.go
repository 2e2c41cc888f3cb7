package jqmanager_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// subscribeBoth adds function g beside the rig's f and subscribes both to
// topic.
func (r *rig) subscribeBoth(owner, topic string) {
	r.t.Helper()
	_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: owner, Name: "g", Source: "x => x", Timeout: time.Second})
	require.NoError(r.t, err)
	for _, fn := range []string{"f", "g"} {
		_, err := r.store.Subscribe(r.ctx, faas.Subscription{Owner: owner, Function: fn, Topic: topic})
		require.NoError(r.t, err)
	}
}

func TestPublishRunsEverySubscriberOnce(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		r.subscribeBoth("alice", "orders")
		event := json.RawMessage(`{"order":7}`)
		ids, err := q.Publish(r.ctx, "alice", "orders", event, "k1")
		require.NoError(t, err)
		require.Len(t, ids, 2)
		for i, fn := range []string{"f", "g"} {
			j, err := r.store.Job(r.ctx, ids[i])
			require.NoError(t, err)
			require.Equal(t, fn, j.Function)
			require.Equal(t, faas.TriggerTopic, j.Trigger)
			require.JSONEq(t, `[{"order":7}]`, string(j.Args))
		}

		// A retry under the same key names the same jobs and queues no
		// new one, also once they have left the queue.
		again, err := q.Publish(r.ctx, "alice", "orders", event, "k1")
		require.NoError(t, err)
		require.Equal(t, ids, again)
		for range ids {
			j, ok := r.next("w", time.Second)
			require.True(t, ok)
			require.NoError(t, r.complete(j))
		}
		again, err = q.Publish(r.ctx, "alice", "orders", event, "k1")
		require.NoError(t, err)
		require.Equal(t, ids, again)
		_, ok := r.next("w", 50*time.Millisecond)
		require.False(t, ok, "a retry ran a subscriber again")

		// The key names the event: spacing aside, another event under it
		// is refused.
		again, err = q.Publish(r.ctx, "alice", "orders", json.RawMessage(`{ "order" : 7 }`), "k1")
		require.NoError(t, err)
		require.Equal(t, ids, again)
		_, err = q.Publish(r.ctx, "alice", "orders", json.RawMessage(`{"order":8}`), "k1")
		require.Equal(t, faas.Conflict, faas.ErrorCode(err), "%v", err)

		// Another key is another publish; another topic, or user, has
		// nobody subscribed.
		other, err := q.Publish(r.ctx, "alice", "orders", event, "k2")
		require.NoError(t, err)
		require.Len(t, other, 2)
		require.NotContains(t, other, ids[0])
		none, err := q.Publish(r.ctx, "alice", "audit", event, "k1")
		require.NoError(t, err)
		require.Empty(t, none)
		require.NotNil(t, none, "nobody subscribed answers an empty list, not null")
		none, err = q.Publish(r.ctx, "bob", "orders", event, "k1")
		require.NoError(t, err)
		require.Empty(t, none)
	}, "alice", "bob")
}

func TestPublishRefusesBadInput(t *testing.T) {
	t.Parallel()
	eachQueue(t, func(t *testing.T, r *rig, q faas.JobQueue) {
		for _, tc := range []struct {
			name, topic, key string
			event            json.RawMessage
		}{
			{"bad topic", "a/b", "k", json.RawMessage(`1`)},
			{"dots", "..", "k", json.RawMessage(`1`)},
			{"no key", "t", "", json.RawMessage(`1`)},
			{"not JSON", "t", "k", json.RawMessage(`{`)},
		} {
			_, err := q.Publish(r.ctx, "alice", tc.topic, tc.event, tc.key)
			require.Equal(t, faas.Invalid, faas.ErrorCode(err), "%s: %v", tc.name, err)
		}
	}, "alice")
}

func TestPublishOverPendingLimitIsRefusedWhole(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxPendingPerUser = 3
	r := newRig(t, cfg, "alice")
	r.subscribeBoth("alice", "orders")
	r.submit("alice")
	r.submit("alice")
	// Two more jobs would make four: neither is created.
	_, err := r.m.Publish(r.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	require.Equal(t, faas.TooMany, faas.ErrorCode(err), "%v", err)
	jobs, err := r.store.Jobs(r.ctx, "alice", faas.JobPage{})
	require.NoError(t, err)
	require.Len(t, jobs, 2, "a refused publish created a job")

	// With room, it goes through; its retry at the limit, once its jobs
	// have finished, answers them again instead of being refused.
	j, ok := r.next("w", time.Second)
	require.True(t, ok)
	require.NoError(t, r.complete(j))
	ids, err := r.m.Publish(r.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for range 3 {
		j, ok := r.next("w", time.Second)
		require.True(t, ok)
		require.NoError(t, r.complete(j))
	}
	r.submit("alice")
	r.submit("alice")
	again, err := r.m.Publish(r.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	require.NoError(t, err)
	require.Equal(t, ids, again)
}
