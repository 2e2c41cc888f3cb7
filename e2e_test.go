package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// TestReferenceFlow drives the reference project's typical client against
// the platform running as five separate processes (two workers).
func TestReferenceFlow(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(2)
	a := c.register(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for name, src := range map[string]string{
		"add":            "function add(a,b){return a+b}",
		"add_with_delay": "async function add_with_delay(a,b){ await new Promise(r => setTimeout(r, 100)); return a+b; }",
	} {
		_, created, err := a.PutFunction(ctx, name, client.Deploy{Source: src})
		require.NoError(t, err)
		require.True(t, created, name)
	}

	var ids []string
	for _, fn := range []string{"add", "add_with_delay"} {
		// The raw answer, for its status and Location.
		r := a.do(http.MethodPost, "/u/alice/fn/"+fn+"/run", "[4,5]")
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Res)
		var id string
		require.NoError(t, json.Unmarshal(r.Res, &id))
		require.Equal(t, "/j/"+id, r.Header.Get("Location"))
		ids = append(ids, id)
	}
	var billed float64
	for _, id := range ids {
		a.await(id, 30*time.Second)
		res, err := a.Result(ctx, id)
		require.NoError(t, err)
		require.JSONEq(t, "9", string(res))
		info := a.info(id)
		require.Equal(t, faas.Succeeded, info.State)
		require.Equal(t, 1, info.Attempts)
		require.Positive(t, info.BilledMS)
		billed += info.BilledMS
	}
	require.GreaterOrEqual(t, a.info(ids[1]).BilledMS, 100.0, "async waits are billed")

	total, err := a.BilledTime(ctx)
	require.NoError(t, err)
	require.InDelta(t, billed, float64(total)/float64(time.Millisecond), 1e-5)

	require.NoError(t, a.DeleteJob(ctx, ids[0]))
	_, err = a.Finished(ctx, ids[0])
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))

	// Another user sees none of it.
	b := c.register(t, "bob")
	_, err = b.Result(ctx, ids[1])
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	r := b.do(http.MethodGet, "/u/alice/fn", "") // bob's client has no call for another user's route
	require.Equal(t, http.StatusForbidden, r.Status)

	// Every component shuts down cleanly on SIGTERM.
	for _, name := range []string{"frontend", "worker0", "worker1", "jqmanager", "dbmanager"} {
		require.NoError(t, c.stop(name), "%s exit status", name)
	}
}

// TestSyncWaitAcrossProcesses checks ?wait through the real processes,
// including a failing function and a timeout.
func TestSyncWaitAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	a := c.register(t, "carol")
	for name, src := range map[string]string{
		"sq":    "x => x * x",
		"boom":  "function boom(){ throw new TypeError('no way') }",
		"spin":  "function spin(){ for(;;){} }",
		"sleep": "async function sleep(){ await new Promise(r => setTimeout(r, 2000)); return 1 }",
	} {
		path := "/u/carol/fn/" + name
		if name == "spin" {
			path += "?timeout=300ms"
		}
		r := a.do(http.MethodPost, path, src)
		require.Equal(t, http.StatusCreated, r.Status, "%s: %s", name, r.Res)
	}
	r := a.do(http.MethodPost, "/u/carol/fn/sq/run?wait=10s", "[12]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.JSONEq(t, "144", string(r.Res))

	r = a.do(http.MethodPost, "/u/carol/fn/boom/run?wait=10s", "")
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Res)
	require.Equal(t, "function_error", r.Code)
	require.Contains(t, string(r.Res), "no way")

	r = a.do(http.MethodPost, "/u/carol/fn/spin/run?wait=10s", "")
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Res)
	require.Equal(t, "timeout", r.Code)

	r = a.do(http.MethodPost, "/u/carol/fn/sleep/run?wait=100ms", "")
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Res)
	var id string
	require.NoError(t, json.Unmarshal(r.Res, &id))
	r = a.do(http.MethodGet, "/j/"+id+"/res", "")
	require.Equal(t, http.StatusConflict, r.Status)
	require.Equal(t, "not_finished", r.Code)
	a.await(id, 20*time.Second)

	// The worker kept serving after the error and the timeout.
	for i := range 5 {
		r = a.do(http.MethodPost, "/u/carol/fn/sq/run?wait=10s", fmt.Sprintf("[%d]", i))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
		require.JSONEq(t, fmt.Sprint(i*i), string(r.Res))
	}
}

// TestLiveLogsAcrossProcesses follows a job's output through the real
// processes on the secured bus, so that the worker may ship lines and the
// frontend read them: the first line arrives while the job runs, the
// rest follow in order with their streams, then the end.
func TestLiveLogsAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	a := c.register(t, "dora")
	r := a.do(http.MethodPost, "/u/dora/fn/talk",
		`async function talk(){ console.log("first"); await new Promise(r => setTimeout(r, 300)); console.warn("second"); return 1 }`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	r = a.do(http.MethodPost, "/u/dora/fn/talk/run", "")
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Res)
	var id string
	require.NoError(t, json.Unmarshal(r.Res, &id))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A raw request: this checks the stream's bytes, which the client
	// parses away (it follows the same stream below).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.http+"/j/"+id+"/logs?follow=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, err := c.httpClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body := bufio.NewReader(resp.Body)
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "data: first\n\n") {
		line, err := body.ReadString('\n')
		require.NoError(t, err, "stream so far: %q", head.String())
		head.WriteString(line)
	}
	require.Equal(t, faas.Running, a.info(id).State, "the first line came after the job ended")
	rest, err := io.ReadAll(body)
	require.NoError(t, err)
	require.Equal(t, "id: 0\nevent: log\ndata: first\n\n"+
		"id: 1\nevent: warn\ndata: second\n\n"+
		"event: end\ndata: {\"state\":\"succeeded\"}\n\n",
		strings.TrimPrefix(head.String(), ": ping\n\n")+string(rest))

	// The client reads the same stream of the finished job, resuming
	// after a line as faas job logs -f does when a stream breaks. A
	// finished job's output comes from the Store, which the worker's
	// completion gave each line's stream.
	for from, want := range map[int][]faas.LogLine{
		-1: {{Offset: 0, Stream: "log", Line: "first"}, {Offset: 1, Stream: "warn", Line: "second"}},
		0:  {{Offset: 1, Stream: "warn", Line: "second"}},
	} {
		var lines []faas.LogLine
		state, err := a.FollowLogs(ctx, id, from, func(l faas.LogLine) error {
			lines = append(lines, l)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, faas.Succeeded, state)
		require.Equal(t, want, lines, "from %d", from)
	}
}
