package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
	"faas/worker/internal/leakcheck"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// slack is the time a stopped run may take beyond its limit on a loaded
// machine running tests in parallel under the race detector.
const slack = time.Second

func run(t testing.TB, src, args string, lim Limits) Result {
	t.Helper()
	p, err := Compile(src, "f")
	require.NoError(t, err)
	return Run(context.Background(), p, json.RawMessage(args), lim)
}

func TestRunValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		args string
		want string
	}{
		{"sync add", `function add(a,b){return a+b}`, `[4,5]`, `9`},
		{"async with timer", `async function add(a,b){ await new Promise(r => setTimeout(r, 20)); return a+b }`, `[4,5]`, `9`},
		{"arrow", `(a, b) => a * b`, `[3,4]`, `12`},
		{"async arrow", `async x => x + 1`, `[1]`, `2`},
		{"function expression", `(function (s) { return s.toUpperCase() })`, `["hi"]`, `"HI"`},
		{"helpers before the function", "const k = 10;\nfunction helper(x) { return x * k }\nfunction main(x) { return helper(x) }", `[2]`, `20`},
		{"trailing comment and semicolons", "function f() { return 1 };; // done", `[]`, `1`},
		{"undefined is null", `function f() {}`, `[]`, `null`},
		{"no arguments", `function f(...a) { return a.length }`, ``, `0`},
		{"object round trip", `function id(x) { return x }`, `[{"a":[1,"two",null,true],"b":{"c":1.5}}]`, `{"a":[1,"two",null,true],"b":{"c":1.5}}`},
		{"array round trip", `function id(x) { return x }`, `[[1,[2,[3]]]]`, `[1,[2,[3]]]`},
		{"string round trip", `function id(x) { return x }`, `["é \"q\" \n ✓"]`, `"é \"q\" \n ✓"`},
		{"arguments are plain objects", `function f(o) { return [Object.getPrototypeOf(o) === Object.prototype, Array.isArray(o.a), typeof o.n] }`, `[{"a":[],"n":1e300}]`, `[true,true,"number"]`},
		{"getters run once, when encoding", `function f() { let n = 0; return { get x() { return ++n } } }`, `[]`, `{"x":1}`},
		{"toJSON is honoured", `function f() { return { toJSON() { return "x" } } }`, `[]`, `"x"`},
		{"functions are dropped like JSON.stringify", `function f() { return { a: 1, g() {} } }`, `[]`, `{"a":1}`},
		{"interval cleared by itself", `function f() { return new Promise(r => { let n = 0; const id = setInterval(() => { if (++n === 3) { clearInterval(id); r(n) } }, 1) }) }`, `[]`, `3`},
		{"cleared timeout never fires", `function f() { return new Promise(r => { const id = setTimeout(() => r("fired"), 5); clearTimeout(id); setTimeout(() => r("cleared"), 10) }) }`, `[]`, `"cleared"`},
		{"timers run in due order", `function f() { const out = []; return new Promise(r => { setTimeout(() => { out.push("b"); r(out) }, 10); setTimeout(() => out.push("a"), 0) }) }`, `[]`, `["a","b"]`},
		{"timer arguments", `function f() { return new Promise(r => setTimeout((a, b) => r(a + b), 1, 2, 3)) }`, `[]`, `5`},
		{"pending timers after settlement are dropped", `function f() { setInterval(() => {}, 1); setTimeout(() => {}, 1e9); return 7 }`, `[]`, `7`},
		{"host objects are absent", `function f() { return [typeof require, typeof process, typeof module, typeof exports, typeof global, typeof fetch] }`, `[]`, `["undefined","undefined","undefined","undefined","undefined","undefined"]`},
		{"sandbox globals behave as globals", `function f() { return [typeof setTimeout, typeof clearInterval, typeof console.log, "setInterval" in globalThis, typeof globalThis.clearTimeout, console.log === console.error] }`, `[]`, `["function","function","function",true,"function",false]`},
		{"sandbox globals can be replaced", `function f() { setTimeout = 5; var console = {log: 1}; return [setTimeout, globalThis.setTimeout, console.log] }`, `[]`, `[5,5,1]`},
		{"sandbox globals are enumerated", `function f() { const ks = []; for (const k in globalThis) ks.push(k); return ["console", "setTimeout", "clearInterval"].every(k => ks.includes(k)) }`, `[]`, `true`},
		{"polluted Object.prototype does not hide them", `function f() { Object.prototype.setTimeout = 1; return typeof setTimeout }`, `[]`, `"function"`},
		{"natives are named as in JavaScript", `function f() { return [String(setTimeout), String(console.log), clearInterval.name] }`, `[]`, `["function setTimeout() { [native code] }","function log() { [native code] }","clearInterval"]`},
		{"Function constructor reaches only the sandbox", `function f() { const g = Function("return this")(); return [typeof g.require, typeof g.setTimeout, g === globalThis] }`, `[]`, `["undefined","function",true]`},
		{"booleans and odd numbers", `function f() { return [true, false, NaN, -0, 1e21, 0.1, Infinity] }`, `[]`, `[true,false,null,0,1e21,0.1,null]`},
		{"control characters are escaped", "function f() { return '\\u0001\\b\\f\\t<>&' }", `[]`, `"\u0001\b\f\t<>&"`},
		{"symbol is null", `function f() { return Symbol("s") }`, `[]`, `null`},
		{"boxed primitives", `function f() { return [new String("s"), new Number(1), new Boolean(false)] }`, `[]`, `["s",1,false]`},
		{"replaced JSON does not change the result", `function f() { JSON.stringify = () => "hacked"; return [1] }`, `[]`, `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tt.src, tt.args, Limits{Timeout: 5 * time.Second})
			require.Nil(t, res.Err)
			assert.JSONEq(t, tt.want, string(res.Value))
			assert.Positive(t, res.Duration)
		})
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	const limit = 200 * time.Millisecond
	tests := []struct {
		name string
		src  string
		args string
		lim  Limits
		code faas.Code
		msg  string // a substring of the message
	}{
		{"thrown TypeError", `function add(a, b) { const x = undefined; return x() }`, `[]`, Limits{}, faas.FunctionError, "TypeError: "},
		{"thrown Error names its frame", `function add(a, b) { throw new Error("boom") }`, `[]`, Limits{}, faas.FunctionError, "Error: boom at add (<input>:1:28)"},
		{"reference error", `function add(a, b) { return y(a) }`, `[]`, Limits{}, faas.FunctionError, "ReferenceError: y is not defined at add (<input>:1:30)"},
		{"thrown string", `function f() { throw "boom" }`, `[]`, Limits{}, faas.FunctionError, `Uncaught "boom"`},
		{"thrown object", `function f() { throw {code: 7} }`, `[]`, Limits{}, faas.FunctionError, `Uncaught {"code":7}`},
		{"rejected promise", `async function f() { throw new RangeError("bad") }`, `[]`, Limits{}, faas.FunctionError, "RangeError: bad at f"},
		{"throw in a timer callback", `function f() { return new Promise(() => setTimeout(() => { throw new Error("late") }, 1)) }`, `[]`, Limits{}, faas.FunctionError, "Error: late"},
		{"setTimeout without a function", `function f() { setTimeout("code", 1) }`, `[]`, Limits{}, faas.FunctionError, "TypeError: the callback argument must be a function"},
		{"infinite loop", `function f() { while (true) {} }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "function exceeded its 200ms time limit"},
		{"infinite microtask loop", `async function f() { while (true) await null }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "function exceeded its 200ms time limit"},
		{"infinite loop in a timer", `function f() { return new Promise(() => setTimeout(() => { for (;;) {} }, 1)) }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"pending long timeout", `function f() { return new Promise(r => setTimeout(r, 1e9)) }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"interval never cleared", `function f() { let n = 0; setInterval(() => n++, 1); return new Promise(() => {}) }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"promise that never settles", `function f() { return new Promise(() => {}) }`, `[]`, Limits{}, faas.FunctionError, "function returned a promise that never settled"},
		{"deep recursion", `function f(n) { return f(n + 1) + 1 }`, `[0]`, Limits{}, faas.FunctionError, "maximum call stack size exceeded"},
		{"deep recursion through a builtin", `function f() { return [0].map(f) }`, `[]`, Limits{}, faas.FunctionError, "maximum call stack size exceeded"},
		{"BigInt result", `function f() { return 10n }`, `[]`, Limits{}, faas.FunctionError, "result cannot be encoded as JSON: TypeError: Do not know how to serialize a BigInt"},
		{"cyclic result", `function f() { const a = {}; a.self = a; return a }`, `[]`, Limits{}, faas.FunctionError, "result cannot be encoded as JSON"},
		{"oversize result", `function f() { return "x".repeat(2 * 1024 * 1024) }`, `[]`, Limits{}, faas.TooLarge, "result of 2097154 bytes exceeds the 1 MiB limit"},
		{"result over a custom limit", `function f() { return [1, 2, 3] }`, `[]`, Limits{MaxResult: 4}, faas.TooLarge, "result of 7 bytes exceeds the 4 bytes limit"},
		{"infinite toJSON", `function f() { return { toJSON() { for (;;) {} } } }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"throwing toJSON", `function f() { return { toJSON() { throw new Error("nope") } } }`, `[]`, Limits{}, faas.FunctionError, "result cannot be encoded as JSON: Error: nope at toJSON"},
		{"console.log of an infinite toJSON", `function f() { console.log({ toJSON() { for (;;) {} } }); return 1 }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"thrown error with an infinite toString", `function f() { const e = new Error("x"); e.toString = () => { for (;;) {} }; throw e }`, `[]`, Limits{Timeout: limit}, faas.Timeout, "time limit"},
		{"thrown error with a throwing toString", `function f() { const e = new Error("x"); e.toString = () => { throw 1 }; throw e }`, `[]`, Limits{}, faas.FunctionError, "Uncaught exception that cannot be printed"},
		{"arguments not an array", `function f() {}`, `{"a":1}`, Limits{}, faas.Invalid, "arguments must be a JSON array"},
		{"number out of range", `function f() {}`, `[1e400]`, Limits{}, faas.Invalid, "argument 0: number 1e400 out of range"},
		{"nested number out of range", `function f() {}`, `[[1e400]]`, Limits{}, faas.Invalid, "argument 0: "},
		{"arguments not JSON", `function f() {}`, `[1,`, Limits{}, faas.Invalid, "arguments must be a JSON array"},
		{"huge Error message is cut", `function f() { throw new Error("é".repeat(1 << 20)) }`, `[]`, Limits{}, faas.FunctionError, "Error: éé"},
		{"huge rejection is cut", `async function f() { throw {big: "x".repeat(2 << 20)} }`, `[]`, Limits{}, faas.FunctionError, `Uncaught {"big":"xx`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tt.src, tt.args, tt.lim)
			require.NotNil(t, res.Err, "value %s", res.Value)
			assert.Equal(t, tt.code, res.Err.Code)
			assert.Contains(t, res.Err.Message, tt.msg)
			assert.LessOrEqual(t, len(res.Err.Message), MaxErrorMessage)
			assert.True(t, utf8.ValidString(res.Err.Message))
			if len(res.Err.Message) > MaxErrorMessage/2 {
				assert.True(t, strings.HasSuffix(res.Err.Message, " [error message truncated]"), "a cut message says so")
			}
			assert.Nil(t, res.Value)
			if tt.code == faas.Timeout {
				assert.GreaterOrEqual(t, res.Duration, limit)
				assert.Less(t, res.Duration, limit+slack)
			}
		})
	}
}

func TestRunContextCancel(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`function f() { while (true) {} }`,
		`function f() { return new Promise(r => setTimeout(r, 1e9)) }`,
	} {
		p, err := Compile(src, "f")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		res := Run(ctx, p, nil, Limits{Timeout: time.Minute})
		cancel()
		require.NotNil(t, res.Err)
		assert.Equal(t, faas.Unavailable, res.Err.Code)
		assert.Less(t, res.Duration, slack)
	}
}

// TestRunContextVerdict ends a run's context with an error as its cause,
// as the memory watchdog does: the run fails with that error.
func TestRunContextVerdict(t *testing.T) {
	t.Parallel()
	p, err := Compile(`function f() { const a = []; for (;;) a.push(a.length) }`, "f")
	require.NoError(t, err)
	verdict := faas.Errorf(faas.MemoryLimit, "function exceeded its 1 MiB memory limit")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(verdict) })
	res := Run(ctx, p, nil, Limits{Timeout: time.Minute})
	assert.Equal(t, verdict, res.Err)
	assert.Less(t, res.Duration, slack)

	// A run that starts after the verdict fails with it at once.
	res = Run(ctx, p, nil, Limits{})
	assert.Equal(t, verdict, res.Err)
}

func TestRunConsole(t *testing.T) {
	t.Parallel()
	t.Run("capture", func(t *testing.T) {
		t.Parallel()
		res := run(t, `function f() {
			console.log("a", 1, {b: 2}, [1], null, undefined)
			console.info("i"); console.warn("w"); console.error(new Error("e")); console.debug("d")
			return 1 }`, `[]`, Limits{})
		require.Nil(t, res.Err)
		assert.Equal(t, "a 1 {\"b\":2} [1] null undefined\ni\nw\nError: e at f (<input>:3:56)\nd\n", res.Logs)
	})
	t.Run("streamed", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			src  string
			max  int
			// want is the batches emitted, each as its lines' offset:stream:line.
			want [][]string
		}{
			{"flushed before a wait", `async function f() {
				console.log("one"); console.warn("two")
				await new Promise(r => setTimeout(r, 5))
				console.error("three"); console.info("four"); console.debug("five")
				await new Promise(r => setTimeout(r, 5))
				console.log("six"); return 1 }`, 100,
				[][]string{{"0:log:one", "1:warn:two"}, {"2:error:three", "3:info:four", "4:log:five"}, {"5:log:six"}}},
			{"batches of FlushLines", `function f() { for (let i = 0; i < 130; i++) console.log(i); return 1 }`, 1000,
				[][]string{lines(0, FlushLines), lines(FlushLines, 2*FlushLines), lines(2*FlushLines, 130)}},
			{"none past the cap", `async function f() { console.log("x".repeat(200)); console.log("y"); await new Promise(r => setTimeout(r, 5)); return 1 }`, 100,
				nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p, err := Compile(tt.src, "f")
				require.NoError(t, err)
				var got [][]string
				res := RunStreaming(context.Background(), p, nil, Limits{MaxLogs: tt.max}, func(batch []faas.LogLine) {
					var b []string
					for _, l := range batch {
						b = append(b, fmt.Sprintf("%d:%s:%s", l.Offset, l.Stream, l.Line))
					}
					got = append(got, b)
				}, nil)
				require.Nil(t, res.Err)
				assert.Equal(t, tt.want, got)
			})
		}
	})
	t.Run("kept on failure", func(t *testing.T) {
		t.Parallel()
		res := run(t, `function f() { console.log("before"); throw new Error("x") }`, `[]`, Limits{})
		require.NotNil(t, res.Err)
		assert.Equal(t, "before\n", res.Logs)
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		res := run(t, `function f() { for (let i = 0; i < 1000; i++) console.log("line " + i); return 1 }`, `[]`, Limits{MaxLogs: 100})
		require.Nil(t, res.Err)
		assert.Equal(t, 100+len(logTruncated), len(res.Logs))
		assert.True(t, strings.HasPrefix(res.Logs, "line 0\nline 1\n"))
		assert.True(t, strings.HasSuffix(res.Logs, "\n[logs truncated]"))
	})
	t.Run("default limit", func(t *testing.T) {
		t.Parallel()
		res := run(t, `function f() { for (let i = 0; i < 1e5; i++) console.log("é".repeat(100)); return 1 }`, `[]`, Limits{})
		require.Nil(t, res.Err)
		assert.LessOrEqual(t, len(res.Logs), DefaultMaxLogs+len(logTruncated))
		assert.Greater(t, len(res.Logs), DefaultMaxLogs-4)
		assert.True(t, strings.HasSuffix(res.Logs, logTruncated))
		assert.True(t, json.Valid([]byte(`"`+strings.ReplaceAll(res.Logs, "\n", `\n`)+`"`)), "cut inside a character")
	})
}

// TestRunIsolation runs a polluting function and then a probe: nothing the
// first left behind may be visible to the second.
func TestRunIsolation(t *testing.T) {
	t.Parallel()
	res := run(t, `function f() {
		globalThis.leak = 1; var leak2 = 2; Object.prototype.polluted = 1
		Array.prototype.push = null; console.log = null; JSON.parse = null
		setTimeout(() => {}, 1e9)
		return 1 }`, `[]`, Limits{})
	require.Nil(t, res.Err)
	res = run(t, `function f(o) { return [typeof leak, typeof leak2, ({}).polluted, o.polluted, typeof [].push, typeof console.log] }`, `[{}]`, Limits{})
	require.Nil(t, res.Err)
	assert.JSONEq(t, `["undefined","undefined",null,null,"function","function"]`, string(res.Value))
}

// TestProgramShared runs one Program from many goroutines at once.
func TestProgramShared(t *testing.T) {
	t.Parallel()
	p, err := Compile(`let calls = 0; async function f(x) { calls++; await new Promise(r => setTimeout(r, 1)); return [x, calls] }`, "f")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			res := Run(context.Background(), p, json.RawMessage(`[`+string(rune('0'+i%10))+`]`), Limits{})
			assert.Nil(t, res.Err)
			assert.JSONEq(t, `[`+string(rune('0'+i%10))+`,1]`, string(res.Value))
		})
	}
	wg.Wait()
}

func TestRunWithoutProgram(t *testing.T) {
	t.Parallel()
	res := Run(context.Background(), nil, nil, Limits{})
	require.NotNil(t, res.Err)
	assert.Equal(t, faas.Internal, res.Err.Code)
}

// lines is the streamed form of console.log(i) for i in [from, to).
func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%d:log:%d", i, i))
	}
	return out
}
