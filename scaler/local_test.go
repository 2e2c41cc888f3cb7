package scaler

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
)

// settle bounds every wait for a process to start, stop or be noticed.
const settle = 10 * time.Second

// procs is a snapshot of the running workers, oldest first.
func (l *Local) procs() []*process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*process(nil), l.running...)
}

// pids lists the running workers' process ids, oldest first.
func (l *Local) pids() []int {
	var pids []int
	for _, p := range l.procs() {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// noExitDelay spares a helper built with -race the race detector's
// second of sleep at exit.
const noExitDelay = "GORACE=atexit_sleep_ms=0"

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestLocal is a local backend running n workers that are this test
// binary in the given helper mode; it is closed when the test ends.
func newTestLocal(t testing.TB, mode string, cfg LocalConfig, n int) *Local {
	t.Helper()
	cfg.Path = os.Args[0]
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	cfg.Env = append(cfg.Env, reexec.Env(mode), noExitDelay)
	l, err := NewLocal(cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	require.NoError(t, l.Scale(t.Context(), n))
	return l
}

// workers is l.Workers, which never fails for the local backend.
func workers(t testing.TB, l *Local) int {
	t.Helper()
	n, err := l.Workers(t.Context())
	require.NoError(t, err)
	return n
}

// waitDone waits until p has been reaped.
func waitDone(t testing.TB, p *process) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(settle):
		t.Fatalf("%s (pid %d) still running after %s", p.name, p.cmd.Process.Pid, settle)
	}
}

// waitReady waits until the helpers writing to out have printed ready n
// times in all.
func waitReady(t testing.TB, out *limitedBuffer, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "ready") >= n },
		settle, 10*time.Millisecond, "helpers ready")
}

func TestLocalScaleUpAndDown(t *testing.T) {
	t.Parallel()
	var out limitedBuffer
	l := newTestLocal(t, "worker", LocalConfig{Stdout: &out}, 3)
	ctx := t.Context()
	assert.Equal(t, 3, workers(t, l))
	waitReady(t, &out, 3)
	procs := l.procs()
	for _, p := range procs {
		assert.NoError(t, p.cmd.Process.Signal(syscall.Signal(0)), "%s is alive", p.name)
	}

	// Down to one: the newest two get SIGTERM, exit cleanly and are reaped.
	require.NoError(t, l.Scale(ctx, 1))
	assert.Equal(t, 1, workers(t, l))
	assert.Equal(t, procs[0], l.procs()[0], "the oldest worker stays")
	for _, p := range procs[1:] {
		waitDone(t, p)
		assert.NoError(t, p.err, "%s exits cleanly on SIGTERM", p.name)
	}
	select {
	case <-procs[0].done:
		t.Fatal("the remaining worker exited")
	default:
	}

	// Scaling to the same count changes nothing.
	require.NoError(t, l.Scale(ctx, 1))
	assert.Equal(t, procs[0], l.procs()[0])
	assert.Error(t, l.Scale(ctx, -1))
}

func TestLocalReplacesDeadWorker(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 2)
	before := l.procs()

	require.NoError(t, before[0].cmd.Process.Kill())
	require.Eventually(t, func() bool { return workers(t, l) == 1 }, settle, 10*time.Millisecond,
		"the dead worker is noticed")
	var exit *exec.ExitError
	require.ErrorAs(t, before[0].err, &exit)

	require.NoError(t, l.Scale(t.Context(), 2))
	after := l.procs()
	require.Len(t, after, 2)
	assert.Equal(t, before[1], after[0], "the live worker is kept")
	assert.NotEqual(t, before[0].cmd.Process.Pid, after[1].cmd.Process.Pid, "a new worker replaced the dead one")
}

func TestLocalKillsWorkerThatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	var out limitedBuffer
	const grace = 300 * time.Millisecond
	l := newTestLocal(t, "stubborn", LocalConfig{Grace: grace, Stdout: &out}, 1)
	waitReady(t, &out, 1) // only then does SIGTERM not stop it
	p := l.procs()[0]

	start := time.Now()
	require.NoError(t, l.Scale(t.Context(), 0))
	waitDone(t, p)
	assert.GreaterOrEqual(t, time.Since(start), grace, "killed only after the grace period")
	var exit *exec.ExitError
	require.ErrorAs(t, p.err, &exit)
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, status.Signal())
}

func TestLocalCloseStopsAllWorkers(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 3)
	procs := l.procs()
	require.NoError(t, l.Scale(t.Context(), 2)) // one already stopping when Close comes

	start := time.Now()
	require.NoError(t, l.Close())
	assert.Less(t, time.Since(start), 5*time.Second, "workers that heed SIGTERM stop well within the grace period")
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			t.Errorf("%s still running after Close", p.name)
		}
	}
	assert.Error(t, l.Scale(t.Context(), 1), "a closed backend starts nothing")
	assert.Equal(t, 0, workers(t, l))
	assert.NoError(t, l.Close(), "Close is idempotent")
}

func TestNewLocalNeedsBinary(t *testing.T) {
	t.Parallel()
	_, err := NewLocal(LocalConfig{Path: t.TempDir() + "/no-such-binary"}, nil)
	assert.Error(t, err)
}

func TestWorkerEnv(t *testing.T) {
	t.Parallel()
	env := workerEnv([]string{"PATH=/bin", "KUMORI_PASSWORD=x", "KUMORI_USER=u", "KUMORI_CREDENTIALS=f", "DB_URL=tcp://db", "FAAS_X=1"})
	assert.Equal(t, []string{"PATH=/bin", "DB_URL=tcp://db", "FAAS_X=1"}, env)
}

// TestLocalStartsAfterContextEnds checks that Scale does not tie workers
// to the context of the call that started them.
func TestLocalStartsAfterContextEnds(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 0)
	ctx, cancel := context.WithCancel(t.Context())
	require.NoError(t, l.Scale(ctx, 1))
	cancel()
	p := l.procs()[0]
	select {
	case <-p.done:
		t.Fatal("worker stopped with the context of the Scale call")
	case <-time.After(200 * time.Millisecond):
	}
}
