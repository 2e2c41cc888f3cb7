package main

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

// TestWebhookAcrossProcesses uses a webhook through the real processes on
// the secured bus, so the frontend's role must be allowed the hook
// methods: the URL works without a token, strips the caller's
// credentials, bills the owner, marks the job, and dies on revoke.
func TestWebhookAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	owner := c.register(t, "hank")
	owner.upload("echo", client.Deploy{Source: "ev => ev"})
	ctx, cancel := owner.ctx()
	defer cancel()
	h, err := owner.CreateHook(ctx, "echo")
	require.NoError(t, err)
	anon := &api{Client: client.New(c.http, client.WithHTTPClient(c.httpClient())), t: t}

	r := anon.do(http.MethodPost, h.URL, `{"n": 7}`, "Authorization", "Bearer stolen", "Cookie", "s=1", "X-Event", "ping")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	var ev frontend.HookEvent
	require.NoError(t, json.Unmarshal(r.Res, &ev))
	require.JSONEq(t, `{"n": 7}`, string(ev.JSON))
	require.Equal(t, "ping", ev.Headers["X-Event"])
	require.NotContains(t, ev.Headers, "Authorization")
	require.NotContains(t, ev.Headers, "Cookie")
	info := owner.info(strings.TrimPrefix(r.Header.Get("Location"), "/j/"))
	require.Equal(t, "webhook", info.Trigger)
	billed, err := owner.BilledTime(context.Background())
	require.NoError(t, err)
	require.Positive(t, billed)

	r = anon.do(http.MethodPost, h.URL, strings.Repeat("x", 1<<20+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status, "%s", r.Res)

	require.NoError(t, owner.DeleteHook(ctx, "echo", h.ID))
	r = anon.do(http.MethodPost, h.URL, "{}")
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Res)
	r = anon.do(http.MethodPost, "/hook/"+strings.Repeat("ab", 16), "{}")
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Res)
}
