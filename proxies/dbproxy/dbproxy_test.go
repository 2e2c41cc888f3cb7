package dbproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager/dbmanagertest"
	"faas/dbmanager/storetest"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/wire"
)

// serve starts a DB manager over a fresh embedded store and returns a
// client talking to it over loopback TCP.
func serve(t *testing.T) *dbproxy.Client {
	t.Helper()
	m, _ := dbmanagertest.Start(t, dbmanagertest.Embedded(t.TempDir()), slog.New(slog.DiscardHandler))
	c, err := dbproxy.Dial(m.Endpoint(), 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
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
	wc, err := wire.Dial(c.Endpoint(), 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer wc.Close()
	err = wc.Call(ctx, "db.ResetDB", struct{}{}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
	err = wc.Call(ctx, dbproxy.MethodStartJob, []int{1}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
}

// BenchmarkJobLifecycle is one job's DB manager traffic over loopback
// ZeroMQ (create, start, read, complete, read) with many jobs in flight, as
// the JQ manager and workers produce it.
func BenchmarkJobLifecycle(b *testing.B) {
	m, _ := dbmanagertest.Start(b, dbmanagertest.Embedded(b.TempDir()), slog.New(slog.DiscardHandler))
	c, err := dbproxy.Dial(m.Endpoint(), 0, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	defer c.Close()
	ctx := context.Background()
	require.NoError(b, c.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err = c.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b"})
	require.NoError(b, err)
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := lifecycle(ctx, c, fmt.Sprintf("job-%d", seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func lifecycle(ctx context.Context, s faas.Store, id string) error {
	if _, err := s.CreateJob(ctx, faas.Job{ID: id, Owner: "ada", Function: "add", Args: json.RawMessage(`[4,5]`)}); err != nil {
		return err
	}
	if _, err := s.StartJob(ctx, id, 1, "w"); err != nil {
		return err
	}
	if _, err := s.Job(ctx, id); err != nil {
		return err
	}
	if _, err := s.CompleteJob(ctx, faas.Completion{JobID: id, Attempt: 1, Result: json.RawMessage(`9`), Duration: time.Millisecond}); err != nil {
		return err
	}
	_, err := s.Job(ctx, id)
	return err
}
