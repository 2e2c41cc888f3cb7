package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// testFactory is a Factory over buffers and a fake environment, with a
// config directory of its own.
type testFactory struct {
	*Factory
	out, err *bytes.Buffer
	env      map[string]string
}

func newTestFactory(t testing.TB, env map[string]string) *testFactory {
	t.Helper()
	tf := &testFactory{out: &bytes.Buffer{}, err: &bytes.Buffer{}, env: map[string]string{"XDG_CONFIG_HOME": t.TempDir()}}
	for k, v := range env {
		tf.env[k] = v
	}
	tf.Factory = &Factory{
		IO:     &IOStreams{In: strings.NewReader(""), Out: tf.out, Err: tf.err},
		Getenv: func(k string) string { return tf.env[k] },
	}
	return tf
}

// main runs the faas command with args and returns its exit code.
func (tf *testFactory) main(args ...string) int {
	return Main(context.Background(), args, tf.Factory, nil)
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	tf := newTestFactory(t, map[string]string{"XDG_CONFIG_HOME": "", "HOME": home})
	path, err := tf.SaveConfig(Config{URL: "http://h:1", User: "alice", Token: "secret"})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(home, ".config", "faas", "config.json"), path, "without XDG_CONFIG_HOME")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the file holds a token")

	for _, tc := range []struct {
		name string
		env  map[string]string
		want Config
	}{
		{"file", nil, Config{URL: "http://h:1", User: "alice", Token: "secret"}},
		{"env overrides", map[string]string{"FAAS_URL": "http://o:2", "FAAS_USER": "bob", "FAAS_TOKEN": "t2"}, Config{URL: "http://o:2", User: "bob", Token: "t2"}},
		{"one override", map[string]string{"FAAS_TOKEN": "t3"}, Config{URL: "http://h:1", User: "alice", Token: "t3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFactory(t, tc.env)
			f.env["XDG_CONFIG_HOME"], f.env["HOME"] = "", home
			got, err := f.Config()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	bad := newTestFactory(t, nil)
	dir := filepath.Join(bad.env["XDG_CONFIG_HOME"], "faas")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o600))
	_, err = bad.Config()
	require.ErrorContains(t, err, "not valid JSON")
}

func TestParsePairs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want map[string]string
		err  string
	}{
		{in: nil},
		{in: []string{"A=1", "b_2=x=y", "EMPTY="}, want: map[string]string{"A": "1", "b_2": "x=y", "EMPTY": ""}},
		{in: []string{"NOEQUALS"}, err: `--env "NOEQUALS": want KEY=VALUE`},
		{in: []string{"1X=v"}, err: `--env "1X=v": the key must be`},
		{in: []string{"A-B=v"}, err: `--env "A-B=v": the key must be`},
		{in: []string{"=v"}, err: `--env "=v": the key must be`},
	} {
		got, err := parsePairs("env", tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			var ue *usageError
			require.ErrorAs(t, err, &ue, "a bad pair is a usage error")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func TestJobArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		json string
		args []string
		want string
		err  string
	}{
		{args: nil, want: `[]`},
		{args: []string{"4", "5"}, want: `[4,5]`},
		{args: []string{"bob", "true", "null", `{"a":1}`, "[1]", `"q"`}, want: `["bob",true,null,{"a":1},[1],"q"]`},
		{args: []string{"{", "4 5", ""}, want: `["{","4 5",""]`},
		{json: `[1,"x"]`, want: `[1,"x"]`},
		{json: `{"a":1}`, err: "want a JSON array"},
		{json: `null`, err: "want a JSON array"},
		{json: `[1`, err: "want a JSON array"},
		{json: `[1]`, args: []string{"2"}, err: "not both"},
	} {
		got, err := jobArgs(tc.json, tc.args)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%q %q", tc.json, tc.args)
			continue
		}
		require.NoError(t, err)
		require.JSONEq(t, tc.want, string(got))
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code int
		line string
	}{
		{usagef("bad %s", "thing"), ExitUsage, "error: usage: bad thing"},
		{&client.HTTPError{Status: 422, Err: faas.Errorf(faas.FunctionError, "kaput\nat line 1")}, ExitFailed, "error: function_error: kaput at line 1"},
		{fmt.Errorf("%w (job j1)", &client.HTTPError{Status: 422, Err: faas.Errorf(faas.Timeout, "ran too long")}), ExitFailed, "error: timeout: ran too long (job j1)"},
		{&client.HTTPError{Status: 404, Err: faas.Errorf(faas.NotFound, "job not found")}, ExitRefused, "error: not_found: job not found"},
		{faas.Errorf(faas.Unavailable, "cannot reach x"), ExitRefused, "error: unavailable: cannot reach x"},
		{errors.New(`unknown command "x" for "faas"`), ExitUsage, `error: usage: unknown command "x" for "faas"`},
		{&roleError{errors.New("bind: address in use")}, ExitFailed, "faas: bind: address in use"},
		{errors.New("disk full"), ExitRefused, "error: disk full"},
	} {
		code, line := describe(tc.err)
		require.Equal(t, tc.code, code, "%v", tc.err)
		require.Equal(t, tc.line, line)
	}
}

func TestNotLoggedIn(t *testing.T) {
	t.Parallel()
	tf := newTestFactory(t, nil)
	require.Equal(t, ExitUsage, tf.main("fn", "ls"))
	require.Contains(t, tf.err.String(), "not logged in")
	require.Equal(t, ExitUsage, tf.main("job", "ls", "-o", "yaml"))
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fn"}, ExitOK, ""},
		{[]string{"job", "nosuch"}, ExitUsage, `error: usage: unknown command "nosuch" for "faas job"`},
		{[]string{"token", "renew"}, ExitUsage, `error: usage: unknown command "renew" for "faas token"`},
		{[]string{"nosuch"}, ExitUsage, `error: usage: unknown command "nosuch" for "faas"`},
		{[]string{"run", "add", "--nosuch"}, ExitUsage, "error: usage: unknown flag: --nosuch"},
		{[]string{"job", "get", "a", "b"}, ExitUsage, "error: usage: faas job get takes 1 argument(s) (id), got 2"},
		{[]string{"login", "--url", "http://x"}, ExitUsage, "error: usage: login needs --user and --token"},
	} {
		tf := newTestFactory(t, nil)
		require.Equal(t, tc.code, tf.main(tc.args...), "%v", tc.args)
		require.Equal(t, tc.want, strings.TrimSpace(tf.err.String()), "%v", tc.args)
	}
}

// fakeAPI answers the routes a test names with canned bodies, and 404
// otherwise: it checks the CLI's formatting, not the platform.
func fakeAPI(t testing.TB, routes map[string]func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := routes[r.Method+" "+r.URL.Path]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":true,"code":"not_found","res":"no such route"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// res answers a success envelope around res.
func res(status int, res string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":false,"res":%s}`, res)
	}
}

func loggedIn(t testing.TB, url string) *testFactory {
	return newTestFactory(t, map[string]string{"FAAS_URL": url, "FAAS_USER": "alice", "FAAS_TOKEN": "tok"})
}

func TestJobLsFormats(t *testing.T) {
	t.Parallel()
	var query string
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /u/alice/jobs": func(w http.ResponseWriter, r *http.Request) {
			query = r.URL.RawQuery
			require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
			res(200, `{"jobs":[
				{"id":"j2","function":"boom","state":"failed","created":"2026-01-02T03:04:05Z","duration_ms":1.5,"error_code":"function_error"},
				{"id":"j1","function":"add","state":"succeeded","created":"2026-01-02T03:04:00Z","duration_ms":0.25}],
				"next_cursor":"c2"}`)(w, r)
		},
	})
	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "ls", "--fn", "add", "--state", "failed", "--limit", "2"))
	require.Equal(t, "fn=add&limit=2&state=failed", query)
	lines := strings.Split(strings.TrimSpace(tf.out.String()), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+FUNCTION\s+STATE\s+CREATED\s+DURATION\s+ERROR$`, lines[0])
	require.Regexp(t, `^j2\s+boom\s+failed\s+\S+ \S+\s+1\.5ms\s+function_error$`, lines[1])
	require.Regexp(t, `^j1\s+add\s+succeeded\s+\S+ \S+\s+250µs$`, lines[2])
	require.Contains(t, tf.err.String(), "--cursor c2")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "ls", "-o", "json"))
	var page struct {
		Jobs []struct{ ID string }
		Next string `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(tf.out.Bytes(), &page))
	require.Len(t, page.Jobs, 2)
	require.Equal(t, "c2", page.Next)

	for _, args := range [][]string{{"--state", "done"}, {"--limit", "0"}, {"--limit", "501"}} {
		tf = loggedIn(t, url)
		require.Equal(t, ExitUsage, tf.main(append([]string{"job", "ls"}, args...)...), "%v", args)
	}
}

func TestFollowLogs(t *testing.T) {
	t.Parallel()
	stream := func(end string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "1", r.URL.Query().Get("follow"))
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: 0\nevent: log\ndata: first\n\n: a comment\n\nid: 1\nevent: error\ndata: second\n\n")
			fmt.Fprintf(w, "event: end\ndata: {\"state\":%q}\n\n", end)
		}
	}
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /j/ok/logs":  stream("succeeded"),
		"GET /j/bad/logs": stream("failed"),
		"GET /j/bad/info": res(200, `{"id":"bad","state":"failed","error":{"code":"function_error","message":"kaput"}}`),
		"GET /j/cut/logs": func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Content-Type", "text/event-stream") },
		// broken breaks after its first two lines; resumed, it sends the rest.
		"GET /j/broken/logs": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			if r.Header.Get("Last-Event-ID") == "1" {
				fmt.Fprint(w, "id: 2\nevent: log\ndata: third\n\nevent: end\ndata: {\"state\":\"succeeded\"}\n\n")
				return
			}
			fmt.Fprint(w, "id: 0\nevent: log\ndata: first\n\nid: 1\nevent: log\ndata: second\n\n")
		},
		"GET /j/plain/logs":  res(200, `"not a stream"`),
		"GET /j/listed/logs": res(200, `[{"offset":0,"stream":"warn","line":"careful"}]`),
	})
	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "logs", "-f", "ok"))
	require.Equal(t, "first\nsecond\n", tf.out.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitFailed, tf.main("job", "logs", "-f", "bad"), "a failed job is the function's failure")
	require.Equal(t, "error: function_error: kaput\n", tf.err.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitRefused, tf.main("job", "logs", "-f", "cut"))
	require.Contains(t, tf.err.String(), "ended before the job did")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "logs", "-f", "broken"), tf.err.String())
	require.Equal(t, "first\nsecond\nthird\n", tf.out.String(), "resumed after the last line, none twice")

	tf = loggedIn(t, url)
	require.Equal(t, ExitRefused, tf.main("job", "logs", "-f", "plain"))

	tf = loggedIn(t, url)
	require.Equal(t, ExitRefused, tf.main("job", "logs", "-f", "missing"))
	require.Equal(t, "error: not_found: no such route\n", tf.err.String())

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "logs", "listed", "-o", "json"))
	require.JSONEq(t, `[{"offset":0,"stream":"warn","line":"careful"}]`, tf.out.String())
}

func TestRunFormats(t *testing.T) {
	t.Parallel()
	var body string
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /u/alice/fn/add/run": func(w http.ResponseWriter, r *http.Request) {
			b := new(bytes.Buffer)
			b.ReadFrom(r.Body)
			body = b.String()
			if r.URL.Query().Get("wait") == "" {
				w.Header().Set("Location", "/j/j9")
				res(202, `"j9"`)(w, r)
				return
			}
			require.Equal(t, "key1", r.Header.Get("Idempotency-Key"))
			res(200, `{"sum":9}`)(w, r)
		},
	})
	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("run", "add", "4", "5", "--idempotency-key", "key1"))
	require.Equal(t, `[4,5]`, body)
	require.Equal(t, "{\"sum\":9}\n", tf.out.String(), "compact off a terminal")
	require.Empty(t, tf.err.String(), "no spinner off a terminal")

	tf = loggedIn(t, url)
	tf.IO.IsTTY = true
	require.Equal(t, ExitOK, tf.main("run", "add", "4", "5", "--idempotency-key", "key1"))
	require.Equal(t, "{\n  \"sum\": 9\n}\n", tf.out.String(), "indented on a terminal")

	tf = loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("run", "--async", "add", "-o", "json"))
	require.JSONEq(t, `{"id":"j9"}`, tf.out.String())
}

func TestSpinnerOnlyOnTerminal(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	stop := (&IOStreams{Err: &b}).StartSpinner("waiting")
	time.Sleep(150 * time.Millisecond)
	stop()
	require.Empty(t, b.String())

	stop = (&IOStreams{Err: &b, IsTTY: true}).StartSpinner("waiting")
	stop()
	stop() // stopping twice is harmless
	require.Contains(t, b.String(), "waiting")
	require.True(t, strings.HasSuffix(b.String(), "\r"), "the spinner erases itself: %q", b.String())
}

func TestEnvHelp(t *testing.T) {
	t.Parallel()
	type conf struct {
		A int      `envconfig:"FAAS_A" default:"1" desc:"the a"`
		B string   `envconfig:"FAAS_B" desc:"the b"`
		C []string `ignored:"true"`
		d int
	}
	var b bytes.Buffer
	require.NoError(t, EnvHelp(&b, &conf{}, &LogConfig{}, &conf{}))
	out := b.String()
	require.Regexp(t, `FAAS_A\s+1\s+the a`, out)
	require.Regexp(t, `FAAS_B\s+the b`, out)
	require.Regexp(t, `FAAS_LOG_LEVEL\s+info\s+log level`, out)
	require.Equal(t, 1, strings.Count(out, "FAAS_A"), "each variable once")
	require.Error(t, EnvHelp(&b, 3))
}

// TestJobGetShowsCallsAndChildren: a job's trigger, parent, children and
// fused calls reach the table as well as the JSON.
func TestJobGetShowsCallsAndChildren(t *testing.T) {
	t.Parallel()
	url := fakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /j/p/info": res(200, `{"id":"p","function":"norm","state":"succeeded","attempts":1,"duration_ms":2,"billed_ms":2,
			"trigger":"schedule","parent":"gp","children":["c1","c2"],
			"calls":[{"function":"sq","version":7,"duration_ms":0.5,"error":null},
			         {"function":"nope","duration_ms":0.25,"error":{"code":"not_found","message":"function nope not found"}}],
			"calls_truncated":true}`),
	})
	tf := loggedIn(t, url)
	require.Equal(t, ExitOK, tf.main("job", "get", "p"))
	out := tf.out.String()
	for _, want := range []string{
		`(?m)^trigger:\s+schedule$`, `(?m)^parent:\s+gp$`, `(?m)^children:\s+c1 c2$`,
		`(?m)^call:\s+sq \(version 7\) 500µs: ok$`,
		`(?m)^call:\s+nope \(version 0\) 250µs: not_found: function nope not found$`,
		`(?m)^call:\s+\.\.\. more calls than a record keeps \(100\)$`,
	} {
		require.Regexp(t, want, out)
	}
}
