package jqmanager_test

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/jqmanager"
	"faas/jqmanager/queuetest"
	"faas/proxies/bus"
	"faas/proxies/bus/bustest"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
)

// conformanceConfig is config with the settings the suite needs.
func conformanceConfig() jqmanager.Config {
	cfg := config()
	cfg.LeaseTimeout = queuetest.LeaseTimeout
	cfg.MaxAttempts = queuetest.MaxAttempts
	cfg.MaxPendingPerUser = queuetest.MaxPendingPerUser
	cfg.MaxRunningPerUser = queuetest.MaxRunningPerUser
	return cfg
}

// TestConformance runs the JobQueue suite against the manager in-process
// and through jqproxy, in plaintext and over CURVE as the admin role (the
// suite calls every method): values and error codes must come back alike.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"in-process", "plaintext", "CURVE"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			queuetest.Run(t, func(t *testing.T) (faas.JobQueue, faas.Store) {
				t.Helper()
				r := openRig(t)
				cfg := conformanceConfig()
				if via == "CURVE" {
					ring := bustest.Keyring(t)
					cfg.Bus = bustest.Server(t, ring, bus.JQManager)
					r.dial = []wire.Option{bustest.Dial(t, ring, bus.Admin, bus.JQManager)}
				}
				r.start(cfg)
				if via == "in-process" {
					return r.m, r.store
				}
				c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler), r.dial...)
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				return c, r.store
			})
		})
	}
}

// TestRestartKeepsLimits: a restarted manager counts the jobs the Store
// has running against their user's running limit and their function's
// concurrency limit.
func TestRestartKeepsLimits(t *testing.T) {
	t.Parallel()
	cfg := config()
	cfg.MaxRunningPerUser = 2
	r := newRig(t, cfg, "flood", "ada")
	_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ada", Name: "limited", Source: "x => x", Concurrency: 1})
	require.NoError(t, err)
	for range 3 {
		r.submit("flood")
	}
	for range 2 {
		_, err := r.m.Submit(r.ctx, faas.Job{ID: uuid.NewString(), Owner: "ada", Function: "limited", Args: json.RawMessage("[1]")})
		require.NoError(t, err)
	}
	// Two of flood's jobs (its limit) and one of ada's (the function's).
	for range 3 {
		_, ok := r.next("w", time.Second)
		require.True(t, ok)
	}
	_, ok := r.next("w", 50*time.Millisecond)
	require.False(t, ok, "the limits do not hold before the restart")

	r.stop()
	r.start(cfg)
	st, err := r.m.Stats(r.ctx)
	require.NoError(t, err)
	require.Equal(t, 3, st.Running)
	require.Equal(t, 2, st.Held)
	_, ok = r.next("w", 50*time.Millisecond)
	require.False(t, ok, "a restarted queue leased past a limit")
}

// TestHoldIsBounded: the server refuses to hold a request longer than
// jqproxy.MaxHold, so that a client cannot park its handlers forever.
func TestHoldIsBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t, config())
	c, err := jqproxy.Dial(r.m.Endpoint(), time.Second, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Next(r.ctx, "w", 1, 2*jqproxy.MaxHold)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
	_, err = c.Events(r.ctx, 0, 2*jqproxy.MaxHold)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
}
