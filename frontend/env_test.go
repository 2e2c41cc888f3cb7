package frontend_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// secretValue is the secret of these tests: it must never come back.
const secretValue = "sk-test-9d1f0c6a5e"

// recorder keeps every response body the client reads.
type recorder struct {
	base http.RoundTripper
	seen io.Writer
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := r.seen.Write(body); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

// form uploads the JSON form and returns the status and reply.
func (p *platform) form(t testing.TB, user, token, fn string, form any) (int, reply) {
	t.Helper()
	body, err := json.Marshal(form)
	require.NoError(t, err)
	h := bearer(token)
	h.Set("Content-Type", "application/json")
	return p.doHeader(t, "POST", "/u/"+user+"/fn/"+fn, body, h)
}

// runNow runs fn with ?wait and returns its result.
func (p *platform) runNow(t testing.TB, user, token, fn string) string {
	t.Helper()
	rep := p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/"+fn+"/run?wait=20s", token, []byte(`[]`))
	return string(rep.Res)
}

// TestFunctionEnvAndSecrets is the whole life of a function's settings:
// set with the JSON form, read inside as faas.env, listed by name, kept by
// a raw re-upload, replaced by the form. The secret's value is in no
// answer and no log line of the platform.
func TestFunctionEnvAndSecrets(t *testing.T) {
	t.Parallel()
	// Files, which goroutines may write at once and the test read.
	dir := t.TempDir()
	logs, answers := filepath.Join(dir, "logs"), filepath.Join(dir, "answers")
	logFile, answerFile := createFile(t, logs), createFile(t, answers)
	p := startPlatform(t, logTo(logFile))
	p.client.Transport = recorder{base: http.DefaultTransport, seen: answerFile}
	user, token := p.newUser(t, "env")
	// The function proves it holds the secret without returning it.
	src := `() => [faas.env.REGION, typeof faas.env.API_KEY, (faas.env.API_KEY || "").length, Object.isFrozen(faas.env)]`

	status, rep := p.form(t, user, token, "f", map[string]any{
		"src": src, "env": map[string]string{"REGION": "eu"}, "secrets": map[string]string{"API_KEY": secretValue},
		"timeout": "5s", "memory": 64,
	})
	require.Equal(t, http.StatusCreated, status, "%s", rep.Res)
	var up struct {
		TimeoutMS float64 `json:"timeout_ms"`
		MemoryMB  int     `json:"memory_mb"`
	}
	require.NoError(t, json.Unmarshal(rep.Res, &up))
	require.Equal(t, 5000.0, up.TimeoutMS)
	require.Equal(t, 64, up.MemoryMB)
	require.JSONEq(t, `["eu","string",18,true]`, p.runNow(t, user, token, "f"))

	get := func() (env, secrets []string) {
		t.Helper()
		rep := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn/f", token, nil)
		var res struct{ Env, Secrets []string }
		require.NoError(t, json.Unmarshal(rep.Res, &res))
		return res.Env, res.Secrets
	}
	env, secrets := get()
	require.Equal(t, []string{"REGION"}, env)
	require.Equal(t, []string{"API_KEY"}, secrets)

	// A raw re-upload keeps them.
	p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/f", token, []byte(src+" "))
	require.JSONEq(t, `["eu","string",18,true]`, p.runNow(t, user, token, "f"))
	// JSON that is not the form (no src string) is source, as before.
	p.expect(t, http.StatusBadRequest, "POST", "/u/"+user+"/fn/g", token, []byte(`{"source": "x"}`))

	// The form without secrets keeps them; with an empty object it
	// clears them.
	status, rep = p.form(t, user, token, "f", map[string]any{"src": src, "env": map[string]string{"REGION": "us"}})
	require.Equal(t, http.StatusOK, status, "%s", rep.Res)
	require.JSONEq(t, `["us","string",18,true]`, p.runNow(t, user, token, "f"))
	status, rep = p.form(t, user, token, "f", map[string]any{"src": src, "secrets": map[string]string{}})
	require.Equal(t, http.StatusOK, status, "%s", rep.Res)
	require.JSONEq(t, `["us","undefined",0,true]`, p.runNow(t, user, token, "f"))
	env, secrets = get()
	require.Equal(t, []string{"REGION"}, env)
	require.Equal(t, []string{}, secrets)

	// Bring the secret back and look at everything that shows a function
	// or a job.
	status, _ = p.form(t, user, token, "f", map[string]any{"src": src, "secrets": map[string]string{"API_KEY": secretValue}})
	require.Equal(t, http.StatusOK, status)
	id := p.submit(t, user, token, "f", `[]`)
	p.awaitJob(t, token, id)
	for _, path := range []string{"/j/" + id, "/j/" + id + "/info", "/j/" + id + "/res", "/j/" + id + "/logs",
		"/u/" + user + "/fn", "/u/" + user + "/fn?fields=settings", "/u/" + user + "/fn/f"} {
		p.expect(t, http.StatusOK, "GET", path, token, nil)
	}

	// Bad settings are refused, naming the problem but not the value.
	for _, tc := range []struct {
		name string
		form map[string]any
		want string
	}{
		{"bad name", map[string]any{"src": src, "secrets": map[string]string{"1KEY": secretValue}}, `invalid secret name "1KEY"`},
		{"dash in name", map[string]any{"src": src, "env": map[string]string{"A-B": "x"}}, `invalid env name "A-B"`},
		{"empty name", map[string]any{"src": src, "env": map[string]string{"": "x"}}, `invalid env name ""`},
		{"value too long", map[string]any{"src": src, "secrets": map[string]string{"K": secretValue + strings.Repeat("x", 4096)}}, "secret K is 4114 bytes: at most 4096"},
		{"both env and secret", map[string]any{"src": src, "env": map[string]string{"K": "a"}, "secrets": map[string]string{"K": secretValue}}, "K is both an env value and a secret"},
		{"too many", map[string]any{"src": src, "env": many(65)}, "65 env and secret names: at most 64"},
		{"not a string", map[string]any{"src": src, "secrets": map[string]any{"K": 5}}, "secrets values must be strings, not a JSON number"},
		{"not an object", map[string]any{"src": src, "env": []string{"K=v"}}, "env must be an object of strings, not a JSON array"},
		{"unknown field", map[string]any{"src": src, "secret": map[string]string{"K": secretValue}}, `unknown field "secret"`},
		{"bad timeout", map[string]any{"src": src, "timeout": "soon"}, `invalid timeout "soon"`},
		{"bad memory", map[string]any{"src": src, "memory": 1}, `invalid memory "1"`},
		{"negative concurrency", map[string]any{"src": src, "concurrency": -2}, `invalid concurrency "-2"`},
		{"fractional concurrency", map[string]any{"src": src, "concurrency": 1.5}, "concurrency must be a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rep := p.form(t, user, token, "f", tc.form)
			require.Equal(t, http.StatusBadRequest, status, "%s", rep.Res)
			require.Equal(t, "invalid", rep.Code)
			require.Contains(t, rep.str(t), tc.want)
		})
	}
	// None changed the function.
	require.JSONEq(t, `["us","string",18,true]`, p.runNow(t, user, token, "f"))

	require.NotContains(t, readFile(t, answers), secretValue, "an answer holds the secret")
	require.Contains(t, readFile(t, logs), "job_id", "the logs were captured")
	require.NotContains(t, readFile(t, logs), secretValue, "a log line holds the secret")
}

func createFile(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Create(name)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

func many(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["K"+strings.Repeat("_", i)] = "v"
	}
	return m
}
