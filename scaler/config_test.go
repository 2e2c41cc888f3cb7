package scaler

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// validConfig is a Config that passes Validate, for tests to spoil.
func validConfig() Config {
	return Config{
		JQURL: "tcp://127.0.0.1:27445", Backend: BackendLocal,
		MinWorkers: 1, MaxWorkers: 8, Interval: 2 * time.Second,
		DrainTarget: 10 * time.Second, Cooldown: 30 * time.Second,
		WorkerConcurrency: 2, StopGrace: 10 * time.Second,
		KumoriDir: "deploy", KumoriCredentials: "KUMORI_CREDENTIALS",
	}
}

// unsetEnv unsets name for the test; t.Setenv restores it afterwards.
func unsetEnv(t testing.TB, name string) {
	t.Helper()
	t.Setenv(name, "")
	require.NoError(t, os.Unsetenv(name))
}

// TestLoadConfigDefaults sets the environment, so it cannot be parallel.
func TestLoadConfigDefaults(t *testing.T) {
	for _, name := range []string{"JQ_URL", "FAAS_SCALER_BACKEND", "FAAS_MIN_WORKERS", "FAAS_MAX_WORKERS",
		"FAAS_SCALER_INTERVAL", "FAAS_SCALER_DRAIN_TARGET", "FAAS_SCALER_COOLDOWN", "FAAS_WORKER_CONCURRENCY",
		"FAAS_SCALER_STOP_GRACE", "FAAS_KUMORI_DEPLOYMENT", "FAAS_KUMORI_DIR", "KUMORI_CREDENTIALS",
		"KUMORI_USER", "KUMORI_PASSWORD"} {
		unsetEnv(t, name)
	}
	cfg, err := LoadConfig()
	require.NoError(t, err)
	want := validConfig()
	want.WorkerConcurrency = runtime.NumCPU() * faas.SlotsPerCPU
	assert.Equal(t, want, cfg)
}

func TestLoadConfigFromEnv(t *testing.T) {
	t.Setenv("JQ_URL", "tcp://jq:80")
	t.Setenv("FAAS_SCALER_BACKEND", "kumori")
	t.Setenv("FAAS_MIN_WORKERS", "0")
	t.Setenv("FAAS_MAX_WORKERS", "64")
	t.Setenv("FAAS_SCALER_INTERVAL", "5s")
	t.Setenv("FAAS_WORKER_CONCURRENCY", "3")
	t.Setenv("FAAS_KUMORI_DEPLOYMENT", "example.org/faas")
	t.Setenv("KUMORI_PASSWORD", "hunter2-env")
	cfg, err := LoadConfig()
	require.NoError(t, err)
	assert.Equal(t, "tcp://jq:80", cfg.JQURL)
	assert.Equal(t, BackendKumori, cfg.Backend)
	assert.Equal(t, 0, cfg.MinWorkers)
	assert.Equal(t, 64, cfg.MaxWorkers)
	assert.Equal(t, 5*time.Second, cfg.Interval)
	assert.Equal(t, 3, cfg.WorkerConcurrency)
	assert.Equal(t, "example.org/faas", cfg.KumoriDeployment)
	assert.Equal(t, Secret("hunter2-env"), cfg.KumoriPassword)

	// The password never shows when the config is printed or logged.
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("config", "cfg", cfg, "pw", cfg.KumoriPassword)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), log.String()} {
		assert.NotContains(t, s, "hunter2-env")
	}
	assert.Contains(t, log.String(), redacted)
}

func TestLoadConfigRejectsBadEnv(t *testing.T) {
	t.Setenv("FAAS_SCALER_INTERVAL", "often")
	_, err := LoadConfig()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FAAS_SCALER_INTERVAL")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // in the error; none means valid
	}{
		{name: "valid"},
		{name: "kumori valid", change: func(c *Config) { c.Backend, c.KumoriDeployment = BackendKumori, "d/n" }},
		{name: "min zero", change: func(c *Config) { c.MinWorkers = 0 }},
		{name: "min equals max", change: func(c *Config) { c.MinWorkers = 8 }},
		{name: "unknown backend", change: func(c *Config) { c.Backend = "k8s" }, want: []string{`"k8s"`}},
		{name: "kumori without deployment", change: func(c *Config) { c.Backend = BackendKumori }, want: []string{"FAAS_KUMORI_DEPLOYMENT"}},
		{name: "kumori without dir", change: func(c *Config) { c.Backend, c.KumoriDeployment, c.KumoriDir = BackendKumori, "d/n", "" }, want: []string{"FAAS_KUMORI_DIR"}},
		{name: "no queue", change: func(c *Config) { c.JQURL = "" }, want: []string{"JQ_URL"}},
		{name: "negative min", change: func(c *Config) { c.MinWorkers = -1 }, want: []string{"FAAS_MIN_WORKERS -1"}},
		{name: "max zero", change: func(c *Config) { c.MinWorkers, c.MaxWorkers = 0, 0 }, want: []string{"FAAS_MAX_WORKERS 0"}},
		{name: "min above max", change: func(c *Config) { c.MinWorkers = 9 }, want: []string{"exceeds"}},
		{name: "zero interval", change: func(c *Config) { c.Interval = 0 }, want: []string{"FAAS_SCALER_INTERVAL"}},
		{name: "zero drain target", change: func(c *Config) { c.DrainTarget = 0 }, want: []string{"FAAS_SCALER_DRAIN_TARGET"}},
		{name: "negative cooldown", change: func(c *Config) { c.Cooldown = -time.Second }, want: []string{"FAAS_SCALER_COOLDOWN"}},
		{name: "zero concurrency", change: func(c *Config) { c.WorkerConcurrency = 0 }, want: []string{"FAAS_WORKER_CONCURRENCY"}},
		{name: "negative grace", change: func(c *Config) { c.StopGrace = -time.Second }, want: []string{"FAAS_SCALER_STOP_GRACE"}},
		{
			name:   "all problems at once",
			change: func(c *Config) { c.Interval, c.MinWorkers, c.Backend = 0, 9, "x" },
			want:   []string{"FAAS_SCALER_INTERVAL", "exceeds", `"x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			if tt.change != nil {
				tt.change(&c)
			}
			err := c.Validate()
			if len(tt.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
