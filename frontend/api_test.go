package frontend_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/faas"
)

const addSrc = `function add(a,b){return a+b}`

func (p *platform) info(t testing.TB, token, id string) frontend.JobInfo {
	t.Helper()
	return getRes[frontend.JobInfo](t, p, "/j/"+id+"/info", token)
}

// getRes GETs path, requires a 200 and decodes res as a T.
func getRes[T any](t testing.TB, p *platform, path, token string) T {
	t.Helper()
	rep := p.expect(t, http.StatusOK, "GET", path, token, nil)
	var res T
	require.NoError(t, json.Unmarshal(rep.Res, &res))
	return res
}

// TestReferenceFlow is the reference project's typical client, plus the
// billing check: the user's time is the sum of their jobs' billed time.
func TestReferenceFlow(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "ref")
	p.upload(t, user, token, "add", addSrc)

	var ids []string
	for _, args := range []string{"[4,5]", "[40,2]"} {
		id := p.submit(t, user, token, "add", args)
		p.awaitJob(t, token, id)
		ids = append(ids, id)
	}
	// Time-ordered ids: the Store's rows of jobs submitted together share
	// pages (see faas.NewJobID).
	for _, id := range ids {
		require.Equal(t, uuid.Version(7), uuid.MustParse(id).Version(), id)
	}
	require.Less(t, ids[0], ids[1], "a later job's id sorts after")
	rep := p.expect(t, http.StatusOK, "GET", "/j/"+ids[0]+"/res", token, nil)
	require.JSONEq(t, "9", string(rep.Res))
	rep = p.expect(t, http.StatusOK, "GET", "/j/"+ids[1]+"/res", token, nil)
	require.JSONEq(t, "42", string(rep.Res))

	var billed float64
	for _, id := range ids {
		info := p.info(t, token, id)
		require.Equal(t, faas.Succeeded, info.State)
		require.Equal(t, "add", info.Function)
		require.Equal(t, 1, info.Attempts)
		require.NotNil(t, info.Created)
		require.NotNil(t, info.Started)
		require.NotNil(t, info.Finished)
		require.NotNil(t, info.WaitMS)
		require.GreaterOrEqual(t, *info.WaitMS, 0.0)
		require.Positive(t, info.BilledMS)
		require.Nil(t, info.Error)
		require.Empty(t, info.Lost)
		billed += info.BilledMS
	}
	rep = p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", token, nil)
	require.Positive(t, rep.num(t))
	require.InDelta(t, billed, rep.num(t), 0.0015, "billed time is the sum of the jobs' billed_ms")

	p.expect(t, http.StatusOK, "DELETE", "/j/"+ids[0], token, nil)
	rep = p.expect(t, http.StatusNotFound, "GET", "/j/"+ids[0], token, nil)
	require.Equal(t, "not_found", rep.Code)
}

// TestJobOutcomes runs functions of every kind, polled and with ?wait.
func TestJobOutcomes(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "outcome")
	fns := map[string]string{
		"add":   addSrc,
		"async": `async function add_with_delay(a,b){ await new Promise(r => setTimeout(r, 50)); return a+b; }`,
		"slow":  `async function slow(){ await new Promise(r => setTimeout(r, 2000)); return 1; }`,
		"throw": `function boom(){ throw new Error("boom here") }`,
		"undef": `() => undefined`,
		"log":   `function talk(x){ console.log("hello", x); return x }`,
		"obj":   `(a) => ({sum: a.reduce((x, y) => x + y, 0), list: a})`,
	}
	for name, src := range fns {
		p.upload(t, user, token, name, src)
	}
	p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/loop?timeout=200ms", token, []byte(`function spin(){ for(;;){} }`))

	tests := []struct {
		name, fn, args, wait string
		status               int
		code                 string
		res                  string // JSON, or a substring of an error message
	}{
		{"sync value", "add", "[4,5]", "10s", http.StatusOK, "", "9"},
		{"async value", "async", "[1,2]", "10s", http.StatusOK, "", "3"},
		{"undefined is null", "undef", "", "10s", http.StatusOK, "", "null"},
		{"object value", "obj", "[[1,2,3]]", "10s", http.StatusOK, "", `{"sum":6,"list":[1,2,3]}`},
		{"thrown error", "throw", "[]", "10s", http.StatusUnprocessableEntity, "function_error", "boom here"},
		{"timeout", "loop", "[]", "10s", http.StatusUnprocessableEntity, "timeout", ""},
		{"not finished in time", "slow", "[]", "50ms", http.StatusAccepted, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := "/u/" + user + "/fn/" + tc.fn + "/run?wait=" + tc.wait
			start := time.Now()
			status, rep := p.do(t, "POST", path, token, []byte(tc.args))
			require.Equal(t, tc.status, status, "run: %s", rep.Res)
			require.Equal(t, tc.code, rep.Code)
			id := strings.TrimPrefix(rep.Header.Get("Location"), "/j/")
			require.NotEmpty(t, id, "Location header")
			switch {
			case status == http.StatusAccepted:
				require.Equal(t, id, rep.str(t))
				require.Less(t, time.Since(start), 2*time.Second, "?wait returned late")
			case tc.code != "":
				require.Contains(t, rep.str(t), tc.res)
			default:
				require.JSONEq(t, tc.res, string(rep.Res))
			}
			// Polling agrees with the waited answer.
			p.awaitJob(t, token, id)
			status, again := p.do(t, "GET", "/j/"+id+"/res", token, nil)
			if tc.status == http.StatusAccepted {
				require.Equal(t, http.StatusOK, status, "res: %s", again.Res)
				return
			}
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.code, again.Code)
			require.JSONEq(t, string(rep.Res), string(again.Res))
			if tc.code != "" {
				info := p.info(t, token, id)
				require.Equal(t, faas.Failed, info.State)
				require.NotNil(t, info.Error)
				require.EqualValues(t, tc.code, info.Error.Code)
			}
		})
	}

	t.Run("logs", func(t *testing.T) {
		t.Parallel()
		id := p.submit(t, user, token, "log", `["there"]`)
		p.awaitJob(t, token, id)
		rep := p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs", token, nil)
		require.Contains(t, rep.str(t), "hello there")
	})

	t.Run("not finished yet", func(t *testing.T) {
		t.Parallel()
		id := p.submit(t, user, token, "slow", "")
		rep := p.expect(t, http.StatusOK, "GET", "/j/"+id, token, nil)
		require.Zero(t, rep.num(t))
		rep = p.expect(t, http.StatusConflict, "GET", "/j/"+id+"/res", token, nil)
		require.Equal(t, "not_finished", rep.Code)
		info := p.info(t, token, id)
		require.Contains(t, []faas.JobState{faas.Queued, faas.Running}, info.State)
		require.Nil(t, info.Finished)
		require.JSONEq(t, "[]", string(info.Args))
	})
}
