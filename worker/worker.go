// Package worker is the worker process's logic: it long-polls the job
// queue for jobs, runs each user function in a sandbox child process from
// its warm pool, records the outcome (and the bill) in the Store, and keeps
// the leases of its running jobs alive with heartbeats so the queue can
// tell a busy worker from a dead one.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"faas/internal/backoff"
	"faas/internal/batch"
	"faas/internal/reuse"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/tracing"
	"faas/worker/internal/lru"
	"faas/worker/pool"
	"faas/worker/sandbox"
)

// Config is the worker's settings, read from the environment. DB_URL and
// JQ_URL are the reference deployment's names.
type Config struct {
	// DBURL is the DB manager's ZeroMQ endpoint.
	DBURL string `envconfig:"DB_URL" default:"tcp://127.0.0.1:27444" desc:"DB manager's ZeroMQ endpoint"`
	// JQURL is the JQ manager's ZeroMQ endpoint.
	JQURL string `envconfig:"JQ_URL" default:"tcp://127.0.0.1:27445" desc:"JQ manager's ZeroMQ endpoint"`
	// Concurrency is the number of jobs run at once, each in its own
	// sandbox process; 0 means faas.SlotsPerCPU per CPU.
	Concurrency int `envconfig:"FAAS_WORKER_CONCURRENCY" desc:"jobs run at once, one sandbox process each; 0 is faas.SlotsPerCPU (8) per CPU"`
	// NoLeaseAhead makes the worker lease jobs only for idle sandboxes.
	// By default it also leases up to two jobs ahead per sandbox while its
	// sandboxes finish jobs fast enough for such a job to start within
	// milliseconds (see slots); a job leased ahead is still held by this
	// worker if the jobs before it turn out long.
	NoLeaseAhead bool `envconfig:"FAAS_WORKER_NO_LEASE_AHEAD" desc:"lease jobs only for idle sandboxes, none ahead for the next to free up"`
	// Procs is how many processors the Go runtime of a worker process
	// uses (its GOMAXPROCS); 0 leaves the runtime's default, one per CPU.
	// A worker's own work is handing jobs between the bus and its
	// sandboxes, mostly waiting; with fewer processors it hands them over
	// on fewer threads, which wake each other less (see README,
	// Sandboxes). It applies to the worker role's process, not to a
	// Worker built in another program.
	Procs int `envconfig:"FAAS_WORKER_PROCS" desc:"processors the worker process uses (GOMAXPROCS); 0 is one per CPU"`
	// ID names the worker to the queue; empty means hostname-pid.
	ID string `envconfig:"FAAS_WORKER_ID" desc:"worker name to the queue; empty is hostname-pid"`
	// RequestTimeout is the wait for one reply from a manager.
	RequestTimeout time.Duration `envconfig:"FAAS_REQUEST_TIMEOUT" default:"3s" desc:"wait for one reply from a manager"`
	// Heartbeat is the interval of lease renewals. It must be well under
	// the queue's FAAS_LEASE_TIMEOUT, or running jobs are taken away.
	Heartbeat time.Duration `envconfig:"FAAS_WORKER_HEARTBEAT" default:"1s" desc:"interval of lease renewals, well under FAAS_LEASE_TIMEOUT"`
	// DrainGrace is how long a stopping worker lets its running jobs
	// finish; then it gives them back to the queue for another worker.
	// Keep it under the time the worker's supervisor waits before killing
	// it (the local scaler's FAAS_SCALER_STOP_GRACE, 10s).
	DrainGrace time.Duration `envconfig:"FAAS_WORKER_DRAIN_GRACE" default:"8s" desc:"how long a stopping worker lets running jobs finish"`
	// PollWait is how long one request for a job waits for one to come.
	// A stopping worker withdraws its polls from the queue rather than
	// wait them out.
	PollWait time.Duration `envconfig:"FAAS_WORKER_POLL" default:"5s" desc:"how long one request for a job waits for one"`
	// MaxCallDepth bounds how deep fused calls (faas.call) nest.
	MaxCallDepth int `envconfig:"FAAS_MAX_CALL_DEPTH" default:"8" desc:"most nested faas.call calls; deeper ones reject with call_depth"`
	// CacheSize bounds the function versions kept.
	CacheSize int `envconfig:"FAAS_WORKER_CACHE" default:"1024" desc:"most compiled function versions kept"`
	// SandboxMemoryMB caps the memory of a job whose function sets no cap
	// of its own.
	SandboxMemoryMB int `envconfig:"FAAS_SANDBOX_MEMORY_MB" default:"256" desc:"memory cap in MB of a function that sets none"`
	// SandboxMaxMemoryMB is the most memory one job may have: a job whose
	// function asks for more fails with too_large. The frontend refuses
	// such functions at upload; this holds for those stored before the
	// ceiling was lowered. 0 leaves only the sandbox's own bound.
	SandboxMaxMemoryMB int `envconfig:"FAAS_SANDBOX_MAX_MEMORY_MB" default:"1024" desc:"most memory in MB one job may have"`
	// MemoryMB is the worker's memory budget: the memory caps of the jobs
	// it runs at once add up to at most this. 0 means enough for every
	// slot to run a job of the default cap, or for one job at the
	// ceiling, whichever is more.
	MemoryMB int `envconfig:"FAAS_WORKER_MEMORY_MB" desc:"memory in MB all sandboxes of the worker share; 0 is derived from the caps"`
	// SandboxCommand starts one sandbox process; nil means this program
	// with the argument "sandbox". SandboxEnv is its whole environment
	// (none of the worker's). Tests set both to start their own binary.
	SandboxCommand []string `ignored:"true"`
	SandboxEnv     []string `ignored:"true"`
	// Metrics is where the worker registers its series; nil keeps them
	// unexported.
	Metrics prometheus.Registerer `ignored:"true"`
	// Fence is the operating system's fences around the sandboxes
	// (FAAS_SANDBOX_UID, FAAS_SANDBOX_GID, FAAS_SANDBOX_NO_SECCOMP,
	// FAAS_SANDBOX_NO_NETNS, FAAS_SANDBOX_NO_CHROOT).
	pool.Fence
}

// LoadConfig reads the Config from the environment and checks it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("worker config: %w", err)
	}
	c = c.withDefaults()
	return c, c.Validate()
}

// withDefaults fills in the settings that depend on the machine, and the
// others when the Config was built in code rather than loaded.
func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = runtime.NumCPU() * faas.SlotsPerCPU
	}
	if c.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "worker"
		}
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 3 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = 8 * time.Second
	}
	if c.PollWait == 0 {
		c.PollWait = 5 * time.Second
	}
	if c.CacheSize == 0 {
		c.CacheSize = 1024
	}
	if c.MaxCallDepth == 0 {
		c.MaxCallDepth = sandbox.DefaultMaxCallDepth
	}
	if c.SandboxMemoryMB == 0 {
		c.SandboxMemoryMB = pool.DefaultMemoryMB
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = max(c.Concurrency*c.SandboxMemoryMB, c.memoryCeiling())
	}
	return c
}

// memoryCeiling is the most memory one job may have.
func (c Config) memoryCeiling() int {
	if c.SandboxMaxMemoryMB == 0 {
		return pool.MaxMemoryMB
	}
	return c.SandboxMaxMemoryMB
}

// Validate reports the first setting that cannot work, so that a typo
// stops the process at start.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("worker config: FAAS_WORKER_CONCURRENCY is %d, want at least 1", c.Concurrency)
	case c.Procs < 0:
		return fmt.Errorf("worker config: FAAS_WORKER_PROCS is %d, want 0 (one per CPU) or more", c.Procs)
	case c.ID == "":
		return errors.New("worker config: FAAS_WORKER_ID is empty")
	case c.RequestTimeout <= 0:
		return fmt.Errorf("worker config: FAAS_REQUEST_TIMEOUT is %v, want more than 0", c.RequestTimeout)
	case c.Heartbeat < 10*time.Millisecond:
		return fmt.Errorf("worker config: FAAS_WORKER_HEARTBEAT is %v, want at least 10ms", c.Heartbeat)
	case c.DrainGrace < 0:
		return fmt.Errorf("worker config: FAAS_WORKER_DRAIN_GRACE is %v, want at least 0", c.DrainGrace)
	case c.PollWait <= 0 || c.PollWait > jqproxy.MaxHold:
		return fmt.Errorf("worker config: FAAS_WORKER_POLL is %v, want more than 0 and at most %v", c.PollWait, jqproxy.MaxHold)
	case c.MaxCallDepth < 1 || c.MaxCallDepth > maxCallDepth:
		return fmt.Errorf("worker config: FAAS_MAX_CALL_DEPTH is %d, want 1 to %d", c.MaxCallDepth, maxCallDepth)
	case c.CacheSize < 1:
		return fmt.Errorf("worker config: FAAS_WORKER_CACHE is %d, want at least 1", c.CacheSize)
	case c.SandboxMemoryMB < pool.MinMemoryMB || c.SandboxMemoryMB > pool.MaxMemoryMB:
		return fmt.Errorf("worker config: FAAS_SANDBOX_MEMORY_MB is %d, want %d to %d", c.SandboxMemoryMB, pool.MinMemoryMB, pool.MaxMemoryMB)
	case c.SandboxMaxMemoryMB != 0 && (c.SandboxMaxMemoryMB < c.SandboxMemoryMB || c.SandboxMaxMemoryMB > pool.MaxMemoryMB):
		return fmt.Errorf("worker config: FAAS_SANDBOX_MAX_MEMORY_MB is %d, want FAAS_SANDBOX_MEMORY_MB (%d) to %d, or 0 for no ceiling",
			c.SandboxMaxMemoryMB, c.SandboxMemoryMB, pool.MaxMemoryMB)
	case c.MemoryMB < c.memoryCeiling():
		// Less, and a job at the ceiling could never start.
		return fmt.Errorf("worker config: FAAS_WORKER_MEMORY_MB is %d, want at least the most one job may have, %d (FAAS_SANDBOX_MAX_MEMORY_MB)",
			c.MemoryMB, c.memoryCeiling())
	}
	return nil
}

// Worker runs jobs from a queue. Create it with New.
type Worker struct {
	cfg   Config
	store faas.Store
	queue faas.JobQueue
	log   *slog.Logger
	cache *lru.Cache[pool.Key, function]
	// sandboxes is the pool the slots run jobs in, while Run runs.
	sandboxes *pool.Pool
	// memory is the budget, in MiB, that each run takes its job's memory
	// cap from. It serves waiters in order, so a big job is not starved
	// by small ones.
	memory *semaphore.Weighted
	// jobs and pool are the series of the jobs run and of the sandboxes.
	jobs *jobMetrics
	pool *pool.Metrics

	// completions coalesces the outcomes of the slots into Complete
	// batches.
	completions *batch.Coalescer[faas.Completion, *faas.Error]

	mu sync.Mutex
	// running holds the lease of each job being handled, with the function
	// that stops its run when the queue says the lease is lost.
	running map[faas.Lease]context.CancelCauseFunc
}

// New returns a Worker that takes jobs from queue and records them in
// store. Zero settings in cfg take their defaults.
func New(cfg Config, store faas.Store, queue faas.JobQueue, log *slog.Logger) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || queue == nil || log == nil {
		return nil, errors.New("worker: store, queue and logger are required")
	}
	jobs, poolMetrics := registries(cfg.Metrics)
	w := &Worker{
		jobs:    jobs,
		pool:    poolMetrics,
		cfg:     cfg,
		store:   store,
		queue:   queue,
		log:     log.With("worker", cfg.ID),
		cache:   lru.New[pool.Key, function](cfg.CacheSize),
		memory:  semaphore.NewWeighted(int64(cfg.MemoryMB)),
		running: make(map[faas.Lease]context.CancelCauseFunc),
	}
	w.completions = batch.New(faas.MaxBatch, func(ctx context.Context, cs []faas.Completion) ([]*faas.Error, error) {
		return queue.Complete(ctx, cfg.ID, cs)
	}).Bytes(faas.MaxBatchBytes, faas.Completion.Bytes)
	return w, nil
}

// ID is the name the worker gives the queue.
func (w *Worker) ID() string { return w.cfg.ID }

// Run starts one sandbox process per slot, then serves jobs until ctx
// ends. Then it takes no new job, lets the jobs under way finish (each is
// bounded by its function's time limit), keeps their leases alive until
// they are recorded, stops the sandboxes and returns. A sandbox that
// cannot start fails Run at once.
func (w *Worker) Run(ctx context.Context) error {
	sandboxes, err := pool.Start(ctx, pool.Config{
		Size:     w.cfg.Concurrency,
		Command:  w.cfg.SandboxCommand,
		Env:      w.cfg.SandboxEnv,
		MemoryMB: w.cfg.SandboxMemoryMB,
		Fence:    w.cfg.Fence,
		Metrics:  w.pool,
	}, w.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("worker: %w", err)
	}
	defer sandboxes.Close()
	w.sandboxes = sandboxes
	w.log.Info("started", "concurrency", w.cfg.Concurrency, "queue", w.cfg.JQURL, "db", w.cfg.DBURL,
		"memory_mb", w.cfg.SandboxMemoryMB, "max_memory_mb", w.cfg.memoryCeiling(), "budget_mb", w.cfg.MemoryMB)
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		w.heartbeat(beatCtx)
	}()
	// A job takes a token from slots and gives it back when its run is
	// over: the job's outcome is handed over while its sandbox runs the
	// next job, so that the outcomes of jobs run one after another travel
	// together.
	ahead := aheadPerSandbox * w.cfg.Concurrency
	if w.cfg.NoLeaseAhead {
		ahead = 0
	}
	slots := newSlots(w.cfg.Concurrency, ahead, time.Now)
	// A job is handled by a goroutine that has handled jobs before, if one
	// is idle: a new goroutine's stack grows, copied each time, to what
	// handling a job needs, which cost a twentieth of the worker's CPU
	// when every job had a goroutine of its own.
	handlers := reuse.New(handlerIdle)
	start := func(j faas.Job) { handlers.Go(ctx, func() { w.handle(ctx, j, slots.ran) }) }
	// As many polls as slots may be under way: a slot that frees up while
	// another poll waits for the Store is not kept waiting behind it.
	var polls sync.WaitGroup
	for range w.cfg.Concurrency {
		polls.Go(func() { w.poll(ctx, slots, start) })
	}
	w.awaitPolls(ctx, &polls)
	handlers.Wait()
	stopBeat()
	<-beatDone
	w.log.Info("stopped")
	return nil
}

// poll leases jobs for the tokens it takes from slots, and starts each
// with start, until ctx ends. One request asks for as many jobs as there
// are tokens not taken by another poll, so that a worker catching up on a
// backlog takes several jobs per round trip.
func (w *Worker) poll(ctx context.Context, slots *slots, start func(faas.Job)) {
	failures := 0
	for ctx.Err() == nil {
		n, ahead := slots.take(ctx)
		if n == 0 {
			return
		}
		wait := w.cfg.PollWait
		if ahead {
			wait = min(wait, aheadHorizon)
		}
		if !w.roomForAJob(ctx) {
			return
		}
		// The poll outlives a stop: a job the queue leases to this worker
		// while it stops is still run, rather than left to wait for its
		// lease to expire.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait+w.cfg.RequestTimeout)
		leased, err := w.queue.Next(pctx, w.cfg.ID, n, wait)
		cancel()
		slots.leased(n, len(leased))
		for _, j := range leased {
			start(j)
		}
		if err != nil {
			failures++
			w.logFailure(failures, "poll job queue", err)
			if !retry.Sleep(ctx, failures) {
				return
			}
			continue
		}
		if failures > 0 {
			w.log.Info("job queue answers again", "failures", failures)
			failures = 0
		}
	}
}

// withdrawEvery is how often a stopping worker withdraws its polls again
// while one is still under way: a poll sent just before the stop may
// reach the queue after the first withdrawal.
const withdrawEvery = 100 * time.Millisecond

// awaitPolls waits for the polls to end. Once ctx ends, it withdraws the
// worker's waiting polls from the queue, so that a stop takes
// milliseconds rather than what is left of PollWait (a queue that refuses
// the withdrawal leaves them to run out, as they used to). Each poll still
// finishes: a job the queue handed it before the withdrawal is run. A
// withdrawal under way when the last poll ends is cancelled, so that a
// queue that does not answer adds nothing to the stop.
func (w *Worker) awaitPolls(ctx context.Context, polls *sync.WaitGroup) {
	withdrawing, stop := context.WithCancel(context.WithoutCancel(ctx))
	var withdrawals sync.WaitGroup
	withdrawals.Go(func() {
		select {
		case <-ctx.Done():
		case <-withdrawing.Done():
			return
		}
		tick := time.NewTicker(withdrawEvery)
		defer tick.Stop()
		for {
			call, cancel := context.WithTimeout(withdrawing, w.cfg.RequestTimeout)
			err := w.queue.Withdraw(call, w.cfg.ID)
			cancel()
			switch code := faas.ErrorCode(err); {
			case err == nil || withdrawing.Err() != nil:
			case code == faas.Forbidden || code == faas.Invalid:
				// A JQ manager older than jq.withdraw refuses it every
				// time, and logs each refusal: ask once.
				w.log.Info("the job queue cannot withdraw polls; the stop waits for them", "err", err)
				return
			default:
				// The polls end at their own timeout all the same.
				w.log.Debug("withdraw polls", "err", err)
			}
			select {
			case <-withdrawing.Done():
				return
			case <-tick.C:
			}
		}
	})
	polls.Wait()
	stop()
	withdrawals.Wait()
}

// handlerIdle is how long a goroutine that handled a job waits for the
// next before it exits: a busy worker's slots free up every few
// milliseconds, an idle worker need not keep the goroutines.
const handlerIdle = time.Second

// roomForAJob waits until the memory budget has room for a job of the
// default cap, so that a worker whose budget is taken by big jobs leaves
// new jobs to other workers instead of leasing them only to wait. It
// reserves nothing: a job that turns out bigger waits in run. It reports
// false if ctx ended first.
func (w *Worker) roomForAJob(ctx context.Context) bool {
	if err := w.memory.Acquire(ctx, int64(w.cfg.SandboxMemoryMB)); err != nil {
		return false
	}
	w.memory.Release(int64(w.cfg.SandboxMemoryMB))
	return true
}

// logFailure logs the first of a run of failures as a warning and the rest
// quietly, so an unreachable manager does not flood the log.
func (w *Worker) logFailure(failures int, what string, err error) {
	level := slog.LevelDebug
	if failures == 1 {
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, what, "err", err, "failures", failures)
}

// errLeaseLost ends a run whose lease the queue no longer grants: the job
// was given to another worker, or is gone.
var errLeaseLost = errors.New("lease lost")

// errDrained ends a run still going when a stopping worker's drain grace
// is over; the job goes back to the queue.
var errDrained = errors.New("drain grace over")

// handle runs one leased job and records its outcome. It calls ran once
// the job no longer needs its slot: when the run is over, before the
// outcome is handed over, or when the job will not run.
func (w *Worker) handle(stop context.Context, j faas.Job, ran func()) {
	ran = sync.OnceFunc(ran)
	defer ran()
	log := w.jobLog(j)
	lease := faas.Lease{ID: j.ID, Attempt: j.Attempt}
	// A stopping worker finishes its jobs, for DrainGrace: the job's
	// context ends when the lease is lost or the grace is over.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(stop))
	defer cancel(nil)
	w.hold(lease, cancel)
	defer w.drop(lease)
	defer w.drainGrace(stop, cancel)()

	c := faas.Completion{JobID: j.ID, Attempt: j.Attempt}
	key := pool.Key{Owner: j.Owner, Name: j.Function, Version: j.Version}
	fn, err := w.function(ctx, stop, key)
	var memoryMB int
	if err == nil {
		memoryMB, err = w.memoryOf(fn)
	}
	switch {
	case err == nil:
		live := w.liveLogs(ctx, lease, log)
		runCtx, span := tracing.Start(ctx, j.Trace, "sandbox run", trace.WithAttributes(
			attribute.String("faas.job_id", j.ID), attribute.String("faas.function", j.Function), attribute.Int("faas.attempt", j.Attempt)))
		res := w.run(runCtx, pool.Job{
			Key:      fn.key,
			Source:   fn.source,
			Env:      fn.env,
			Args:     j.Args,
			Limits:   sandbox.Limits{Timeout: fn.timeout, MaxCallDepth: w.cfg.MaxCallDepth},
			MemoryMB: memoryMB,
			OnLines:  live.add,
			Host:     jobHost{w: w, stop: stop, owner: j.Owner, lease: lease, log: log},
		})
		ran()
		if res.Err != nil {
			span.SetStatus(codes.Error, string(res.Err.Code))
		}
		span.End()
		live.close()
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errLeaseLost):
			log().Info("lease lost while running, outcome dropped")
			return
		case errors.Is(cause, errDrained):
			w.release(lease, log, cause)
			return
		}
		c = outcome(c, res, fn.timeout, log)
		c.Streams = live.record()
	case faas.ErrorCode(err) == faas.FunctionDeleted || faas.ErrorCode(err) == faas.Invalid || faas.ErrorCode(err) == faas.TooLarge:
		c.Error = faas.AsError(err)
	case errors.Is(context.Cause(ctx), errLeaseLost):
		log().Info("lease lost before running")
		return
	default:
		// Stopping, with the function out of reach: give the job back for
		// another worker instead of holding it.
		w.release(lease, log, err)
		return
	}
	// Recording the outcome in the Store and telling the queue are one
	// step of the job's trace: the DB and JQ managers' spans hang under it.
	ctx, span := tracing.Start(ctx, j.Trace, "completion")
	defer span.End()
	w.finish(ctx, c, log)
}

// jobLog gives the logger of one job's lines, made at its first use:
// most jobs log nothing at the info level, and a logger formats its
// attributes when it is made, which was a tenth of the worker's CPU for
// handling a job.
type jobLog func() *slog.Logger

// jobLog is the job log of j, its lines naming the job and its trace.
func (w *Worker) jobLog(j faas.Job) jobLog {
	return sync.OnceValue(func() *slog.Logger {
		log := w.log.With("job_id", j.ID, "user", j.Owner, "function", j.Function, "attempt", j.Attempt)
		if id := tracing.ID(j.Trace); id != "" {
			log = log.With("trace_id", id)
		}
		return log
	})
}

// memoryOf is the memory cap a job of fn runs with: the function's own, or
// the default, raised to the least a sandbox accepts. TooLarge if it is
// over the ceiling.
func (w *Worker) memoryOf(fn function) (int, error) {
	mb := fn.memoryMB
	if mb <= 0 {
		mb = w.cfg.SandboxMemoryMB
	}
	if ceiling := w.cfg.memoryCeiling(); mb > ceiling {
		return 0, faas.Errorf(faas.TooLarge, "function %s asks for %d MB of memory, above this platform's ceiling of %d MB (FAAS_SANDBOX_MAX_MEMORY_MB)",
			fn.key.Name, mb, ceiling)
	}
	return max(mb, pool.MinMemoryMB), nil
}

// run runs job in a sandbox once the memory budget has room for its cap,
// and gives the memory back when the sandbox is done. A job whose context
// ends while it waits does not run; the caller reads the cause.
func (w *Worker) run(ctx context.Context, job pool.Job) sandbox.Result {
	job.Ready = time.Now()
	if err := w.memory.Acquire(ctx, int64(job.MemoryMB)); err != nil {
		return sandbox.Result{Err: faas.Errorf(faas.Internal, "wait for memory: %v", err)}
	}
	defer w.memory.Release(int64(job.MemoryMB))
	return w.sandboxes.Run(ctx, job)
}

// drainGrace arranges for a job's run to be cancelled with errDrained once
// the worker has been stopping for DrainGrace, unless the job ended first;
// the job calls the function it returns when it ends. It costs a job no
// goroutine and no timer until the worker stops: a goroutine waiting for
// either end was a wake-up per job.
func (w *Worker) drainGrace(stop context.Context, cancel context.CancelCauseFunc) (ended func()) {
	var mu sync.Mutex
	var grace *time.Timer
	done := false
	unhook := context.AfterFunc(stop, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			grace = time.AfterFunc(w.cfg.DrainGrace, func() { cancel(errDrained) })
		}
	})
	return func() {
		if unhook() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done = true
		if grace != nil {
			grace.Stop()
		}
	}
}

// outcome fills in c from a run's result.
func outcome(c faas.Completion, res sandbox.Result, limit time.Duration, log jobLog) faas.Completion {
	// The bill stops at the limit the user chose, even when the sandbox
	// had to be killed in the grace after it.
	if limit <= 0 {
		limit = sandbox.DefaultTimeout
	}
	c.Duration, c.Logs = min(res.Duration, limit), res.Logs
	c.Calls, c.CallsTruncated = res.Calls, res.CallsTruncated
	for i := range c.Calls {
		if e := c.Calls[i].Error; e != nil && e.Code == faas.Internal {
			c.Calls[i].Error = faas.Errorf(faas.Internal, "internal error")
		}
	}
	switch {
	case res.Err == nil:
		c.Result = res.Value
	case res.Err.Code == faas.Internal:
		// The details are for operators, not for the user.
		log().Error("sandbox failed", "err", res.Err.Message)
		c.Error = faas.Errorf(faas.Internal, "internal error")
	default:
		c.Error = res.Err
	}
	return c
}

// function returns the function version key names, the one the job was
// submitted with, whatever replaced it since: from the cache, or else from
// the Store. A version never changes, so the cache needs no invalidation;
// and the cache cannot run a deleted function's queued job, because the
// Store refuses to start it. The Store is retried while it is unreachable,
// until the lease is lost or, if the worker is stopping, at once.
func (w *Worker) function(ctx, stop context.Context, key pool.Key) (function, error) {
	if fn, ok := w.cache.Get(key); ok {
		return fn, nil
	}
	for failures := 1; ; failures++ {
		f, err := w.store.FunctionVersion(ctx, key.Owner, key.Name, key.Version)
		switch code := faas.ErrorCode(err); {
		case err == nil:
			fn := function{
				key:      key,
				source:   f.Source,
				timeout:  f.Timeout,
				memoryMB: f.MemoryMB,
				env:      mergeEnv(f),
			}
			w.cache.Put(fn.key, fn)
			return fn, nil
		case code == faas.NotFound:
			// Deleted after the job started.
			return function{}, faas.Errorf(faas.FunctionDeleted, "function %s was deleted before the job ran", key.Name)
		case ctx.Err() != nil:
			return function{}, fmt.Errorf("get function %s/%s: %w", key.Owner, key.Name, context.Cause(ctx))
		case stop.Err() != nil:
			return function{}, fmt.Errorf("get function %s/%s while stopping: %w", key.Owner, key.Name, err)
		}
		w.logFailure(failures, "get function", err)
		if !retry.Sleep(ctx, failures) {
			return function{}, fmt.Errorf("get function %s/%s: %w", key.Owner, key.Name, context.Cause(ctx))
		}
	}
}

// function is one version of a function, as the sandboxes need it: they
// compile the source, once per sandbox, and cache the program by key.
type function struct {
	key      pool.Key
	source   string
	timeout  time.Duration
	memoryMB int
	// env is the function's env values and secrets, as it reads them.
	env map[string]string
}

// mergeEnv is f's env and secrets in one map; the Store keeps their names
// apart, so neither hides the other.
func mergeEnv(f faas.Function) map[string]string {
	if len(f.Env)+len(f.Secrets) == 0 {
		return nil
	}
	env := make(map[string]string, len(f.Env)+len(f.Secrets))
	maps.Copy(env, f.Env)
	maps.Copy(env, f.Secrets)
	return env
}

// maxRecordWait bounds the retries of recording one outcome. Past it the
// worker lets the lease go, and the queue runs the job again.
const maxRecordWait = 30 * time.Second

// finish hands the outcome to the queue, which records it in the Store
// with the outcomes of the other slots in one batch, and retries while
// the queue or the Store does not answer. A lease lost meanwhile, or the
// job deleted, is normal and ends here quietly.
func (w *Worker) finish(ctx context.Context, c faas.Completion, jobLog jobLog) {
	log := sync.OnceValue(func() *slog.Logger {
		log := jobLog().With("duration", c.Duration)
		if c.Error != nil {
			log = log.With("code", c.Error.Code)
		}
		return log
	})
	deadline := time.Now().Add(maxRecordWait)
	for failures := 1; ; failures++ {
		refused, err := w.completions.Do(ctx, c)
		if err == nil && refused != nil {
			err = refused
		}
		code := faas.ErrorCode(err)
		switch {
		case err == nil:
			if w.log.Enabled(ctx, slog.LevelDebug) {
				log().Debug("job finished")
			}
			w.jobs.recorded(c)
			return
		case code == faas.Conflict || code == faas.NotFound:
			log().Info("job no longer ours, outcome dropped", "reason", err)
			return
		case ctx.Err() != nil:
			log().Info("lease lost while recording outcome")
			return
		case code == faas.Invalid || time.Now().After(deadline):
			log().Error("could not record outcome, the queue will run the job again", "err", err)
			return
		}
		w.logFailure(failures, "record outcome", err)
		if !retry.Sleep(ctx, failures) {
			log().Info("lease lost while recording outcome")
			return
		}
	}
}

// release gives a job back to the queue.
func (w *Worker) release(l faas.Lease, log jobLog, why error) {
	log().Info("giving the job back", "reason", why)
	ctx, cancel := context.WithTimeout(context.Background(), 2*w.cfg.RequestTimeout)
	defer cancel()
	if err := w.queue.Release(ctx, l, "worker stopping: "+why.Error()); err != nil {
		log().Warn("could not give the job back; its lease will expire", "err", err)
	}
}

func (w *Worker) hold(l faas.Lease, cancel context.CancelCauseFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[l] = cancel
}

func (w *Worker) drop(l faas.Lease) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running, l)
}

// held lists the leases of the jobs being handled.
func (w *Worker) held() []faas.Lease {
	w.mu.Lock()
	defer w.mu.Unlock()
	leases := make([]faas.Lease, 0, len(w.running))
	for l := range w.running {
		leases = append(leases, l)
	}
	return leases
}

// heartbeat renews the leases of running jobs every cfg.Heartbeat, and
// stops the runs whose leases the queue no longer grants, until ctx ends.
// It beats while idle too: the queue counts the workers it hears from.
func (w *Worker) heartbeat(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Heartbeat)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		lost, err := w.queue.Renew(rctx, w.cfg.ID, w.held())
		cancel()
		if err != nil {
			failures++
			w.logFailure(failures, "renew leases", err)
			continue
		}
		failures = 0
		w.mu.Lock()
		for _, l := range lost {
			if stop, ok := w.running[l]; ok {
				w.log.Info("lease lost", "job_id", l.ID, "attempt", l.Attempt)
				stop(errLeaseLost)
			}
		}
		w.mu.Unlock()
	}
}

// retry is the pause after consecutive failures to reach a manager: from
// 50ms to 2s at the least, jittered so that many slots and workers do not
// retry in step.
var retry = backoff.Policy{Base: 100 * time.Millisecond, Max: 4 * time.Second}
