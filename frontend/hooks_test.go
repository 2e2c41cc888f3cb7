package frontend_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
)

// echoEvent answers the webhook event it runs with, so the test sees
// exactly what the function saw.
const echoEvent = `function echo(ev) { return ev }`

// createHook creates a hook of user/fn and returns it, URL included.
func (p *platform) createHook(t testing.TB, user, token, fn string) frontend.HookView {
	t.Helper()
	rep := p.expect(t, http.StatusCreated, "POST", "/u/"+user+"/fn/"+fn+"/hooks", token, nil)
	var h frontend.HookView
	require.NoError(t, json.Unmarshal(rep.Res, &h))
	require.Regexp(t, `^/hook/[0-9a-f]{32}$`, h.URL)
	require.Len(t, h.ID, 16)
	require.NotContains(t, h.URL, h.ID, "the listed id must not be a part of the secret")
	return h
}

// callHook posts body to a hook URL with headers h and no token of its own.
func (p *platform) callHook(t testing.TB, url string, body string, h http.Header) (int, reply) {
	t.Helper()
	return p.send(t, client.Request{Method: "POST", Path: url, Header: h, Body: strings.NewReader(body)})
}

func TestHookRunsWithoutTokenAndDiesOnRevoke(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "hooker")
	p.upload(t, user, token, "echo", echoEvent)
	h := p.createHook(t, user, token, "echo")

	// The caller's own credentials never reach the function.
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer someone-elses-token")
	hdr.Set("Cookie", "session=secret")
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Event", "push")
	status, rep := p.callHook(t, h.URL+"?ref=main", `{"a": 1}`, hdr)
	require.Equal(t, http.StatusOK, status, "res %s", rep.Res)
	var ev frontend.HookEvent
	require.NoError(t, json.Unmarshal(rep.Res, &ev))
	require.Equal(t, "POST", ev.Method)
	require.Equal(t, "/hook", ev.Path, "the secret must not reach the function")
	require.Equal(t, []string{"main"}, ev.Query["ref"])
	require.Equal(t, "push", ev.Headers["X-Event"])
	require.NotContains(t, ev.Headers, "Authorization")
	require.NotContains(t, ev.Headers, "Cookie")
	require.Equal(t, `{"a": 1}`, ev.Body)
	require.JSONEq(t, `{"a": 1}`, string(ev.JSON))
	info, err := p.rest().As(user, token).Info(context.Background(), strings.TrimPrefix(rep.Header.Get("Location"), "/j/"))
	require.NoError(t, err)
	require.Equal(t, "webhook", info.Trigger)
	// The history says so too, where the dashboard reads it.
	list := p.listJobs(t, user, token, "")
	require.Len(t, list.Jobs, 1)
	require.Equal(t, "webhook", list.Jobs[0].Trigger)

	// A body that is not JSON arrives as text only.
	status, rep = p.callHook(t, h.URL, "a=1&b=2", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	require.Equal(t, http.StatusOK, status, "res %s", rep.Res)
	ev = frontend.HookEvent{}
	require.NoError(t, json.Unmarshal(rep.Res, &ev))
	require.Equal(t, "a=1&b=2", ev.Body)
	require.Nil(t, ev.JSON)

	// The owner is billed for the hook's jobs.
	billed := p.expect(t, http.StatusOK, "GET", "/u/"+user+"/time", token, nil).num(t)
	require.Positive(t, billed)

	// The listing shows the hook without its URL; revoking kills the URL.
	// Through the typed client, which the CLI uses.
	c := p.rest().As(user, token)
	hooks, err := c.Hooks(context.Background(), "echo")
	require.NoError(t, err)
	require.Len(t, hooks, 1)
	require.Equal(t, h.ID, hooks[0].ID)
	require.Empty(t, hooks[0].URL)
	require.NoError(t, c.DeleteHook(context.Background(), "echo", h.ID))
	status, rep = p.callHook(t, h.URL, "{}", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "not_found", rep.Code)
	p.expect(t, http.StatusNotFound, "DELETE", "/u/"+user+"/fn/echo/hooks/"+h.ID, token, nil)
}

func TestHookBadInput(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "hookbad")
	other, otherToken := p.newUser(t, "hookother")
	p.upload(t, user, token, "echo", echoEvent)
	h := p.createHook(t, user, token, "echo")
	gone := p.createHook(t, user, token, "echo")

	// Deleting the function takes its hooks.
	p.upload(t, user, token, "doomed", echoEvent)
	doomed := p.createHook(t, user, token, "doomed")
	p.expect(t, http.StatusOK, "DELETE", "/u/"+user+"/fn/doomed", token, nil)
	p.expect(t, http.StatusOK, "DELETE", "/u/"+user+"/fn/echo/hooks/"+gone.ID, token, nil)

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"unknown hook", "POST", "/hook/" + strings.Repeat("0", 32), "", "{}", http.StatusNotFound},
		{"revoked hook", "POST", gone.URL, "", "{}", http.StatusNotFound},
		{"hook of a deleted function", "POST", doomed.URL, "", "{}", http.StatusNotFound},
		{"short secret", "POST", "/hook/abc", "", "{}", http.StatusNotFound},
		{"upper-case secret", "POST", strings.ToUpper(h.URL), "", "{}", http.StatusNotFound},
		{"the listed id is not the URL", "POST", "/hook/" + h.ID, "", "{}", http.StatusNotFound},
		{"oversized body", "POST", h.URL, "", strings.Repeat("x", 1<<20+1), http.StatusRequestEntityTooLarge},
		{"bad wait", "POST", h.URL + "?wait=forever", "", "{}", http.StatusBadRequest},
		{"hook of an unknown function", "POST", "/u/" + user + "/fn/nope/hooks", token, "", http.StatusNotFound},
		{"another user's hooks", "GET", "/u/" + user + "/fn/echo/hooks", otherToken, "", http.StatusForbidden},
		{"no token", "POST", "/u/" + user + "/fn/echo/hooks", "", "", http.StatusUnauthorized},
		{"revoke unknown id", "DELETE", "/u/" + user + "/fn/echo/hooks/0123456789abcdef", token, "", http.StatusNotFound},
		{"revoke another user's hook", "DELETE", "/u/" + other + "/fn/echo/hooks/" + h.ID, otherToken, "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rep := p.do(t, tc.method, tc.path, tc.token, []byte(tc.body))
			require.Equal(t, tc.status, status, "res %s", rep.Res)
		})
	}
	// None of that changed the surviving hook.
	status, rep := p.callHook(t, h.URL, "{}", nil)
	require.Equal(t, http.StatusOK, status, "res %s", rep.Res)
}

func TestHookRateLimit(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, func(s *settings) { s.frontend.HookRate = 0.5 })
	user, token := p.newUser(t, "hookrate")
	p.upload(t, user, token, "echo", echoEvent)
	h := p.createHook(t, user, token, "echo")
	other, err := p.rest().As(user, token).CreateHook(context.Background(), "echo")
	require.NoError(t, err)
	// The burst is one request: the second is refused with a wait.
	status, rep := p.callHook(t, h.URL+"?wait=1ms", "{}", nil)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, status, "res %s", rep.Res)
	status, rep = p.callHook(t, h.URL, "{}", nil)
	require.Equal(t, http.StatusTooManyRequests, status, "res %s", rep.Res)
	require.NotEmpty(t, rep.Header.Get("Retry-After"))
	// Each hook has a bucket of its own.
	status, rep = p.callHook(t, other.URL, "{}", nil)
	require.Equal(t, http.StatusOK, status, "res %s", rep.Res)
}
