package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTopicCommands(t *testing.T) {
	t.Parallel()
	var published, key, unsubscribed string
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /u/alice/topics/orders": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			published, key = string(b), r.Header.Get("Idempotency-Key")
			res(202, `["6ba7b810-9dad-11d1-80b4-00c04fd430c8","6ba7b811-9dad-11d1-80b4-00c04fd430c8"]`)(w, r)
		},
		"POST /u/alice/topics/nobody":               res(202, `[]`),
		"GET /u/alice/topics":                       res(200, `[{"topic":"orders","functions":["audit","ship"]}]`),
		"PUT /u/alice/fn/ship/subscriptions/orders": res(201, `"orders"`),
		"PUT /u/alice/fn/ship/subscriptions/again":  res(200, `"again"`),
		"GET /u/alice/fn/ship/subscriptions":        res(200, `[{"topic":"orders","function":"ship","created":"2026-01-02T03:04:05Z"}]`),
		"DELETE /u/alice/fn/ship/subscriptions/orders": func(w http.ResponseWriter, r *http.Request) {
			unsubscribed = r.URL.Path
			res(200, `"orders"`)(w, r)
		},
	})

	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("topic", "publish", "orders", `{"id": 7}`, "--idempotency-key", "order-7"))
	require.Equal(t, "6ba7b810-9dad-11d1-80b4-00c04fd430c8\n6ba7b811-9dad-11d1-80b4-00c04fd430c8\n", tf.out.String())
	require.JSONEq(t, `{"id": 7}`, published)
	require.Equal(t, "order-7", key)

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("topic", "publish", "nobody", `1`, "-o", "json"))
	require.JSONEq(t, `[]`, tf.out.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitUsage, tf.main("topic", "publish", "orders", `{id: 7}`), "an event that is not JSON is not sent")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("topic", "ls"))
	lines := strings.Split(strings.TrimSpace(tf.out.String()), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^TOPIC\s+SUBSCRIBERS$`, lines[0])
	require.Regexp(t, `^orders\s+audit,ship$`, lines[1])

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "sub", "add", "ship", "orders"))
	require.Equal(t, "subscribed ship to orders\n", tf.out.String())
	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "sub", "add", "ship", "again"))
	require.Equal(t, "ship was already subscribed to again\n", tf.out.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "sub", "ls", "ship"))
	lines = strings.Split(strings.TrimSpace(tf.out.String()), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^orders\s+\S+ \S+$`, lines[1])

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "sub", "rm", "ship", "orders"))
	require.Equal(t, "/u/alice/fn/ship/subscriptions/orders", unsubscribed)

	tf = loggedIn(t, url)
	require.Equal(t, ExitUsage, tf.main("fn", "sub", "add", "ship"), "add needs the topic")
}
