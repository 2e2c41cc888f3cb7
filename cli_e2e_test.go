package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
)

// cliUser runs the real faas binary (this test binary re-executed) as one
// user of the CLI, with a config directory of its own.
type cliUser struct {
	t   testing.TB
	env []string
	dir string
}

// newCLIUser is a user of the CLI with an empty config directory.
func newCLIUser(t testing.TB) *cliUser {
	t.Helper()
	dir := t.TempDir()
	return &cliUser{t: t, dir: dir, env: []string{
		reexec.Env("faas"), "XDG_CONFIG_HOME=" + dir, "HOME=" + dir,
		"FAAS_URL=", "FAAS_USER=", "FAAS_TOKEN=",
	}}
}

// faas runs the command and returns its stdout, stderr and exit code.
func (u *cliUser) faas(args ...string) (stdout, stderr string, code int) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), u.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		u.t.Fatalf("faas %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// ok runs a command that must succeed and returns its stdout.
func (u *cliUser) ok(args ...string) string {
	u.t.Helper()
	out, errs, code := u.faas(args...)
	require.Equal(u.t, 0, code, "faas %v: stdout %q stderr %q", args, out, errs)
	return out
}

// fails runs a command that must exit with code and print one error line
// holding want.
func (u *cliUser) fails(code int, want string, args ...string) {
	u.t.Helper()
	out, errs, got := u.faas(args...)
	require.Equal(u.t, code, got, "faas %v: stdout %q stderr %q", args, out, errs)
	require.Contains(u.t, errs, want, "faas %v", args)
	require.Equal(u.t, 1, strings.Count(strings.TrimSpace(errs), "\n")+1, "one error line: %q", errs)
}

// TestCLIReferenceFlow is the README's reference flow done with the CLI
// alone, against the platform running as separate processes.
func TestCLIReferenceFlow(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	key := make([]byte, 32)
	rand.Read(key)
	// A roomier request timeout than the cluster's 1s: this test is about
	// the CLI, not about managers slow on a loaded machine.
	c.startAll(1, "FAAS_SECRET_KEY="+base64.StdEncoding.EncodeToString(key), "FAAS_REQUEST_TIMEOUT=5s")
	alice := newCLIUser(t)
	src := filepath.Join(alice.dir, "add.js")
	require.NoError(t, os.WriteFile(src, []byte("function add(a, b) { console.log('adding', a, b); return a + b }"), 0o644))
	boom := filepath.Join(alice.dir, "boom.js")
	require.NoError(t, os.WriteFile(boom, []byte("function boom() { throw new Error('kaput') }"), 0o644))

	require.Contains(t, alice.ok("register", "alice", "--url", c.http), "registered alice")
	st, err := os.Stat(filepath.Join(alice.dir, "faas", "config.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the config file holds a token")

	require.Contains(t, alice.ok("fn", "deploy", "add", src, "--timeout", "5s"), "created add")
	require.Equal(t, "9\n", alice.ok("run", "add", "4", "5"))
	require.Equal(t, "\"ab\"\n", alice.ok("run", "add", "--json", `["a","b"]`))
	id := strings.TrimSpace(alice.ok("run", "--async", "add", "1", "2"))
	require.NotEmpty(t, id)
	require.Eventually(t, func() bool {
		_, _, code := alice.faas("job", "res", id)
		return code == 0
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, "3\n", alice.ok("job", "res", id))
	info := alice.ok("job", "get", id)
	require.Contains(t, info, "succeeded")
	require.Contains(t, info, "add")
	var rec struct {
		ID, State string
	}
	require.NoError(t, json.Unmarshal([]byte(alice.ok("job", "get", id, "-o", "json")), &rec))
	require.Equal(t, id, rec.ID)
	require.Equal(t, "succeeded", rec.State)
	require.Contains(t, alice.ok("job", "logs", id), "adding 1 2")
	require.Contains(t, alice.ok("usage"), "alice: billed")

	// The job listing, newest first, with its filters and pages.
	jobs := alice.ok("job", "ls", "--fn", "add")
	require.Regexp(t, `(?m)^ID\s+FUNCTION\s+STATE`, jobs)
	require.Regexp(t, `(?m)^`+id+`\s+add\s+succeeded`, jobs)
	var page struct {
		Jobs []struct{ ID, Function, State string }
		Next string `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(alice.ok("job", "ls", "--limit", "1", "-o", "json")), &page))
	require.Len(t, page.Jobs, 1)
	require.Equal(t, id, page.Jobs[0].ID, "newest first")
	require.NotEmpty(t, page.Next)
	require.NoError(t, json.Unmarshal([]byte(alice.ok("job", "ls", "--limit", "1", "--cursor", page.Next, "-o", "json")), &page))
	require.Len(t, page.Jobs, 1)
	require.NotEqual(t, id, page.Jobs[0].ID)
	alice.fails(3, "error: invalid: ", "job", "ls", "--cursor", "!!")
	alice.fails(2, `--state "done"`, "job", "ls", "--state", "done")

	// A dry run: result, logs and duration, nothing stored.
	tried := alice.ok("fn", "test", src, "2", "3")
	require.Contains(t, tried, "adding 2 3")
	require.Contains(t, tried, "duration: ")
	require.Contains(t, tried, "result: 5\n")
	alice.fails(1, "error: function_error: ", "fn", "test", boom)
	bad := filepath.Join(alice.dir, "bad.js")
	require.NoError(t, os.WriteFile(bad, []byte("function ("), 0o644))
	alice.fails(3, "error: invalid: ", "fn", "test", bad)

	ls := alice.ok("fn", "ls")
	require.Contains(t, ls, "NAME")
	require.Contains(t, ls, "add")
	require.Contains(t, ls, "5s")
	require.Contains(t, alice.ok("fn", "get", "add"), "return a + b")
	require.Contains(t, alice.ok("fn", "get", "add"), "no limit")

	// --concurrency sets the limit; a deploy without it keeps it; 0 lifts it.
	alice.ok("fn", "deploy", "add", src, "--concurrency", "2")
	alice.ok("fn", "deploy", "add", src, "--timeout", "5s")
	require.Contains(t, alice.ok("fn", "get", "add"), "2 jobs at once")
	alice.ok("fn", "deploy", "add", src, "--concurrency", "0")
	require.Contains(t, alice.ok("fn", "get", "add"), "no limit")
	alice.fails(2, "cannot be negative", "fn", "deploy", "add", src, "--concurrency", "-1")

	// Env values and secrets, read as faas.env; secrets never shown again.
	const secret = "sk-live-4f9c2b7e"
	weather := filepath.Join(alice.dir, "weather.js")
	require.NoError(t, os.WriteFile(weather, []byte("(city) => `${faas.env.UNITS} for ${city}, key of ${faas.env.API_KEY.length} chars`"), 0o644))
	deployed := alice.ok("fn", "deploy", "weather", weather, "--env", "UNITS=metric", "--secret", "API_KEY="+secret, "-o", "json")
	require.Equal(t, "\"metric for Oslo, key of 16 chars\"\n", alice.ok("run", "weather", "Oslo"))
	shown := alice.ok("fn", "get", "weather")
	require.Regexp(t, `env:\s+UNITS`, shown)
	require.Regexp(t, `secrets:\s+API_KEY`, shown)
	var view struct{ Env, Secrets []string }
	shownJSON := alice.ok("fn", "get", "weather", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(shownJSON), &view))
	require.Equal(t, []string{"UNITS"}, view.Env)
	require.Equal(t, []string{"API_KEY"}, view.Secrets)
	for _, out := range []string{deployed, shown, shownJSON, alice.ok("fn", "ls", "-o", "json")} {
		require.NotContains(t, out, secret)
	}
	alice.fails(2, `--secret "1KEY=x": the key must be`, "fn", "deploy", "weather", weather, "--secret", "1KEY=x")

	// The function's own failure is exit 1 with its code and the job.
	alice.ok("fn", "deploy", "boom", boom)
	alice.fails(1, "error: function_error: ", "run", "boom")

	// Live logs: -f prints the lines as they come and ends with the job;
	// a failed job's follow exits 1 like its run.
	talk := filepath.Join(alice.dir, "talk.js")
	require.NoError(t, os.WriteFile(talk, []byte(`async function talk() { console.log("one"); await new Promise(r => setTimeout(r, 300)); console.warn("two"); return 2 }`), 0o644))
	alice.ok("fn", "deploy", "talk", talk)
	talkID := strings.TrimSpace(alice.ok("run", "--async", "talk"))
	require.Equal(t, "one\ntwo\n", alice.ok("job", "logs", "-f", talkID))
	var lines []struct {
		Offset       int
		Stream, Line string
	}
	require.NoError(t, json.Unmarshal([]byte(alice.ok("job", "logs", talkID, "-o", "json")), &lines))
	// A finished job's stored output keeps each line's stream.
	require.Len(t, lines, 2)
	require.Equal(t, 1, lines[1].Offset)
	require.Equal(t, "two", lines[1].Line)
	require.Equal(t, []string{"log", "warn"}, []string{lines[0].Stream, lines[1].Stream})
	boomID := strings.TrimSpace(alice.ok("run", "--async", "boom"))
	alice.fails(1, "error: function_error: ", "job", "logs", "-f", boomID)
	bob0 := newCLIUser(t)
	bob0.ok("register", "bob0", "--url", c.http)
	bob0.fails(3, "error: not_found: ", "job", "logs", "-f", talkID) // another user's job

	// Platform refusals are exit 3 with the platform's code.
	alice.fails(3, "error: not_found: ", "job", "get", "0123456789abcdef0123456789abcdef")
	alice.fails(3, "error: not_found: ", "run", "nosuch")
	bob := newCLIUser(t)
	bob.ok("register", "bob", "--url", c.http)
	bob.fails(3, "error: not_found: ", "job", "res", id) // another user's job looks missing
	bob.fails(3, "error: not_found: ", "fn", "get", "add")

	// Usage errors are exit 2, before anything is sent.
	alice.fails(2, `--env "NOEQUALS": want KEY=VALUE`, "fn", "deploy", "add", src, "--env", "NOEQUALS")
	alice.fails(2, "error: usage: ", "run")
	alice.fails(2, "want a JSON array", "run", "add", "--json", `{"a":1}`)
	alice.fails(2, "error: usage: ", "job", "get")
	alice.fails(2, "error: usage: ", "fn", "deploy", "add", filepath.Join(alice.dir, "missing.js"))
	alice.fails(2, "error: usage: ", "run", "add", "--no-such-flag")
	alice.fails(2, "error: usage: ", "nosuchcommand")
	newCLIUser(t).fails(2, "not logged in", "fn", "ls")

	// Credentials: the environment overrides the file, a bad token is
	// refused, and login stores good ones.
	carol := newCLIUser(t)
	carol.env = append(carol.env, "FAAS_URL="+c.http, "FAAS_USER=alice", "FAAS_TOKEN=nottherighttoken")
	carol.fails(3, "error: unauthorized: ", "usage")
	var cr struct{ Name, Token string }
	require.NoError(t, json.Unmarshal([]byte(newCLIUser(t).ok("register", "dave", "--url", c.http, "-o", "json")), &cr))
	dave := newCLIUser(t)
	require.Contains(t, dave.ok("login", "--url", c.http, "--user", "dave", "--token", cr.Token), "logged in as dave")
	require.Contains(t, dave.ok("usage"), "dave: billed")
	require.Contains(t, dave.ok("token", "rotate"), "token rotated")
	require.Contains(t, dave.ok("usage"), "dave: billed", "the config file holds the new token")
	stale := newCLIUser(t)
	stale.env = append(stale.env, "FAAS_URL="+c.http, "FAAS_USER=dave", "FAAS_TOKEN="+cr.Token)
	stale.fails(3, "error: unauthorized: ", "usage")
	newCLIUser(t).fails(3, "error: unauthorized: ", "login", "--url", c.http, "--user", "dave", "--token", "wrong")

	// A platform that does not answer is exit 3 too.
	down := newCLIUser(t)
	down.env = append(down.env, "FAAS_URL=http://127.0.0.1:1", "FAAS_USER=x", "FAAS_TOKEN=y")
	down.fails(3, "error: unavailable: ", "usage")

	// No secret in any component's log.
	entries, err := os.ReadDir(c.logsDir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(c.logsDir, e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(b), secret, e.Name())
	}

	// Clean up.
	require.Contains(t, alice.ok("job", "rm", id), "removed "+id)
	alice.fails(3, "error: not_found: ", "job", "get", id)
	require.Contains(t, alice.ok("fn", "rm", "add"), "removed add")
	alice.fails(3, "error: not_found: ", "run", "add", "1", "2")
}

// TestCLIRoleHelp checks that every role's --help lists its variables and
// exits 0, and that version names the build.
func TestCLIRoleHelp(t *testing.T) {
	t.Parallel()
	u := newCLIUser(t)
	for _, tc := range []struct{ role, want string }{
		{"frontend", "FAAS_ADMIN_TOKEN"},
		{"dbmanager", "FAAS_RETENTION"},
		{"jqmanager", "FAAS_LEASE_TIMEOUT"},
		{"worker", "FAAS_WORKER_CONCURRENCY"},
		{"scaler", "FAAS_SCALER_BACKEND"},
		{"up", "FAAS_DB_PORT"},
		{"bench", "FAAS_ADMIN_TOKEN"},
	} {
		out := u.ok(tc.role, "--help")
		require.Contains(t, out, tc.want, tc.role)
		require.Contains(t, out, "FAAS_LOG_LEVEL", tc.role)
	}
	require.Contains(t, u.ok("version"), "faas ")
	require.Contains(t, u.ok("completion", "bash"), "bash completion")
}
