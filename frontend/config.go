package frontend

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"

	"faas/internal/metrics"
	"faas/proxies/secretfile"
)

// DefaultPort is the REST API's port unless PORT says otherwise; a test
// holds the struct tag to it.
const DefaultPort = 8080

// Config is the frontend's configuration. The names without a FAAS_ prefix
// are the reference deployment's, kept so its manifests keep working.
// DBURL and JQURL are for the process that dials the managers' proxies and
// hands them to New; the server itself only sees the interfaces.
type Config struct {
	// Port is the HTTP port, on all interfaces; DefaultPort by default.
	Port int `envconfig:"PORT" default:"8080" desc:"HTTP port, on all interfaces"`
	// Listen is a host:port that overrides Port, for binding to one
	// interface or to a port chosen by the system ("127.0.0.1:0").
	Listen string `envconfig:"FAAS_HTTP_LISTEN" desc:"host:port to bind, overrides PORT"`
	// DBURL is the DB manager's ZeroMQ endpoint.
	DBURL string `envconfig:"DB_URL" default:"tcp://127.0.0.1:27444" desc:"DB manager's ZeroMQ endpoint"`
	// JQURL is the JQ manager's ZeroMQ endpoint.
	JQURL string `envconfig:"JQ_URL" default:"tcp://127.0.0.1:27445" desc:"JQ manager's ZeroMQ endpoint"`
	// Auth is "on" (bearer tokens required) or "off" (an open API for
	// classroom demos, as the reference project was).
	Auth string `envconfig:"FAAS_AUTH" default:"on" desc:"on (bearer tokens required) or off (open API for demos)"`
	// RequestTimeout bounds the calls one request makes to the managers,
	// on top of any ?wait the client asked for.
	RequestTimeout time.Duration `envconfig:"FAAS_REQUEST_TIMEOUT" default:"3s" desc:"bound on the manager calls of one request, on top of ?wait"`
	// RateLimit is the requests per second each user may sustain; 0 turns
	// the limit off. Registrations, which carry no token, are counted by
	// client address instead.
	RateLimit float64 `envconfig:"FAAS_RATE_LIMIT" default:"200" desc:"requests per second each user may sustain; 0 is no limit"`
	// RateBurst is how many requests a user may send at once, above the
	// sustained rate, before being told to slow down.
	RateBurst int `envconfig:"FAAS_RATE_BURST" default:"400" desc:"requests a user may send at once above the rate"`

	// RateLimitPerAddr is the requests per second one client address may
	// sustain, counted before authentication, so that requests with bad
	// tokens and unauthenticated probes cost their sender too; 0 turns it
	// off. The burst is twice the rate. It is far above RateLimit because
	// a classroom shares one address behind its NAT.
	RateLimitPerAddr float64 `envconfig:"FAAS_RATE_LIMIT_PER_ADDR" default:"1000" desc:"requests per second per client address; 0 is no limit"`
	// TokenLookupsPerAddr is how many tokens that are in no cache one
	// client address may have looked up in the store per second (burst
	// twice that); 0 turns the limit off. A user's token is looked up
	// once per cache lifetime, so only guessing runs into it.
	TokenLookupsPerAddr float64 `envconfig:"FAAS_TOKEN_LOOKUPS_PER_ADDR" default:"20" desc:"unknown-token lookups per second per client address; 0 is no limit"`

	// TrustedProxies are the reverse proxies in front of the frontend
	// (CIDR prefixes or addresses, comma-separated), such as Kumori's HTTP
	// inbound: the client address of a request they forward is taken from
	// X-Forwarded-For. Empty: the connection's peer is the client.
	TrustedProxies []string `envconfig:"FAAS_TRUSTED_PROXIES" desc:"comma-separated CIDRs whose X-Forwarded-For is believed"`

	// Registration is "open" (anyone may register) or "closed" (only a
	// request bearing AdminToken may).
	Registration string `envconfig:"FAAS_REGISTRATION" default:"open" desc:"open, or closed (only the operator's token registers)"`
	// AdminToken is the operator's bearer token: it reads /stats and
	// /admin/failures and registers users when registration is closed.
	// Empty: no operator access. LoadConfig reads it from AdminTokenFile
	// when that is set instead, as Compose and Kubernetes secrets hand it
	// over.
	AdminToken     string `envconfig:"FAAS_ADMIN_TOKEN" desc:"operator's bearer token for /stats, /admin/failures and closed registration"`
	AdminTokenFile string `envconfig:"FAAS_ADMIN_TOKEN_FILE" desc:"file holding FAAS_ADMIN_TOKEN"`
	// MaxRegistrationsPerAddrHour is how many registrations one client
	// address may attempt per hour (a bucket of that many, refilled over
	// an hour); 0 means no limit. The operator's are not counted.
	MaxRegistrationsPerAddrHour int `envconfig:"FAAS_MAX_REGISTRATIONS_PER_ADDR_HOUR" default:"30" desc:"registrations per client address per hour; 0 is no limit"`
	// MaxUsers is how many users the platform holds; 0 means no limit.
	MaxUsers int `envconfig:"FAAS_MAX_USERS" default:"1000" desc:"most users the platform holds; 0 is no limit"`

	// The per-user quotas; 0 means no limit.
	MaxFunctionsPerUser   int   `envconfig:"FAAS_MAX_FUNCTIONS_PER_USER" default:"100" desc:"most functions per user; 0 is no limit"`
	MaxSourceBytesPerUser int64 `envconfig:"FAAS_MAX_SOURCE_BYTES_PER_USER" default:"4194304" desc:"most source bytes per user; 0 is no limit"`
	// MaxJobBytesPerUser bounds the arguments, results and logs of a
	// user's retained jobs; it is checked when a job is submitted.
	MaxJobBytesPerUser int64 `envconfig:"FAAS_MAX_JOB_BYTES_PER_USER" default:"67108864" desc:"most bytes of retained job arguments, results and logs per user; 0 is no limit"`
	// SandboxMaxMemoryMB is the most memory a function may ask for with
	// ?memory; 0 leaves only the hard bound of 4096. The workers read the
	// same variable for their memory budget.
	SandboxMaxMemoryMB int `envconfig:"FAAS_SANDBOX_MAX_MEMORY_MB" default:"1024" desc:"most memory in MB a function may ask for"`

	// MaxWaitsPerUser and MaxWaits bound the requests waiting for a job
	// (?wait) at once, per user and in all; past them a request is refused
	// with 429. A wait costs a channel and a goroutine, no socket; the caps
	// keep one user from taking all of this process's memory and the
	// others' share. 0 takes the default.
	MaxWaitsPerUser int `envconfig:"FAAS_MAX_WAITS_PER_USER" default:"100" desc:"most requests of one user waiting for a job at once (?wait)"`
	MaxWaits        int `envconfig:"FAAS_MAX_WAITS" default:"10000" desc:"most requests waiting for a job at once (?wait), all users"`

	// StatusCacheBytes bounds the finished jobs each frontend remembers
	// to answer polling clients without the Store (status.go), and
	// StatusCacheTTL how long it remembers one. 0 takes the default.
	StatusCacheBytes int64         `envconfig:"FAAS_STATUS_CACHE_BYTES" default:"33554432" desc:"bytes of finished jobs remembered to answer status reads without the store"`
	StatusCacheTTL   time.Duration `envconfig:"FAAS_STATUS_CACHE_TTL" default:"1m" desc:"how long a finished job is remembered for status reads"`

	// HookRate is the requests per second one webhook may sustain, in
	// bursts of twice that: a leaked URL costs its owner at most this.
	HookRate float64 `envconfig:"FAAS_HOOK_RATE" default:"10" desc:"requests per second each webhook may sustain (bursts of twice that); 0 is no limit"`

	// MetricsToken, when set, is the bearer token /metrics asks for.
	MetricsToken string `envconfig:"FAAS_METRICS_TOKEN" desc:"bearer token /metrics asks for; empty leaves it open"`
	// Metrics is where the server registers its series and Scrape what
	// its /metrics serves: `faas up` serves every role's registry there.
	// Metrics nil: a registry of the frontend's own, which Scrape, if nil
	// too, serves.
	Metrics prometheus.Registerer `ignored:"true"`
	Scrape  prometheus.Gatherer   `ignored:"true"`

	// tokenTTL and tokenMaxAge are the token cache's bounds (auth.go);
	// zero takes tokenTTL and tokenMaxAge. Only tests shorten them.
	tokenTTL, tokenMaxAge time.Duration
}

// The defaults of the wait caps, for a Config built in code.
const (
	defaultMaxWaitsPerUser = 100
	defaultMaxWaits        = 10000
)

// The defaults of the status cache, for a Config built in code.
const (
	defaultStatusCacheBytes = 32 << 20
	defaultStatusCacheTTL   = time.Minute
)

// minAdminTokenLen keeps the operator's token out of guessing range.
const minAdminTokenLen = 16

// LoadConfig reads the configuration from the environment and validates
// it, so a typo in a setting stops the process at start.
func LoadConfig() (Config, error) {
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return Config{}, fmt.Errorf("frontend config: %w", err)
	}
	var err error
	if cfg.AdminToken, err = secretfile.Resolve("FAAS_ADMIN_TOKEN", cfg.AdminToken, cfg.AdminTokenFile); err != nil {
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
	for _, r := range []struct {
		name string
		v    float64
	}{{"FAAS_RATE_LIMIT_PER_ADDR", c.RateLimitPerAddr}, {"FAAS_TOKEN_LOOKUPS_PER_ADDR", c.TokenLookupsPerAddr}, {"FAAS_HOOK_RATE", c.HookRate}} {
		if !(r.v >= 0) || math.IsInf(r.v, 1) {
			return fmt.Errorf("frontend config: %s is %v, want a finite number >= 0 (0 turns it off)", r.name, r.v)
		}
	}
	if _, err := c.proxies(); err != nil {
		return err
	}
	if c.Registration != "" && c.Registration != "open" && c.Registration != "closed" {
		return fmt.Errorf("frontend config: FAAS_REGISTRATION is %q, want open or closed", c.Registration)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminTokenLen {
		return fmt.Errorf("frontend config: FAAS_ADMIN_TOKEN has %d characters, want at least %d", len(c.AdminToken), minAdminTokenLen)
	}
	if c.Registration == "closed" && c.AdminToken == "" {
		return errors.New("frontend config: FAAS_REGISTRATION is closed but FAAS_ADMIN_TOKEN is empty, so no one could register")
	}
	for _, q := range []struct {
		name string
		v    int64
	}{
		{"FAAS_MAX_REGISTRATIONS_PER_ADDR_HOUR", int64(c.MaxRegistrationsPerAddrHour)},
		{"FAAS_MAX_USERS", int64(c.MaxUsers)},
		{"FAAS_MAX_FUNCTIONS_PER_USER", int64(c.MaxFunctionsPerUser)},
		{"FAAS_MAX_SOURCE_BYTES_PER_USER", c.MaxSourceBytesPerUser},
		{"FAAS_MAX_JOB_BYTES_PER_USER", c.MaxJobBytesPerUser},
	} {
		if q.v < 0 {
			return fmt.Errorf("frontend config: %s is %d, want >= 0 (0 means no limit)", q.name, q.v)
		}
	}
	if c.SandboxMaxMemoryMB != 0 && (c.SandboxMaxMemoryMB < minMemoryMB || c.SandboxMaxMemoryMB > maxMemoryMB) {
		return fmt.Errorf("frontend config: FAAS_SANDBOX_MAX_MEMORY_MB is %d, want %d-%d (0 for no ceiling below %d)",
			c.SandboxMaxMemoryMB, minMemoryMB, maxMemoryMB, maxMemoryMB)
	}
	if c.MaxWaitsPerUser < 0 {
		return fmt.Errorf("frontend config: FAAS_MAX_WAITS_PER_USER is %d, want >= 1 (0 takes the default, %d)", c.MaxWaitsPerUser, defaultMaxWaitsPerUser)
	}
	if c.StatusCacheBytes < 0 {
		return fmt.Errorf("frontend config: FAAS_STATUS_CACHE_BYTES is %d, want >= 1 (0 takes the default, %d)", c.StatusCacheBytes, defaultStatusCacheBytes)
	}
	if c.StatusCacheTTL < 0 {
		return fmt.Errorf("frontend config: FAAS_STATUS_CACHE_TTL is %v, want > 0 (0 takes the default, %v)", c.StatusCacheTTL, defaultStatusCacheTTL)
	}
	if c.MaxWaits < 0 {
		return fmt.Errorf("frontend config: FAAS_MAX_WAITS is %d, want >= 1 (0 takes the default, %d)", c.MaxWaits, defaultMaxWaits)
	}
	if c.Listen == "" && (c.Port < 0 || c.Port > 65535) {
		return fmt.Errorf("frontend config: PORT is %d, want 0-65535", c.Port)
	}
	return nil
}

// withDefaults fills in the settings left at 0 that mean a default.
func (c Config) withDefaults() Config {
	if c.MaxWaitsPerUser == 0 {
		c.MaxWaitsPerUser = defaultMaxWaitsPerUser
	}
	if c.MaxWaits == 0 {
		c.MaxWaits = defaultMaxWaits
	}
	if c.StatusCacheBytes == 0 {
		c.StatusCacheBytes = defaultStatusCacheBytes
	}
	if c.StatusCacheTTL == 0 {
		c.StatusCacheTTL = defaultStatusCacheTTL
	}
	if c.tokenTTL == 0 {
		c.tokenTTL = tokenTTL
	}
	if c.tokenMaxAge == 0 {
		c.tokenMaxAge = tokenMaxAge
	}
	if c.Metrics == nil {
		reg := metrics.NewRegistry("frontend")
		c.Metrics = reg
		if c.Scrape == nil {
			c.Scrape = reg.Gatherer()
		}
	}
	if c.Scrape == nil {
		// The caller keeps the series it gave the server for itself.
		c.Scrape = prometheus.Gatherers{}
	}
	return c
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

// registrationClosed reports whether only the operator may create users.
func (c Config) registrationClosed() bool { return c.Registration == "closed" }

// memoryCeiling is the most memory a function may ask for.
func (c Config) memoryCeiling() int {
	if c.SandboxMaxMemoryMB > 0 {
		return c.SandboxMaxMemoryMB
	}
	return maxMemoryMB
}

// proxies parses TrustedProxies.
func (c Config) proxies() ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, v := range c.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("frontend config: FAAS_TRUSTED_PROXIES holds %q, want CIDR prefixes (10.0.0.0/8) or addresses", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}
