package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
	"faas/proxies/faas"
	"faas/worker/internal/leakcheck"
	"faas/worker/pool"
	"faas/worker/pool/pooltest"
	"faas/worker/sandbox"
)

// TestMain lets the pools under test start this binary as their
// sandboxes (pooltest.Mode), so that they run the code under test, race
// detector included; "broken" is a sandbox that crashes at its first job.
func TestMain(m *testing.M) {
	reexec.Serve(map[string]func() int{
		pooltest.Mode:  pooltest.Sandbox,
		"broken":       exits(pool.ServeBroken),
		"holder":       exits(holdPool),
		"unprivileged": exits(probeUnprivileged),
	})
	// Nothing of the worker's environment may reach a sandbox: the fence
	// tests look for this.
	os.Setenv(canaryVar, canary)
	// And no descriptor it inherited: this one, as a shell may leave one
	// open, lacks close-on-exec.
	if _, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0); err != nil {
		panic(err)
	}
	leakcheck.Main(m)
}

const canaryVar, canary = "FAAS_TEST_CANARY_SECRET", "hunter2"

// exits is a reexec mode for a function that exits the process itself.
func exits(f func()) func() int {
	return func() int { f(); return 0 }
}

// testMemoryMB is the tests' memory cap: small, so that the memory tests
// are quick, yet far above what the other jobs need.
const testMemoryMB = 64

// start starts a pool of size sandboxes of the given kind and closes it
// when the test ends, checking that no sandbox process outlives it.
func start(t testing.TB, size int, kind string) *pool.Pool {
	t.Helper()
	return startFenced(t, size, kind, pool.Fence{})
}

// startFenced is start with the fences set as fence says.
func startFenced(t testing.TB, size int, kind string, fence pool.Fence) *pool.Pool {
	t.Helper()
	return startConfig(t, kind, pool.Config{Size: size, Fence: fence})
}

// startConfig is start with the rest of the settings as cfg says.
func startConfig(t testing.TB, kind string, cfg pool.Config) *pool.Pool {
	t.Helper()
	cfg.Command = []string{os.Args[0]}
	cfg.Env = []string{reexec.Env(kind)}
	cfg.MemoryMB = testMemoryMB
	p, err := pool.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() {
		pids := p.Pids()
		p.Close()
		for _, pid := range pids {
			assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "sandbox %d outlived its pool", pid)
		}
	})
	return p
}

var version atomic.Int64

// job is a run of src under a fresh key, so that each test's function is
// compiled afresh by whichever sandbox runs it.
func job(owner, src, args string, timeout time.Duration) pool.Job {
	return pool.Job{
		Key:    pool.Key{Owner: owner, Name: "f", Version: version.Add(1)},
		Source: src,
		Args:   json.RawMessage(args),
		Limits: sandbox.Limits{Timeout: timeout},
	}
}

func TestPoolRunsJobs(t *testing.T) {
	t.Parallel()
	p := start(t, 2, pooltest.Mode)
	ctx := context.Background()
	add := job("ann", `function add(a, b) { console.log("adding", a, b); return a + b }`, ``, 5*time.Second)
	for i := range 10 {
		add.Args = json.RawMessage(fmt.Sprintf("[%d, %d]", i, i))
		res := p.Run(ctx, add)
		require.Nil(t, res.Err)
		assert.JSONEq(t, fmt.Sprint(2*i), string(res.Value))
		assert.Equal(t, fmt.Sprintf("adding %d %d\n", i, i), res.Logs)
		assert.Positive(t, res.Duration)
	}

	slow := job("ann", `async function slow(x) { await new Promise(r => setTimeout(r, 30)); return {x} }`, `["s"]`, 5*time.Second)
	res := p.Run(ctx, slow)
	require.Nil(t, res.Err)
	assert.JSONEq(t, `{"x":"s"}`, string(res.Value))
	assert.GreaterOrEqual(t, res.Duration, 30*time.Millisecond)

	// A sandbox compiles what it is sent; a key names one source for good.
	bad := job("ann", `function (`, `[]`, time.Second)
	res = p.Run(ctx, bad)
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.Invalid, res.Err.Code)
	assert.Contains(t, res.Err.Message, "syntax error")
	other := job("ann", `() => "new version"`, `[]`, time.Second)
	other.Key.Version, other.Key.Name = add.Key.Version+1000, add.Key.Name
	res = p.Run(ctx, other)
	require.Nil(t, res.Err)
	assert.JSONEq(t, `"new version"`, string(res.Value))

	bigArgs := `["` + strings.Repeat("é", 300<<10) + `"]`
	res = p.Run(ctx, job("ann", `s => s.length`, bigArgs, 5*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, fmt.Sprint(300<<10), string(res.Value))
}

// TestPoolLimits runs hostile jobs. Each fails with its code within its
// limit plus a second, while a job in the pool's other sandbox succeeds,
// and the pool serves the next job.
func TestPoolLimits(t *testing.T) {
	t.Parallel()
	const limit = 500 * time.Millisecond
	tests := []struct {
		name   string
		src    string
		limit  time.Duration
		code   faas.Code
		msg    string
		logs   string // a substring of the logs
		memory int    // MiB; 0 for the pool's cap
	}{
		{"infinite loop", `function f() { for (;;) {} }`, limit, faas.Timeout, "function exceeded its 500ms time limit", "", 0},
		{"backtracking regex", `function f() { return /^(a+)+(?!c)$/.test('a'.repeat(28) + 'b') }`, limit, faas.Timeout, "function exceeded its 500ms time limit", "", 0},
		{"huge string", `function f() { return 'x'.repeat(2 ** 31).length }`, time.Minute, faas.MemoryLimit, "function exceeded its 64 MiB memory limit", "", 0},
		{"growing array", `function f() { const a = []; for (;;) a.push({n: a.length}) }`, time.Minute, faas.MemoryLimit, "function exceeded its 64 MiB memory limit", "", 0},
		{"growing string array", `function f() { const a = []; for (let i = 0; ; i++) a.push('item ' + i) }`, time.Minute, faas.MemoryLimit, "memory limit", "", 0},
		{"deep recursion", `function f(n) { return f(n + 1) + 1 }`, limit, faas.FunctionError, "maximum call stack size exceeded", "", 0},
		{"console flood", `function f() { for (;;) console.log("flood") }`, limit, faas.Timeout, "time limit", "flood\nflood\n", 0},
		{"50 MB result", `function f() { return 'x'.repeat(50 << 20) }`, time.Minute, faas.TooLarge, "exceeds the 1 MiB limit", "", 256},
		{"deeply nested result", `function f() { let a = []; for (let i = 0; i < 1e5; i++) a = [a]; return a }`, limit, faas.Timeout, "time limit", "", 0},
		{"huge Error message", `function f() { throw new Error('m'.repeat(1.2 * 1024 * 1024)) }`, time.Minute, faas.FunctionError, "Error: mmm", "", 0},
		{"huge thrown string of control characters", `function f() { throw '\u0001'.repeat(1 << 18) }`, time.Minute, faas.FunctionError, `Uncaught "\u0001`, "", 0},
		{"huge stack", `function f() { const e = new Error('x'); e.stack = 'Error: x\n' + '    at g (<input>:1:1)\n'.repeat(1e5); throw e }`, time.Minute, faas.FunctionError, "Error: x", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, 2, pooltest.Mode)
			ctx := context.Background()
			neighbour := job("nia", `async function n(x) { await new Promise(r => setTimeout(r, 300)); let s = 0; for (let i = 0; i < 1e4; i++) s += i; return [x, s] }`, `["beside"]`, 10*time.Second)
			// Both sandboxes have compiled the neighbour before the
			// hostile job starts, so that it runs beside it at once.
			p.Run(ctx, neighbour)
			p.Run(ctx, neighbour)

			var wg sync.WaitGroup
			wg.Go(func() {
				for range 3 {
					res := p.Run(ctx, neighbour)
					if assert.Nil(t, res.Err, "the job beside") {
						assert.JSONEq(t, `["beside",49995000]`, string(res.Value))
					}
				}
			})
			begin := time.Now()
			hostile := job("hal", tt.src, `[0]`, tt.limit)
			hostile.MemoryMB = tt.memory
			res := p.Run(ctx, hostile)
			took := time.Since(begin)
			wg.Wait()

			require.NotNil(t, res.Err, "value %.100s", res.Value)
			assert.Equal(t, tt.code, res.Err.Code, res.Err.Message)
			assert.Contains(t, res.Err.Message, tt.msg)
			assert.LessOrEqual(t, len(res.Err.Message), sandbox.MaxErrorMessage)
			assert.Contains(t, res.Logs, tt.logs)
			assert.LessOrEqual(t, len(res.Logs), sandbox.DefaultMaxLogs+len("\n[logs truncated]"))
			assert.Less(t, took, tt.limit+time.Second, "the job ended in time")
			if tt.code == faas.Timeout {
				assert.GreaterOrEqual(t, res.Duration, tt.limit)
			}

			// The pool keeps serving, on both sandboxes.
			for range 2 {
				res := p.Run(ctx, job("hal", `() => "still serving"`, `[]`, 5*time.Second))
				require.Nil(t, res.Err)
				assert.JSONEq(t, `"still serving"`, string(res.Value))
			}
		})
	}
}

// TestPoolLogs floods the console without end: the run succeeds with its
// logs cut at the limit, marked.
func TestPoolLogs(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	res := p.Run(context.Background(), job("lou", `function f() { for (let i = 0; i < 1e5; i++) console.log("line", i); return 1 }`, `[]`, 5*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, `1`, string(res.Value))
	assert.Equal(t, sandbox.DefaultMaxLogs+len("\n[logs truncated]"), len(res.Logs))
	assert.True(t, strings.HasPrefix(res.Logs, "line 0\nline 1\n"))
	assert.True(t, strings.HasSuffix(res.Logs, "\n[logs truncated]"))
}

// TestPoolMemoryGarbage allocates far more than the cap in all, but keeps
// little of it: garbage alone must never reach the limit.
func TestPoolMemoryGarbage(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	res := p.Run(context.Background(), job("gil", `function f() {
		let n = 0
		for (let i = 0; i < 20; i++) { const a = new Array(100000).fill(i); n += a.length }
		return n }`, `[]`, 20*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, `2000000`, string(res.Value))
}

// TestPoolMemoryPerJob gives one function a cap of its own, larger than
// the pool's: what fails under the pool's cap succeeds under its own.
func TestPoolMemoryPerJob(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	grow := job("max", `function f() { const a = []; for (let i = 0; i < 3e5; i++) a.push({i}); return a.length }`, `[]`, 20*time.Second)
	res := p.Run(context.Background(), grow)
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.MemoryLimit, res.Err.Code)

	grow.MemoryMB = 512
	res = p.Run(context.Background(), grow)
	require.Nil(t, res.Err, "under a 512 MiB cap")
	assert.JSONEq(t, `300000`, string(res.Value))
}

// TestPoolHostAccess probes for the host from inside a job: nothing of it
// may be reachable, by name, through constructors or by reflection.
func TestPoolHostAccess(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	tests := []struct{ name, src, want string }{
		{"host names", `function f() { return [typeof require, typeof process, typeof module, typeof exports, typeof global, typeof fetch, typeof XMLHttpRequest, typeof WebAssembly, typeof Deno, typeof Bun, typeof os, typeof fs] }`,
			`["undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined"]`},
		{"Function('return this')", `function f() { const g = Function('return this')(); return [g === globalThis, typeof g.process, typeof g.require] }`, `[true,"undefined","undefined"]`},
		{"constructor chains", `function f() {
			const viaArrow = (() => {}).constructor('return this')()
			const viaArray = [].constructor.constructor('return this')()
			const viaAsync = (async () => {}).constructor('return this')
			const viaGen = (function* () {}).constructor('return this')().next().value
			const viaNative = setTimeout.constructor('return this')()
			const viaError = (() => { try { null.x } catch (e) { return e.constructor.constructor('return this')() } })()
			return [viaArrow, viaArray, viaGen, viaNative, viaError].every(g => g === globalThis) && typeof viaAsync }`, `"function"`},
		{"process through a constructor", `function f() { try { return [].constructor.constructor('return process')() } catch (e) { return String(e) } }`, `"ReferenceError: process is not defined"`},
		{"no import", `function f() { try { return eval("import('fs')") } catch (e) { return e.name } }`, `"SyntaxError"`},
		{"natives tell nothing of the host", `function f() { return [String(setTimeout), String(console.log), setInterval.name, Object.keys(console)] }`,
			`["function setTimeout() { [native code] }","function log() { [native code] }","setInterval",["log","info","warn","error","debug"]]`},
		{"reflection on the sandbox globals", `function f() {
			const proto = Object.getPrototypeOf(globalThis)
			const seen = []
			for (const k of Reflect.ownKeys(proto)) { const v = proto[k]; seen.push(typeof v === "function" ? v.name : Object.keys(v)) }
			return [seen, Object.getPrototypeOf(proto) === Object.prototype] }`,
			`[[["log","info","warn","error","debug"],"setTimeout","setInterval","clearTimeout","clearInterval",["env","call","submit","publish"],
				"TextEncoder","TextDecoder","URL","URLSearchParams","atob","btoa","structuredClone",[],"DOMException"],true]`},
		{"stacks name no host file", `function f() { try { setTimeout(1) } catch (e) { return /\.go|\/|\\\\/.test(e.stack) } }`, `false`},
		{"exported values are plain", `function f(o) { return [Object.getPrototypeOf(o) === Object.prototype, Object.getOwnPropertyNames(o), typeof o.constructor.constructor("return this")().require] }`, `[{"a":1}]`},
	}
	tests[len(tests)-1].want = `[true,["a"],"undefined"]`
	for _, tt := range tests {
		args := `[]`
		if strings.Contains(tt.src, "f(o)") {
			args = `[{"a":1}]`
		}
		res := p.Run(context.Background(), job("pam", tt.src, args, 5*time.Second))
		if assert.Nil(t, res.Err, tt.name) {
			assert.JSONEq(t, tt.want, string(res.Value), tt.name)
		}
	}
}

// TestPoolIsolation runs one user's polluting job and then another user's
// probe in the same sandbox: nothing the first left may reach the second.
func TestPoolIsolation(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	ctx := context.Background()
	res := p.Run(ctx, job("mallory", `function f() {
		globalThis.leak = 1; var leak2 = 2; Object.prototype.polluted = "yes"
		Array.prototype.map = () => "hijacked"; Object.prototype.toJSON = () => "hijacked"
		JSON.stringify = () => "hijacked"; String.prototype.trim = () => "hijacked"
		console.log = () => {}; setTimeout = null; Function.prototype.call = null
		return 1 }`, `[]`, 5*time.Second))
	require.Nil(t, res.Err)
	res = p.Run(ctx, job("alice", `function f(o) {
		console.log("visible")
		return [typeof leak, typeof leak2, ({}).polluted, o.polluted, [1, 2].map(x => x * 2), " t ".trim(), typeof setTimeout, JSON.stringify({a: 1})] }`, `[{}]`, 5*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, `["undefined","undefined",null,null,[2,4],"t","function","{\"a\":1}"]`, string(res.Value))
	assert.Equal(t, "visible\n", res.Logs)
}

// TestPoolCancel ends a job's context while it is stuck in native code:
// the run returns at once and the sandbox is replaced.
func TestPoolCancel(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin := time.Now()
	res := p.Run(ctx, job("lee", `function f() { return /^(a+)+(?!c)$/.test('a'.repeat(32) + 'b') }`, `[]`, time.Minute))
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.Unavailable, res.Err.Code)
	assert.Less(t, time.Since(begin), time.Second)

	res = p.Run(context.Background(), job("lee", `() => 1`, `[]`, 5*time.Second))
	require.Nil(t, res.Err)

	// A context already ended gets no sandbox.
	res = p.Run(ctx, job("lee", `() => 1`, `[]`, 5*time.Second))
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.Unavailable, res.Err.Code)
}

// TestPoolCrash runs a job in a sandbox that dies of a bug: the job fails
// as an internal error that carries the sandbox's last words, and a
// replacement (as broken) is started.
func TestPoolCrash(t *testing.T) {
	t.Parallel()
	p := start(t, 1, "broken")
	for range 2 {
		res := p.Run(context.Background(), job("ian", `() => 1`, `[]`, 5*time.Second))
		require.NotNil(t, res.Err)
		assert.Equal(t, faas.Internal, res.Err.Code)
		assert.Contains(t, res.Err.Message, "panic: sandbox test: a bug")
		assert.Contains(t, res.Err.Message, "exit status 2")
	}
}

func TestPoolStartFails(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	_, err := pool.Start(context.Background(), pool.Config{Size: 2, Command: []string{"/nonexistent/faas"}}, slog.New(slog.NewTextHandler(&logs, nil)))
	assert.ErrorContains(t, err, "/nonexistent/faas")
	assert.NotContains(t, logs.String(), "network namespace", "a command that cannot start is not a host refusing namespaces")

	// A program that is not a sandbox exits without a hello.
	_, err = pool.Start(context.Background(), pool.Config{Size: 1, Command: []string{os.Args[0], "-test.run=^$"}}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "no hello"), err)
	assert.False(t, errors.Is(err, context.Canceled))

	// A start abandoned is abandoned at once, whatever the command does.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin := time.Now()
	_, err = pool.Start(ctx, pool.Config{Size: 1, Command: []string{"sleep", "60"}}, slog.New(slog.DiscardHandler))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(begin), 2*time.Second)
}

// TestPoolMemoryPaths tells the two memory limits apart. A job that grows
// step by step is stopped by the watchdog, and its sandbox serves on; one
// huge allocation inside a builtin is refused by the kernel, which the
// sandbox does not survive.
func TestPoolMemoryPaths(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	ctx := context.Background()
	before := p.Pids()
	require.Len(t, before, 1)

	res := p.Run(ctx, job("wes", `function f() { const a = []; for (;;) a.push({n: a.length}) }`, `[]`, 10*time.Second))
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.MemoryLimit, res.Err.Code)
	assert.Equal(t, before, p.Pids(), "the watchdog stopped the job; the sandbox lives")

	res = p.Run(ctx, job("kim", `function f() { return 'x'.repeat(2 ** 31).length }`, `[]`, 10*time.Second))
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.MemoryLimit, res.Err.Code)
	res = p.Run(ctx, job("kim", `() => 1`, `[]`, 5*time.Second))
	require.Nil(t, res.Err)
	after := p.Pids()
	require.Len(t, after, 1)
	assert.NotEqual(t, before, after, "the kernel refused the memory; the sandbox was replaced")
}

// TestPoolKilledFromOutside kills a sandbox mid-job as the system's
// out-of-memory killer would: the job fails with the memory limit, and a
// replacement serves the next one.
func TestPoolKilledFromOutside(t *testing.T) {
	t.Parallel()
	p := start(t, 1, pooltest.Mode)
	pids := p.Pids()
	require.Len(t, pids, 1)
	time.AfterFunc(200*time.Millisecond, func() { syscall.Kill(pids[0], syscall.SIGKILL) })
	res := p.Run(context.Background(), job("oom", `() => new Promise(r => setTimeout(r, 5000))`, `[]`, 10*time.Second))
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.MemoryLimit, res.Err.Code)
	res = p.Run(context.Background(), job("oom", `() => 1`, `[]`, 5*time.Second))
	assert.Nil(t, res.Err)
}

// TestPoolIdleDeaths ends idle sandboxes, by SIGTERM (which a sandbox
// obeys at once when idle) and by SIGKILL: no job fails for it, and the
// pool replaces them.
func TestPoolIdleDeaths(t *testing.T) {
	t.Parallel()
	p := start(t, 2, pooltest.Mode)
	pids := p.Pids()
	require.Len(t, pids, 2)
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGTERM))
	require.NoError(t, syscall.Kill(pids[1], syscall.SIGKILL))
	until := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(until) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 4 {
		res := p.Run(context.Background(), job("ida", `() => 1`, `[]`, 5*time.Second))
		assert.Nil(t, res.Err, "job %d", i)
	}
	assert.Len(t, p.Pids(), 2)
	for _, pid := range p.Pids() {
		assert.NotContains(t, pids, pid)
	}
}
