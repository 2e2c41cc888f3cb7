package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/bus"
	"faas/proxies/bus/bustest"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
)

// TestFusedCallsAcrossProcesses runs faas.call through the real processes
// on the secured bus: the callee runs inside the caller's job, with no job
// of its own and billed once, in a runtime of its own; its throw is
// caught, its lines are marked, calls nest and cycle only to
// FAAS_MAX_CALL_DEPTH, another user's function cannot be named, and the
// job's record lists the calls.
func TestFusedCallsAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1, "FAAS_MAX_CALL_DEPTH=3")
	gus := c.register(t, "gus")
	gus.upload("sq", client.Deploy{Source: `() => "gus's own"`})
	fay := c.register(t, "fay")
	for name, src := range map[string]string{
		"sq":   `function sq(n) { console.log("squaring", n); return n * n }`,
		"peek": `function peek() { globalThis.planted = 1; return [typeof mine, typeof globalThis.mine] }`,
		"boom": `function boom() { throw new Error("kaput") }`,
		"main": `async function main(n) {
			globalThis.mine = 1
			const r = await faas.call("sq", n)
			const leak = await faas.call("peek")
			let caught
			try { await faas.call("boom") } catch (e) { caught = [e.code, e.function, e.message.split(" at ")[0]] }
			const missing = await faas.call("nope").catch(e => e.code)
			const other = await faas.call("gus/sq").catch(e => e.code)
			return {r, leak, planted: typeof planted, caught, missing, other} }`,
		"loop": `function loop(n) { return faas.call("loop", n + 1) }`,
		"ping": `async function ping() { try { return await faas.call("pong") } catch (e) { return [e.code, e.function, /nest deeper than 3/.test(e.message)] } }`,
		"pong": `function pong() { return faas.call("ping") }`,
	} {
		fay.upload(name, client.Deploy{Source: src})
	}

	id := fay.submit("main", `[7]`)
	fay.await(id, 30*time.Second)
	info := fay.info(id)
	require.Equal(t, faas.Succeeded, info.State, "%+v", info.Error)
	ctx, cancel := fay.ctx()
	defer cancel()
	res, err := fay.Result(ctx, id)
	require.NoError(t, err)
	assert.JSONEq(t, `{"r":49,"leak":["undefined","undefined"],"planted":"undefined",
		"caught":["function_error","boom","boom: Error: kaput"],"missing":"not_found","other":"invalid"}`, string(res))
	logs, err := fay.Logs(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "[sq] squaring 7\n", logs)
	require.Len(t, info.Calls, 5)
	sq, err := fay.Function(ctx, "sq")
	require.NoError(t, err)
	assert.Equal(t, "sq", info.Calls[0].Function)
	assert.Equal(t, sq.Version, info.Calls[0].Version)
	assert.Nil(t, info.Calls[0].Error)
	for i, want := range []struct {
		function string
		code     faas.Code
	}{{"peek", ""}, {"boom", faas.FunctionError}, {"nope", faas.NotFound}, {"gus/sq", faas.Invalid}} {
		call := info.Calls[i+1]
		assert.Equal(t, want.function, call.Function)
		if want.code == "" {
			assert.Nil(t, call.Error)
		} else if assert.NotNil(t, call.Error, want.function) {
			assert.Equal(t, want.code, call.Error.Code)
		}
	}
	assert.False(t, info.CallsTruncated)

	// Recursion ends at the cap, uncaught: the job fails. A cycle ends
	// there too: the innermost ping's call of pong fails (pong did not
	// catch its refused call), and that ping catches it.
	id = fay.submit("loop", `[0]`)
	fay.await(id, 30*time.Second)
	info = fay.info(id)
	require.Equal(t, faas.Failed, info.State)
	assert.Contains(t, info.Error.Message, "nest deeper than 3")
	require.Len(t, info.Calls, 4, "three levels call, the fourth call is refused")
	assert.Equal(t, faas.CallDepth, info.Calls[3].Error.Code)
	id = fay.submit("ping", `[]`)
	fay.await(id, 30*time.Second)
	res, err = fay.Result(ctx, id)
	require.NoError(t, err)
	assert.JSONEq(t, `["function_error","pong",true]`, string(res))

	// Billed once: the user paid exactly the jobs' billed time, and no
	// callee ran as a job of its own.
	jobs, err := fay.Jobs(ctx, client.JobFilter{})
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 3)
	var sum time.Duration
	for _, j := range jobs.Jobs {
		assert.Contains(t, []string{"main", "loop", "ping"}, j.Function)
		sum += time.Duration(fay.info(j.ID).BilledMS * float64(time.Millisecond)).Round(time.Microsecond)
	}
	billed, err := fay.BilledTime(ctx)
	require.NoError(t, err)
	assert.Equal(t, billed.Round(time.Microsecond), sum)
	gusBilled, err := gus.BilledTime(context.Background())
	require.NoError(t, err)
	assert.Zero(t, gusBilled)
}

// TestChildJobsAcrossProcesses runs faas.submit through the real
// processes: the child is an ordinary job of the parent's owner, queued,
// run and billed on its own, and the two records name each other. A
// SubmitChild forged on the bus makes no job.
func TestChildJobsAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startAll(1)
	ivy := c.register(t, "ivy")
	ivy.upload("part", client.Deploy{Source: `n => n * 10`})
	ivy.upload("fan", client.Deploy{Source: `async function fan(n) {
		const ids = []
		for (let i = 1; i <= n; i++) ids.push(await faas.submit("part", i))
		const refused = [await faas.submit("nope").catch(e => e.code), await faas.submit("bob/part").catch(e => e.code)]
		return {ids, refused} }`})

	id := ivy.submit("fan", `[3]`)
	ivy.await(id, 30*time.Second)
	ctx, cancel := ivy.ctx()
	defer cancel()
	res, err := ivy.Result(ctx, id)
	require.NoError(t, err)
	var out struct {
		IDs     []string `json:"ids"`
		Refused []string `json:"refused"`
	}
	require.NoError(t, json.Unmarshal(res, &out))
	require.Len(t, out.IDs, 3)
	assert.Equal(t, []string{"not_found", "invalid"}, out.Refused)
	parent := ivy.info(id)
	assert.Equal(t, out.IDs, parent.Children)
	var sum time.Duration
	for i, child := range out.IDs {
		ivy.await(child, 30*time.Second)
		info := ivy.info(child)
		assert.Equal(t, faas.Succeeded, info.State)
		assert.Equal(t, id, info.Parent)
		assert.Equal(t, "job", info.Trigger)
		assert.Equal(t, "part", info.Function)
		assert.Positive(t, info.BilledMS)
		res, err := ivy.Result(ctx, child)
		require.NoError(t, err)
		assert.JSONEq(t, string(rune('0'+i+1))+"0", string(res))
		sum += time.Duration(info.BilledMS * float64(time.Millisecond)).Round(time.Microsecond)
	}
	sum += time.Duration(parent.BilledMS * float64(time.Millisecond)).Round(time.Microsecond)
	billed, err := ivy.BilledTime(ctx)
	require.NoError(t, err)
	assert.Equal(t, billed.Round(time.Microsecond), sum, "each job billed on its own")

	// A forged SubmitChild on the real bus: with the worker's key but a
	// lease that worker does not hold, or with another role's key, no
	// job is made, for the job's owner or anyone else.
	ivy.upload("slow", client.Deploy{Source: `() => new Promise(r => setTimeout(() => r(1), 2000))`})
	slow := ivy.submit("slow", `[]`)
	require.Eventually(t, func() bool { return ivy.info(slow).State == faas.Running }, 20*time.Second, 20*time.Millisecond)
	forge := func(role bus.Role, worker string, l faas.Lease) error {
		q, err := jqproxy.Dial(c.jqURL, time.Second, slog.New(slog.DiscardHandler), bustest.Dial(t, c.keys, role, bus.JQManager))
		require.NoError(t, err)
		defer q.Close()
		_, err = q.SubmitChild(ctx, worker, l, faas.Job{ID: uuid.NewString(), Owner: "ivy", Function: "part"})
		return err
	}
	for _, tc := range []struct {
		role   bus.Role
		worker string
		lease  faas.Lease
		want   faas.Code
	}{
		{bus.Worker, "mallory", faas.Lease{ID: slow, Attempt: 1}, faas.Conflict},
		{bus.Worker, "mallory", faas.Lease{ID: id, Attempt: 1}, faas.Conflict},
		{bus.Frontend, "mallory", faas.Lease{ID: slow, Attempt: 1}, faas.Forbidden},
		{bus.Scaler, "mallory", faas.Lease{ID: slow, Attempt: 1}, faas.Forbidden},
	} {
		err := forge(tc.role, tc.worker, tc.lease)
		assert.Equal(t, tc.want, faas.ErrorCode(err), "%s as %s: %v", tc.role, tc.worker, err)
	}
	ivy.await(slow, 30*time.Second)
	assert.Empty(t, ivy.info(slow).Children)
	assert.Equal(t, out.IDs, ivy.info(id).Children)
	jobs, err := ivy.Jobs(ctx, client.JobFilter{})
	require.NoError(t, err)
	assert.Len(t, jobs.Jobs, 5, "fan, its three parts and slow")
}
