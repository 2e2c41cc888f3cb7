package frontend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// try sends a dry run, without args when args is nil, and returns the
// status and reply.
func (p *platform) try(t testing.TB, user, token, query, src string, args any) (int, reply) {
	t.Helper()
	req := map[string]any{"src": src}
	if args != nil {
		req["args"] = args
	}
	body, err := json.Marshal(req)
	require.NoError(t, err)
	return p.do(t, "POST", "/u/"+user+"/try"+query, token, body)
}

// TestTry runs sources once without storing them as functions: answered
// like run?wait, listed and billed as jobs of (try), and refused like a
// bad upload or a bad run.
func TestTry(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "try")

	status, rep := p.try(t, user, token, "", `function add(a,b){ console.log("adding"); return a+b }`, []int{4, 5})
	require.Equal(t, http.StatusOK, status, "%s", rep.Res)
	require.JSONEq(t, "9", string(rep.Res))
	id := strings.TrimPrefix(rep.Header.Get("Location"), "/j/")
	info := p.info(t, token, id)
	require.Equal(t, "(try)", info.Function)
	require.Equal(t, faas.Succeeded, info.State)
	require.Positive(t, info.BilledMS)
	logs := p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs", token, nil)
	require.Contains(t, logs.str(t), "adding")
	billed := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", token, nil)
	require.Equal(t, info.BilledMS, billed.num(t))

	// The function that failed answers like a failed run.
	status, rep = p.try(t, user, token, "", `function boom(){ throw new Error("no") }`, nil)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, string(faas.FunctionError), rep.Code)

	// A wait that runs out answers the job to poll.
	status, rep = p.try(t, user, token, "?wait=50ms", `async function slow(){ await new Promise(r => setTimeout(r, 500)); return 1 }`, nil)
	require.Equal(t, http.StatusAccepted, status)
	p.awaitJob(t, token, rep.str(t))

	// Concurrent dry runs each run their own source: each job is pinned
	// to the version stored for it.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, rep := p.try(t, user, token, "", fmt.Sprintf(`function f(x){ return x + %d }`, i), []int{100})
			require.Equal(t, http.StatusOK, status, "%s", rep.Res)
			require.JSONEq(t, fmt.Sprint(100+i), string(rep.Res))
		}()
	}
	wg.Wait()

	// None of it is a function of the user's, and every run is a job.
	fns := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.JSONEq(t, `{}`, string(fns.Res))
	jobs := p.listJobs(t, user, token, "")
	require.Len(t, jobs.Jobs, 9)
	for _, j := range jobs.Jobs {
		require.Equal(t, "(try)", j.Function)
	}

	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"syntax error", `{"src":"function (a,b){ return a+ }"}`, http.StatusBadRequest},
		{"no function", `{"src":"1+1"}`, http.StatusBadRequest},
		{"no src", `{"args":[1]}`, http.StatusBadRequest},
		{"args not an array", `{"src":"x=>x","args":{"a":1}}`, http.StatusBadRequest},
		{"unknown field", `{"src":"x=>x","argz":[1]}`, http.StatusBadRequest},
		{"not JSON", `function f(){}`, http.StatusBadRequest},
		{"source too large", `{"src":"` + strings.Repeat("a", 256<<10+1) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		status, rep := p.do(t, "POST", "/u/"+user+"/try", token, []byte(tc.body))
		require.Equal(t, tc.status, status, "%s: %s", tc.name, rep.Res)
	}
	for _, q := range []string{"?wait=0s", "?wait=2m", "?timeout=x", "?memory=1"} {
		status, rep := p.try(t, user, token, q, "x=>x", nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, rep.Res)
	}

	_, otherToken := p.newUser(t, "try")
	status, _ = p.try(t, user, otherToken, "", "x=>x", nil)
	require.Equal(t, http.StatusForbidden, status)
}

// TestReplacedFunctionRunsOnce: the next job of a function just replaced,
// by an upload or by a dry run, runs once, at the new version. The
// frontend tells the queue of the change; otherwise the queue would hand
// the job to a waiting worker at the version it knew, and the Store,
// refusing that, would have it run a second time (attempts 2).
func TestReplacedFunctionRunsOnce(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "replaced")
	attempts := func(rep reply) int {
		return p.info(t, token, strings.TrimPrefix(rep.Header.Get("Location"), "/j/")).Attempts
	}
	for i := range 3 {
		src := fmt.Sprintf("() => %d", i)
		_, _, err := p.rest().As(user, token).PutFunction(context.Background(), "f", client.Deploy{Source: src})
		require.NoError(t, err)
		status, rep := p.do(t, "POST", "/u/"+user+"/fn/f/run?wait=10s", token, nil)
		require.Equal(t, http.StatusOK, status, "%s", rep.Res)
		require.JSONEq(t, fmt.Sprint(i), string(rep.Res))
		require.Equal(t, 1, attempts(rep), "run %d after an upload", i)

		status, rep = p.try(t, user, token, "", src, nil)
		require.Equal(t, http.StatusOK, status, "%s", rep.Res)
		require.JSONEq(t, fmt.Sprint(i), string(rep.Res))
		require.Equal(t, 1, attempts(rep), "dry run %d", i)
	}
}
