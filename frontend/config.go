package frontend

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the frontend's configuration. The names without a FAAS_ prefix
// are the reference deployment's, kept so its manifests keep working.
// DBURL and JQURL are for the process that dials the managers' proxies and
// hands them to New; the server itself only sees the interfaces.
type Config struct {
	// Port is the HTTP port, on all interfaces.
	Port int `envconfig:"PORT" default:"8080"`
	// Listen is a host:port that overrides Port, for binding to one
	// interface or to a port chosen by the system ("127.0.0.1:0").
	Listen string `envconfig:"FAAS_HTTP_LISTEN"`
	// DBURL is the DB manager's ZeroMQ endpoint.
	DBURL string `envconfig:"DB_URL" default:"tcp://127.0.0.1:27444"`
	// JQURL is the JQ manager's ZeroMQ endpoint.
	JQURL string `envconfig:"JQ_URL" default:"tcp://127.0.0.1:27445"`
	// Auth is "on" (bearer tokens required) or "off" (an open API for
	// classroom demos, as the reference project was).
	Auth string `envconfig:"FAAS_AUTH" default:"on"`
	// RequestTimeout bounds the calls one request makes to the managers,
	// on top of any ?wait the client asked for.
	RequestTimeout time.Duration `envconfig:"FAAS_REQUEST_TIMEOUT" default:"3s"`
}

// ConfigFromEnv reads the configuration from the environment and validates
// it, so a typo in a setting stops the process at start.
func ConfigFromEnv() (Config, error) {
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return Config{}, fmt.Errorf("frontend config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Auth != "on" && c.Auth != "off" {
		return fmt.Errorf("frontend config: FAAS_AUTH is %q, want on or off", c.Auth)
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("frontend config: FAAS_REQUEST_TIMEOUT is %v, want > 0", c.RequestTimeout)
	}
	if c.Listen == "" && (c.Port < 0 || c.Port > 65535) {
		return fmt.Errorf("frontend config: PORT is %d, want 0-65535", c.Port)
	}
	return nil
}

// addr is the address to listen on.
func (c Config) addr() string {
	if c.Listen != "" {
		return c.Listen
	}
	return net.JoinHostPort("", strconv.Itoa(c.Port))
}

// authOn reports whether requests must carry a bearer token.
func (c Config) authOn() bool { return c.Auth != "off" }
