package frontend_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestFailures checks that the operator sees the newest failed jobs of
// every user, and only failed ones, that the limit is bounded, and that
// nobody else sees them.
func TestFailures(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	var want []string // job ids, oldest first
	owners := map[string]string{}
	for _, prefix := range []string{"alpha", "beta"} {
		user, token := p.newUser(t, prefix)
		p.upload(t, user, token, "boom", `function boom(){ throw new Error("broke for `+prefix+`") }`)
		p.upload(t, user, token, "add", addSrc)
		p.awaitJob(t, token, p.submit(t, user, token, "add", "[1,2]"))
		id := p.submit(t, user, token, "boom", "[]")
		p.awaitJob(t, token, id)
		want = append(want, id)
		owners[id] = user
	}

	admin := p.rest().As("", adminToken)
	list, err := admin.Failures(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, list.Failures, 2, "the succeeded jobs are not failures")
	for i, f := range list.Failures {
		id := want[len(want)-1-i] // newest first
		require.Equal(t, id, f.ID)
		require.Equal(t, owners[id], f.Owner)
		require.Equal(t, "boom", f.Function)
		require.Equal(t, faas.FunctionError, f.ErrorCode)
		require.Contains(t, f.ErrorMessage, "broke for")
		require.False(t, f.Finished.IsZero())
	}
	list, err = admin.Failures(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, list.Failures, 1)
	require.Equal(t, want[1], list.Failures[0].ID)

	_, userToken := p.newUser(t, "nosy")
	for _, tc := range []struct {
		name, query, token string
		status             int
		says               string
	}{
		{"no token", "", "", http.StatusUnauthorized, "FAAS_ADMIN_TOKEN"},
		{"user token", "", userToken, http.StatusForbidden, "FAAS_ADMIN_TOKEN"},
		{"zero limit", "?limit=0", adminToken, http.StatusBadRequest, `invalid limit "0": want a number from 1 to 100`},
		{"limit too large", "?limit=101", adminToken, http.StatusBadRequest, `invalid limit "101"`},
		{"limit not a number", "?limit=many", adminToken, http.StatusBadRequest, `invalid limit "many"`},
	} {
		rep := p.expect(t, tc.status, "GET", "/admin/failures"+tc.query, tc.token, nil)
		require.Contains(t, rep.str(t), tc.says, tc.name)
	}
}
