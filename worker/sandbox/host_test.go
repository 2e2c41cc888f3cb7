package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// fakeHost serves the functions of one owner from sources, each at
// version 1, and records what faas.submit asks for.
type fakeHost struct {
	t         testing.TB
	sources   map[string]string
	mu        sync.Mutex
	submits   []string
	published []string
}

func (h *fakeHost) Function(name string) (*Program, int64, error) {
	if !faas.ValidName(name) {
		return nil, 0, faas.Errorf(faas.Invalid, "invalid function name %q", name)
	}
	src, ok := h.sources[name]
	if !ok {
		return nil, 0, faas.Errorf(faas.NotFound, "function %s not found", name)
	}
	p, err := Compile(src, name)
	require.NoError(h.t, err)
	return p, 1, nil
}

func (h *fakeHost) Submit(name string, args json.RawMessage) (string, error) {
	if _, ok := h.sources[name]; !ok {
		return "", faas.Errorf(faas.NotFound, "function %s not found", name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.submits = append(h.submits, name+string(args))
	return "job-" + name, nil
}

// Publish answers one job per source whose name starts with the topic's.
func (h *fakeHost) Publish(topic string, event json.RawMessage) ([]string, error) {
	if !faas.ValidName(topic) {
		return nil, faas.Errorf(faas.Invalid, "invalid topic name %q", topic)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.published = append(h.published, topic+" "+string(event))
	ids := []string{}
	for name := range h.sources {
		if strings.HasPrefix(name, topic) {
			ids = append(ids, "job-"+name)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// runHosted runs sources["main"] with args, the other sources callable.
func runHosted(t testing.TB, sources map[string]string, args string, lim Limits) (Result, *fakeHost) {
	t.Helper()
	h := &fakeHost{t: t, sources: sources}
	p, err := Compile(sources["main"], "main")
	require.NoError(t, err)
	return RunStreaming(context.Background(), p, json.RawMessage(args), lim, nil, h), h
}

func TestFusedCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sources map[string]string
		want    string
	}{
		{"values cross as JSON", map[string]string{
			"main": `async function main() { return await faas.call("sq", 3, {a: [1, "x"]}, undefined) }`,
			"sq":   `function sq(n, o, u) { return {n: n * n, o, u: u === null, proto: Object.getPrototypeOf(o) === Object.prototype} }`,
		}, `{"n":9,"o":{"a":[1,"x"]},"u":true,"proto":true}`},
		{"results are plain values, in order, whatever JSON.parse is", map[string]string{
			"main": `async function main() { JSON.parse = () => "hijacked"; const r = await faas.call("odd"); return [r, Object.keys(r), Object.getPrototypeOf(r) === Object.prototype, Object.getPrototypeOf(r.__proto__) === Object.prototype, Array.isArray(r.list)] }`,
			"odd":  `function odd() { const o = {z: 1, a: [1.5, "é", null, true, {}], list: []}; Object.defineProperty(o, "__proto__", {value: {x: 1}, enumerable: true}); return o }`,
		}, `[{"z":1,"a":[1.5,"é",null,true,{}],"list":[],"__proto__":{"x":1}},["z","a","list","__proto__"],true,true,true]`},
		{"no globals shared either way", map[string]string{
			"main": `async function main() { globalThis.secret = 1; Array.prototype.evil = 1; const r = await faas.call("peek"); return [r, typeof leaked] }`,
			"peek": `function peek() { globalThis.leaked = 1; return [typeof secret, typeof [].evil] }`,
		}, `[["undefined","undefined"],"undefined"]`},
		{"a callee's throw is caught", map[string]string{
			"main": `async function main() { try { await faas.call("bad") } catch (e) { return [e instanceof Error, e.code, e.function, e.message.startsWith("bad: Error: boom")] } }`,
			"bad":  `function bad() { throw new Error("boom") }`,
		}, `[true,"function_error","bad",true]`},
		{"unknown callee", map[string]string{
			"main": `function main() { return faas.call("nope").catch(e => [e.code, e.function]) }`,
		}, `["not_found","nope"]`},
		{"another user's function is not a name", map[string]string{
			"main": `function main() { return faas.call("bob/f").catch(e => e.code) }`,
		}, `"invalid"`},
		{"a name must be a string", map[string]string{
			"main": `function main() { return faas.call({toString() { throw 1 }}).catch(e => e.code) }`,
		}, `"invalid"`},
		{"async callee", map[string]string{
			"main":  `async function main() { return [await faas.call("later", 2), await faas.call("later", 3)] }`,
			"later": `async function later(n) { await new Promise(r => setTimeout(r, 5)); return n * 10 }`,
		}, `[20,30]`},
		{"nested calls", map[string]string{
			"main": `function main() { return faas.call("a", 1) }`,
			"a":    `async function a(n) { return 1 + await faas.call("b", n) }`,
			"b":    `function b(n) { return n + 100 }`,
		}, `102`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, _ := runHosted(t, tt.sources, `[]`, Limits{})
			require.Nil(t, res.Err)
			assert.JSONEq(t, tt.want, string(res.Value))
		})
	}
}

func TestFusedCallDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sources map[string]string
		depth   int
	}{
		{"recursion", map[string]string{
			"main": `function main() { return faas.call("main") }`,
		}, 3},
		{"cycle", map[string]string{
			"main": `function main() { return faas.call("ping") }`,
			"ping": `function ping() { return faas.call("main") }`,
		}, DefaultMaxCallDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, _ := runHosted(t, tt.sources, `[]`, Limits{MaxCallDepth: tt.depth})
			require.NotNil(t, res.Err)
			assert.Equal(t, faas.FunctionError, res.Err.Code)
			assert.Contains(t, res.Err.Message, fmt.Sprintf("nest deeper than %d", tt.depth))
			require.Len(t, res.Calls, tt.depth+1, "every level calls once, the last is refused")
			assert.Equal(t, faas.CallDepth, res.Calls[tt.depth].Error.Code)
		})
	}
	t.Run("caught at the cap", func(t *testing.T) {
		t.Parallel()
		res, _ := runHosted(t, map[string]string{
			"main": `async function main(n) { try { return await faas.call("main", n + 1) } catch (e) { return [n, e.code] } }`,
		}, `[0]`, Limits{MaxCallDepth: 2})
		require.Nil(t, res.Err)
		assert.JSONEq(t, `[2,"call_depth"]`, string(res.Value))
	})
}

func TestFusedCallLogsAndRecord(t *testing.T) {
	t.Parallel()
	res, _ := runHosted(t, map[string]string{
		"main": `async function main() { console.log("caller"); await faas.call("chat"); await faas.call("nope").catch(() => {}); return 1 }`,
		"chat": `function chat() { console.log("hello"); console.warn("careful") }`,
	}, `[]`, Limits{})
	require.Nil(t, res.Err)
	assert.Equal(t, "caller\n[chat] hello\n[chat] careful\n", res.Logs)
	require.Len(t, res.Calls, 2)
	assert.Equal(t, "chat", res.Calls[0].Function)
	assert.Equal(t, int64(1), res.Calls[0].Version)
	assert.Nil(t, res.Calls[0].Error)
	assert.Positive(t, res.Calls[0].Duration)
	assert.Equal(t, "nope", res.Calls[1].Function)
	assert.Equal(t, faas.NotFound, res.Calls[1].Error.Code)
	assert.False(t, res.CallsTruncated)

	res, _ = runHosted(t, map[string]string{
		"main": `async function main() { for (let i = 0; i < 150; i++) await faas.call("one"); return 1 }`,
		"one":  `() => 1`,
	}, `[]`, Limits{})
	require.Nil(t, res.Err)
	assert.Len(t, res.Calls, faas.MaxCalls)
	assert.True(t, res.CallsTruncated)
}

// TestFusedCallTime: a callee has what is left of the caller's time, and
// running out of it ends the whole run.
func TestFusedCallTime(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res, _ := runHosted(t, map[string]string{
		"main": `async function main() { try { await faas.call("spin") } catch (e) {} return "escaped" }`,
		"spin": `function spin() { for (;;) {} }`,
	}, `[]`, Limits{Timeout: 200 * time.Millisecond})
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.Timeout, res.Err.Code)
	assert.Less(t, time.Since(start), 200*time.Millisecond+slack)
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	res, h := runHosted(t, map[string]string{
		"main": `async function main() { const id = await faas.submit("work", 1, "two"); const e = await faas.submit("nope").catch(e => e.code); return [id, e] }`,
		"work": `(a, b) => a + b`,
	}, `[]`, Limits{})
	require.Nil(t, res.Err)
	assert.JSONEq(t, `["job-work","not_found"]`, string(res.Value))
	assert.Equal(t, []string{`work[1,"two"]`}, h.submits)
}

func TestPublish(t *testing.T) {
	t.Parallel()
	res, h := runHosted(t, map[string]string{
		"main": `async function main() {
			const ids = await faas.publish("order", {id: 7, at: undefined})
			const none = await faas.publish("nobody", "x")
			const bad = await faas.publish("a/b", 1).catch(e => [e.code, e.function])
			const notName = await faas.publish(7, 1).catch(e => e.code)
			const big = await faas.publish("order", "x".repeat(2000)).catch(e => e.code)
			const cyclic = {}; cyclic.self = cyclic
			const unencodable = await faas.publish("order", cyclic).catch(e => e.code)
			return [ids, Array.isArray(ids), none, bad, notName, big, unencodable, await faas.publish("order")] }`,
		"order-audit": `ev => ev`,
		"order-ship":  `ev => ev`,
	}, `[]`, Limits{MaxResult: 1000})
	require.Nil(t, res.Err)
	assert.JSONEq(t, `[["job-order-audit","job-order-ship"],true,[],["invalid","a/b"],"invalid","too_large","invalid",
		["job-order-audit","job-order-ship"]]`, string(res.Value))
	assert.Equal(t, []string{`order {"id":7}`, `nobody "x"`, `order null`}, h.published,
		"the event crosses as JSON, an absent one as null")
}

func TestNoHost(t *testing.T) {
	t.Parallel()
	res := run(t, `async function f() { return [await faas.call("g").catch(e => e.code), await faas.submit("g").catch(e => e.code),
		await faas.publish("t", 1).catch(e => e.code)] }`, `[]`, Limits{})
	require.Nil(t, res.Err)
	assert.JSONEq(t, `["unavailable","unavailable","unavailable"]`, string(res.Value))
}
