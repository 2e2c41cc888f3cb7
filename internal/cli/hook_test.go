package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFnHookCommands(t *testing.T) {
	t.Parallel()
	var revoked string
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /u/alice/fn/echo/hooks": res(201, `{"id":"3f1c9a0be27d4c55","function":"echo","created":"2026-01-02T03:04:05Z","url":"/hook/9b2f6e0c4d8a17f35e6b0a92c4d1e873"}`),
		"GET /u/alice/fn/echo/hooks":  res(200, `[{"id":"3f1c9a0be27d4c55","function":"echo","created":"2026-01-02T03:04:05Z"}]`),
		"DELETE /u/alice/fn/echo/hooks/3f1c9a0be27d4c55": func(w http.ResponseWriter, r *http.Request) {
			revoked = r.URL.Path
			res(200, `"3f1c9a0be27d4c55"`)(w, r)
		},
	})

	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "hook", "create", "echo"))
	first, _, _ := strings.Cut(tf.out.String(), "\n")
	require.Equal(t, strings.TrimRight(url, "/")+"/hook/9b2f6e0c4d8a17f35e6b0a92c4d1e873", first, "the whole URL, ready to paste")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "hook", "ls", "echo"))
	lines := strings.Split(strings.TrimSpace(tf.out.String()), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^ID\s+CREATED$`, lines[0])
	require.Regexp(t, `^3f1c9a0be27d4c55\s+\S+ \S+$`, lines[1])

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("fn", "hook", "rm", "echo", "3f1c9a0be27d4c55"))
	require.Equal(t, "/u/alice/fn/echo/hooks/3f1c9a0be27d4c55", revoked)

	tf = loggedIn(t, url)
	require.Equal(t, ExitUsage, tf.main("fn", "hook", "rm", "echo"), "rm needs the hook's id")
}
