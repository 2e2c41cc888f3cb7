// Package metrics gives each role of the platform its own Prometheus
// registry and serves registries over HTTP. Every series a role registers
// carries a component label naming the role, so that `faas up`, which
// serves all roles' registries from one endpoint, and separate processes
// scraped one by one give the same series.
package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is where a standalone role serves its metrics.
type Config struct {
	// Listen is the host:port of the role's /metrics; empty serves none.
	// The frontend serves its registry on its API port whatever this says.
	Listen string `envconfig:"FAAS_METRICS_LISTEN" desc:"host:port where this role serves /metrics; empty serves none (the frontend serves it on its API port anyway)"`
	// Token, when set, is the bearer token a scraper must present.
	Token string `envconfig:"FAAS_METRICS_TOKEN" desc:"bearer token /metrics asks for; empty leaves it open"`
}

// LoadConfig reads the Config from the environment.
func LoadConfig() (Config, error) {
	var c Config
	err := envconfig.Process("", &c)
	return c, err
}

// Registry is one role's metrics.
type Registry struct {
	reg *prometheus.Registry
	// Registerer registers a collector with the role's component label.
	prometheus.Registerer
}

// NewRegistry returns a registry for the role named component, holding
// already the Go runtime and process collectors and faas_build_info.
func NewRegistry(component string) *Registry {
	reg := prometheus.NewRegistry()
	r := &Registry{
		reg:        reg,
		Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"component": component}, reg),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	return r
}

// Gatherer is what a scrape of the registry reads.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// buildInfo is a gauge of 1 whose labels say which build runs, so that a
// dashboard can tell a rollout from a regression.
func buildInfo() prometheus.Collector {
	version, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "faas_build_info",
		Help:        "A constant 1 labelled with the running build's version and revision.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision},
	})
	g.Set(1)
	return g
}

// Handler serves what g gathers in the Prometheus text format, to
// scrapers bearing token, or to anyone when token is empty.
func Handler(g prometheus.Gatherer, token string) http.Handler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Authorized(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token set in FAAS_METRICS_TOKEN", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Authorized reports whether r may read the metrics: always when token
// is empty, otherwise when it bears token. The comparison takes the same
// time wherever the tokens differ.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// Server serves one registry on its own port, for the roles that have no
// HTTP server of their own.
type Server struct {
	ln        net.Listener
	srv       *http.Server
	log       *slog.Logger
	protected bool
}

// Listen binds cfg.Listen, so that an address in use fails at start. It
// returns a nil Server, whose Run only waits, when cfg.Listen is empty.
func Listen(cfg Config, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on FAAS_METRICS_LISTEN=%s: %w", cfg.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(g, cfg.Token))
	return &Server{
		ln:        ln,
		log:       log,
		protected: cfg.Token != "",
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

// Addr is the bound address, with the port the system chose for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within a second: a scrape
// cut short is retried by the next one.
func (s *Server) Run(ctx context.Context) error {
	if s == nil {
		<-ctx.Done()
		return nil
	}
	s.log.Info("serving metrics", "addr", s.Addr(), "token_required", s.protected)
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(grace); err != nil {
		s.srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", err)
	}
	return nil
}
