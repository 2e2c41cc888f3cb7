package frontend_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/frontend"
)

// publish posts event to user's topic, with an Idempotency-Key unless key
// is empty.
func (p *platform) publish(t testing.TB, user, token, topic, event, key string) (int, reply) {
	t.Helper()
	h := bearer(token)
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	return p.doHeader(t, "POST", "/u/"+user+"/topics/"+topic, []byte(event), h)
}

// published is publish for a request that must be accepted; it returns
// the job ids.
func (p *platform) published(t testing.TB, user, token, topic, event, key string) []string {
	t.Helper()
	status, rep := p.publish(t, user, token, topic, event, key)
	require.Equal(t, http.StatusAccepted, status, "publish to %s: res %s", topic, rep.Res)
	var ids []string
	require.NoError(t, json.Unmarshal(rep.Res, &ids), "res %s", rep.Res)
	require.NotNil(t, ids, "the answer is a list, even an empty one")
	return ids
}

func TestTopicFanOutAndIdempotentRetry(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	other := p.secondFrontend(t)
	user, token := p.newUser(t, "topics")
	c := p.rest().As(user, token)
	ctx := context.Background()
	for _, fn := range []string{"audit", "ship"} {
		p.upload(t, user, token, fn, echoEvent)
		p.expect(t, http.StatusCreated, "PUT", "/u/"+user+"/fn/"+fn+"/subscriptions/orders", token, nil)
	}
	p.expect(t, http.StatusOK, "PUT", "/u/"+user+"/fn/ship/subscriptions/orders", token, nil)
	created, err := c.Subscribe(ctx, "ship", "returns")
	require.NoError(t, err)
	require.True(t, created)

	topics, err := c.Topics(ctx)
	require.NoError(t, err)
	require.Equal(t, []frontend.TopicView{{Topic: "orders", Functions: []string{"audit", "ship"}}, {Topic: "returns", Functions: []string{"ship"}}}, topics)
	subs, err := c.Subscriptions(ctx, "ship")
	require.NoError(t, err)
	require.Len(t, subs, 2)
	require.Equal(t, "orders", subs[0].Topic)
	require.Equal(t, "returns", subs[1].Topic)

	// Every subscriber runs once with [event], its job marked as a topic's.
	ids := p.published(t, user, token, "orders", `{"order": 7}`, "order-7")
	require.Len(t, ids, 2)
	for i, fn := range []string{"audit", "ship"} {
		p.awaitJob(t, token, ids[i])
		info := p.info(t, token, ids[i])
		require.Equal(t, fn, info.Function)
		require.Equal(t, "topic", info.Trigger)
		res, err := c.Result(ctx, ids[i])
		require.NoError(t, err)
		require.JSONEq(t, `{"order": 7}`, string(res))
	}

	// A retry with the key, through either frontend, names the same jobs
	// and runs nothing again.
	require.Equal(t, ids, p.published(t, user, token, "orders", `{"order": 7}`, "order-7"))
	require.Equal(t, ids, other.published(t, user, token, "orders", `{"order": 7}`, "order-7"))
	again, err := c.Publish(ctx, "orders", json.RawMessage(`{"order": 7}`), "order-7")
	require.NoError(t, err)
	require.Equal(t, ids, again)
	status, rep := p.publish(t, user, token, "orders", `{"order": 8}`, "order-7")
	require.Equal(t, http.StatusConflict, status, "a key reused for another event: res %s", rep.Res)
	require.Len(t, p.listJobs(t, user, token, "").Jobs, 2)

	// Without a key each publish is new.
	fresh := p.published(t, user, token, "orders", `1`, "")
	require.Len(t, fresh, 2)
	require.NotEqual(t, fresh, p.published(t, user, token, "orders", `1`, ""))

	// Unsubscribing stops delivery; deleting a function ends its
	// subscriptions, and with them the topic.
	require.NoError(t, c.Unsubscribe(ctx, "audit", "orders"))
	ids = p.published(t, user, token, "orders", `2`, "")
	require.Len(t, ids, 1)
	require.Equal(t, "ship", p.info(t, token, ids[0]).Function)
	p.expect(t, http.StatusOK, "DELETE", "/u/"+user+"/fn/ship", token, nil)
	require.Empty(t, p.published(t, user, token, "orders", `3`, ""))
	topics, err = c.Topics(ctx)
	require.NoError(t, err)
	require.Empty(t, topics)
}

func TestTopicBadInput(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "topicbad")
	other, otherToken := p.newUser(t, "topicother")
	p.upload(t, user, token, "echo", echoEvent)
	p.expect(t, http.StatusCreated, "PUT", "/u/"+user+"/fn/echo/subscriptions/orders", token, nil)
	long := strings.Repeat("t", 65)

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"topic name with a dot only", "PUT", "/u/" + user + "/fn/echo/subscriptions/..", token, "", http.StatusBadRequest},
		{"topic name too long", "PUT", "/u/" + user + "/fn/echo/subscriptions/" + long, token, "", http.StatusBadRequest},
		{"topic name with a space", "PUT", "/u/" + user + "/fn/echo/subscriptions/a%20b", token, "", http.StatusBadRequest},
		{"publish to a bad name", "POST", "/u/" + user + "/topics/%C3%B1", token, "{}", http.StatusBadRequest},
		{"publish to a name with an escaped slash", "POST", "/u/" + user + "/topics/a%2Fb", token, "{}", http.StatusBadRequest},
		{"subscribe a name with an escaped slash", "PUT", "/u/" + user + "/fn/echo/subscriptions/a%2Fb", token, "", http.StatusBadRequest},
		{"unsubscribe a bad name", "DELETE", "/u/" + user + "/fn/echo/subscriptions/" + long, token, "", http.StatusBadRequest},
		{"subscribe an unknown function", "PUT", "/u/" + user + "/fn/nope/subscriptions/orders", token, "", http.StatusNotFound},
		{"list an unknown function's", "GET", "/u/" + user + "/fn/nope/subscriptions", token, "", http.StatusNotFound},
		{"unsubscribe what is not subscribed", "DELETE", "/u/" + user + "/fn/echo/subscriptions/returns", token, "", http.StatusNotFound},
		{"subscribe another user's function", "PUT", "/u/" + user + "/fn/echo/subscriptions/mine", otherToken, "", http.StatusForbidden},
		{"publish to another user's topic", "POST", "/u/" + user + "/topics/orders", otherToken, "{}", http.StatusForbidden},
		{"list another user's topics", "GET", "/u/" + user + "/topics", otherToken, "", http.StatusForbidden},
		{"unsubscribe another user's function", "DELETE", "/u/" + user + "/fn/echo/subscriptions/orders", otherToken, "", http.StatusForbidden},
		{"no token", "POST", "/u/" + user + "/topics/orders", "", "{}", http.StatusUnauthorized},
		{"oversized event", "POST", "/u/" + user + "/topics/orders", token, `"` + strings.Repeat("x", 1<<20) + `"`, http.StatusRequestEntityTooLarge},
		{"event not JSON", "POST", "/u/" + user + "/topics/orders", token, "{", http.StatusBadRequest},
		{"empty event", "POST", "/u/" + user + "/topics/orders", token, "", http.StatusBadRequest},
		{"subscribing another user's topic is subscribing one's own", "PUT", "/u/" + other + "/fn/echo/subscriptions/orders", otherToken, "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rep := p.do(t, tc.method, tc.path, tc.token, []byte(tc.body))
			require.Equal(t, tc.status, status, "res %s", rep.Res)
		})
	}
	status, rep := p.publish(t, user, token, "orders", "{}", strings.Repeat("k", 256))
	require.Equal(t, http.StatusBadRequest, status, "a key too long: res %s", rep.Res)

	// None of that ran or changed anything.
	require.Empty(t, p.listJobs(t, user, token, "").Jobs)
	require.Empty(t, p.listJobs(t, other, otherToken, "").Jobs)
	topics, err := p.rest().As(user, token).Topics(context.Background())
	require.NoError(t, err)
	require.Equal(t, []frontend.TopicView{{Topic: "orders", Functions: []string{"echo"}}}, topics)

	// Nobody subscribed: accepted, and nothing runs.
	require.Empty(t, p.published(t, user, token, "nobody", `{"a": 1}`, ""))
	require.Empty(t, p.published(t, other, otherToken, "orders", `{"a": 1}`, ""))
}

// TestPublishOverPendingLimit: a publish that would take the user past
// the pending limit is refused whole, not half done.
func TestPublishOverPendingLimit(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, maxPending(1))
	user, token := p.newUser(t, "topicfull")
	for _, fn := range []string{"a", "b"} {
		p.upload(t, user, token, fn, echoEvent)
		p.expect(t, http.StatusCreated, "PUT", "/u/"+user+"/fn/"+fn+"/subscriptions/orders", token, nil)
	}
	status, rep := p.publish(t, user, token, "orders", "{}", "k")
	require.Equal(t, http.StatusTooManyRequests, status, "res %s", rep.Res)
	require.Empty(t, p.listJobs(t, user, token, "").Jobs)
}
