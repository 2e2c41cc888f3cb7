// Package platform wires the platform's parts into running processes: each
// role dials the managers it talks to over the bus and runs until its
// context ends, and Platform runs every role on one machine (`faas up`).
// The faas binary's main only chooses a role; tests and `faas bench` start
// the same wiring in-process.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"faas/dbmanager"
	"faas/frontend"
	"faas/internal/metrics"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/tracing"
	"faas/proxies/wire"
	"faas/scaler"
	"faas/worker"
	"faas/worker/pool"
)

// Role is one subcommand of the faas binary that runs a part of the
// platform.
type Role struct {
	Name string
	// Short says in one line what the role does.
	Short string
	// Config points at the zero values of the config structs the role
	// reads from the environment, for generating its help from their
	// envconfig tags.
	Config []any
	// Hidden roles are started by other roles, not by people.
	Hidden bool
	run    func(context.Context, *slog.Logger) error
}

// Roles lists every role, in the order a usage message names them.
var Roles = []Role{
	{Name: "frontend", Short: "The REST API", Config: []any{&frontend.Config{}, &bus.Config{}, &metrics.Config{}}, run: runFrontend},
	{Name: "dbmanager", Short: "The only component that touches the database", Config: []any{&dbmanager.Config{}, &bus.Config{}, &metrics.Config{}}, run: runDBManager},
	{Name: "jqmanager", Short: "The job queue", Config: []any{&jqmanager.Config{}, &bus.Config{}, &metrics.Config{}}, run: runJQManager},
	{Name: "worker", Short: "Runs jobs in JavaScript sandboxes", Config: []any{&worker.Config{}, &bus.Config{}, &metrics.Config{}}, run: runWorker},
	{Name: "scaler", Short: "Changes the number of workers with the backlog", Config: []any{&scaler.Config{}, &bus.Config{}, &metrics.Config{}}, run: runScaler},
	// The workers up starts read their config from the environment too.
	{Name: "up", Short: "The whole platform on this machine (embedded database, local worker processes)",
		Config: []any{&UpConfig{}, &dbmanager.Config{}, &jqmanager.Config{}, &frontend.Config{}, &worker.Config{}, &scaler.Config{}, &bus.Config{}}, run: runUp},
	// The worker starts one per sandbox.
	{Name: "sandbox", Short: "Serves one worker's jobs over stdin and stdout", Hidden: true, run: runSandbox},
}

// ErrUnknownRole is RunRole's answer to a name no role has.
var ErrUnknownRole = errors.New("unknown role")

// RunRole runs the named role until ctx ends. It reads the role's
// configuration from the environment, and exports the role's spans when
// OTEL_EXPORTER_OTLP_ENDPOINT is set.
func RunRole(ctx context.Context, name string, log *slog.Logger) error {
	for _, r := range Roles {
		if r.Name != name {
			continue
		}
		if !r.Hidden { // a worker's sandbox: the worker traces its runs
			flush, err := tracing.Setup(ctx, "faas-"+name)
			if err != nil {
				return err
			}
			defer flushTraces(flush, log)
		}
		defer TuneRuntime(name)()
		stop, err := startProfile(name, log)
		if err != nil {
			return err
		}
		defer stop()
		return r.run(ctx, log)
	}
	return fmt.Errorf("%w %q", ErrUnknownRole, name)
}

// flushTraces exports the spans still buffered at shutdown, waiting a
// little for a slow collector but not forever.
func flushTraces(flush func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := flush(ctx); err != nil {
		log.Warn("flush traces", "err", err)
	}
}

// loadBus reads the process's bus keys, warning loudly if there are none
// on purpose.
func loadBus(log *slog.Logger) (bus.Config, error) {
	bc, err := bus.LoadConfig()
	if err == nil {
		bc.Warn(log)
	}
	return bc, err
}

// serverBus is loadBus for a manager, with the server side of its keys.
func serverBus(log *slog.Logger) (bus.Config, wire.Security, error) {
	bc, err := loadBus(log)
	if err != nil {
		return bus.Config{}, wire.Security{}, err
	}
	sec, err := bc.Server()
	return bc, sec, err
}

func runDBManager(ctx context.Context, log *slog.Logger) error {
	cfg, err := dbmanager.LoadConfig()
	if err != nil {
		return err
	}
	if _, cfg.Bus, err = serverBus(log); err != nil {
		return err
	}
	reg, metricsSrv, err := roleMetrics("dbmanager", log)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	m, err := dbmanager.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runAll(ctx, m.Run, metricsSrv.Run)
}

func runJQManager(ctx context.Context, log *slog.Logger) error {
	cfg, err := jqmanager.LoadConfig()
	if err != nil {
		return err
	}
	bc, sec, err := serverBus(log)
	if err != nil {
		return err
	}
	cfg.Bus = sec
	reg, metricsSrv, err := roleMetrics("jqmanager", log)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	store, err := dialDB(bc, cfg.DBURL, cfg.RequestTimeout, log)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := jqmanager.New(cfg, store, log)
	if err != nil {
		return err
	}
	return runAll(ctx, m.Run, metricsSrv.Run)
}

func runFrontend(ctx context.Context, log *slog.Logger) error {
	cfg, err := frontend.LoadConfig()
	if err != nil {
		return err
	}
	reg, metricsSrv, err := roleMetrics("frontend", log)
	if err != nil {
		return err
	}
	cfg.Metrics, cfg.Scrape = reg, reg.Gatherer()
	return withManagers(ctx, cfg.DBURL, cfg.JQURL, cfg.RequestTimeout, log, func(store faas.Store, queue faas.JobQueue) (runner, error) {
		s, err := frontend.New(cfg, store, queue, log)
		return withServer{s, metricsSrv}, err
	})
}

func runWorker(ctx context.Context, log *slog.Logger) error {
	cfg, err := worker.LoadConfig()
	if err != nil {
		return err
	}
	if cfg.Procs > 0 {
		runtime.GOMAXPROCS(cfg.Procs)
	}
	reg, metricsSrv, err := roleMetrics("worker", log)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	return withManagers(ctx, cfg.DBURL, cfg.JQURL, cfg.RequestTimeout, log, func(store faas.Store, queue faas.JobQueue) (runner, error) {
		w, err := worker.New(cfg, store, queue, log)
		return withServer{w, metricsSrv}, err
	})
}

// runner is a role's component once built.
type runner interface{ Run(context.Context) error }

// withServer runs a role's component beside its metrics server.
type withServer struct {
	runner
	metrics *metrics.Server
}

func (w withServer) Run(ctx context.Context) error { return runAll(ctx, w.runner.Run, w.metrics.Run) }

// roleMetrics makes a standalone role's registry and binds its
// FAAS_METRICS_LISTEN, if set; the server's Run serves it.
func roleMetrics(component string, log *slog.Logger) (*metrics.Registry, *metrics.Server, error) {
	cfg, err := metrics.LoadConfig()
	if err != nil {
		return nil, nil, err
	}
	reg := metrics.NewRegistry(component)
	srv, err := metrics.Listen(cfg, reg.Gatherer(), log)
	return reg, srv, err
}

// withManagers dials both managers, builds a role's component on their
// proxies and runs it until ctx ends.
func withManagers(ctx context.Context, dbURL, jqURL string, timeout time.Duration, log *slog.Logger,
	build func(faas.Store, faas.JobQueue) (runner, error)) error {
	bc, err := loadBus(log)
	if err != nil {
		return err
	}
	store, queue, closeAll, err := dialManagers(bc, dbURL, jqURL, timeout, log)
	if err != nil {
		return err
	}
	defer closeAll()
	r, err := build(store, queue)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// runSandbox serves one worker's jobs over stdin and stdout in a child
// process the worker supervises.
func runSandbox(ctx context.Context, _ *slog.Logger) error {
	return pool.ServeProcess(ctx)
}

func runScaler(ctx context.Context, log *slog.Logger) error {
	cfg, err := scaler.LoadConfig()
	if err != nil {
		return err
	}
	bc, err := loadBus(log)
	if err != nil {
		return err
	}
	queue, err := dialJQ(bc, cfg.JQURL, 0, log)
	if err != nil {
		return err
	}
	defer queue.Close()
	if cfg.Backend == scaler.BackendLocal {
		if cfg.WorkerEnv, err = bc.WorkerEnv(); err != nil {
			return err
		}
	}
	reg, metricsSrv, err := roleMetrics("scaler", log)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	backend, err := scaler.NewBackend(cfg, log)
	if err != nil {
		return err
	}
	s, err := scaler.New(cfg, queue, backend, log)
	if err != nil {
		return err
	}
	return runAll(ctx, s.Run, metricsSrv.Run)
}

// dialDB returns a proxy for the DB manager, secured with the process's
// bus keys.
func dialDB(bc bus.Config, url string, timeout time.Duration, log *slog.Logger) (*dbproxy.Client, error) {
	sec, err := bc.DialDB()
	if err != nil {
		return nil, err
	}
	return dbproxy.Dial(url, timeout, log, wire.WithSecurity(sec))
}

// dialJQ returns a proxy for the JQ manager, secured with the process's
// bus keys.
func dialJQ(bc bus.Config, url string, timeout time.Duration, log *slog.Logger) (*jqproxy.Client, error) {
	sec, err := bc.DialJQ()
	if err != nil {
		return nil, err
	}
	return jqproxy.Dial(url, timeout, log, wire.WithSecurity(sec))
}

// dialManagers returns proxies for the DB and JQ managers.
func dialManagers(bc bus.Config, dbURL, jqURL string, timeout time.Duration, log *slog.Logger) (*dbproxy.Client, *jqproxy.Client, func(), error) {
	store, err := dialDB(bc, dbURL, timeout, log)
	if err != nil {
		return nil, nil, nil, err
	}
	queue, err := dialJQ(bc, jqURL, timeout, log)
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return store, queue, func() { queue.Close(); store.Close() }, nil
}
