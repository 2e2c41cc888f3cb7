package main

import (
	"context"
	"log/slog"
	"time"

	"faas/dbmanager"
	"faas/frontend"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
	"faas/scaler"
	"faas/worker"
	"faas/worker/pool"
)

// roles maps each subcommand to the role it runs. Each reads its own
// configuration from the environment, dials the managers it talks to and
// runs until ctx ends.
var roles = map[string]func(context.Context, *slog.Logger) error{
	"dbmanager": runDBManager,
	"jqmanager": runJQManager,
	"frontend":  runFrontend,
	"worker":    runWorker,
	"scaler":    runScaler,
	"up":        up,
	"sandbox":   runSandbox, // hidden: the worker starts it, one per sandbox
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
	m, err := dbmanager.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("serving", "endpoint", m.Endpoint())
	return m.Run(ctx)
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
	return m.Run(ctx)
}

func runFrontend(ctx context.Context, log *slog.Logger) error {
	cfg, err := frontend.ConfigFromEnv()
	if err != nil {
		return err
	}
	return withManagers(ctx, cfg.DBURL, cfg.JQURL, cfg.RequestTimeout, log, func(store faas.Store, queue faas.JobQueue) (runner, error) {
		s, err := frontend.New(cfg, store, queue, log)
		if err == nil {
			log.Info("serving", "addr", s.Addr(), "db", cfg.DBURL, "jq", cfg.JQURL)
		}
		return s, err
	})
}

func runWorker(ctx context.Context, log *slog.Logger) error {
	cfg, err := worker.LoadConfig()
	if err != nil {
		return err
	}
	return withManagers(ctx, cfg.DBURL, cfg.JQURL, cfg.RequestTimeout, log, func(store faas.Store, queue faas.JobQueue) (runner, error) {
		log.Info("working", "db", cfg.DBURL, "jq", cfg.JQURL, "concurrency", cfg.Concurrency)
		return worker.New(cfg, store, queue, log)
	})
}

// runner is a role's component once built.
type runner interface{ Run(context.Context) error }

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
