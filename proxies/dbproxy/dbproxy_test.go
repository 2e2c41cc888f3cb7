package dbproxy_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/dbmanager/storetest"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/wire"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts a DB manager protocol server over a fresh SQLite store and
// returns a client talking to it over loopback TCP.
func serve(t *testing.T) *dbproxy.Client {
	t.Helper()
	store, err := sqlite.Open(context.Background(), t.TempDir())
	require.NoError(t, err)
	srv, err := wire.Listen("tcp://127.0.0.1:*", dbproxy.NewMux(store).Serve, discard())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c, err := dbproxy.Dial(srv.Endpoint(), 0, discard())
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
		require.NoError(t, store.Close())
	})
	return c
}

// TestConformance runs the store suite through the wire: values and error
// codes must come back exactly as the store produced them.
func TestConformance(t *testing.T) {
	t.Parallel()
	c := serve(t)
	storetest.Run(t, func(t *testing.T) faas.Store { return c })
}

func TestUnknownMethodIsInvalid(t *testing.T) {
	t.Parallel()
	c := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The mux answers only the Store's methods.
	_, err := c.User(ctx, "")
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	wc, err := wire.Dial(c.Endpoint(), 0, discard())
	require.NoError(t, err)
	defer wc.Close()
	err = wc.Call(ctx, "db.ResetDB", dbproxy.Empty{}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
	err = wc.Call(ctx, dbproxy.MethodStartJob, []int{1}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
}
