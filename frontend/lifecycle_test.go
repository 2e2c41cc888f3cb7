package frontend_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFunctions walks a function through its life: create, list, read,
// replace, delete.
func TestFunctions(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "fns")
	base := "/u/" + user + "/fn"

	rep := p.expect(t, http.StatusOK, "GET", base, token, nil)
	require.JSONEq(t, `{}`, string(rep.Res))

	p.upload(t, user, token, "add", addSrc)
	arrow := `(a, b) => a * b`
	status, rep := p.doHeader(t, "POST", base+"/mul?timeout=5s", []byte(arrow), http.Header{
		"Authorization": {"Bearer " + token},
		"Content-Type":  {"application/x-www-form-urlencoded"},
	})
	require.Equal(t, http.StatusCreated, status, "upload with a form content type: %s", rep.Res)

	rep = p.expect(t, http.StatusOK, "GET", base, token, nil)
	var all map[string]string
	require.NoError(t, json.Unmarshal(rep.Res, &all))
	require.Equal(t, map[string]string{"add": addSrc, "mul": arrow}, all)

	mul := p.getFunction(t, user, token, "mul")
	require.Equal(t, "mul", mul.Name)
	require.Equal(t, arrow, mul.Source)
	require.Equal(t, 5000.0, mul.TimeoutMS)
	require.Equal(t, []string{}, mul.Env)
	require.Equal(t, []string{}, mul.Secrets)

	replaced := `function add(a,b){return a+b+1}`
	p.expect(t, http.StatusOK, "POST", base+"/add", token, []byte(replaced))
	rep = p.expect(t, http.StatusOK, "POST", base+"/add/run?wait=10s", token, []byte("[1,1]"))
	require.JSONEq(t, "3", string(rep.Res), "the replacement runs")

	p.expect(t, http.StatusOK, "DELETE", base+"/add", token, nil)
	rep = p.expect(t, http.StatusNotFound, "GET", base+"/add", token, nil)
	require.Equal(t, "not_found", rep.Code)
	p.expect(t, http.StatusNotFound, "DELETE", base+"/add", token, nil)
}

// TestDeleteUserCascades deletes a user and checks that their token, their
// functions and their jobs are gone, and that the name can be taken again.
func TestDeleteUserCascades(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "gone")
	p.upload(t, user, token, "add", addSrc)
	id := p.submit(t, user, token, "add", "[1,2]")
	p.awaitJob(t, token, id)

	p.expect(t, http.StatusOK, "DELETE", "/u/"+user, token, nil)

	// The token died with the user, at once (no cache staleness here).
	p.expect(t, http.StatusUnauthorized, "GET", "/u/"+user+"/fn", token, nil)
	p.expect(t, http.StatusUnauthorized, "GET", "/j/"+id, token, nil)

	// A new user of the same name starts empty: no functions, jobs or time.
	fresh := p.register(t, user)
	rep := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", fresh, nil)
	require.JSONEq(t, `{}`, string(rep.Res))
	p.expect(t, http.StatusNotFound, "GET", "/j/"+id, fresh, nil)
	rep = p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", fresh, nil)
	require.Zero(t, rep.num(t))
}

// TestDeleteQueuedJob deletes a job before it runs; it must never run.
func TestDeleteQueuedJob(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, serial)
	user, token := p.newUser(t, "delq")
	// The first job keeps the worker busy so the second stays queued.
	p.upload(t, user, token, "slow", `async function slow(){ await new Promise(r => setTimeout(r, 500)); return 1 }`)
	p.upload(t, user, token, "add", addSrc)
	blocker := p.submit(t, user, token, "slow", "")
	id := p.submit(t, user, token, "add", "[1,2]")

	p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
	for _, path := range []string{"/j/" + id, "/j/" + id + "/res", "/j/" + id + "/info", "/j/" + id + "/logs"} {
		p.expect(t, http.StatusNotFound, "GET", path, token, nil)
	}
	p.expect(t, http.StatusNotFound, "DELETE", "/j/"+id, token, nil)

	p.awaitJob(t, token, blocker)
	time.Sleep(100 * time.Millisecond)
	rep := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", token, nil)
	require.InDelta(t, p.info(t, token, blocker).BilledMS, rep.num(t), 0.0015, "only the blocker was billed")
}

// startSlow runs a job of user that takes d and returns its id once it is
// running.
func (p *platform) startSlow(t testing.TB, user, token string, d time.Duration) string {
	t.Helper()
	p.upload(t, user, token, "slow", fmt.Sprintf(`async function slow(){ await new Promise(r => setTimeout(r, %d)); return 1 }`, d.Milliseconds()))
	id := p.submit(t, user, token, "slow", "")
	require.Eventually(t, func() bool { return p.info(t, token, id).State == "running" }, 10*time.Second, 10*time.Millisecond)
	return id
}

// TestDeleteRunningJob deletes a job while the only worker slot runs it:
// the run stops at the worker's next heartbeat (1s) and the slot serves the
// next job, long before the deleted one (5s) would have ended.
func TestDeleteRunningJob(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, serial)
	user, token := p.newUser(t, "delr")
	p.upload(t, user, token, "add", addSrc)
	id := p.startSlow(t, user, token, 5*time.Second)

	p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
	rep := p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/add/run?wait=3s", token, []byte("[2,3]"))
	require.JSONEq(t, "5", string(rep.Res))
	rep = p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", token, nil)
	require.Less(t, rep.num(t), 1000.0, "the deleted run was billed")
}

// TestAuthOff runs the API open: no token anywhere, every job visible, and
// registration still hands out a token.
func TestAuthOff(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, authOff)
	alice, token := p.newUser(t, "open")
	require.NotEmpty(t, token, "registering hands out a token even with auth off")
	bob, _ := p.newUser(t, "open")
	p.upload(t, alice, "", "add", addSrc)

	rep := p.expect(t, http.StatusOK, "POST", "/u/"+alice+"/fn/add/run?wait=10s", "", []byte("[4,5]"))
	require.JSONEq(t, "9", string(rep.Res))
	id := p.submit(t, alice, "", "add", "[1,1]")
	p.awaitJob(t, "", id)
	rep = p.expect(t, http.StatusOK, "GET", "/j/"+id+"/res", "", nil)
	require.JSONEq(t, "2", string(rep.Res))

	// A header that would be refused with auth on is ignored.
	status, _ := p.doHeader(t, "GET", "/u/"+alice+"/fn/add", nil, http.Header{"Authorization": {"Bearer garbage"}})
	require.Equal(t, http.StatusOK, status)
	p.expect(t, http.StatusOK, "DELETE", "/u/"+bob, "", nil)
}

// TestHealthAndReady checks the probes, and that readiness follows the DB
// manager while liveness does not.
func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	p.expect(t, http.StatusOK, "GET", "/healthz", "", nil)
	p.expect(t, http.StatusOK, "GET", "/readyz", "", nil)

	p.stopDB()
	// The verdict before the stop may be reused for up to a second.
	var rep reply
	require.Eventually(t, func() bool {
		start := time.Now()
		var status int
		status, rep = p.do(t, "GET", "/readyz", "", nil)
		require.Less(t, time.Since(start), 3*time.Second, "readyz must answer within its bound")
		return status == http.StatusServiceUnavailable
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "unavailable", rep.Code)
	require.Contains(t, rep.str(t), "DB manager")
	p.expect(t, http.StatusOK, "GET", "/healthz", "", nil)
}

// TestStats checks that the operator view counts finished jobs and turns
// the count into a rate, and that only the operator sees it.
func TestStats(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	type stats struct {
		Queued     *int     `json:"queued"`
		Running    *int     `json:"running"`
		Workers    *int     `json:"workers"`
		Completed  int64    `json:"completed"`
		JobsPerSec *float64 `json:"jobs_per_sec"`
	}
	get := func() stats {
		rep := p.expect(t, http.StatusOK, "GET", "/stats", adminToken, nil)
		var st stats
		require.NoError(t, json.Unmarshal(rep.Res, &st))
		require.NotNil(t, st.Queued)
		require.NotNil(t, st.Running)
		require.NotNil(t, st.Workers)
		require.NotNil(t, st.JobsPerSec)
		return st
	}
	first := get()
	require.Zero(t, first.Completed)
	// Only the operator: no token is 401, a user's token 403.
	rep := p.expect(t, http.StatusUnauthorized, "GET", "/stats", "", nil)
	require.Contains(t, rep.str(t), "FAAS_ADMIN_TOKEN")
	_, userToken := p.newUser(t, "nosy")
	rep = p.expect(t, http.StatusForbidden, "GET", "/stats", userToken, nil)
	require.Contains(t, rep.str(t), "FAAS_ADMIN_TOKEN")
	require.Zero(t, *first.JobsPerSec, "no rate from one sample")
	start := time.Now()

	user, token := p.newUser(t, "stats")
	p.upload(t, user, token, "add", addSrc)
	for range 3 {
		p.awaitJob(t, token, p.submit(t, user, token, "add", "[1,2]"))
	}
	// A job is finished in the store just before the worker tells the
	// queue, which counts it then.
	require.Eventually(t, func() bool { return get().Completed == 3 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(time.Second - time.Since(start)) // the rate needs a second between samples
	st := get()
	require.Positive(t, *st.JobsPerSec)
	// Three jobs over samples at least a second apart.
	require.LessOrEqual(t, *st.JobsPerSec, 3.0)
}
