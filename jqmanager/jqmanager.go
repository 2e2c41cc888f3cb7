// Package jqmanager is the job queue: it accepts jobs once the Store holds
// them, hands them to workers that long-poll for work, keeps each running
// job's lease alive while its worker sends heartbeats, queues the job again
// when the lease expires, and wakes callers waiting for a job to finish.
//
// The Store is the record; the queue in memory is an index over it, rebuilt
// from the Store when the manager starts. Every change of a job's state is
// made in the Store first and fenced by the attempt number there, so a
// worker that lost its lease can neither finish nor bill the job, and a job
// deleted while queued is never run.
package jqmanager

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"faas/internal/backoff"
	"faas/internal/batch"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/tracing"
	"faas/proxies/wire"
)

// Config is the JQ manager's settings, read from the environment.
type Config struct {
	// DBURL is the DB manager's ZeroMQ endpoint (the reference's name).
	DBURL string `envconfig:"DB_URL" default:"tcp://127.0.0.1:27444" desc:"DB manager's ZeroMQ endpoint"`
	// Port is the port bound on loopback (jqproxy.DefaultPort).
	Port int `envconfig:"PORT" default:"27445" desc:"bus port bound on loopback"`
	// Listen, if set, is the full ZeroMQ bind endpoint and overrides Port:
	// tcp://*:27445 serves other hosts.
	Listen         string        `envconfig:"FAAS_LISTEN" desc:"full ZeroMQ bind endpoint, overrides PORT (tcp://*:27445 serves other hosts)"`
	RequestTimeout time.Duration `envconfig:"FAAS_REQUEST_TIMEOUT" default:"3s" desc:"wait for one reply from a manager"`
	// LeaseTimeout is how long a running job's lease lasts without a
	// heartbeat from its worker; then the job is queued again.
	LeaseTimeout time.Duration `envconfig:"FAAS_LEASE_TIMEOUT" default:"3s" desc:"how long a running job's lease lasts without a heartbeat"`
	// MaxAttempts is how many lost leases fail a job with code lost.
	MaxAttempts int `envconfig:"FAAS_MAX_ATTEMPTS" default:"3" desc:"lost leases after which a job fails with code lost"`
	// MaxPendingPerUser bounds one user's queued and running jobs.
	MaxPendingPerUser int `envconfig:"FAAS_MAX_PENDING_PER_USER" default:"1000" desc:"most queued and running jobs per user"`
	// EventRing is how many recent events (jobs finished, users revoked)
	// the manager remembers for the frontends watching them; a frontend
	// further behind than that rechecks what it waits for. 0 takes the
	// default.
	EventRing int `envconfig:"FAAS_EVENT_RING" default:"4096" desc:"recent events kept for the frontends watching them"`
	// Inproc, if set, is an inproc:// endpoint bound as well, for the
	// roles sharing the manager's process (`faas up`); never from the
	// environment.
	Inproc string `ignored:"true"`
	// Bus is the socket's security, read by the caller (package bus); the
	// zero value is plaintext.
	Bus wire.Security `ignored:"true"`
	// Metrics is where the manager registers its series; nil keeps them
	// unexported.
	Metrics prometheus.Registerer `ignored:"true"`
	// MaxRunningPerUser bounds one user's jobs running at once, so that
	// one user cannot hold every worker slot while others wait; 0 means
	// no bound (a platform with a single user).
	MaxRunningPerUser int `envconfig:"FAAS_MAX_RUNNING_PER_USER" default:"8" desc:"most jobs of one user running at once; 0 is no limit"`
}

// defaultEventRing is EventRing's default, for a Config built in code.
const defaultEventRing = 4096

// LoadConfig reads the Config from the environment and checks it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work. New calls it too,
// so a Config built in code is held to the same rules as one read from
// the environment.
func (c Config) Validate() error {
	switch {
	case c.LeaseTimeout < 100*time.Millisecond:
		return fmt.Errorf("FAAS_LEASE_TIMEOUT=%v: want at least 100ms", c.LeaseTimeout)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("FAAS_REQUEST_TIMEOUT=%v: want more than 0", c.RequestTimeout)
	case c.MaxAttempts < 1:
		return fmt.Errorf("FAAS_MAX_ATTEMPTS=%d: want at least 1", c.MaxAttempts)
	case c.MaxPendingPerUser < 1:
		return fmt.Errorf("FAAS_MAX_PENDING_PER_USER=%d: want at least 1", c.MaxPendingPerUser)
	case c.MaxRunningPerUser < 0:
		return fmt.Errorf("FAAS_MAX_RUNNING_PER_USER=%d: want at least 0 (0: no limit)", c.MaxRunningPerUser)
	case c.EventRing < 0:
		return fmt.Errorf("FAAS_EVENT_RING=%d: want at least 1 (0 takes the default, %d)", c.EventRing, defaultEventRing)
	}
	return nil
}

// Endpoint is where the manager binds: loopback unless Listen says
// otherwise, so that a manager is never exposed by default.
func (c Config) Endpoint() string {
	if c.Listen != "" {
		return c.Listen
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", c.Port)
}

// Manager is the job queue. It implements faas.JobQueue in-process and
// serves it over ZeroMQ.
type Manager struct {
	cfg    Config
	store  faas.Store
	log    *slog.Logger
	server *wire.Server

	mu    sync.Mutex
	jobs  map[string]*entry
	queue *fairQueue
	// pending counts each user's known jobs plus submissions under way.
	pending map[string]int
	idle    []*idler
	workers map[string]time.Time
	// waiters are closed when their job leaves the queue, after its
	// outcome is set if it finished through Complete. Kept here rather
	// than in the entries: most jobs have none.
	waiters map[*entry][]chan struct{}
	done    int64
	rate    *rateMeter
	avg     time.Duration
	events  *ring
	metrics *queueMetrics
	sched   *scheduler
	// creates, starts and completes coalesce concurrent submissions, and
	// the leases and completions of all workers, into CreateJobs,
	// StartJobs and CompleteJobs batches.
	creates   *batch.Coalescer[faas.Job, faas.JobResult]
	starts    *batch.Coalescer[faas.Start, faas.JobResult]
	completes *batch.Coalescer[faas.Completion, faas.JobResult]
	// versions are the versions of the functions the Store last created
	// jobs at, with their concurrency, by which a job is handed over
	// before its creation is answered (handOver). One may be out of
	// date: the Store then refuses that creation.
	versions map[unique.Handle[fnName]]fnVersion
}

// fnVersion is a function's version and its concurrency limit.
type fnVersion struct {
	version     int64
	concurrency int
}

var _ faas.JobQueue = (*Manager)(nil)

// New binds the manager's socket; jobs are served once Run has rebuilt
// the queue.
func New(cfg Config, store faas.Store, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jqmanager: %w", err)
	}
	if cfg.EventRing == 0 {
		cfg.EventRing = defaultEventRing
	}
	m := &Manager{
		cfg:      cfg,
		store:    store,
		log:      log,
		jobs:     make(map[string]*entry),
		queue:    newFairQueue(cfg.MaxRunningPerUser),
		pending:  make(map[string]int),
		workers:  make(map[string]time.Time),
		waiters:  make(map[*entry][]chan struct{}),
		versions: make(map[unique.Handle[fnName]]fnVersion),
		events:   newRing(cfg.EventRing, time.Now()),
		rate:     newRateMeter(time.Now()),
		creates: batch.New(faas.MaxBatch, store.CreateJobs).
			Bytes(faas.MaxBatchBytes, func(j faas.Job) int { return len(j.Args) }),
		starts:    batch.New(faas.MaxBatch, store.StartJobs),
		completes: batch.New(faas.MaxBatch, store.CompleteJobs).Bytes(faas.MaxBatchBytes, faas.Completion.Bytes),
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m.metrics = newQueueMetrics(reg, m)
	m.sched = newScheduler(store, m.Submit, m.metrics.ticks, log)
	srv, err := wire.Listen(cfg.Endpoint(), jqproxy.NewMux(m).Serve, log, wire.WithSecurity(cfg.Bus), wire.AlsoBind(cfg.Inproc))
	if err != nil {
		return nil, fmt.Errorf("jqmanager: %w", err)
	}
	// Workers' calls have a budget of their own: however many requests
	// the frontends send, heartbeats get through and leases stay alive.
	srv.Reserve(wire.MaxInFlight, jqproxy.WorkerMethods...)
	m.server = srv
	log.Info("serving", "endpoint", srv.Endpoint(), "db", cfg.DBURL)
	return m, nil
}

// Endpoint is the bound ZeroMQ endpoint.
func (m *Manager) Endpoint() string { return m.server.Endpoint() }

// Run rebuilds the queue from the Store, then serves, reaps expired
// leases and fires the schedules' ticks until ctx ends. Requests that come during the rebuild wait in
// the socket: answered earlier, a worker would find no work and a waiter
// would hear that a pending job is gone. A Store that answers the rebuild
// with an error other than unavailable will not do better on a retry, and
// a queue without its pending jobs would strand them: Run returns the
// error, so the process exits and its supervisor sees why.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.loadPending(ctx); err != nil {
		// A server run with an ended context only closes its socket.
		ended, cancel := context.WithCancel(ctx)
		cancel()
		m.server.Run(ended)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("jqmanager: rebuild queue: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- m.server.Run(ctx) }()
	// The scheduler submits through the rebuilt queue, so that its jobs
	// count against the limits with the pending ones.
	scheduled := make(chan struct{})
	go func() {
		defer close(scheduled)
		m.sched.run(ctx)
	}()
	m.reap(ctx)
	<-scheduled
	return <-errc
}

// storeRetry spaces out the tries to load the pending jobs while the Store
// is unreachable: from 100ms to 5s at the least.
var storeRetry = backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second}

// loadPending loads the pending jobs page by page, retrying a page while
// the Store is unreachable, and queues them oldest first.
func (m *Manager) loadPending(ctx context.Context) error {
	var jobs []faas.Job
	after := ""
	for failures := 0; ; {
		page, err := m.store.PendingJobs(ctx, after, faas.MaxPendingPage)
		if err == nil {
			failures = 0
			jobs = append(jobs, page.Jobs...)
			if after = page.Next; after != "" {
				continue
			}
			slices.SortFunc(jobs, func(a, b faas.Job) int {
				return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
			})
			m.restore(jobs)
			m.restoreCounts(ctx)
			return nil
		}
		if faas.ErrorCode(err) != faas.Unavailable {
			return fmt.Errorf("pending jobs: %w", err)
		}
		failures++
		m.log.Warn("store unreachable, retrying", "err", err, "failures", failures)
		if !storeRetry.Sleep(ctx, failures) {
			return ctx.Err()
		}
	}
}

// restoreCounts starts the finished counters from the Store's totals, so
// that a restart does not reset them. Read after the pending jobs, before
// any is served: a job that finishes in between is counted twice, never
// lost. Without the totals (a DB manager of an older release) the
// counters start at zero, which is no reason to keep the queue down.
func (m *Manager) restoreCounts(ctx context.Context) {
	counts, err := m.store.FinishedCounts(ctx)
	if err != nil {
		m.log.Warn("finished job counters start at zero", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for outcome, n := range counts {
		m.metrics.finished.WithLabelValues(outcome).Add(float64(n))
		m.done += n
	}
}

// restore adds the Store's pending jobs. Running ones keep their worker,
// whose heartbeats renew them; if it is gone, their leases expire.
func (m *Manager) restore(jobs []faas.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	queued, running := 0, 0
	now := time.Now()
	for _, j := range jobs {
		if _, known := m.jobs[j.ID]; known {
			continue
		}
		e := newEntry(j)
		m.add(e)
		switch j.State {
		case faas.Queued:
			m.enqueue(e)
			queued++
		case faas.Running:
			e.state = stateRunning
			// The lease began when the Store started the job: a
			// completion is billed at most the time since.
			e.run.leased, e.run.renewed = j.Started, now
			if e.run.leased.IsZero() {
				e.run.leased = now
			}
			m.queue.occupy(e)
			running++
		}
	}
	m.log.Info("queue rebuilt", "queued", queued, "running", running)
}

// Submit implements faas.JobQueue.
func (m *Manager) Submit(ctx context.Context, j faas.Job) (faas.Job, error) {
	stored, err := m.submitAll(ctx, j.Owner, []faas.Job{j})
	if len(stored) == 0 {
		return faas.Job{}, err
	}
	return stored[0], err
}

// submitAll makes owner's jobs durable in the Store, in order, and queues
// them. The jobs the queue does not know yet must all fit under owner's
// pending limit, or none is created: a publish is refused whole rather
// than half done. The jobs go to the Store together, in one batch when
// nothing else is waiting; every job it stored is queued, and the error
// is the first job's the Store refused, returned with the jobs stored
// before that one.
func (m *Manager) submitAll(ctx context.Context, owner string, jobs []faas.Job) ([]faas.Job, error) {
	m.mu.Lock()
	fresh := 0
	for _, j := range jobs {
		if _, known := m.jobs[j.ID]; !known {
			fresh++
		}
	}
	if fresh > 0 && m.pending[owner]+fresh > m.cfg.MaxPendingPerUser {
		m.mu.Unlock()
		return nil, faas.Errorf(faas.TooMany, "user %s would have more than %d jobs queued or running, the most allowed; retry when some finish", owner, m.cfg.MaxPendingPerUser)
	}
	// Reserve the slots now so concurrent submissions cannot overshoot.
	m.pending[owner] += len(jobs)
	var claim *idler
	if fresh == 1 && len(jobs) == 1 {
		claim = m.claimIdle(owner, jobs[0].Function)
	}
	m.mu.Unlock()

	// The jobs' later spans hang under this submission's: what the
	// caller sent in a job is not trusted to name a trace, nor to start
	// it leased, nor its version.
	trace := tracing.Parent(ctx)
	// Concurrent submissions reach the Store in one batch; each caller
	// is still answered only once its own jobs are durable.
	jobs = slices.Clone(jobs)
	for i := range jobs {
		jobs[i].Trace = trace
		jobs[i].State, jobs[i].Attempt, jobs[i].Worker, jobs[i].Started, jobs[i].Version = "", 0, "", time.Time{}, 0
	}
	var early *entry
	if claim != nil {
		// Created already leased to the worker that waits: the lease
		// shares the creation's write. If the queue knows the
		// function's version, the worker has the job at once and runs
		// it while the creation commits.
		jobs[0].State, jobs[0].Attempt, jobs[0].Worker, jobs[0].Started = faas.Running, 1, claim.worker, time.Now()
		if early = m.handOver(claim, &jobs[0]); early != nil {
			claim = nil
		}
	}
	res, errs := m.creates.DoAll(ctx, jobs)
	confirmed := early != nil && m.confirm(early, res[0], errs[0])
	if early != nil && !confirmed {
		// Revoked: created as any other job, queued, but past attempt
		// 1, so that the worker still running that is fenced off from
		// the job's next attempt, whichever worker gets it. The revoked
		// run's outcome is nobody's: it is not listed as lost.
		jobs[0].State, jobs[0].Attempt, jobs[0].Worker, jobs[0].Started, jobs[0].Version = faas.Queued, 1, "", time.Time{}, 0
		res, errs = m.creates.DoAll(ctx, jobs)
	}
	var stored []faas.Job
	var err error
	m.mu.Lock()
	defer m.mu.Unlock()
	var handed *faas.Job
	if claim != nil {
		// The claimed worker gets the job, or nothing and polls again.
		defer func() { claim.ch <- handed }()
	}
	for i, r := range res {
		rowErr := errs[i]
		if rowErr != nil {
			rowErr = fmt.Errorf("create job %s: %w", jobs[i].ID, rowErr)
		} else if r.Error != nil {
			rowErr = r.Error
		}
		if rowErr != nil {
			err = cmp.Or(err, rowErr)
			if i > 0 || !confirmed {
				m.unreserve(owner)
			}
			continue
		}
		m.learnVersion(r.Job)
		if err == nil {
			stored = append(stored, r.Job)
		}
		if i == 0 && confirmed {
			continue // the reservation became the job's count
		}
		if claim != nil && m.jobs[r.Job.ID] == nil && r.Job.State == faas.Running && r.Job.Attempt == 1 && r.Job.Worker == claim.worker {
			m.createdLeased(r.Job)
			handed = &r.Job
			continue
		}
		if r.Job.State == faas.Queued && m.jobs[r.Job.ID] == nil {
			e := newEntry(r.Job)
			m.jobs[e.id] = e // the reservation becomes the job's count
			m.enqueue(e)
			m.metrics.submitted.Inc()
			continue
		}
		m.unreserve(owner)
	}
	return stored, err
}

// maxVersions bounds the functions whose versions the queue remembers: a
// user creating and deleting functions under ever new names would
// otherwise grow them without end. Past it they are forgotten at once,
// and each function's next job waits for its creation to learn again.
const maxVersions = 100_000

// learnVersion remembers the version and concurrency limit of j's
// function, which the Store just created j at. Callers hold mu.
func (m *Manager) learnVersion(j faas.Job) {
	if len(m.versions) >= maxVersions {
		clear(m.versions)
	}
	m.versions[unique.Make(fnName{owner: j.Owner, name: j.Function})] = fnVersion{j.Version, j.Concurrency}
}

// handOver hands j, about to be created leased to claim's worker, to
// that worker before the Store has answered, when the queue knows the
// version of j's function: the job is what the Store will record, and the
// worker starts it while the creation commits. Until the Store answers
// (confirm), what the worker asks of the job waits (awaitConfirmed). The
// Store refuses the creation if the version moved on. It returns the
// job's entry, or nil if j waits for the Store as before.
func (m *Manager) handOver(claim *idler, j *faas.Job) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.versions[unique.Make(fnName{owner: j.Owner, name: j.Function})]
	if !ok {
		return nil
	}
	// As the Store records them: times in UTC to the microsecond, the
	// submitter's creation time kept (a frontend tells by it whether its
	// keyed submission created the job), no arguments as [].
	stamp := func(t time.Time) time.Time {
		if t.IsZero() {
			t = time.Now()
		}
		return t.UTC().Truncate(time.Microsecond)
	}
	j.Version, j.Concurrency, j.Created, j.Started = v.version, v.concurrency, stamp(j.Created), stamp(j.Started)
	if len(j.Args) == 0 || string(j.Args) == "null" {
		j.Args = json.RawMessage("[]")
	}
	handed := *j
	e := m.createdLeased(handed)
	e.run.unconfirmed = make(chan struct{})
	claim.ch <- &handed
	return e
}

// confirm settles e, a job handed over before its creation was answered,
// by the Store's answer r (err if there was none): kept if the Store
// created it as handed over, otherwise revoked, that is forgotten by the
// queue, so that its worker's completion, heartbeats and children are
// refused, and reported false, to be created again. A job forgotten
// meanwhile (deleted) is reported true: it is not the queue's either way.
// Either way what waited goes on.
func (m *Manager) confirm(e *entry, r faas.JobResult, err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	// From now on a leased job like any other: the reaper takes it back
	// if its worker goes quiet, and nothing waits for the Store.
	answered := e.run.unconfirmed
	e.run.unconfirmed = nil
	defer close(answered)
	if m.jobs[e.id] != e {
		// Forgotten meanwhile (deleted), which gave its reservation
		// back: not to be created again.
		return true
	}
	j := r.Job
	if err == nil && r.Error == nil && j.State == faas.Running && j.Attempt == 1 && j.Worker == e.run.worker && j.Version == e.version {
		e.recorded(j)
		return true
	}
	delete(m.jobs, e.id) // the reservation stays, for the job created anew
	if m.queue.vacate(e) {
		m.wakeOne()
	}
	// Its waiters read the job from the Store, as for any job that left
	// without an outcome, rather than wait out their time on an entry
	// no outcome will reach.
	for _, ch := range m.waiters[e] {
		close(ch)
	}
	delete(m.waiters, e)
	return false
}

// awaitConfirmed waits until the Store has answered the creation of each
// job of leases handed over before that, or ctx ends.
func (m *Manager) awaitConfirmed(ctx context.Context, leases ...faas.Lease) error {
	var waits []chan struct{}
	m.mu.Lock()
	for _, l := range leases {
		if e, ok := m.jobs[l.ID]; ok && e.run != nil && e.run.unconfirmed != nil {
			waits = append(waits, e.run.unconfirmed)
		}
	}
	m.mu.Unlock()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return faas.Errorf(faas.Unavailable, "job creation not answered yet: %v", ctx.Err())
		}
	}
	return nil
}

// claimIdle takes, for a job of owner's function fn about to be created,
// the idle worker that would be woken for it right after: the one that
// waited last, when nothing is queued and the job may start at once, its
// owner below the per-user cap and none of the function's jobs out (so
// that whatever limit the Store tells the function has, one more fits).
// The job is then created leased to that worker, which waits for it
// however its poll ends. Callers hold mu.
func (m *Manager) claimIdle(owner, fn string) *idler {
	n := len(m.idle)
	if n == 0 || m.queue.len > 0 || m.queue.atCap(owner) || m.queue.functions[unique.Make(fnName{owner: owner, name: fn})] > 0 {
		return nil
	}
	w := m.idle[n-1]
	m.idle = m.idle[:n-1]
	w.claimed = true
	return w
}

// createdLeased records a job the Store created already leased, as lease
// and leased together would, and returns its entry. Callers hold mu.
func (m *Manager) createdLeased(j faas.Job) *entry {
	e := newEntry(j)
	now := time.Now()
	e.state = stateRunning
	e.run.leased, e.run.renewed = now, now
	m.jobs[e.id] = e // the reservation becomes the job's count
	m.queue.occupy(e)
	m.metrics.submitted.Inc()
	m.jobStarted(j, now)
	return e
}

// SubmitChild implements faas.JobQueue. The child is submitted as the
// leased job's owner, whatever j says, so a worker can act only for the
// users whose jobs it runs, and only while it runs them.
func (m *Manager) SubmitChild(ctx context.Context, worker string, l faas.Lease, j faas.Job) (faas.Job, error) {
	if !faas.ValidName(j.Function) {
		return faas.Job{}, faas.Errorf(faas.Invalid, "invalid function name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", j.Function, faas.MaxNameLen)
	}
	if err := m.awaitConfirmed(ctx, l); err != nil {
		return faas.Job{}, err
	}
	m.mu.Lock()
	parent, ok := m.holds(worker, l)
	if !ok {
		m.mu.Unlock()
		return faas.Job{}, faas.Errorf(faas.Conflict, "job %s attempt %d is not held by worker %s", l.ID, l.Attempt, worker)
	}
	_, retried := m.jobs[j.ID]
	if !retried {
		if parent.children >= faas.MaxChildren {
			m.mu.Unlock()
			return faas.Job{}, faas.Errorf(faas.TooMany, "job %s submitted %d jobs, the most one job may", l.ID, faas.MaxChildren)
		}
		parent.children++
	}
	m.mu.Unlock()
	j.Owner, j.Parent, j.Trigger = parent.owner(), parent.id, faas.TriggerJob
	stored, err := m.Submit(ctx, j)
	if err != nil && !retried {
		m.mu.Lock()
		parent.children--
		m.mu.Unlock()
	}
	return stored, err
}

// add records a job the queue tracks. Callers hold mu.
func (m *Manager) add(e *entry) {
	m.jobs[e.id] = e
	m.pending[e.owner()]++
}

func (m *Manager) unreserve(owner string) {
	if m.pending[owner]--; m.pending[owner] <= 0 {
		delete(m.pending, owner)
	}
}

// finish forgets a job, gives back the worker slot it held, if any, and
// wakes its waiters. Callers hold mu.
func (m *Manager) finish(e *entry) {
	if m.jobs[e.id] != e {
		return
	}
	delete(m.jobs, e.id)
	m.unreserve(e.owner())
	if e.state != stateQueued && m.queue.vacate(e) {
		m.wakeOne()
	}
	for _, ch := range m.waiters[e] {
		close(ch)
	}
	delete(m.waiters, e)
	m.publishFinished(e)
}

// enqueue queues e and wakes one idle worker. A job queued again gives
// back the slot it held. Callers hold mu.
func (m *Manager) enqueue(e *entry) {
	if e.state != stateQueued {
		m.queue.vacate(e)
	}
	e.state = stateQueued
	e.run = nil
	e.queued = stampOf(time.Now())
	m.queue.push(e)
	m.wakeOne()
}

func (m *Manager) wakeOne() {
	if n := len(m.idle); n > 0 {
		w := m.idle[n-1]
		m.idle = m.idle[:n-1]
		w.ch <- nil
	}
}

// idler is a worker's poll waiting for a job: woken with nil to look at
// the queue again, or handed a job created already leased to it.
type idler struct {
	worker string
	ch     chan *faas.Job
	// claimed is set, under mu, while a submission creates a job leased
	// to this poll: it waits for that job however it ends.
	claimed bool
	// withdrawn is set, under mu, before Withdraw wakes the poll: it
	// answers no job rather than look at the queue again.
	withdrawn bool
}

// Next implements faas.JobQueue. A worker with nothing to do waits on its
// own channel; a new job wakes exactly one such worker, or, submitted with
// nothing queued, is created leased to it and handed over (claimIdle).
// The jobs popped together are leased in the Store in one batch.
func (m *Manager) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	if worker == "" {
		return nil, faas.Errorf(faas.Invalid, "worker name is empty")
	}
	if max < 1 || max > faas.MaxBatch {
		return nil, faas.Errorf(faas.Invalid, "worker %s asks for %d jobs: want 1 to %d", worker, max, faas.MaxBatch)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	w := &idler{worker: worker, ch: make(chan *faas.Job, 1)}
	for {
		if es := m.popOrIdle(w, max); len(es) > 0 {
			js, err := m.lease(ctx, es, worker)
			if err != nil || len(js) > 0 {
				return js, err
			}
			continue // deleted or finished meanwhile
		}
		select {
		case j := <-w.ch:
			if j != nil {
				return []faas.Job{*j}, nil
			}
			if w.withdrawn {
				return nil, nil
			}
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		if j := m.leaveIdle(w); j != nil {
			return []faas.Job{*j}, nil
		}
		return nil, ctx.Err()
	}
}

// Withdraw implements faas.JobQueue. The worker's waiting polls leave the
// idle list, in which the others keep their order, and are woken marked
// withdrawn. A poll a submission has claimed is no longer in the list: it
// gets its job.
func (m *Manager) Withdraw(_ context.Context, worker string) error {
	if worker == "" {
		return faas.Errorf(faas.Invalid, "worker name is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.idle[:0]
	for _, w := range m.idle {
		if w.worker != worker {
			kept = append(kept, w)
			continue
		}
		w.withdrawn = true
		w.ch <- nil // an idle poll's channel is empty: woken polls leave the list
	}
	clear(m.idle[len(kept):])
	m.idle = kept
	return nil
}

// popOrIdle pops up to max jobs, in the fair queue's order and within its
// caps, or registers w to be woken when one comes (or handed one created
// leased to it). Both under one lock, so no job can slip in between
// unnoticed.
func (m *Manager) popOrIdle(w *idler, max int) []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	worker := w.worker
	m.workers[worker] = time.Now()
	var es []*entry
	for len(es) < max {
		e, ok := m.queue.pop()
		if !ok {
			break
		}
		e.state = stateLeasing
		e.run = &attempt{worker: worker}
		es = append(es, e)
	}
	if len(es) == 0 {
		w.claimed = false
		m.idle = append(m.idle, w)
	}
	return es
}

// leaveIdle unregisters a worker's poll that stops waiting. If it was
// woken in the meantime, the wake-up passes to another idle worker; if a
// submission claimed it, it waits for what the submission hands it (as
// long as one write to the Store takes) and returns the job, if any.
func (m *Manager) leaveIdle(w *idler) *faas.Job {
	m.mu.Lock()
	for i, x := range m.idle {
		if x == w {
			m.idle = append(m.idle[:i], m.idle[i+1:]...)
			m.mu.Unlock()
			return nil
		}
	}
	if w.claimed {
		m.mu.Unlock()
		return <-w.ch
	}
	defer m.mu.Unlock()
	select {
	case <-w.ch:
		if m.queue.len > 0 {
			m.wakeOne()
		}
	default:
	}
	return nil
}

// lease records in the Store that worker runs the jobs es, in one batch
// with the leases of other polls waiting at the same time. It returns the jobs leased, without those that can no longer run
// (deleted, finished by a retry, or released while being leased). If the
// Store did not answer, the jobs go back to the front of the queue and
// the error is returned, unless some were leased.
func (m *Manager) lease(ctx context.Context, es []*entry, worker string) ([]faas.Job, error) {
	// The wait and the lease join each job's trace, not the poll's: a
	// worker's poll belongs to no trace. The Store's span hangs under the
	// first job's lease.
	starts := make([]faas.Start, len(es))
	spans := make([]trace.Span, len(es))
	storeCtx := ctx
	for i, e := range es {
		attrs := trace.WithAttributes(attribute.String("faas.job_id", e.id), attribute.String("faas.worker", worker))
		_, wait := tracing.Start(ctx, e.trace, "queue wait", trace.WithTimestamp(e.queued.time()), attrs)
		wait.End()
		var sctx context.Context
		sctx, spans[i] = tracing.Start(ctx, e.trace, "lease", attrs)
		if i == 0 {
			storeCtx = sctx
		}
		starts[i] = faas.Start{ID: e.id, Attempt: int(e.attempt) + 1, Worker: worker}
	}
	// A batch writes its leases whoever leaves meanwhile, so a poll
	// that has already ended does not join one: its jobs go back.
	res, errs := make([]faas.JobResult, len(es)), make([]error, len(es))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
	} else {
		res, errs = m.starts.DoAll(storeCtx, starts)
	}
	for _, span := range spans {
		span.End()
	}
	var jobs []faas.Job
	var failed error
	for i := len(es) - 1; i >= 0; i-- {
		// Backwards, so that jobs put back keep their order at the front.
		var j faas.Job
		rowErr := errs[i]
		if rowErr == nil && res[i].Error != nil {
			rowErr = res[i].Error
		} else if rowErr == nil {
			j = res[i].Job
		}
		j, rowErr = m.leased(ctx, es[i], j, rowErr)
		if rowErr != nil {
			failed = rowErr
		}
		if j.ID != "" {
			jobs = append(jobs, j)
		}
	}
	slices.Reverse(jobs)
	if len(jobs) == 0 && failed != nil {
		return nil, failed
	}
	return jobs, nil
}

// leased applies the Store's answer to one lease: j is the started job
// when err is nil. It returns j if the worker is to run it, a zero Job if
// the job can no longer run, and an error if the Store did not answer.
func (m *Manager) leased(ctx context.Context, e *entry, j faas.Job, err error) (faas.Job, error) {
	m.mu.Lock()
	code := faas.ErrorCode(err)
	switch {
	case err == nil && e.run.released != nil:
		reason := e.run.released
		e.run.released = nil
		e.recorded(j)
		e.state = stateReaping
		m.mu.Unlock()
		m.requeue(ctx, e, reason)
		return faas.Job{}, nil
	case err == nil:
		defer m.mu.Unlock()
		now := time.Now()
		e.state = stateRunning
		e.recorded(j)
		e.run.leased, e.run.renewed = now, now
		// A new attempt prints from the first line again.
		e.run.logs, e.run.logBase, e.run.logBytes = nil, 0, 0
		m.jobStarted(j, now)
		return j, nil
	case code == faas.NotFound || code == faas.Conflict || code == faas.FunctionDeleted:
		// FunctionDeleted: the Store failed the job instead of starting it.
		defer m.mu.Unlock()
		if code == faas.FunctionDeleted {
			m.jobFinished(faas.Job{ID: e.id, Owner: e.owner(), Function: e.function(), Attempt: int(e.attempt), Error: faas.AsError(err)})
		} else {
			m.log.Info("job no longer queued, dropped", "job_id", e.id, "reason", err)
		}
		m.finish(e)
		return faas.Job{}, nil
	default:
		defer m.mu.Unlock()
		// The Store did not answer: put the job back for the next worker,
		// and wake one, since this one returns with the error.
		e.run = nil
		e.state = stateQueued
		m.queue.pushFront(e)
		m.wakeOne()
		return faas.Job{}, fmt.Errorf("lease job %s: %w", e.id, err)
	}
}

// holds reports whether worker holds the lease l. Callers hold mu.
func (m *Manager) holds(worker string, l faas.Lease) (*entry, bool) {
	e, ok := m.jobs[l.ID]
	return e, ok && e.state == stateRunning && int(e.attempt) == l.Attempt && e.run.worker == worker
}

// Complete implements faas.JobQueue. The queue, not the worker, writes
// the outcomes, so that it can fence them by the leases it granted and
// bound what they bill; the Store, fencing by attempt, stays the judge, so
// a completion the queue let through after losing track of a lease (a
// restart) is still refused there if another attempt holds the job.
func (m *Manager) Complete(ctx context.Context, worker string, cs []faas.Completion) ([]*faas.Error, error) {
	if worker == "" {
		return nil, faas.Errorf(faas.Invalid, "worker name is empty")
	}
	if len(cs) > faas.MaxBatch {
		return nil, faas.Errorf(faas.Invalid, "worker %s completes %d jobs at once: at most %d are allowed", worker, len(cs), faas.MaxBatch)
	}
	leases := make([]faas.Lease, len(cs))
	for i, c := range cs {
		leases[i] = faas.Lease{ID: c.JobID, Attempt: c.Attempt}
	}
	if err := m.awaitConfirmed(ctx, leases...); err != nil {
		return nil, err
	}
	out := make([]*faas.Error, len(cs))
	held := make([]faas.Completion, 0, len(cs))
	var at []int
	var entries []*entry
	m.mu.Lock()
	now := time.Now()
	m.workers[worker] = now
	for i, c := range cs {
		e, ok := m.holds(worker, faas.Lease{ID: c.JobID, Attempt: c.Attempt})
		if !ok {
			out[i] = faas.Errorf(faas.Conflict, "worker %s does not hold attempt %d of job %s", worker, c.Attempt, c.JobID)
			continue
		}
		e.run.renewed = now
		// No attempt runs longer than its lease has lasted: a worker,
		// or whoever holds its key, cannot bill more.
		c.Duration = min(c.Duration, now.Sub(e.run.leased))
		held = append(held, c)
		at = append(at, i)
		entries = append(entries, e)
	}
	m.mu.Unlock()
	if len(held) == 0 {
		return out, nil
	}
	// Other workers' completions arriving meanwhile share the batch.
	res, errs := m.completes.DoAll(ctx, held)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range res {
		i, e := at[k], entries[k]
		if errs[k] != nil {
			// The Store did not answer: the worker retries.
			m.log.Warn("could not record outcome", "job_id", e.id, "err", errs[k])
			out[i] = faas.AsError(errs[k])
			continue
		}
		if r.Error == nil {
			m.recorded(e, r.Job)
			continue
		}
		out[i] = r.Error
		if r.Error.Code == faas.Conflict || r.Error.Code == faas.NotFound {
			// Fenced off or deleted in the Store: the attempt is over
			// all the same.
			m.recorded(e, faas.Job{ID: e.id, Attempt: held[k].Attempt})
		}
	}
	return out, nil
}

// recorded ends the attempt j.Attempt of e, whose outcome j is in the
// Store, unless the queue moved on meanwhile (the lease expired, the job
// was forgotten). Callers hold mu.
func (m *Manager) recorded(e *entry, j faas.Job) {
	if m.jobs[e.id] != e || e.state != stateRunning || int(e.attempt) != j.Attempt {
		return
	}
	if j.State.Finished() {
		// Waiters need the outcome, not the arguments or the logs.
		j.Args, j.Logs, j.Streams = nil, "", ""
		e.outcome = &j
		m.jobFinished(j)
		m.averageDuration(j.Duration)
	}
	m.done++
	m.rate.add(time.Now())
	m.finish(e)
}

// averageDuration adds a job's execution time, as its worker measured it,
// to the moving average the scaler sizes the workers by. Not the time
// from lease to record: under a burst that grows with the outcome's wait
// in the completion batches, which more workers do not shorten, and the
// scaler started eight workers, each with its sandboxes, for a burst one
// worker drained in three seconds. Callers hold mu.
func (m *Manager) averageDuration(took time.Duration) {
	if m.avg == 0 {
		m.avg = took
	} else {
		// An exponential moving average over roughly the last 20 jobs.
		m.avg += (took - m.avg) / 20
	}
}

// Renew implements faas.JobQueue.
func (m *Manager) Renew(ctx context.Context, worker string, leases []faas.Lease) ([]faas.Lease, error) {
	if worker == "" {
		return nil, faas.Errorf(faas.Invalid, "worker name is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.workers[worker] = now
	var lost []faas.Lease
	for _, l := range leases {
		if e, ok := m.holds(worker, l); ok {
			e.run.renewed = now
		} else {
			lost = append(lost, l)
		}
	}
	return lost, nil
}

// Release implements faas.JobQueue. An attempt still being leased is
// released as soon as the lease is recorded.
func (m *Manager) Release(ctx context.Context, l faas.Lease, reason string) error {
	if err := m.awaitConfirmed(ctx, l); err != nil {
		return err
	}
	m.mu.Lock()
	e, ok := m.jobs[l.ID]
	switch {
	case ok && e.state == stateLeasing && int(e.attempt)+1 == l.Attempt:
		e.run.released = faas.Errorf(faas.Lost, "attempt %d released by worker %s: %s", l.Attempt, e.run.worker, reason)
		m.mu.Unlock()
		return nil
	case !ok || e.state != stateRunning || int(e.attempt) != l.Attempt:
		m.mu.Unlock()
		return nil
	}
	e.state = stateReaping
	m.mu.Unlock()
	m.requeue(ctx, e, faas.Errorf(faas.Lost, "attempt %d released by worker %s: %s", e.attempt, e.run.worker, reason))
	return nil
}

// Forget implements faas.JobQueue. A job being leased or requeued right
// now is left alone: the Store, which no longer has it, refuses that step
// and the job is dropped then.
func (m *Manager) Forget(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.jobs[id]; ok {
		m.forget(e)
	}
	// Also for a job the queue no longer holds: the frontends may
	// remember it finished.
	m.events.add(faas.Event{Kind: faas.JobDeleted, JobID: id})
	return nil
}

// ForgetUser implements faas.JobQueue, as Forget for each of the user's
// jobs.
func (m *Manager) ForgetUser(ctx context.Context, name string) error {
	if name == "" {
		return faas.Errorf(faas.Invalid, "user name is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.jobs {
		if e.owner() == name {
			m.forget(e)
		}
	}
	for fn := range m.versions {
		if fn.Value().owner == name {
			delete(m.versions, fn)
		}
	}
	m.events.add(faas.Event{Kind: faas.UserRevoked, User: name})
	return nil
}

// FunctionChanged implements faas.JobQueue. A replacement that comes
// between this and a job already being created is caught by the Store,
// which refuses the creation at the old version (handOver).
func (m *Manager) FunctionChanged(ctx context.Context, owner, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.versions, unique.Make(fnName{owner: owner, name: name}))
	return nil
}

// Reschedule implements faas.JobQueue: the scheduler rereads the
// schedules at once.
func (m *Manager) Reschedule(context.Context) error {
	m.sched.poke()
	return nil
}

// RevokeTokens implements faas.JobQueue: only the event, since the user
// and their jobs stay.
func (m *Manager) RevokeTokens(ctx context.Context, name string) error {
	if name == "" {
		return faas.Errorf(faas.Invalid, "user name is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.add(faas.Event{Kind: faas.UserRevoked, User: name})
	return nil
}

// forget drops a deleted job. Callers hold mu.
func (m *Manager) forget(e *entry) {
	switch e.state {
	case stateQueued:
		m.queue.remove(e)
		m.finish(e)
	case stateRunning:
		// Its worker's next heartbeat finds the lease gone.
		m.finish(e)
	}
}

// reap queues again the jobs whose leases expired, until ctx ends. It
// looks four times per lease period, so an expired lease is noticed
// within a quarter of it.
func (m *Manager) reap(ctx context.Context) {
	tick := time.NewTicker(m.cfg.LeaseTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, e := range m.expired(time.Now()) {
			m.requeue(ctx, e, faas.Errorf(faas.Lost, "attempt %d lost: worker %s sent no heartbeat for %v", e.attempt, e.run.worker, m.cfg.LeaseTimeout))
		}
	}
}

// expired marks and returns the running jobs whose leases ran out.
func (m *Manager) expired(now time.Time) []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*entry
	for _, e := range m.jobs {
		if e.state == stateRunning && e.run.unconfirmed == nil && now.Sub(e.run.renewed) > m.cfg.LeaseTimeout {
			e.state = stateReaping
			out = append(out, e)
		}
	}
	return out
}

// requeue tells the Store that e's attempt lost its lease and queues the
// job again, or fails it with code lost after MaxAttempts losses. If the
// Store does not answer, the entry stays running with its lease expired,
// so the next reaping pass tries again.
func (m *Manager) requeue(ctx context.Context, e *entry, reason *faas.Error) {
	log := m.log.With("job_id", e.id, "attempt", e.attempt, "user", e.owner())
	var (
		requeued faas.Job
		err      error
	)
	giveUp := int(e.losses)+1 >= m.cfg.MaxAttempts
	failure := faas.Errorf(faas.Lost, "job lost %d times, the most allowed; last: %s", e.losses+1, reason.Message)
	if giveUp {
		_, err = m.store.CompleteJob(ctx, faas.Completion{
			JobID:   e.id,
			Attempt: int(e.attempt),
			Error:   failure,
		})
	} else {
		requeued, err = m.store.RequeueJob(ctx, e.id, int(e.attempt), reason)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch code := faas.ErrorCode(err); {
	case err == nil && giveUp:
		m.metrics.leaseLost.Inc()
		m.metrics.exhausted.Inc()
		m.jobFinished(faas.Job{ID: e.id, Owner: e.owner(), Function: e.function(), Attempt: int(e.attempt), Error: failure})
		m.finish(e)
	case err == nil:
		m.metrics.leaseLost.Inc()
		log.Info("job queued again", "reason", reason.Message)
		e.losses++
		e.recorded(requeued)
		m.enqueue(e)
	case code == faas.Conflict || code == faas.NotFound:
		// Finished by its worker just in time, or deleted.
		m.finish(e)
	default:
		log.Warn("could not requeue job, will retry", "err", err)
		e.state = stateRunning
	}
}

// Wait implements faas.JobQueue. A job the queue does not know has
// finished, or never existed: the caller reads the Store either way.
func (m *Manager) Wait(ctx context.Context, id string, wait time.Duration) (faas.Job, bool, error) {
	m.mu.Lock()
	e, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return faas.Job{}, true, nil
	}
	ch := make(chan struct{})
	m.waiters[e] = append(m.waiters[e], ch)
	m.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
		// Closed after the outcome, if any, was recorded; never written
		// again. A job that left without one is read from the Store.
		if e.outcome == nil {
			return faas.Job{}, true, nil
		}
		return *e.outcome, true, nil
	case <-timer.C:
		m.stopWaiting(e, ch)
		return faas.Job{}, false, nil
	case <-ctx.Done():
		m.stopWaiting(e, ch)
		return faas.Job{}, false, ctx.Err()
	}
}

// Status implements faas.JobQueue.
func (m *Manager) Status(ctx context.Context, id string) (faas.JobStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := faas.JobStatus{Seq: m.events.head}
	if e, ok := m.jobs[id]; ok {
		j := e.job()
		st.Job = &j
	}
	return st, nil
}

// stopWaiting removes a waiter that gave up, so that a job polled with
// many short waits does not pile them up until it ends.
func (m *Manager) stopWaiting(e *entry, ch chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if left := slices.DeleteFunc(m.waiters[e], func(w chan struct{}) bool { return w == ch }); len(left) > 0 {
		m.waiters[e] = left
	} else {
		delete(m.waiters, e)
	}
}

// Stats implements faas.JobQueue. A worker counts as present while it
// polls or sends heartbeats, for three lease periods after the last.
func (m *Manager) Stats(ctx context.Context) (faas.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	present := 0
	for w, seen := range m.workers {
		if now.Sub(seen) > 3*m.cfg.LeaseTimeout {
			delete(m.workers, w)
			continue
		}
		present++
	}
	return faas.Stats{
		Queued:      m.queue.len,
		Held:        m.queue.held(),
		Running:     len(m.jobs) - m.queue.len,
		Workers:     present,
		Completed:   m.done,
		JobsPerSec:  m.rate.perSecond(now),
		AvgDuration: m.avg,
	}, nil
}
