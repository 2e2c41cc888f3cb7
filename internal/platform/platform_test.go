package platform

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// TestNewFailsOnPortInUse: an address in use fails New, not Run, and what
// New had built is released (the DB manager's port can be bound again).
func TestNewFailsOnPortInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := testConfig(t)
	cfg.Up.JQPort = busy.Addr().(*net.TCPAddr).Port
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Up.DBPort = free.Addr().(*net.TCPAddr).Port
	free.Close()

	_, err = New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, strconv.Itoa(cfg.Up.JQPort))
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Up.DBPort)))
	require.NoError(t, err, "the DB manager's port stays bound after New failed")
	l.Close()
}

func TestRunRoleUnknown(t *testing.T) {
	t.Parallel()
	err := RunRole(t.Context(), "nope", slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, ErrUnknownRole)
	require.ErrorContains(t, err, `"nope"`)
}
