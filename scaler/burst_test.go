package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/dbmanager"
	"faas/jqmanager"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/worker"
	"faas/worker/pool/pooltest"
)

func init() {
	// faasworker is the real worker, configured from the environment like
	// `faas worker`.
	helpers["faasworker"] = func() int {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := runWorker(log); err != nil {
			log.Error("worker failed", "err", err)
			return 1
		}
		return 0
	}
}

func runWorker(log *slog.Logger) error {
	cfg, err := worker.LoadConfig()
	if err != nil {
		return err
	}
	store, err := dbproxy.Dial(cfg.DBURL, cfg.RequestTimeout, log)
	if err != nil {
		return fmt.Errorf("dial db manager: %w", err)
	}
	defer store.Close()
	queue, err := jqproxy.Dial(cfg.JQURL, cfg.RequestTimeout, log)
	if err != nil {
		return fmt.Errorf("dial jq manager: %w", err)
	}
	defer queue.Close()
	cfg.SandboxCommand, cfg.SandboxEnv = pooltest.Command()
	w, err := worker.New(cfg, store, queue, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, helperLifetime)
	defer cancel()
	return w.Run(ctx)
}

// slowSource is a function that takes ms milliseconds.
const slowSource = `async function slow(ms) { await new Promise(r => setTimeout(r, ms)); return ms }`

// TestBurstScalesRealWorkers runs the DB and JQ managers in-process and
// real worker processes under the scaler: a burst of slow jobs scales the
// workers up to the maximum, they share the work, and once the queue is
// idle the workers come back down to the minimum after the cooldown.
func TestBurstScalesRealWorkers(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithCancel(context.Background())
	var stopped []chan error
	run := func(name string, fn func(context.Context) error) {
		done := make(chan error, 1)
		stopped = append(stopped, done)
		go func() {
			err := fn(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
			done <- err
		}()
	}
	// Registered first, so it runs last: after the scaler and its workers.
	t.Cleanup(func() {
		cancel()
		for _, done := range stopped {
			select {
			case <-done:
			case <-time.After(settle):
				t.Error("a manager did not stop")
			}
		}
	})

	dbm, err := dbmanager.New(ctx, dbmanager.Config{DataDir: t.TempDir(), Listen: "tcp://127.0.0.1:*"}, log)
	require.NoError(t, err)
	run("dbmanager", dbm.Run)
	jqCfg, err := jqmanager.LoadConfig()
	require.NoError(t, err)
	jqCfg.Listen = "tcp://127.0.0.1:*"
	jq, err := jqmanager.New(jqCfg, dbm.Store(), log)
	require.NoError(t, err)
	run("jqmanager", jq.Run)

	store := dbm.Store()
	require.NoError(t, store.CreateUser(ctx, faas.User{Name: "burst", TokenHash: "burst-token-hash", Created: time.Now()}))
	_, _, err = store.PutFunction(ctx, faas.Function{Owner: "burst", Name: "slow", Source: slowSource, Timeout: 30 * time.Second})
	require.NoError(t, err)

	backend := newTestLocal(t, "faasworker", LocalConfig{
		Env: []string{
			"DB_URL=" + dbm.Endpoint(), "JQ_URL=" + jq.Endpoint(),
			"FAAS_WORKER_CONCURRENCY=1",
			// An idle worker stops once its poll ends: keep polls short.
			"FAAS_WORKER_POLL=200ms",
		},
		Stderr: t.Output(),
		Grace:  5 * time.Second,
	}, 0)
	queue, err := jqproxy.Dial(jq.Endpoint(), time.Second, log)
	require.NoError(t, err)
	t.Cleanup(func() { queue.Close() })
	cfg := validConfig()
	cfg.JQURL = jq.Endpoint()
	cfg.Interval = 100 * time.Millisecond
	cfg.DrainTarget = 2 * time.Second
	cfg.Cooldown = time.Second
	cfg.MinWorkers, cfg.MaxWorkers = 1, 4
	cfg.WorkerConcurrency = 1
	var scalerLog limitedBuffer
	runScaler(t, cfg, queue, backend, &scalerLog)

	stats := func() faas.Stats {
		s, err := jq.Stats(ctx)
		require.NoError(t, err)
		return s
	}
	require.Eventually(t, func() bool { return workers(t, backend) == 1 && stats().Workers == 1 },
		settle, 20*time.Millisecond, "one worker polls the idle queue")

	// 24 jobs of 500ms: 12s of work, or 3s for four workers.
	var ids []string
	for range 24 {
		j, err := jq.Submit(ctx, faas.Job{ID: uuid.NewString(), Owner: "burst", Function: "slow", Args: json.RawMessage(`[500]`), Created: time.Now()})
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	require.Eventually(t, func() bool { return workers(t, backend) == 4 }, settle, 20*time.Millisecond, "burst scales up to max")
	require.Eventually(t, func() bool { return stats().Workers == 4 }, settle, 20*time.Millisecond, "all four workers poll the queue")

	ran := map[string]int{}
	for _, id := range ids {
		_, finished, err := jq.Wait(ctx, id, 20*time.Second)
		require.NoError(t, err)
		require.True(t, finished, "job %s finished", id)
		j, err := store.Job(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, faas.Succeeded, j.State, "job %s: %+v", id, j.Error)
		ran[j.Worker]++
	}
	assert.GreaterOrEqual(t, len(ran), 3, "jobs spread over the workers: %v", ran)
	assert.Equal(t, 4, workers(t, backend), "no worker stopped while jobs ran")

	idle := time.Now()
	require.Eventually(t, func() bool { return workers(t, backend) == 1 }, settle, 20*time.Millisecond, "idle queue scales back to min")
	// Two steps down (4 to 2 to 1), each after a cooldown of 1s.
	assert.GreaterOrEqual(t, time.Since(idle), 1500*time.Millisecond, "down only after the cooldowns")
	assert.Contains(t, scalerLog.String(), `reason="scale up"`)
	assert.Contains(t, scalerLog.String(), `reason="scale down"`)
}
