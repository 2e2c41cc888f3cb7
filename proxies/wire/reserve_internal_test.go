package wire

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestReservedMethodsGetThroughWhenBusy: with the shared budget used up
// by held requests, other requests are refused at once, but methods with
// a budget of their own are still served.
func TestReservedMethodsGetThroughWhenBusy(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	handler := func(ctx context.Context, method string, body []byte) (any, error) {
		if method == "hold" {
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return method, nil
	}
	log := slog.New(slog.DiscardHandler)
	srv, err := Listen("tcp://127.0.0.1:*", handler, log)
	require.NoError(t, err)
	srv.slots = make(chan struct{}, 1) // a budget of one, so one request fills it
	srv.Reserve(1, "beat")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	c, err := Dial(srv.Endpoint(), time.Second, log)
	require.NoError(t, err)
	defer c.Close()
	callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
	defer callCancel()
	holding := make(chan error, 1)
	go func() { holding <- c.CallHold(callCtx, 10*time.Second, "hold", nil, nil) }()
	<-held

	err = c.Call(callCtx, "other", nil, nil)
	require.Equal(t, faas.Unavailable, faas.ErrorCode(err), "the shared budget is used up: %v", err)
	var got string
	require.NoError(t, c.Call(callCtx, "beat", nil, &got), "a reserved method was refused")
	require.Equal(t, "beat", got)

	close(release)
	require.NoError(t, <-holding)
}
