package sandbox

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/dop251/goja"
	"github.com/stretchr/testify/require"
)

const benchSource = `function add(a,b){return a+b}`

// BenchmarkRun is the per-job cost of the sandbox: a fresh runtime, the
// globals, the call, the JSON result.
func BenchmarkRun(b *testing.B) {
	p, err := Compile(benchSource, "add")
	require.NoError(b, err)
	args := json.RawMessage(`[4,5]`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res := Run(ctx, p, args, Limits{})
		if res.Err != nil || string(res.Value) != "9" {
			b.Fatalf("got %s %v", res.Value, res.Err)
		}
	}
}

// BenchmarkDirect is the floor: the same function called on one long-lived
// runtime, with no isolation at all.
func BenchmarkDirect(b *testing.B) {
	vm := goja.New()
	v, err := vm.RunString(benchSource + "\n;add")
	require.NoError(b, err)
	add, ok := goja.AssertFunction(v)
	require.True(b, ok)
	four, five := vm.ToValue(4), vm.ToValue(5)
	b.ReportAllocs()
	for b.Loop() {
		res, err := add(goja.Undefined(), four, five)
		if err != nil || res.ToInteger() != 9 {
			b.Fatalf("got %v %v", res, err)
		}
	}
}

// BenchmarkRunAsync is the per-job cost of a function that awaits a timer:
// the lazily created timer functions and the wait loop. As in Node, a zero
// delay waits 1 ms, which dominates.
func BenchmarkRunAsync(b *testing.B) {
	p, err := Compile(`async (a, b) => { await new Promise(r => setTimeout(r, 0)); return a + b }`, "add")
	require.NoError(b, err)
	args := json.RawMessage(`[4,5]`)
	b.ReportAllocs()
	for b.Loop() {
		res := Run(context.Background(), p, args, Limits{})
		if res.Err != nil || string(res.Value) != "9" {
			b.Fatalf("got %s %v", res.Value, res.Err)
		}
	}
}

// BenchmarkRunWeb is the per-job cost of a function that uses a Web
// global: web.js is evaluated on first use in every run, and makes only
// the globals the function looks up.
func BenchmarkRunWeb(b *testing.B) {
	for _, bc := range []struct{ name, src, args, want string }{
		{"atob", `(s) => atob(s)`, `["aGk="]`, `"hi"`},
		{"URL", `(s) => new URL(s).hostname`, `["https://example.com/x"]`, `"example.com"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := Compile(bc.src, "f")
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				res := Run(context.Background(), p, json.RawMessage(bc.args), Limits{})
				if res.Err != nil || string(res.Value) != bc.want {
					b.Fatalf("got %s %v", res.Value, res.Err)
				}
			}
		})
	}
}
