// Package dbmanager is the DB manager: the only component that touches the
// database. It opens a faas.Store (embedded SQLite by default, MongoDB when
// DB_URL says so) and serves it over ZeroMQ with the dbproxy protocol, to
// which every other component talks.
package dbmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"

	"faas/dbmanager/mongo"
	"faas/dbmanager/sqlite"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/secretfile"
	"faas/proxies/wire"
)

// Config is the DB manager's settings, read from the environment. DB_URL
// and PORT are the reference deployment's names.
type Config struct {
	// DBURL selects the database: empty for the embedded SQLite store,
	// mongodb:// or mongodb+srv:// for MongoDB.
	DBURL string `envconfig:"DB_URL" desc:"database: empty for embedded SQLite, or a mongodb:// URL"`
	// Port is the port bound on loopback (dbproxy.DefaultPort).
	Port int `envconfig:"PORT" default:"27444" desc:"bus port bound on loopback"`
	// Listen, if set, is the full ZeroMQ bind endpoint and overrides Port:
	// tcp://*:27444 serves other hosts.
	Listen string `envconfig:"FAAS_LISTEN" desc:"full ZeroMQ bind endpoint, overrides PORT (tcp://*:27444 serves other hosts)"`
	// DataDir holds the embedded database.
	DataDir string `envconfig:"FAAS_DATA_DIR" default:"data" desc:"directory of the embedded database"`
	// Retention is how long a finished job is kept before it is purged;
	// what it was billed is kept for good. New takes zero as
	// DefaultRetention, so that a Config written in code need not set it.
	Retention time.Duration `envconfig:"FAAS_RETENTION" default:"168h" desc:"how long a finished job is kept before it is purged"`
	// SecretKey encrypts functions' secrets at rest: 32 bytes in base64.
	// Without it the manager refuses to store secrets. `faas up` takes it
	// from its data directory, generating it there on first start.
	// LoadConfig reads it from SecretKeyFile when that is set instead, as
	// Compose and Kubernetes secrets hand it over.
	SecretKey     string `envconfig:"FAAS_SECRET_KEY" desc:"32 bytes in base64 that encrypt functions' secrets at rest"`
	SecretKeyFile string `envconfig:"FAAS_SECRET_KEY_FILE" desc:"file holding FAAS_SECRET_KEY"`
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
}

// DefaultRetention is FAAS_RETENTION's default: a week.
const DefaultRetention = 7 * 24 * time.Hour

// LoadConfig reads the Config from the environment and checks it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("dbmanager config: %w", err)
	}
	var err error
	if c.SecretKey, err = secretfile.Resolve("FAAS_SECRET_KEY", c.SecretKey, c.SecretKeyFile); err != nil {
		return c, fmt.Errorf("dbmanager config: %w", err)
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work, so that a typo
// stops the process at start.
func (c Config) Validate() error {
	switch {
	case c.DBURL != "" && !isMongoURL(c.DBURL):
		return fmt.Errorf("dbmanager config: DB_URL %s is not a mongodb:// or mongodb+srv:// URL (leave it empty for the embedded database)", Redact(c.DBURL))
	case c.DBURL == "" && c.DataDir == "":
		return errors.New("dbmanager config: FAAS_DATA_DIR is empty")
	case c.Listen == "" && (c.Port < 0 || c.Port > 65535):
		return fmt.Errorf("dbmanager config: PORT is %d, want 0-65535", c.Port)
	case c.Retention <= 0:
		return fmt.Errorf("dbmanager config: FAAS_RETENTION is %s, want more than 0", c.Retention)
	case c.SecretKey != "":
		_, err := parseSecretKey(c.SecretKey)
		return err
	}
	return nil
}

// purgeInterval is how often the manager purges: a tenth of the
// retention, so a job outlives it by at most 10%, but at least hourly so
// that each purge stays small, and at most every millisecond.
func (c Config) purgeInterval() time.Duration {
	return max(min(c.Retention/10, time.Hour), time.Millisecond)
}

// Endpoint is where the manager binds: loopback unless Listen says
// otherwise, so that a manager is never exposed by default.
func (c Config) Endpoint() string {
	if c.Listen != "" {
		return c.Listen
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", c.Port)
}

func isMongoURL(u string) bool {
	return strings.HasPrefix(u, "mongodb://") || strings.HasPrefix(u, "mongodb+srv://")
}

// Redact hides the password in a database URL, so that it can be logged.
// The password runs from the first ':' of the user information to the
// last '@', which also covers a password that was not percent-encoded and
// holds '/', '?' or '@' (the driver accepts some of those). A URL with no
// user information but an '@' in its options after a port loses a little
// more than the password: wrong, but on the side of hiding.
func Redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword || strings.ContainsAny(user, "/?") {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// store is a faas.Store the manager owns and closes.
type store interface {
	faas.Store
	Close() error
}

// Manager serves a Store over ZeroMQ and purges the jobs it no longer
// needs to keep.
type Manager struct {
	store  *sealed
	server *wire.Server
	log    *slog.Logger
	cfg    Config
}

// New opens the store and binds the socket; an address in use fails here,
// with the store closed again.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Manager, error) {
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var key []byte
	if cfg.SecretKey != "" {
		key, _ = parseSecretKey(cfg.SecretKey) // checked by Validate
	} else {
		log.Warn("FAAS_SECRET_KEY is not set: functions cannot have secrets")
	}
	raw, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s, err := newSealed(raw, key)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("dbmanager: %w", err), raw.Close())
	}
	server, err := wire.Listen(cfg.Endpoint(), instrument(cfg, raw, dbproxy.NewMux(s)), log, wire.WithSecurity(cfg.Bus), wire.AlsoBind(cfg.Inproc))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("dbmanager: %w", err), s.Close())
	}
	log.Info("serving", "endpoint", server.Endpoint())
	return &Manager{store: s, server: server, log: log, cfg: cfg}, nil
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store, error) {
	if cfg.DBURL == "" {
		s, err := sqlite.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("dbmanager: open embedded database: %w", err)
		}
		log.Info("opened embedded database", "dir", cfg.DataDir)
		return s, nil
	}
	s, err := mongo.Open(ctx, cfg.DBURL)
	if err != nil {
		return nil, fmt.Errorf("dbmanager: open %s: %w", Redact(cfg.DBURL), err)
	}
	log.Info("opened mongodb", "url", Redact(cfg.DBURL))
	return s, nil
}

// Endpoint is the bound address, with the real port.
func (m *Manager) Endpoint() string { return m.server.Endpoint() }

// Store is the store the manager serves, for in-process callers.
func (m *Manager) Store() faas.Store { return m.store }

// Run serves until ctx ends, then closes the store once in-flight requests
// are answered and the purge has stopped. It purges at once, then every
// purge interval.
func (m *Manager) Run(ctx context.Context) error {
	var purging sync.WaitGroup
	purging.Go(func() { m.purgeEvery(ctx, m.cfg.purgeInterval()) })
	err := m.server.Run(ctx)
	purging.Wait()
	if cerr := m.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("dbmanager: close store: %w", cerr))
	}
	m.log.Info("stopped")
	return err
}

// purgeEvery purges now and then every interval until ctx ends. A failed
// purge is logged and tried again at the next tick: the jobs wait.
func (m *Manager) purgeEvery(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		m.purge(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *Manager) purge(ctx context.Context) {
	cutoff := time.Now().Add(-m.cfg.Retention)
	n, err := m.store.PurgeJobs(ctx, cutoff)
	switch {
	case ctx.Err() != nil:
		// Shutting down: the next start purges what is left.
	case err != nil:
		m.log.Error("purge finished jobs", "err", err, "before", cutoff)
	case n > 0:
		m.log.Info("purged finished jobs", "jobs", n, "before", cutoff)
	default:
		m.log.Debug("purged finished jobs", "jobs", 0, "before", cutoff)
	}
}
