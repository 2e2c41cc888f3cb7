package frontend_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/faas"
)

// listJobs reads one page of a user's jobs.
func (p *platform) listJobs(t testing.TB, user, token, query string) frontend.JobList {
	t.Helper()
	return getRes[frontend.JobList](t, p, "/u/"+user+"/jobs"+query, token)
}

// TestJobHistory lists a user's jobs newest first, whole, filtered and a
// page at a time, and refuses bad parameters and other users.
func TestJobHistory(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "history")
	p.upload(t, user, token, "add", addSrc)
	p.upload(t, user, token, "boom", `function boom(){throw new Error("no")}`)
	var ids, addIDs, failedIDs []string
	for i := range 5 {
		fn := "add"
		if i%2 == 1 {
			fn = "boom"
		}
		id := p.submit(t, user, token, fn, "[1,2]")
		p.awaitJob(t, token, id)
		ids = append(ids, id)
		if fn == "add" {
			addIDs = append(addIDs, id)
		} else {
			failedIDs = append(failedIDs, id)
		}
	}
	// Newest first: the reverse of submission, each job waited for.
	slices.Reverse(ids)
	slices.Reverse(addIDs)
	slices.Reverse(failedIDs)
	idsOf := func(list frontend.JobList) []string {
		var out []string
		for _, j := range list.Jobs {
			out = append(out, j.ID)
		}
		return out
	}

	all := p.listJobs(t, user, token, "")
	require.Equal(t, ids, idsOf(all))
	require.Empty(t, all.NextCursor)
	for _, j := range all.Jobs {
		require.False(t, j.Created.IsZero())
		if j.Function == "boom" {
			require.Equal(t, faas.Failed, j.State)
			require.Equal(t, faas.FunctionError, j.ErrorCode)
		} else {
			require.Equal(t, faas.Succeeded, j.State)
			require.Empty(t, j.ErrorCode)
		}
	}
	require.Equal(t, addIDs, idsOf(p.listJobs(t, user, token, "?fn=add")))
	require.Equal(t, failedIDs, idsOf(p.listJobs(t, user, token, "?state=failed")))
	require.Empty(t, p.listJobs(t, user, token, "?state=queued").Jobs)

	var walked []string
	for cursor, pages := "", 0; ; pages++ {
		require.Less(t, pages, 3)
		page := p.listJobs(t, user, token, "?limit=2"+cursor)
		require.LessOrEqual(t, len(page.Jobs), 2)
		walked = append(walked, idsOf(page)...)
		if page.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + page.NextCursor
	}
	require.Equal(t, ids, walked)

	for _, q := range []string{
		"limit=0", "limit=501", "limit=x", "state=done", "fn=..",
		"cursor=!!", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("12.not-a-job")),
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("x."+ids[0])),
	} {
		status, rep := p.do(t, "GET", "/u/"+user+"/jobs?"+q, token, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, rep.Res)
		require.Equal(t, string(faas.Invalid), rep.Code, q)
	}

	other, otherToken := p.newUser(t, "history")
	status, _ := p.do(t, "GET", "/u/"+user+"/jobs", otherToken, nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Empty(t, p.listJobs(t, other, otherToken, "").Jobs)
}
