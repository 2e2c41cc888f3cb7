package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFnScheduleCommands(t *testing.T) {
	t.Parallel()
	const view = `{"function":"report","cron":"0 9 * * 1-5","timezone":"Europe/Madrid","args":[1,"x"],
		"updated":"2026-01-02T03:04:05Z","last_tick":null,"next":["2026-01-05T08:00:00Z","2026-01-06T08:00:00Z"]}`
	var put map[string]any
	var removed bool
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /u/alice/fn/report/schedule": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			require.NoError(t, json.Unmarshal(b, &put))
			res(200, view)(w, r)
		},
		"GET /u/alice/fn/report/schedule": res(200, view),
		"DELETE /u/alice/fn/report/schedule": func(w http.ResponseWriter, r *http.Request) {
			removed = true
			res(200, `"report"`)(w, r)
		},
	})

	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "schedule", "set", "report", "0 9 * * 1-5", "1", "x", "--tz", "Europe/Madrid"))
	require.Equal(t, map[string]any{"cron": "0 9 * * 1-5", "timezone": "Europe/Madrid", "args": []any{1.0, "x"}}, put,
		"each argument JSON if it is, else a string, as faas run sends them")
	require.Contains(t, tf.out.String(), "0 9 * * 1-5 (Europe/Madrid)")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "schedule", "get", "report"))
	out := tf.out.String()
	require.Contains(t, out, "last tick never")
	require.Equal(t, 2, strings.Count(out, "2026-01-0"), "both next fire times: %s", out)

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "schedule", "get", "report", "-o", "json"))
	require.JSONEq(t, view, tf.out.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "schedule", "rm", "report"))
	require.True(t, removed)

	tf = loggedIn(t, url)
	require.Equal(t, ExitUsage, tf.main("fn", "schedule", "set", "report"), "set needs the cron expression")
	tf = loggedIn(t, url)
	require.Equal(t, ExitUsage, tf.main("fn", "schedule", "set", "report", "@hourly", "1", "--json", "[1]"), "positional and --json arguments at once")
}
