package pool_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
	"faas/worker/pool"
	"faas/worker/pool/pooltest"
)

// testHost serves one callee, "sq", and counts what it is asked.
type testHost struct {
	functions atomic.Int32
	submitted atomic.Value
	published atomic.Value
}

func (h *testHost) Function(_ context.Context, name string) (pool.Function, error) {
	h.functions.Add(1)
	if name != "sq" {
		return pool.Function{}, faas.Errorf(faas.NotFound, "function %s not found", name)
	}
	return pool.Function{Key: pool.Key{Owner: "hal", Name: "sq", Version: 7}, Source: `n => { console.log("sq", n); return n * n }`}, nil
}

func (h *testHost) Submit(_ context.Context, name string, args json.RawMessage) (string, error) {
	h.submitted.Store(name + string(args))
	return "child-1", nil
}

func (h *testHost) Publish(_ context.Context, topic string, event json.RawMessage) ([]string, error) {
	h.published.Store(topic + " " + string(event))
	return []string{"ev-1", "ev-2"}, nil
}

// TestPoolHost: a job's faas.call, faas.submit and faas.publish cross the pipe to the
// worker's Host and back, as many times as the job asks, and the calls
// come back with the result.
func TestPoolHost(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	h := &testHost{}
	j := job("hal", `async function f() {
		const a = await faas.call("sq", 3), b = await faas.call("sq", 4)
		const missing = await faas.call("nope").catch(e => e.code)
		return [a, b, missing, await faas.submit("later", {x: 1}), await faas.publish("orders", {id: 7})] }`, `[]`, 5*time.Second)
	j.Host = h
	res := p.Run(context.Background(), j)
	require.Nil(t, res.Err)
	assert.JSONEq(t, `[9,16,"not_found","child-1",["ev-1","ev-2"]]`, string(res.Value))
	assert.Equal(t, "[sq] sq 3\n[sq] sq 4\n", res.Logs)
	assert.Equal(t, int32(3), h.functions.Load())
	assert.Equal(t, `later[{"x":1}]`, h.submitted.Load())
	assert.Equal(t, `orders {"id":7}`, h.published.Load())
	require.Len(t, res.Calls, 3)
	assert.Equal(t, int64(7), res.Calls[0].Version)
	assert.Equal(t, faas.NotFound, res.Calls[2].Error.Code)

	// Without a Host, calls reject, and the sandbox serves on.
	res = p.Run(context.Background(), job("hal", `() => faas.call("sq", 2).catch(e => e.code)`, `[]`, 5*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, `"unavailable"`, string(res.Value))
}
