package frontend

import (
	"fmt"
	"math"
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
	// RateLimit is the requests per second each user may sustain; 0 turns
	// the limit off. Registrations, which carry no token, are counted by
	// client address instead.
	RateLimit float64 `envconfig:"FAAS_RATE_LIMIT" default:"200"`
	// RateBurst is how many requests a user may send at once, above the
	// sustained rate, before being told to slow down.
	RateBurst int `envconfig:"FAAS_RATE_BURST" default:"400"`
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
	// NaN fails every comparison, hence the negated form.
	if !(c.RateLimit >= 0) || math.IsInf(c.RateLimit, 1) {
		return fmt.Errorf("frontend config: FAAS_RATE_LIMIT is %v, want a finite number >= 0 (0 turns it off)", c.RateLimit)
	}
	if c.RateBurst < 0 || c.RateBurst == 0 && c.RateLimit > 0 {
		// A bucket that holds no token would refuse every request.
		return fmt.Errorf("frontend config: FAAS_RATE_BURST is %d, want >= 1 while FAAS_RATE_LIMIT is on", c.RateBurst)
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

// rateLimitOn reports whether requests are rate limited.
func (c Config) rateLimitOn() bool { return c.RateLimit > 0 }

// authOn reports whether requests must carry a bearer token.
func (c Config) authOn() bool { return c.Auth != "off" }
