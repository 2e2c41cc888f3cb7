// Package scaler keeps the number of workers in step with the job queue's
// backlog. Every few seconds it reads the JQ manager's statistics, asks a
// pure policy how many workers would drain the backlog in time, and tells a
// backend (worker processes on this machine, or a Kumori deployment) to run
// that many.
package scaler

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"

	"faas/proxies/faas"
)

// The backends a Config may name.
const (
	BackendLocal  = "local"
	BackendKumori = "kumori"
)

// Config is the scaler's settings, read from the environment.
type Config struct {
	// JQURL is the JQ manager's ZeroMQ endpoint; the local backend also
	// hands it to the workers it starts so both talk to the same queue.
	JQURL   string `envconfig:"JQ_URL" default:"tcp://127.0.0.1:27445" desc:"JQ manager's ZeroMQ endpoint, also handed to local workers"`
	Backend string `envconfig:"FAAS_SCALER_BACKEND" default:"local" desc:"local (worker processes) or kumori"`

	MinWorkers int `envconfig:"FAAS_MIN_WORKERS" default:"1" desc:"fewest workers"`
	MaxWorkers int `envconfig:"FAAS_MAX_WORKERS" default:"8" desc:"most workers"`
	// Interval is the time between two looks at the queue.
	Interval time.Duration `envconfig:"FAAS_SCALER_INTERVAL" default:"2s" desc:"time between two looks at the queue"`
	// DrainTarget is how soon the current backlog should be worked off.
	DrainTarget time.Duration `envconfig:"FAAS_SCALER_DRAIN_TARGET" default:"10s" desc:"how soon the backlog should be worked off"`
	// Cooldown is how long fewer workers must have sufficed before the
	// scaler removes any, and between two steps down.
	Cooldown time.Duration `envconfig:"FAAS_SCALER_COOLDOWN" default:"30s" desc:"how long fewer workers must suffice before removing any"`
	// WorkerConcurrency is how many jobs one worker runs at once. It must
	// match the workers' own setting (same variable), or the policy
	// misjudges their capacity. Unset means faas.SlotsPerCPU per CPU.
	WorkerConcurrency int `envconfig:"FAAS_WORKER_CONCURRENCY" desc:"jobs one worker runs at once (as the workers' setting); unset is 8 per CPU"`
	// StopGrace is how long a worker asked to stop may finish its job
	// before it is killed (local backend).
	StopGrace time.Duration `envconfig:"FAAS_SCALER_STOP_GRACE" default:"10s" desc:"how long a stopping local worker may finish before it is killed"`
	// WorkerEnv is added to the environment of the workers the local
	// backend starts: their bus key, which is not the scaler's own.
	WorkerEnv []string `ignored:"true"`
	// Metrics is where the scaler registers its series; nil keeps them
	// to itself.
	Metrics prometheus.Registerer `ignored:"true"`

	// KumoriDeployment is the deployment name as kumorictl knows it
	// (domain/name).
	KumoriDeployment string `envconfig:"FAAS_KUMORI_DEPLOYMENT" desc:"Kumori deployment name (domain/name)"`
	// KumoriDir is the directory of the CUE deployment package; the worker
	// count lives in its num_workers subpackage.
	KumoriDir string `envconfig:"FAAS_KUMORI_DIR" default:"deploy" desc:"directory of the CUE deployment package"`
	// KumoriCredentials is a file with the user on its first line and the
	// password on its second, as in the reference deployment. It is read
	// only when KumoriUser and KumoriPassword are not both set.
	KumoriCredentials string `envconfig:"KUMORI_CREDENTIALS" default:"KUMORI_CREDENTIALS" desc:"file with the Kumori user and password, one per line"`
	KumoriUser        string `envconfig:"KUMORI_USER" desc:"Kumori user"`
	KumoriPassword    Secret `envconfig:"KUMORI_PASSWORD" desc:"Kumori password"`
}

// Secret is a string that must not be printed: fmt and slog show it
// redacted, so a Config can be logged whole.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string { return redacted }

// GoString keeps %#v from printing the secret.
func (Secret) GoString() string { return redacted }

// LogValue keeps slog from printing the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// LoadConfig reads the Config from the environment and validates it.
func LoadConfig() (Config, error) {
	// envconfig leaves a field without a default tag alone when its
	// variable is unset, so defaults computed at run time go in first.
	cfg := Config{WorkerConcurrency: runtime.NumCPU() * faas.SlotsPerCPU}
	if err := envconfig.Process("", &cfg); err != nil {
		return Config{}, fmt.Errorf("scaler config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every setting that cannot work, so an operator fixes
// them in one go rather than one restart at a time.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.JQURL == "" {
		bad("JQ_URL is empty")
	}
	switch c.Backend {
	case BackendLocal:
	case BackendKumori:
		if c.KumoriDeployment == "" {
			bad("FAAS_KUMORI_DEPLOYMENT is required with the kumori backend")
		}
		if c.KumoriDir == "" {
			bad("FAAS_KUMORI_DIR is required with the kumori backend")
		}
	default:
		bad("FAAS_SCALER_BACKEND %q is not %s or %s", c.Backend, BackendLocal, BackendKumori)
	}
	if c.MinWorkers < 0 {
		bad("FAAS_MIN_WORKERS %d is negative", c.MinWorkers)
	}
	if c.MaxWorkers < 1 {
		bad("FAAS_MAX_WORKERS %d is below 1", c.MaxWorkers)
	}
	if c.MinWorkers > c.MaxWorkers {
		bad("FAAS_MIN_WORKERS %d exceeds FAAS_MAX_WORKERS %d", c.MinWorkers, c.MaxWorkers)
	}
	if c.Interval <= 0 {
		bad("FAAS_SCALER_INTERVAL %s is not positive", c.Interval)
	}
	if c.DrainTarget <= 0 {
		bad("FAAS_SCALER_DRAIN_TARGET %s is not positive", c.DrainTarget)
	}
	if c.Cooldown < 0 {
		bad("FAAS_SCALER_COOLDOWN %s is negative", c.Cooldown)
	}
	if c.WorkerConcurrency < 1 {
		bad("FAAS_WORKER_CONCURRENCY %d is below 1", c.WorkerConcurrency)
	}
	if c.StopGrace < 0 {
		bad("FAAS_SCALER_STOP_GRACE %s is negative", c.StopGrace)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scaler config: %w", err)
	}
	return nil
}

// policy is the scaling policy the Config describes.
func (c Config) policy() Policy {
	return Policy{
		Min:         c.MinWorkers,
		Max:         c.MaxWorkers,
		DrainTarget: c.DrainTarget,
		Cooldown:    c.Cooldown,
		Concurrency: c.WorkerConcurrency,
	}
}
