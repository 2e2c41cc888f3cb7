package frontend_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
)

// getFunction reads a function's view.
func (p *platform) getFunction(t testing.TB, user, token, fn string) frontend.FunctionView {
	t.Helper()
	return getRes[frontend.FunctionView](t, p, "/u/"+user+"/fn/"+fn, token)
}

// TestFunctionSettings shows a function's settings, and keeps each one an
// upload does not name: re-uploading the source used to reset the
// timeout to 30 s and the memory cap to the worker's default.
func TestFunctionSettings(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "settings")
	p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/add?timeout=5s&memory=64&concurrency=3", token, []byte(addSrc))
	first := p.getFunction(t, user, token, "add")
	require.Equal(t, "add", first.Name)
	require.Equal(t, addSrc, first.Source)
	require.Equal(t, 5000.0, first.TimeoutMS)
	require.Equal(t, 64, first.MemoryMB)
	require.Equal(t, 3, first.Concurrency)
	require.Positive(t, first.Version)
	require.False(t, first.Created.IsZero())
	require.Equal(t, first.Created, first.Updated)

	const src2 = `function add(a,b){return b+a}`
	for _, tc := range []struct {
		query, src  string
		timeoutMS   float64
		memoryMB    int
		concurrency int
	}{
		{"", src2, 5000, 64, 3},
		{"?timeout=2s", addSrc, 2000, 64, 3},
		{"?memory=128&concurrency=0", src2, 2000, 128, 0},
		{"?timeout=1s&memory=96&concurrency=5", addSrc, 1000, 96, 5},
	} {
		p.expect(t, http.StatusOK, "POST", "/u/"+user+"/fn/add"+tc.query, token, []byte(tc.src))
		got := p.getFunction(t, user, token, "add")
		require.Equal(t, tc.src, got.Source, tc.query)
		require.Equal(t, tc.timeoutMS, got.TimeoutMS, tc.query)
		require.Equal(t, tc.memoryMB, got.MemoryMB, tc.query)
		require.Equal(t, tc.concurrency, got.Concurrency, tc.query)
		require.Equal(t, first.Created, got.Created, tc.query)
		require.Greater(t, got.Version, first.Version, tc.query)
		require.True(t, got.Updated.After(first.Updated), tc.query)
	}

	// The JSON form keeps what it does not name, and sets what it does.
	status, rep := p.form(t, user, token, "add", map[string]any{"src": src2, "env": map[string]string{"K": "v"}})
	require.Equal(t, http.StatusOK, status, "%s", rep.Res)
	got := p.getFunction(t, user, token, "add")
	require.Equal(t, 1000.0, got.TimeoutMS)
	require.Equal(t, 96, got.MemoryMB)
	require.Equal(t, 5, got.Concurrency)
	require.Equal(t, []string{"K"}, got.Env)
	status, rep = p.form(t, user, token, "add", map[string]any{"src": src2, "timeout": "3s", "memory": 64, "concurrency": 0})
	require.Equal(t, http.StatusOK, status, "%s", rep.Res)
	got = p.getFunction(t, user, token, "add")
	require.Equal(t, 3000.0, got.TimeoutMS)
	require.Equal(t, 64, got.MemoryMB)
	require.Zero(t, got.Concurrency)
	require.Equal(t, []string{"K"}, got.Env)

	// A new function without settings gets the defaults.
	p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/other", token, []byte(addSrc))
	other := p.getFunction(t, user, token, "other")
	require.Equal(t, 30000.0, other.TimeoutMS)
	require.Zero(t, other.MemoryMB)

	// Another user's function is not theirs to read.
	_, otherToken := p.newUser(t, "settings")
	status, _ = p.do(t, "GET", "/u/"+user+"/fn/add", otherToken, nil)
	require.Equal(t, http.StatusForbidden, status)
}

// TestRotateToken: a new token works at once, and the old one stops
// working on every frontend at once, though the other frontend had just
// cached it; the user's functions stay.
func TestRotateToken(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	other := p.secondFrontend(t)
	user, oldToken := p.newUser(t, "rotate")
	p.upload(t, user, oldToken, "add", addSrc)
	// The other frontend learns the old token, and would keep it for a
	// while if nothing told it otherwise.
	other.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn/add", oldToken, nil)

	rep := p.expect(t, http.StatusOK, "POST", "/u/"+user+"/token", oldToken, nil)
	var res struct{ Name, Token string }
	require.NoError(t, json.Unmarshal(rep.Res, &res))
	require.Equal(t, user, res.Name)
	require.NotEqual(t, oldToken, res.Token)

	for _, fe := range []*platform{p, other} {
		require.Eventually(t, func() bool {
			status, _ := fe.do(t, "GET", "/u/"+user+"/fn/add", oldToken, nil)
			return status == http.StatusUnauthorized
		}, 2*time.Second, 5*time.Millisecond, "the old token still works")
		fe.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn/add", res.Token, nil)
	}
	p.expect(t, http.StatusUnauthorized, "POST", "/u/"+user+"/token", oldToken, nil)

	// Another user cannot rotate this user's token.
	_, otherToken := p.newUser(t, "rotate")
	p.expect(t, http.StatusForbidden, "POST", "/u/"+user+"/token", otherToken, nil)
	p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn/add", res.Token, nil)
}
