package scaler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// statsQueue is a job queue that only reports statistics, set by the test;
// the scaler calls nothing else.
type statsQueue struct {
	faas.JobQueue // nil: any other call panics

	mu    sync.Mutex
	stats faas.Stats
	err   error
	calls int
}

func (q *statsQueue) Stats(context.Context) (faas.Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	return q.stats, q.err
}

func (q *statsQueue) set(s faas.Stats, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stats, q.err = s, err
}

func (q *statsQueue) callCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls
}

// fastConfig scales every 20ms between 1 and 4 single-job workers.
func fastConfig() Config {
	c := validConfig()
	c.Interval = 20 * time.Millisecond
	c.DrainTarget = time.Second
	c.Cooldown = 300 * time.Millisecond
	c.MinWorkers, c.MaxWorkers = 1, 4
	c.WorkerConcurrency = 1
	return c
}

// runScaler runs a scaler until the test ends, logging to log as well as
// the test, and returns a stop function that waits for Run to return.
func runScaler(t testing.TB, cfg Config, q faas.JobQueue, b Backend, log io.Writer) (stop func() error) {
	t.Helper()
	w := io.MultiWriter(t.Output(), log)
	s, err := New(cfg, q, b, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(settle):
			return errors.New("Run did not return")
		}
	})
	t.Cleanup(func() { assert.NoError(t, stop()) })
	return stop
}

func TestRunScalesUpAndDown(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 0)
	q := &statsQueue{}
	var log limitedBuffer
	cfg := fastConfig()
	reg := prometheus.NewPedanticRegistry()
	cfg.Metrics = reg
	stop := runScaler(t, cfg, q, l, &log)

	require.Eventually(t, func() bool { return workers(t, l) == 1 }, settle, 10*time.Millisecond, "min workers at start")

	q.set(faas.Stats{Queued: 100, Completed: 1, AvgDuration: time.Second}, nil)
	require.Eventually(t, func() bool { return workers(t, l) == 4 }, settle, 10*time.Millisecond, "burst scales up to max")
	assert.Contains(t, log.String(), "queued=100")

	q.set(faas.Stats{Completed: 101, AvgDuration: time.Second}, nil)
	idle := time.Now()
	require.Eventually(t, func() bool { return workers(t, l) == 2 }, settle, 10*time.Millisecond, "halved after the cooldown")
	// The cooldown runs from the last tick that saw the burst, which may be
	// an interval or so before the queue went idle; without it the step
	// down would come within an interval.
	assert.GreaterOrEqual(t, time.Since(idle), 200*time.Millisecond, "not before the cooldown")
	require.Eventually(t, func() bool { return workers(t, l) == 1 }, settle, 10*time.Millisecond, "back to min")
	// Up from none to the minimum, then to the maximum; down twice.
	require.Eventually(t, func() bool {
		return gaugeValue(t, reg, "faas_scaler_target_workers") == 1
	}, settle, 10*time.Millisecond, "the target gauge follows")
	scalings := counts(t, reg, "faas_scaler_scalings_total")
	assert.GreaterOrEqual(t, scalings["up"], 2.0, "scalings up")
	assert.GreaterOrEqual(t, scalings["down"], 2.0, "scalings down")
	lint, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, lint)

	procs := l.procs()
	require.NoError(t, stop())
	for _, p := range procs {
		waitDone(t, p) // Run stopped the workers before returning
	}
	assert.Error(t, l.Scale(t.Context(), 1), "Run closed the backend")
}

// gaugeValue returns the value of the registry's unlabelled gauge called
// name, or -1 if it has none.
func gaugeValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	for _, mf := range gather(t, reg) {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// counts returns the values of the counter called name by its one label.
func counts(t testing.TB, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range gather(t, reg) {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func gather(t testing.TB, reg prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}

func TestRunBacksOffWhileQueueUnreachable(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 3)
	q := &statsQueue{}
	q.set(faas.Stats{}, faas.Errorf(faas.Unavailable, "service unavailable, try again"))
	var log limitedBuffer
	cfg := fastConfig()
	cfg.Interval = 10 * time.Millisecond
	start := time.Now()
	runScaler(t, cfg, q, l, &log)

	// A dead worker is still replaced: the count is kept, not abandoned.
	require.Eventually(t, func() bool { return q.callCount() > 0 }, settle, time.Millisecond, "first tick")
	require.NoError(t, l.procs()[0].cmd.Process.Kill())
	time.Sleep(600 * time.Millisecond)
	calls := q.callCount()
	// Waits of at least 10, 20, 40, 80, 160, 320ms: no more than six calls
	// fit in 600ms (sixty without backoff).
	assert.LessOrEqual(t, calls, 6, "calls in %s", time.Since(start))
	assert.GreaterOrEqual(t, calls, 3)
	assert.Contains(t, log.String(), "queue stats")
	require.Eventually(t, func() bool { return workers(t, l) == 3 }, settle, 10*time.Millisecond,
		"workers kept (and the dead one replaced) while the queue is away")

	// Once the queue answers, scaling resumes at the normal pace.
	q.set(faas.Stats{Queued: 100, Completed: 1, AvgDuration: time.Second}, nil)
	require.Eventually(t, func() bool { return workers(t, l) == 4 }, settle, 10*time.Millisecond)
}

func TestNewChecksItsArguments(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, "worker", LocalConfig{}, 0)
	bad := validConfig()
	bad.MaxWorkers = 0
	_, err := New(bad, &statsQueue{}, l, nil)
	assert.Error(t, err)
	_, err = New(validConfig(), nil, l, nil)
	assert.Error(t, err)
	_, err = New(validConfig(), &statsQueue{}, nil, nil)
	assert.Error(t, err)
	_, err = New(validConfig(), &statsQueue{}, l, nil)
	assert.NoError(t, err)
}

// TestRetryNeverShorterThanInterval: a scaler failing its steps waits at
// least its interval, however long the interval and however few the
// failures; the doubling itself is the backoff package's.
func TestRetryNeverShorterThanInterval(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{time.Second, 2 * time.Minute} {
		for failures := 1; failures < 10; failures++ {
			assert.GreaterOrEqual(t, retryPolicy(interval).Delay(failures), interval, "interval %v failures %d", interval, failures)
		}
	}
}
