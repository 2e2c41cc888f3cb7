package wire_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/wire"
)

// TestHandlersReuseGoroutines: requests one after another are served by
// the handler goroutines of the ones before, which keep the stacks they
// grew, rather than each by a new goroutine.
func TestHandlersReuseGoroutines(t *testing.T) {
	t.Parallel()
	// The first line of a goroutine's stack names it: "goroutine 42 [running]:".
	goroutine := func(ctx context.Context, method string, body []byte) (any, error) {
		buf := make([]byte, 64)
		buf = buf[:runtime.Stack(buf, false)]
		return string(bytes.Fields(buf)[1]), nil
	}
	srv, err := wire.Listen("tcp://127.0.0.1:*", goroutine, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	c := dial(t, srv.Endpoint(), 5*time.Second)
	defer c.Close()

	const calls = 100
	seen := map[string]bool{}
	for range calls {
		id, err := wire.Invoke[string](ctx, c, "any", struct{}{})
		require.NoError(t, err)
		seen[id] = true
	}
	// A request may arrive before the goroutine that served the previous
	// one is back waiting for work, and then gets a new one; most do not.
	require.Less(t, len(seen), calls/2, "%d goroutines served %d requests in a row", len(seen), calls)
}
