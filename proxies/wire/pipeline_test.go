package wire_test

import (
	"context"
	"encoding/binary"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
	"faas/proxies/wire"
	"faas/proxies/wire/wiretest"
)

// serveMux starts a server for m and returns its endpoint.
func serveMux(t testing.TB, m *wire.Mux) string {
	t.Helper()
	srv, err := wire.Listen("tcp://127.0.0.1:*", m.Serve, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return srv.Endpoint()
}

// TestLostReplyIsResent: the first try's reply comes too late, so the
// client sends the request again and takes the second try's reply; the
// late one, when it comes, is dropped rather than given to a later call.
func TestLostReplyIsResent(t *testing.T) {
	t.Parallel()
	var tries atomic.Int32
	m := echoMux()
	wire.Handle(m, "flaky", func(ctx context.Context, r echoReq) (string, error) {
		if tries.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
			return "late", nil
		}
		return r.Text, nil
	})
	c := dial(t, serveMux(t, m), 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var got string
	require.NoError(t, c.Call(ctx, "flaky", echoReq{Text: "again"}, &got))
	require.Equal(t, "again", got)
	require.EqualValues(t, 2, tries.Load())
	// The late reply arrives while this call waits; it must not take it.
	require.NoError(t, c.CallHold(ctx, time.Second, "echo", echoReq{Text: "next", Sleep: 400 * time.Millisecond}, &got))
	require.Equal(t, "next", got)
}

// TestSlowCallDoesNotHoldUpFastOnes: a call the server holds does not
// delay others on the same client.
func TestSlowCallDoesNotHoldUpFastOnes(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	c := dial(t, srv.Endpoint(), time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	slow := make(chan error, 1)
	go func() {
		slow <- c.CallHold(ctx, 3*time.Second, "echo", echoReq{Text: "slow", Sleep: 3 * time.Second}, nil)
	}()
	start := time.Now()
	for range 20 {
		var got string
		require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "fast"}, &got))
		require.Equal(t, "fast", got)
	}
	require.Less(t, time.Since(start), 2*time.Second)
	select {
	case err := <-slow:
		t.Fatalf("the slow call ended first: %v", err)
	default:
	}
	require.NoError(t, <-slow)
}

// TestHandlerStopsAtTheCallersDeadline: the handler's context ends when
// the caller stops waiting, not when the server stops.
func TestHandlerStopsAtTheCallersDeadline(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	m := wire.NewMux()
	wire.Handle(m, "wait", func(ctx context.Context, _ echoReq) (any, error) {
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
		case <-time.After(10 * time.Second):
			ended <- nil
		}
		return nil, ctx.Err()
	})
	c := dial(t, serveMux(t, m), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Call(ctx, "wait", echoReq{}, nil)
	require.Equal(t, faas.Unavailable, faas.ErrorCode(err))
	select {
	case err := <-ended:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler ran on past its caller's deadline")
	}
}

// rawDEALER is a bare DEALER socket connected to endpoint.
func rawDEALER(t *testing.T, endpoint string) *zmq.Socket {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.DEALER)
	require.NoError(t, err)
	t.Cleanup(func() { sock.Close() })
	require.NoError(t, sock.SetLinger(0))
	require.NoError(t, sock.SetRcvtimeo(5*time.Second))
	require.NoError(t, sock.Connect(endpoint))
	return sock
}

func budget(d time.Duration) string {
	return string(binary.BigEndian.AppendUint64(nil, uint64(d)))
}

// TestRequestPastItsDeadlineIsNotRun: a request whose budget is spent is
// dropped unanswered and its handler never runs; the next one is served.
func TestRequestPastItsDeadlineIsNotRun(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	m := wire.NewMux()
	wire.Handle(m, "count", func(ctx context.Context, _ echoReq) (int32, error) {
		return runs.Add(1), nil
	})
	sock := rawDEALER(t, serveMux(t, m))
	for _, spent := range []time.Duration{0, -time.Second} {
		_, err := sock.SendMessage("expired", "", "count", "{}", "", budget(spent))
		require.NoError(t, err)
	}
	_, err := sock.SendMessage("live", "", "count", "{}", "", budget(5*time.Second))
	require.NoError(t, err)
	reply, err := sock.RecvMessage(0)
	require.NoError(t, err)
	require.Equal(t, []string{"live", "", `{"res":1}`}, reply)
	require.EqualValues(t, 1, runs.Load())
}

// TestREQAndDEALERPeersAreServed: the server echoes every frame up to the
// empty delimiter, so a REQ peer (one request at a time, two to four
// frames) and a DEALER peer with its own request ids both get answers.
func TestREQAndDEALERPeersAreServed(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	req := rawREQ(t, srv.Endpoint(), 5*time.Second)
	for _, frames := range [][]string{
		{"echo", `{"text":"two"}`},
		{"echo", `{"text":"three"}`, ""},
		{"echo", `{"text":"four"}`, "", budget(time.Second)},
	} {
		_, err := req.SendMessage(frames)
		require.NoError(t, err)
		reply, err := req.RecvMessage(0)
		require.NoError(t, err)
		require.Len(t, reply, 1)
		require.Contains(t, reply[0], frames[1][9:len(frames[1])-2], "frames %q", frames)
	}
	dealer := rawDEALER(t, srv.Endpoint())
	_, err := dealer.SendMessage("a", "b", "", "echo", `{"text":"ids"}`)
	require.NoError(t, err)
	reply, err := dealer.RecvMessage(0)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "", `{"res":"ids"}`}, reply)
}

// TestCloseLeavesNothingBehind: clients and servers that were used and
// closed leave no goroutine and no socket behind. Not parallel: it counts
// what the whole process has.
func TestCloseLeavesNothingBehind(t *testing.T) {
	// The first socket starts libzmq's own threads, each with a mailbox
	// that counts as a socket here, for the life of the process.
	warm, err := zmq.NewSocket(zmq.PAIR)
	require.NoError(t, err)
	require.NoError(t, warm.Close())
	goroutines, sockets := runtime.NumGoroutine(), wiretest.OpenSockets(t)
	func() {
		srv, stop := serve(t, "tcp://127.0.0.1:*")
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for range 5 {
			c := dial(t, srv.Endpoint(), time.Second)
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() { require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "x"}, nil)) })
			}
			wg.Wait()
			require.NoError(t, c.Close())
			require.Equal(t, faas.Unavailable, faas.ErrorCode(c.Call(ctx, "echo", echoReq{}, nil)))
		}
	}()
	// libzmq's reaper thread closes a socket shortly after zmq_close.
	require.Eventually(t, func() bool { return wiretest.OpenSockets(t) <= sockets },
		5*time.Second, 10*time.Millisecond, "sockets left open: %d, were %d", wiretest.OpenSockets(t), sockets)
	// Polled here: Eventually checks in a goroutine of its own.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines left running: %d, were %d\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
	}
}
