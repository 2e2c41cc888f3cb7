package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"

	"faas/dbmanager"
	"faas/frontend"
	"faas/internal/metrics"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/proxies/wire"
	"faas/scaler"
)

// upConfig is what `faas up` adds to the roles' own settings: the loopback
// ports the managers listen on (dbproxy.DefaultPort, jqproxy.DefaultPort).
type upConfig struct {
	DBPort int `envconfig:"FAAS_DB_PORT" default:"27444" desc:"loopback bus port of the DB manager"`
	JQPort int `envconfig:"FAAS_JQ_PORT" default:"27445" desc:"loopback bus port of the JQ manager"`
}

// upKeys is the bus security of `faas up`: a fresh key for every role,
// made in memory at each start and never written down, so that `make run`
// needs no step and each component speaks with its own role, as apart.
// With FAAS_BUS_INSECURE the bus is plaintext instead.
func upKeys(log *slog.Logger) (func(bus.Role) bus.Config, []string, error) {
	bc, err := bus.LoadConfig()
	if err != nil && !errors.Is(err, bus.ErrNoKey) {
		return nil, nil, err
	}
	if bc.Insecure {
		bc.Warn(log)
		return func(bus.Role) bus.Config { return bc }, nil, nil
	}
	ring, err := bus.NewKeyring()
	if err != nil {
		return nil, nil, err
	}
	return ring.Config, ring.Env(bus.Worker), nil
}

// up runs the whole platform on this machine: the managers, the frontend
// and the scaler in this process, each with its own sockets talking
// ZeroMQ over loopback TCP exactly as separate processes would, and the
// workers as child processes started by the scaler's local backend.
func up(ctx context.Context, log *slog.Logger) error {
	var uc upConfig
	if err := envconfig.Process("", &uc); err != nil {
		return err
	}
	dbURL := fmt.Sprintf("tcp://127.0.0.1:%d", uc.DBPort)
	jqURL := fmt.Sprintf("tcp://127.0.0.1:%d", uc.JQPort)
	logOf := func(role string) *slog.Logger { return log.With("component", role) }
	keysOf, workerEnv, err := upKeys(log)
	if err != nil {
		return err
	}
	server := func(role bus.Role) (wire.Security, error) { return keysOf(role).Server() }

	dbCfg, err := dbmanager.LoadConfig()
	if err != nil {
		return err
	}
	dbCfg.Listen = dbURL
	// One registry per role, as apart; the frontend's /metrics serves
	// them all, told apart by their component label.
	dbMetrics, jqMetrics, feMetrics := metrics.NewRegistry("dbmanager"), metrics.NewRegistry("jqmanager"), metrics.NewRegistry("frontend")
	dbCfg.Metrics = dbMetrics
	if dbCfg.SecretKey == "" {
		// One machine, one operator: keep a generated key beside the
		// data it protects, so that secrets work out of the box.
		if dbCfg.SecretKey, err = dbmanager.LoadOrCreateSecretKey(dbCfg.DataDir); err != nil {
			return err
		}
	}
	if dbCfg.Bus, err = server(bus.DBManager); err != nil {
		return err
	}
	db, err := dbmanager.New(ctx, dbCfg, logOf("dbmanager"))
	if err != nil {
		return err
	}

	jqCfg, err := jqmanager.LoadConfig()
	if err != nil {
		return err
	}
	jqCfg.Listen, jqCfg.DBURL = jqURL, dbURL
	jqCfg.Metrics = jqMetrics
	if jqCfg.Bus, err = server(bus.JQManager); err != nil {
		return err
	}
	// Each component dials with its own role's key, as it would apart.
	jqStore, err := dialDB(keysOf(bus.JQManager), dbURL, jqCfg.RequestTimeout, log)
	if err != nil {
		return err
	}
	defer jqStore.Close()
	store, queue, closeFE, err := dialManagers(keysOf(bus.Frontend), dbURL, jqURL, jqCfg.RequestTimeout, log)
	if err != nil {
		return err
	}
	defer closeFE()
	scQueue, err := dialJQ(keysOf(bus.Scaler), jqURL, jqCfg.RequestTimeout, log)
	if err != nil {
		return err
	}
	defer scQueue.Close()
	jq, err := jqmanager.New(jqCfg, jqStore, logOf("jqmanager"))
	if err != nil {
		return err
	}

	feCfg, err := frontend.LoadConfig()
	if err != nil {
		return err
	}
	feCfg.DBURL, feCfg.JQURL = dbURL, jqURL
	feCfg.Metrics = feMetrics
	feCfg.Scrape = prometheus.Gatherers{feMetrics.Gatherer(), jqMetrics.Gatherer(), dbMetrics.Gatherer()}
	fe, err := frontend.New(feCfg, store, queue, logOf("frontend"))
	if err != nil {
		return err
	}

	scCfg, err := scaler.LoadConfig()
	if err != nil {
		return err
	}
	scCfg.JQURL = jqURL
	workers, err := scaler.NewLocal(scaler.LocalConfig{
		// The workers are processes of their own: an address for
		// metrics set for `faas up` is not theirs to bind.
		Env:   append([]string{"DB_URL=" + dbURL, "JQ_URL=" + jqURL, "FAAS_METRICS_LISTEN="}, workerEnv...),
		Grace: scCfg.StopGrace,
	}, logOf("scaler"))
	if err != nil {
		return err
	}
	sc, err := scaler.New(scCfg, scQueue, workers, logOf("scaler"))
	if err != nil {
		return err
	}

	log.Info("platform up", "http", fe.Addr(), "dbmanager", dbURL, "jqmanager", jqURL)
	// Shut down from the edge inwards: the frontend and the scaler (which
	// drains the workers) stop first, while the managers can still record
	// what the workers finish; a failing manager stops everything.
	managersCtx, stopManagers := context.WithCancel(context.WithoutCancel(ctx))
	edgeCtx, stopEdge := context.WithCancel(ctx)
	defer stopEdge()
	var managersErr error
	managersDone := make(chan struct{})
	go func() {
		defer close(managersDone)
		managersErr = runAll(managersCtx, db.Run, jq.Run)
		stopEdge()
	}()
	edgeErr := runAll(edgeCtx, fe.Run, sc.Run)
	stopManagers()
	<-managersDone
	return errors.Join(edgeErr, managersErr)
}

// runAll runs the functions until ctx ends or one of them fails, which
// stops the others; it returns once all have returned.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, fn := range fns {
		wg.Go(func() {
			err := fn(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
