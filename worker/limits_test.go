package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestWorkerSandboxLimits runs hostile jobs through a whole worker, with
// the real DB and JQ managers, each beside a well-behaved job in the
// worker's other sandbox. Each hostile job fails with its code within its
// limit plus a second, billed no more than its limit; the job beside it
// succeeds; and the worker serves the next job.
func TestWorkerSandboxLimits(t *testing.T) {
	t.Parallel()
	const limit = 400 * time.Millisecond
	p := newPlatform(t)
	for _, u := range []string{"amy", "bob"} {
		p.user(u)
	}
	put := func(owner, name, src string, timeout time.Duration, memoryMB int) {
		t.Helper()
		_, _, err := p.store.PutFunction(p.ctx, faas.Function{Owner: owner, Name: name, Source: src, Timeout: timeout, MemoryMB: memoryMB})
		require.NoError(t, err)
	}
	put("amy", "regex", `function f() { return /^(a+)+(?!c)$/.test('a'.repeat(28) + 'b') }`, limit, 0)
	put("amy", "grow", `function f() { const a = []; for (;;) a.push({n: a.length}) }`, 10*time.Second, 32)
	put("amy", "huge", `function f() { return 'x'.repeat(2 ** 31).length }`, 10*time.Second, 32)
	put("amy", "pollute", `function f() { Object.prototype.polluted = "amy"; Array.prototype.map = () => "amy"; globalThis.secret = "amy"; return 1 }`, time.Second, 0)
	put("bob", "probe", `function f() { return [({}).polluted, [1].map(x => x + 1), typeof secret] }`, time.Second, 0)
	put("bob", "beside", `async function f() { await new Promise(r => setTimeout(r, 200)); return "beside" }`, 5*time.Second, 0)
	put("bob", "ok", `() => "still serving"`, time.Second, 0)
	cfg := config("w1")
	p.startWorker(cfg, nil, nil)

	tests := []struct {
		fn    string
		limit time.Duration
		code  faas.Code
		msg   string
	}{
		{"regex", limit, faas.Timeout, "function exceeded its 400ms time limit"},
		{"grow", 10 * time.Second, faas.MemoryLimit, "function exceeded its 32 MiB memory limit"},
		{"huge", 10 * time.Second, faas.MemoryLimit, "function exceeded its 32 MiB memory limit"},
	}
	for _, tt := range tests {
		hostile := p.submit("amy", tt.fn, `[]`)
		beside := p.submit("bob", "beside", `[]`)
		j := p.finished(hostile.ID)
		require.Equal(t, faas.Failed, j.State, tt.fn)
		require.NotNil(t, j.Error, tt.fn)
		assert.Equal(t, tt.code, j.Error.Code, tt.fn)
		assert.Equal(t, tt.msg, j.Error.Message, tt.fn)
		assert.Less(t, j.Finished.Sub(j.Started), tt.limit+time.Second, tt.fn)
		assert.LessOrEqual(t, j.Billed, tt.limit, tt.fn)
		if tt.code == faas.Timeout {
			assert.Equal(t, tt.limit, j.Billed, "a timeout bills the limit")
		}
		b := p.finished(beside.ID)
		assert.Equal(t, faas.Succeeded, b.State, "%s: the job beside: %v", tt.fn, b.Error)
		for range cfg.Concurrency {
			ok := p.finished(p.submit("bob", "ok", `[]`).ID)
			assert.Equal(t, faas.Succeeded, ok.State, "%s: the next job: %v", tt.fn, ok.Error)
		}
	}

	// One user's pollution never reaches another's job, whichever
	// sandbox runs it.
	for i := range 2 * cfg.Concurrency {
		require.Equal(t, faas.Succeeded, p.finished(p.submit("amy", "pollute", `[]`).ID).State)
		j := p.finished(p.submit("bob", "probe", `[]`).ID)
		require.Equal(t, faas.Succeeded, j.State, "probe %d: %v", i, j.Error)
		assert.JSONEq(t, `[null,[2],"undefined"]`, string(j.Result), fmt.Sprint("probe ", i))
	}

	total, err := p.store.BilledTime(p.ctx, "amy")
	require.NoError(t, err)
	assert.Positive(t, total)
}
