package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/proxies/dbproxy"
	"faas/proxies/jqproxy"
	"faas/worker"
)

// testConfig is the platform on free loopback ports and a scratch
// directory, with no workers, so the test binary starts no child.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig()
	require.NoError(t, err)
	cfg.Up = UpConfig{}
	cfg.DB.DBURL, cfg.DB.DataDir = "", t.TempDir()
	cfg.Frontend.Listen = "127.0.0.1:0"
	cfg.Scaler.MinWorkers = 0
	return cfg
}

// TestPlatformServesAndStops: New binds everything, Run serves the API
// until its context ends, then returns.
func TestPlatformServesAndStops(t *testing.T) {
	t.Parallel()
	p, err := New(t.Context(), testConfig(t), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.URL() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	// Everything was released: the HTTP port is free again.
	l, err := net.Listen("tcp", p.fe.Addr())
	require.NoError(t, err)
	l.Close()
}

// TestNewFailsOnPortInUse: an address in use fails New, not Run, naming
// the address, and what New had built is released: the managers' ports can
// be bound again.
func TestNewFailsOnPortInUse(t *testing.T) {
	// ZeroMQ sockets close themselves when collected: with the collector
	// on, a socket New forgot could be freed behind the test's back.
	gc := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc) })
	tests := []struct {
		busy string
		set  func(c *Config, port int)
	}{
		{"jqmanager", func(c *Config, port int) { c.Up.JQPort = port }},
		{"frontend", func(c *Config, port int) { c.Frontend.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }},
	}
	for _, tt := range tests {
		t.Run(tt.busy, func(t *testing.T) {
			t.Parallel()
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer busy.Close()
			busyPort := busy.Addr().(*net.TCPAddr).Port
			cfg := testConfig(t)
			cfg.Up.DBPort, cfg.Up.JQPort = freePort(t), freePort(t)
			tt.set(&cfg, busyPort)

			_, err = New(t.Context(), cfg, slog.New(slog.DiscardHandler))
			require.ErrorContains(t, err, strconv.Itoa(busyPort))
			for _, port := range []int{cfg.Up.DBPort, cfg.Up.JQPort} {
				if port == busyPort {
					continue
				}
				// ZeroMQ unbinds in its own I/O thread, just after the
				// socket is closed.
				require.Eventually(t, func() bool {
					l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
					if err == nil {
						l.Close()
					}
					return err == nil
				}, 5*time.Second, 10*time.Millisecond, "port %d stays bound after New failed", port)
			}
		})
	}
}

// freePort is a TCP port on loopback that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRunRoleUnknown(t *testing.T) {
	t.Parallel()
	err := RunRole(t.Context(), "nope", slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, ErrUnknownRole)
	require.ErrorContains(t, err, `"nope"`)
}

// TestDefaultPorts holds the defaults written in the config structs' tags,
// which must be literals, to the named ports.
func TestDefaultPorts(t *testing.T) {
	for _, k := range []string{"FAAS_DB_PORT", "FAAS_JQ_PORT", "DB_URL", "JQ_URL", "PORT", "FAAS_LISTEN", "FAAS_HTTP_LISTEN"} {
		t.Setenv(k, "") // restores the variable after the test
		require.NoError(t, os.Unsetenv(k))
	}
	cfg, err := LoadConfig()
	require.NoError(t, err)
	wcfg, err := worker.LoadConfig()
	require.NoError(t, err)
	dbURL := fmt.Sprintf("tcp://127.0.0.1:%d", dbproxy.DefaultPort)
	jqURL := fmt.Sprintf("tcp://127.0.0.1:%d", jqproxy.DefaultPort)
	require.Equal(t, UpConfig{DBPort: dbproxy.DefaultPort, JQPort: jqproxy.DefaultPort}, cfg.Up)
	require.Equal(t, dbURL, cfg.DB.Endpoint())
	require.Equal(t, jqURL, cfg.JQ.Endpoint())
	require.Equal(t, dbURL, cfg.JQ.DBURL)
	require.Equal(t, frontend.DefaultPort, cfg.Frontend.Port)
	require.Equal(t, []string{dbURL, jqURL}, []string{cfg.Frontend.DBURL, cfg.Frontend.JQURL})
	require.Equal(t, jqURL, cfg.Scaler.JQURL)
	require.Equal(t, []string{dbURL, jqURL}, []string{wcfg.DBURL, wcfg.JQURL})
}

// TestRolesDescribeTheirConfig: every role people start names config
// structs envconfig can list, so its help can be generated from them.
func TestRolesDescribeTheirConfig(t *testing.T) {
	t.Parallel()
	for _, r := range Roles {
		if r.Hidden {
			continue
		}
		require.NotEmpty(t, r.Config, "role %s names no config", r.Name)
		require.NotEmpty(t, r.Short, "role %s has no summary", r.Name)
		for _, c := range r.Config {
			var help strings.Builder
			require.NoError(t, envconfig.Usagef("", c, &help, "{{range .}}{{usage_key .}}\n{{end}}"), "role %s", r.Name)
			require.NotEmpty(t, help.String(), "role %s: %T lists no variable", r.Name, c)
		}
	}
}

// TestLoadConfigChecksTheWorkers: a setting the workers would refuse
// stops `faas up` at start.
func TestLoadConfigChecksTheWorkers(t *testing.T) {
	for _, env := range [][2]string{
		{"FAAS_WORKER_NO_LEASE_AHEAD", "maybe"},
		{"FAAS_WORKER_PROCS", "-1"},
	} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv(env[0], env[1])
			_, err := LoadConfig()
			require.ErrorContains(t, err, env[0])
		})
	}
}
