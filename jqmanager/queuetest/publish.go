package queuetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// subscribeBoth adds function g beside owner's f and subscribes both to
// topic.
func (fx *fixture) subscribeBoth(owner, topic string) {
	fx.t.Helper()
	fx.function(owner, "g", 0)
	for _, fn := range []string{"f", "g"} {
		_, err := fx.s.Subscribe(fx.ctx, faas.Subscription{Owner: owner, Function: fn, Topic: topic})
		require.NoError(fx.t, err)
	}
}

// jobs lists owner's jobs in the Store.
func (fx *fixture) jobs(owner string) []faas.Job {
	fx.t.Helper()
	jobs, err := fx.s.Jobs(fx.ctx, owner, faas.JobPage{})
	require.NoError(fx.t, err)
	return jobs
}

// testPublish: every subscriber runs once with [event]; a retry under the
// same key names the same jobs and creates none, also once they have left
// the queue; the key names one event; nobody subscribed is an empty list.
func testPublish(t *testing.T, fx *fixture) {
	fx.users("alice", "bob")
	fx.subscribeBoth("alice", "orders")
	event := json.RawMessage(`{"order":7}`)
	ids, err := fx.q.Publish(fx.ctx, "alice", "orders", event, "k1")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for i, fn := range []string{"f", "g"} {
		j, err := fx.s.Job(fx.ctx, ids[i])
		require.NoError(t, err)
		require.Equal(t, fn, j.Function)
		require.Equal(t, faas.TriggerTopic, j.Trigger)
		require.JSONEq(t, `[{"order":7}]`, string(j.Args))
	}

	again, err := fx.q.Publish(fx.ctx, "alice", "orders", event, "k1")
	require.NoError(t, err)
	require.Equal(t, ids, again)
	for range ids {
		require.NoError(t, fx.complete(fx.mustNext("w")))
	}
	again, err = fx.q.Publish(fx.ctx, "alice", "orders", json.RawMessage(`{ "order" : 7 }`), "k1")
	require.NoError(t, err, "spacing does not make another event")
	require.Equal(t, ids, again)
	_, ok := fx.nextSilent("w", 50*time.Millisecond)
	require.False(t, ok, "a retry ran a subscriber again")
	require.Len(t, fx.jobs("alice"), 2)
	_, err = fx.q.Publish(fx.ctx, "alice", "orders", json.RawMessage(`{"order":8}`), "k1")
	requireCode(t, err, faas.Conflict)

	other, err := fx.q.Publish(fx.ctx, "alice", "orders", event, "k2")
	require.NoError(t, err)
	require.Len(t, other, 2)
	require.NotContains(t, other, ids[0])
	for _, tc := range []struct{ owner, topic string }{{"alice", "audit"}, {"bob", "orders"}} {
		none, err := fx.q.Publish(fx.ctx, tc.owner, tc.topic, event, "k1")
		require.NoError(t, err)
		require.NotNil(t, none, "nobody subscribed answers an empty list, not null")
		require.Empty(t, none)
	}
	require.Empty(t, fx.jobs("bob"))
}

// testPublishInvalidInput: a topic outside the name rules, no key or an
// event that is not JSON is refused.
func testPublishInvalidInput(t *testing.T, fx *fixture) {
	fx.users("alice")
	for _, tc := range []struct {
		name, topic, key string
		event            json.RawMessage
	}{
		{"bad topic", "a/b", "k", json.RawMessage(`1`)},
		{"dots", "..", "k", json.RawMessage(`1`)},
		{"no key", "t", "", json.RawMessage(`1`)},
		{"not JSON", "t", "k", json.RawMessage(`{`)},
	} {
		_, err := fx.q.Publish(fx.ctx, "alice", tc.topic, tc.event, tc.key)
		require.Equal(t, faas.Invalid, faas.ErrorCode(err), "%s: %v", tc.name, err)
	}
}

// testPublishOverPendingLimit: a publish that would take its user past
// the pending limit creates none of its jobs; its retry at the limit,
// once its jobs have finished, answers them instead of being refused.
func testPublishOverPendingLimit(t *testing.T, fx *fixture) {
	fx.users("alice")
	fx.subscribeBoth("alice", "orders")
	for range MaxPendingPerUser - 1 {
		fx.submit("alice")
	}
	_, err := fx.q.Publish(fx.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	requireCode(t, err, faas.TooMany)
	require.Len(t, fx.jobs("alice"), MaxPendingPerUser-1, "a refused publish created a job")

	require.NoError(t, fx.complete(fx.mustNext("w")))
	ids, err := fx.q.Publish(fx.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for range MaxPendingPerUser {
		require.NoError(t, fx.complete(fx.mustNext("w")))
	}
	for range MaxPendingPerUser - 1 {
		fx.submit("alice")
	}
	again, err := fx.q.Publish(fx.ctx, "alice", "orders", json.RawMessage(`1`), "k")
	require.NoError(t, err)
	require.Equal(t, ids, again)
}

// testPublishChild: a worker publishes for the owner of a job it holds,
// and only while it holds it.
func testPublishChild(t *testing.T, fx *fixture) {
	fx.users("alice", "bob")
	fx.subscribeBoth("alice", "orders")
	fx.subscribeBoth("bob", "orders")
	fx.submit("alice")
	running := fx.mustNext("w1")

	ids, err := fx.q.PublishChild(fx.ctx, "w1", lease(running), "orders", json.RawMessage(`{"n":1}`), "k")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for _, id := range ids {
		j, err := fx.s.Job(fx.ctx, id)
		require.NoError(t, err)
		require.Equal(t, "alice", j.Owner)
		require.Equal(t, faas.TriggerTopic, j.Trigger)
	}
	for _, tc := range []struct {
		name   string
		worker string
		lease  faas.Lease
	}{
		{"another worker", "w2", lease(running)},
		{"an old attempt", "w1", faas.Lease{ID: running.ID, Attempt: running.Attempt - 1}},
		{"a job not running", "w1", faas.Lease{ID: ids[0], Attempt: 1}},
	} {
		_, err := fx.q.PublishChild(fx.ctx, tc.worker, tc.lease, "orders", json.RawMessage(`1`), "k2")
		require.Equal(t, faas.Conflict, faas.ErrorCode(err), "%s: %v", tc.name, err)
	}
	require.NoError(t, fx.complete(running))
	_, err = fx.q.PublishChild(fx.ctx, "w1", lease(running), "orders", json.RawMessage(`1`), "k3")
	requireCode(t, err, faas.Conflict)
	require.Empty(t, fx.jobs("bob"), "a worker published for another user")
}
