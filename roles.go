package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"faas/dbmanager"
	"faas/frontend"
	"faas/internal/cli"
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

// roleList is the roles the binary runs, for the CLI: each reads its own
// configuration from the environment (the structs listed, which
// `faas <role> --help` documents), dials the managers it talks to and runs
// until ctx ends. This is the one place the CLI meets the wiring.
func roleList() []cli.Role {
	noArgs := func(run func(context.Context, *slog.Logger) error) func(context.Context, *slog.Logger, []string) error {
		return func(ctx context.Context, log *slog.Logger, _ []string) error { return run(ctx, log) }
	}
	// traced is noArgs with the role's spans exported while it runs.
	traced := func(role string, run func(context.Context, *slog.Logger) error) func(context.Context, *slog.Logger, []string) error {
		return func(ctx context.Context, log *slog.Logger, _ []string) error {
			flush, err := tracing.Setup(ctx, "faas-"+role)
			if err != nil {
				return err
			}
			defer flushTraces(flush, log)
			return run(ctx, log)
		}
	}
	return []cli.Role{
		{Name: "dbmanager", Short: "The only component that touches the database", Config: []any{&dbmanager.Config{}, &bus.Config{}, &metrics.Config{}}, Run: traced("dbmanager", runDBManager)},
		{Name: "jqmanager", Short: "The job queue", Config: []any{&jqmanager.Config{}, &bus.Config{}, &metrics.Config{}}, Run: traced("jqmanager", runJQManager)},
		{Name: "frontend", Short: "The REST API", Config: []any{&frontend.Config{}, &bus.Config{}, &metrics.Config{}}, Run: traced("frontend", runFrontend)},
		{Name: "worker", Short: "Runs jobs in JavaScript sandboxes", Config: []any{&worker.Config{}, &bus.Config{}, &metrics.Config{}}, Run: traced("worker", runWorker)},
		{Name: "scaler", Short: "Changes the number of workers with the backlog", Config: []any{&scaler.Config{}, &bus.Config{}}, Run: traced("scaler", runScaler)},
		{Name: "up", Short: "The whole platform on this machine (embedded database, local worker processes)", Config: upConfigs(), Run: traced("up", up)},
		{Name: "bench", Short: "Start the platform (or use one with -url) and measure throughput and latency", Config: upConfigs(), Flags: true, Run: bench},
		{Name: "keys", Short: "Write a bus keypair for every role: faas keys [--dir D]", Flags: true, Run: func(_ context.Context, _ *slog.Logger, args []string) error {
			return keys(args, os.Stdout)
		}},
		{Name: "sandbox", Short: "Serve one worker's jobs over stdin and stdout", Hidden: true, Run: noArgs(runSandbox)},
	}
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

// upConfigs are the settings `faas up` reads: its own and those of every
// role it runs.
func upConfigs() []any {
	return []any{&upConfig{}, &dbmanager.Config{}, &jqmanager.Config{}, &frontend.Config{}, &worker.Config{}, &scaler.Config{}, &bus.Config{}}
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

func runDBManager(ctx context.Context, log *slog.Logger) error {
	cfg, err := dbmanager.LoadConfig()
	if err != nil {
		return err
	}
	bc, err := loadBus(log)
	if err != nil {
		return err
	}
	if cfg.Bus, err = bc.Server(); err != nil {
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
	log.Info("serving", "endpoint", m.Endpoint())
	return runAll(ctx, m.Run, metricsSrv.Run)
}

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

func runJQManager(ctx context.Context, log *slog.Logger) error {
	cfg, err := jqmanager.LoadConfig()
	if err != nil {
		return err
	}
	bc, err := loadBus(log)
	if err != nil {
		return err
	}
	if cfg.Bus, err = bc.Server(); err != nil {
		return err
	}
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
	log.Info("serving", "endpoint", m.Endpoint(), "db", cfg.DBURL)
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
		if err != nil {
			return nil, err
		}
		log.Info("serving", "addr", s.Addr(), "db", cfg.DBURL, "jq", cfg.JQURL)
		return withServer{s, metricsSrv}, nil
	})
}

func runWorker(ctx context.Context, log *slog.Logger) error {
	cfg, err := worker.LoadConfig()
	if err != nil {
		return err
	}
	reg, metricsSrv, err := roleMetrics("worker", log)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	return withManagers(ctx, cfg.DBURL, cfg.JQURL, cfg.RequestTimeout, log, func(store faas.Store, queue faas.JobQueue) (runner, error) {
		log.Info("working", "db", cfg.DBURL, "jq", cfg.JQURL, "concurrency", cfg.Concurrency)
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
	backend, err := scaler.NewBackend(cfg, log)
	if err != nil {
		return err
	}
	s, err := scaler.New(cfg, queue, backend, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
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
