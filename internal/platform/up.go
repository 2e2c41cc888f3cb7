package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"faas/dbmanager"
	"faas/frontend"
	"faas/internal/metrics"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/proxies/wire"
	"faas/scaler"
	"faas/worker"
)

// UpConfig is what `faas up` adds to the roles' own settings: the loopback
// ports the managers listen on (dbproxy.DefaultPort, jqproxy.DefaultPort).
type UpConfig struct {
	DBPort int `envconfig:"FAAS_DB_PORT" default:"27444" desc:"loopback bus port of the DB manager"`
	JQPort int `envconfig:"FAAS_JQ_PORT" default:"27445" desc:"loopback bus port of the JQ manager"`
}

// Config is the whole platform's configuration on one machine: each
// role's own settings, of which New overrides the addresses that tie the
// roles together.
type Config struct {
	Up       UpConfig
	DB       dbmanager.Config
	JQ       jqmanager.Config
	Frontend frontend.Config
	Scaler   scaler.Config
	// WorkerEnv is added to the workers' environment.
	WorkerEnv []string `ignored:"true"`
}

// LoadConfig reads every role's configuration from the environment.
func LoadConfig() (Config, error) {
	var c Config
	var err error
	if err = envconfig.Process("", &c.Up); err != nil {
		return Config{}, fmt.Errorf("up config: %w", err)
	}
	if c.DB, err = dbmanager.LoadConfig(); err != nil {
		return Config{}, err
	}
	if c.JQ, err = jqmanager.LoadConfig(); err != nil {
		return Config{}, err
	}
	if c.Frontend, err = frontend.LoadConfig(); err != nil {
		return Config{}, err
	}
	if c.Scaler, err = scaler.LoadConfig(); err != nil {
		return Config{}, err
	}
	// The workers are child processes that read this environment: a
	// setting they would refuse stops `faas up` here, rather than each
	// worker the scaler starts, one after another, while the rest runs.
	if _, err = worker.LoadConfig(); err != nil {
		return Config{}, err
	}
	return c, nil
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

// Platform is the whole platform on this machine: the managers, the
// frontend and the scaler in this process, each with its own sockets
// talking ZeroMQ as separate processes would, with their own keys and
// roles, over inproc rather than loopback TCP, and the workers as child
// processes started by the scaler's local backend, talking to the
// managers over loopback TCP.
type Platform struct {
	log          *slog.Logger
	db           *dbmanager.Manager
	jq           *jqmanager.Manager
	fe           *frontend.Server
	sc           *scaler.Scaler
	dbURL        string
	jqURL        string
	closeClients []func() error
}

// New builds the platform: it opens the store, binds every socket and the
// HTTP port, and dials the managers, so that an address in use fails here.
// Port 0 in cfg.Up binds a free port. On error, what was built is closed
// again.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Platform, err error) {
	p := &Platform{log: log}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	logOf := func(role string) *slog.Logger { return log.With("component", role) }
	keysOf, workerEnv, err := upKeys(log)
	if err != nil {
		return nil, err
	}
	server := func(role bus.Role) (wire.Security, error) { return keysOf(role).Server() }

	cfg.DB.Listen = loopback(cfg.Up.DBPort)
	// The roles in this process reach the managers over inproc, the
	// workers over loopback TCP.
	cfg.DB.Inproc, cfg.JQ.Inproc = inproc("dbmanager"), inproc("jqmanager")
	// One registry per role, as apart; the frontend's /metrics serves
	// them all, told apart by their component label.
	dbMetrics, jqMetrics, feMetrics, scMetrics := metrics.NewRegistry("dbmanager"), metrics.NewRegistry("jqmanager"), metrics.NewRegistry("frontend"), metrics.NewRegistry("scaler")
	cfg.DB.Metrics, cfg.JQ.Metrics, cfg.Frontend.Metrics, cfg.Scaler.Metrics = dbMetrics, jqMetrics, feMetrics, scMetrics
	// The workers' series come from the worker processes the scaler's
	// local backend starts below, each read on its own loopback port.
	var workers *scaler.Local
	workerSeries := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if workers == nil {
			return nil, nil
		}
		return workers.Gatherer().Gather()
	})
	cfg.Frontend.Scrape = prometheus.Gatherers{feMetrics.Gatherer(), jqMetrics.Gatherer(), dbMetrics.Gatherer(), scMetrics.Gatherer(), workerSeries}
	if cfg.DB.SecretKey == "" {
		// One machine, one operator: keep a generated key beside the
		// data it protects, so that secrets work out of the box.
		if cfg.DB.SecretKey, err = dbmanager.LoadOrCreateSecretKey(cfg.DB.DataDir); err != nil {
			return nil, err
		}
	}
	if cfg.DB.Bus, err = server(bus.DBManager); err != nil {
		return nil, err
	}
	if p.db, err = dbmanager.New(ctx, cfg.DB, logOf("dbmanager")); err != nil {
		return nil, err
	}
	p.dbURL = p.db.Endpoint()

	cfg.JQ.Listen, cfg.JQ.DBURL = loopback(cfg.Up.JQPort), cfg.DB.Inproc
	if cfg.JQ.Bus, err = server(bus.JQManager); err != nil {
		return nil, err
	}
	// Each component dials with its own role's key, as it would apart.
	jqStore, err := dialDB(keysOf(bus.JQManager), cfg.DB.Inproc, cfg.JQ.RequestTimeout, log)
	if err != nil {
		return nil, err
	}
	p.closeClients = append(p.closeClients, jqStore.Close)
	if p.jq, err = jqmanager.New(cfg.JQ, jqStore, logOf("jqmanager")); err != nil {
		return nil, err
	}
	p.jqURL = p.jq.Endpoint()

	store, queue, closeFE, err := dialManagers(keysOf(bus.Frontend), cfg.DB.Inproc, cfg.JQ.Inproc, cfg.JQ.RequestTimeout, log)
	if err != nil {
		return nil, err
	}
	p.closeClients = append(p.closeClients, func() error { closeFE(); return nil })
	scQueue, err := dialJQ(keysOf(bus.Scaler), cfg.JQ.Inproc, cfg.JQ.RequestTimeout, log)
	if err != nil {
		return nil, err
	}
	p.closeClients = append(p.closeClients, scQueue.Close)

	cfg.Frontend.DBURL, cfg.Frontend.JQURL = p.dbURL, p.jqURL
	if p.fe, err = frontend.New(cfg.Frontend, store, queue, logOf("frontend")); err != nil {
		return nil, err
	}

	cfg.Scaler.JQURL = p.jqURL
	workers, err = scaler.NewLocal(scaler.LocalConfig{
		// The workers are processes of their own: an address for
		// metrics set for `faas up` is not theirs to bind; each gets a
		// loopback port of its own instead.
		Env:          slices.Concat([]string{"DB_URL=" + p.dbURL, "JQ_URL=" + p.jqURL, "FAAS_METRICS_LISTEN=", "FAAS_METRICS_TOKEN="}, workerEnv, cfg.WorkerEnv),
		Grace:        cfg.Scaler.StopGrace,
		ServeMetrics: true,
	}, logOf("scaler"))
	if err != nil {
		return nil, err
	}
	if p.sc, err = scaler.New(cfg.Scaler, scQueue, workers, logOf("scaler")); err != nil {
		return nil, errors.Join(err, workers.Close())
	}
	return p, nil
}

// inprocs numbers the inproc endpoints of this process, which may run
// several platforms (tests) at once.
var inprocs atomic.Uint64

// inproc is a fresh inproc endpoint for the manager of role.
func inproc(role string) string {
	return fmt.Sprintf("inproc://%s-%d", role, inprocs.Add(1))
}

// loopback is the ZeroMQ endpoint of port on loopback; port 0 is any free
// one.
func loopback(port int) string {
	if port == 0 {
		return "tcp://127.0.0.1:*"
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

// URL is the REST API's base URL.
func (p *Platform) URL() string { return "http://" + p.fe.Addr() }

// abort releases what a failed New built. The components have no Close of
// their own: their Run, with a context already ended, returns after their
// cleanup.
func (p *Platform) abort() {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if p.fe != nil {
		p.fe.Run(ended)
	}
	if p.jq != nil {
		p.jq.Run(ended)
	}
	if p.db != nil {
		p.db.Run(ended)
	}
	p.closeProxies()
}

// closeProxies closes the bus clients, once nothing uses them.
func (p *Platform) closeProxies() {
	for i := len(p.closeClients) - 1; i >= 0; i-- {
		p.closeClients[i]()
	}
}

// Run runs the platform until ctx ends or a manager fails, and returns
// once every part has stopped and every socket is closed.
func (p *Platform) Run(ctx context.Context) error {
	defer p.closeProxies()
	p.log.Info("platform up", "http", p.fe.Addr(), "dbmanager", p.dbURL, "jqmanager", p.jqURL)
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
		managersErr = runAll(managersCtx, p.db.Run, p.jq.Run)
		stopEdge()
	}()
	edgeErr := runAll(edgeCtx, p.fe.Run, p.sc.Run)
	stopManagers()
	<-managersDone
	return errors.Join(edgeErr, managersErr)
}

// runUp is `faas up`.
func runUp(ctx context.Context, log *slog.Logger) error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	p, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return p.Run(ctx)
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
