package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
)

// TestTopicsAcrossProcesses publishes through the real processes on the
// secured bus, with two frontends: both subscribers run once with
// [event], a retry with the same Idempotency-Key through either frontend
// creates no job and answers the same ids, the jobs say they came from a
// topic, and unsubscribing stops delivery.
func TestTopicsAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	ports, err := freePorts(1)
	require.NoError(t, err)
	c.start("frontend2", "frontend", fmt.Sprintf("PORT=%d", ports[0]))
	owner := c.register(t, "tess")
	second := &api{Client: client.New(fmt.Sprintf("http://127.0.0.1:%d", ports[0]), client.WithHTTPClient(c.httpClient())).As(owner.User(), owner.Token()), t: t}
	ctx, cancel := owner.ctx()
	defer cancel()
	for _, fn := range []string{"audit", "ship"} {
		owner.upload(fn, client.Deploy{Source: "ev => ({fn: '" + fn + "', ev})"})
		created, err := owner.Subscribe(ctx, fn, "orders")
		require.NoError(t, err)
		require.True(t, created)
	}

	event := json.RawMessage(`{"order": 7}`)
	ids, err := owner.Publish(ctx, "orders", event, "order-7")
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for i, fn := range []string{"audit", "ship"} {
		owner.await(ids[i], 30*time.Second)
		info := owner.info(ids[i])
		require.Equal(t, "topic", info.Trigger)
		require.Equal(t, fn, info.Function)
		res, err := owner.Result(ctx, ids[i])
		require.NoError(t, err)
		require.JSONEq(t, `{"fn": "`+fn+`", "ev": {"order": 7}}`, string(res), "each subscriber runs with [event]")
	}

	// The retry reaches the other frontend once it is up.
	require.Eventually(t, func() bool {
		r, err := second.try(http.MethodGet, "/readyz", "")
		return err == nil && r.Status == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond)
	for _, a := range []*api{owner, second} {
		again, err := a.Publish(ctx, "orders", event, "order-7")
		require.NoError(t, err)
		require.Equal(t, ids, again)
	}
	jobs, err := owner.Jobs(ctx, client.JobFilter{})
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 2, "a retried publish created jobs")

	// Unsubscribed, audit no longer runs.
	require.NoError(t, owner.Unsubscribe(ctx, "audit", "orders"))
	ids, err = second.Publish(ctx, "orders", json.RawMessage(`{"order": 8}`), "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	owner.await(ids[0], 30*time.Second)
	require.Equal(t, "ship", owner.info(ids[0]).Function)
}

// TestPublishFromAFunction chains async functions through a topic across
// the real processes: a job's faas.publish starts the subscriber as a job
// of the same owner, whose record says it came from a topic.
func TestPublishFromAFunction(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	owner := c.register(t, "pia")
	owner.upload("start", client.Deploy{Source: `async n => faas.publish("step", {n: n + 1})`})
	owner.upload("step", client.Deploy{Source: `ev => ev.n * 10`})
	ctx, cancel := owner.ctx()
	defer cancel()
	_, err := owner.Subscribe(ctx, "step", "step")
	require.NoError(t, err)

	out, err := owner.Run(ctx, "start", client.Run{Args: json.RawMessage(`[1]`), Wait: 30 * time.Second})
	require.NoError(t, err)
	require.True(t, out.Done)
	var ids []string
	require.NoError(t, json.Unmarshal(out.Result, &ids))
	require.Len(t, ids, 1)
	owner.await(ids[0], 30*time.Second)
	info := owner.info(ids[0])
	require.Equal(t, "step", info.Function)
	require.Equal(t, "topic", info.Trigger)
	res, err := owner.Result(ctx, ids[0])
	require.NoError(t, err)
	require.JSONEq(t, `20`, string(res))
}
