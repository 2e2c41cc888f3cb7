package metrics_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"faas/internal/metrics"
	"faas/internal/metrics/metricstest"
)

// serve runs a metrics server for reg on a free loopback port until the
// test ends, and returns its base URL.
func serve(t testing.TB, reg *metrics.Registry, token string) string {
	t.Helper()
	srv, err := metrics.Listen(metrics.Config{Listen: "127.0.0.1:0", Token: token}, reg.Gatherer(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("metrics server did not stop")
		}
	})
	return "http://" + srv.Addr()
}

func TestServer(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry("jqmanager")
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "faas_test_events_total", Help: "Events for the test."})
	reg.MustRegister(c)
	c.Add(3)
	const token = "scraper-secret-token"
	url := serve(t, reg, token)

	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "scraper-secret-tokeN", http.StatusUnauthorized},
		{"right token", token, http.StatusOK},
	} {
		status, body := metricstest.Scrape(t, url+"/metrics", tc.auth)
		require.Equal(t, tc.want, status, tc.name)
		require.NotContains(t, body, token, "%s: the answer never echoes the token", tc.name)
	}
	status, body := metricstest.Scrape(t, url+"/metrics", token)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `faas_test_events_total{component="jqmanager"} 3`)
	require.Contains(t, body, `faas_build_info{component="jqmanager",`)
	require.Contains(t, body, `go_goroutines{component="jqmanager"}`)
	require.Contains(t, body, `process_cpu_seconds_total{component="jqmanager"}`)

	status, _ = metricstest.Scrape(t, url+"/other", token)
	require.Equal(t, http.StatusNotFound, status)

	problems, err := testutil.GatherAndLint(reg.Gatherer())
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestListen(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry("worker")
	log := slog.New(slog.DiscardHandler)

	// Off unless set: no server, and Run only waits for its context.
	srv, err := metrics.Listen(metrics.Config{}, reg.Gatherer(), log)
	require.NoError(t, err)
	require.Nil(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, srv.Run(ctx))

	// An address in use fails at start, naming the setting.
	url := serve(t, reg, "")
	_, err = metrics.Listen(metrics.Config{Listen: strings.TrimPrefix(url, "http://")}, reg.Gatherer(), log)
	require.ErrorContains(t, err, "FAAS_METRICS_LISTEN=")
	status, _ := metricstest.Scrape(t, url+"/metrics", "")
	require.Equal(t, http.StatusOK, status, "open without a token")
}
