package pool_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faas/proxies/faas"
	"faas/worker/pool"
	"faas/worker/pool/pooltest"
	"faas/worker/sandbox"
)

// BenchmarkPoolRun is the per-job cost of the process path: the trivial
// function of sandbox.BenchmarkRun, run in a warm sandbox process, the
// request and reply crossing the pipes. The difference between the two is
// the overhead of isolation. "unfenced" turns the switchable fences off
// (the system call filter, which every system call of the sandbox pays
// for, and the network namespace), to show what they cost.
func BenchmarkPoolRun(b *testing.B) {
	const add, addPrinting = `function add(a,b){return a+b}`, `function add(a,b){console.log(a); return a+b}`
	for _, bb := range []struct {
		name  string
		fence pool.Fence
		src   string
		// stream asks for the console lines while the job runs, as the
		// worker does.
		stream bool
	}{
		{"fenced", pool.Fence{}, add, false},
		{"unfenced", pool.Fence{NoSeccomp: true, NoNetNS: true}, add, false},
		{"fenced streamed", pool.Fence{}, add, true},
		{"fenced streamed printing", pool.Fence{}, addPrinting, true},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := startFenced(b, 1, pooltest.Mode, bb.fence)
			j := pool.Job{
				Key:    pool.Key{Owner: "bench", Name: "add", Version: 1},
				Source: bb.src,
				Args:   json.RawMessage(`[4,5]`),
				Limits: sandbox.Limits{Timeout: 5 * time.Second},
			}
			if bb.stream {
				j.OnLines = func([]faas.LogLine) {}
			}
			ctx := context.Background()
			p.Run(ctx, j) // compiles it
			b.ReportAllocs()
			for b.Loop() {
				res := p.Run(ctx, j)
				if res.Err != nil || string(res.Value) != "9" {
					b.Fatalf("got %s %v", res.Value, res.Err)
				}
			}
		})
	}
}

// BenchmarkPoolPaced is BenchmarkPoolRun with the jobs spaced out as a
// busy worker's slot receives them, a pause between one job and the next,
// and it reports the CPU time each job costs the sandbox process and this
// (the worker's) process: an idle moment between jobs is where a process's
// runtime spends on waking up and going back to sleep, which a loop of
// jobs back to back never shows.
func BenchmarkPoolPaced(b *testing.B) {
	for _, gap := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		b.Run("gap="+gap.String(), func(b *testing.B) {
			p := start(b, 1, pooltest.Mode)
			j := pool.Job{
				Key:     pool.Key{Owner: "bench", Name: "add", Version: 1},
				Source:  `function add(a,b){return a+b}`,
				Args:    json.RawMessage(`[4,5]`),
				Limits:  sandbox.Limits{Timeout: 5 * time.Second},
				OnLines: func([]faas.LogLine) {},
			}
			ctx := context.Background()
			p.Run(ctx, j) // compiles it
			pid := p.Pids()[0]
			sandboxCPU, selfCPU := cpuTime(b, pid), cpuTime(b, os.Getpid())
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if gap > 0 {
					time.Sleep(gap)
				}
				res := p.Run(ctx, j)
				if res.Err != nil || string(res.Value) != "9" {
					b.Fatalf("got %s %v", res.Value, res.Err)
				}
			}
			b.ReportMetric(float64(cpuTime(b, pid)-sandboxCPU)/float64(b.N), "sandbox-cpu-ns/op")
			b.ReportMetric(float64(cpuTime(b, os.Getpid())-selfCPU)/float64(b.N), "pool-cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time process pid has used, to the nanosecond: the sum
// of its threads' run times as the scheduler counts them.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	stats, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(stats) == 0 {
		b.Fatalf("no threads of process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range stats {
		s, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		ns, err := strconv.ParseInt(strings.Fields(string(s))[0], 10, 64)
		if err != nil {
			b.Fatalf("%s: %v", f, err)
		}
		sum += time.Duration(ns)
	}
	return sum
}

// BenchmarkPoolFusedCall is a job that makes one fused call, against the
// same job doing the work itself: the difference is the cost of a
// faas.call, the request to the worker and the callee's fresh runtime
// included (its program is cached after the first call).
func BenchmarkPoolFusedCall(b *testing.B) {
	for _, bb := range []struct{ name, src string }{
		{"inline", `async function f() { return 3 * 3 }`},
		{"fused", `async function f() { return await faas.call("sq", 3) }`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := start(b, 1, pooltest.Mode)
			j := pool.Job{
				Key:    pool.Key{Owner: "hal", Name: "f", Version: 1},
				Source: bb.src,
				Limits: sandbox.Limits{Timeout: 5 * time.Second},
				Host:   &testHost{},
			}
			ctx := context.Background()
			p.Run(ctx, j)
			b.ReportAllocs()
			for b.Loop() {
				res := p.Run(ctx, j)
				if res.Err != nil || string(res.Value) != "9" {
					b.Fatalf("got %s %v", res.Value, res.Err)
				}
			}
		})
	}
}
