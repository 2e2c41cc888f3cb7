package wire_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"faas/proxies/faas"
	"faas/proxies/tracing"
	"faas/proxies/wire"
)

type echoReq struct {
	Text  string        `json:"text"`
	Sleep time.Duration `json:"sleep"`
}

func echoMux() *wire.Mux {
	m := wire.NewMux()
	wire.Handle(m, "echo", func(ctx context.Context, r echoReq) (string, error) {
		select {
		case <-time.After(r.Sleep):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return r.Text, nil
	})
	wire.Handle(m, "fail", func(ctx context.Context, r echoReq) (any, error) {
		return nil, faas.Errorf(faas.Conflict, "%s", r.Text)
	})
	wire.Handle(m, "trace", func(ctx context.Context, r echoReq) (string, error) {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			return sc.TraceID().String(), nil
		}
		return "", nil
	})
	wire.Handle(m, "boom", func(ctx context.Context, r echoReq) (any, error) {
		panic("boom")
	})
	return m
}

// serve starts a server on addr and returns it with a stop function that
// waits for Run to return.
func serve(t testing.TB, addr string) (*wire.Server, func()) {
	t.Helper()
	srv, err := wire.Listen(addr, echoMux().Serve, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

func dial(t testing.TB, endpoint string, timeout time.Duration) *wire.Client {
	t.Helper()
	c, err := wire.Dial(endpoint, timeout, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCallRoundTrip(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	c := dial(t, srv.Endpoint(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var got string
	require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "hi"}, &got))
	require.Equal(t, "hi", got)

	err := c.Call(ctx, "fail", echoReq{Text: "taken"}, nil)
	var fe *faas.Error
	require.True(t, errors.As(err, &fe), "error %v is not structured", err)
	require.Equal(t, faas.Conflict, fe.Code)
	require.Equal(t, "taken", fe.Message)

	err = c.Call(ctx, "nope", echoReq{}, nil)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))

	err = c.Call(ctx, "boom", echoReq{}, nil)
	require.Equal(t, faas.Internal, faas.ErrorCode(err))

	// The server survived the panic.
	require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "again"}, &got))
	require.Equal(t, "again", got)
}

// TestConcurrentCallsAreServedInParallel sends many calls at once on one
// client, answered in the reverse of the order they were sent: each
// caller gets its own reply, and all are in flight together.
func TestConcurrentCallsAreServedInParallel(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	c := dial(t, srv.Endpoint(), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const n = 200
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			var got string
			text := strings.Repeat("x", i)
			sleep := time.Duration(n-i) * time.Millisecond
			if err := c.Call(ctx, "echo", echoReq{Text: text, Sleep: sleep}, &got); err != nil {
				errs <- err
			} else if got != text {
				errs <- errors.New("reply crossed to another caller: " + got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// One at a time, the sleeps alone add up to n*(n+1)/2 ms, 20 s.
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestClientSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	srv, stop := serve(t, "tcp://127.0.0.1:*")
	endpoint := srv.Endpoint()
	c := dial(t, endpoint, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got string
	require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "before"}, &got))

	stop()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(time.Second)
		serve(t, endpoint)
	}()
	// Sent while the server is down: lost, resent after a timeout, answered
	// by the new server.
	require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "after"}, &got))
	require.Equal(t, "after", got)
	<-restarted
}

func TestCallGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	c := dial(t, "tcp://127.0.0.1:1", 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, "echo", echoReq{}, nil)
	require.Equal(t, faas.Unavailable, faas.ErrorCode(err))
}

func TestListenOnAddressInUseFails(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	_, err := wire.Listen(srv.Endpoint(), echoMux().Serve, slog.New(slog.DiscardHandler))
	require.Error(t, err)
}

// rawREQ is a bare REQ socket connected to endpoint, for sending what no
// wire.Client would; it waits up to timeout for a reply.
func rawREQ(t *testing.T, endpoint string, timeout time.Duration) *zmq.Socket {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.REQ)
	require.NoError(t, err)
	t.Cleanup(func() { sock.Close() })
	require.NoError(t, sock.SetLinger(0))
	require.NoError(t, sock.SetRcvtimeo(timeout))
	require.NoError(t, sock.Connect(endpoint))
	return sock
}

func TestMalformedRequestsGetStructuredErrors(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	sock := rawREQ(t, srv.Endpoint(), 5*time.Second)
	for _, frames := range [][]string{
		{"echo"},
		{"echo", "{}", "00-trace", "extra"},
		{"echo", "{}", "", "12345678", "extra"},
		{"echo", "{}", strings.Repeat("0", 129)},
		{"bad method!", "{}"},
		{"echo", "not json"},
	} {
		_, err := sock.SendMessage(frames)
		require.NoError(t, err)
		reply, err := sock.RecvMessage(0)
		require.NoError(t, err, "frames %q", frames)
		require.Len(t, reply, 1)
		require.Contains(t, reply[0], `"code":"invalid"`, "frames %q", frames)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte("echo"), []byte(`{"text":"x"}`), []byte(nil), []byte(nil))
	f.Add([]byte(""), []byte(""), []byte(""), []byte(""))
	f.Add([]byte("a.b_C9"), []byte("\x00\xff"), []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), []byte(nil))
	f.Add([]byte("echo"), []byte("{}"), []byte(""), []byte("\x00\x00\x00\x00\x3b\x9a\xca\x00"))
	f.Add([]byte("echo"), []byte("{}"), []byte(""), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, method, body, parent, budget []byte) {
		frames := [][]byte{method, body}
		if len(parent) > 0 || len(budget) > 0 {
			frames = append(frames, parent)
		}
		if len(budget) > 0 {
			frames = append(frames, budget)
		}
		r, err := wire.DecodeRequest(frames)
		if err != nil {
			return
		}
		if r.Method != string(method) || string(r.Body) != string(body) || r.Parent != string(parent) {
			t.Fatalf("decoded %q %q %q from %q %q %q", r.Method, r.Body, r.Parent, method, body, parent)
		}
		if len(r.Method) == 0 || len(r.Method) > wire.MaxMethodLen {
			t.Fatalf("accepted method of %d bytes", len(r.Method))
		}
		if len(r.Parent) > tracing.MaxParentLen {
			t.Fatalf("accepted trace frame of %d bytes", len(r.Parent))
		}
		if r.HasBudget != (len(budget) > 0) || len(budget) > 0 && len(budget) != 8 {
			t.Fatalf("budget %v from a frame of %d bytes", r.HasBudget, len(budget))
		}
		// Whatever the frame holds, reading it as trace context must not
		// panic.
		tracing.WithParent(context.Background(), r.Parent)
	})
}

// TestTraceContextCrossesTheBus checks that a handler runs in the trace
// of its caller, that REQ peers sending two or three frames are still
// served, and that a trace frame that is not a traceparent is ignored
// rather than failing the request.
func TestTraceContextCrossesTheBus(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	c := dial(t, srv.Endpoint(), 5*time.Second)
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traced := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled,
	}))

	var got string
	require.NoError(t, c.Call(traced, "trace", echoReq{}, &got))
	require.Equal(t, traceID.String(), got)
	require.NoError(t, c.Call(context.Background(), "trace", echoReq{}, &got))
	require.Empty(t, got)

	sock := rawREQ(t, srv.Endpoint(), 5*time.Second)
	for _, frames := range [][]string{
		{"trace", "{}"},
		{"trace", "{}", "not a traceparent"},
		{"trace", "{}", ""},
	} {
		_, err := sock.SendMessage(frames)
		require.NoError(t, err)
		reply, err := sock.RecvMessage(0)
		require.NoError(t, err)
		require.Equal(t, []string{`{"res":""}`}, reply, "frames %q", frames)
	}
}

// BenchmarkCall is one caller's round trip, one call at a time; it
// reports the median and 99th percentile beside the mean.
func BenchmarkCall(b *testing.B) {
	srv, _ := serve(b, "tcp://127.0.0.1:*")
	c := dial(b, srv.Endpoint(), 0)
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		var got string
		if err := c.Call(ctx, "echo", echoReq{Text: "x"}, &got); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCall32 is 32 callers sharing one client: ns/op is the inverse
// of its throughput.
func BenchmarkCall32(b *testing.B) {
	srv, _ := serve(b, "tcp://127.0.0.1:*")
	c := dial(b, srv.Endpoint(), 0)
	ctx := context.Background()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var got string
			if err := c.Call(ctx, "echo", echoReq{Text: "x"}, &got); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCallCurve is BenchmarkCall over CURVE: the price of the
// encryption and of the role check per call.
func BenchmarkCallCurve(b *testing.B) {
	clientPub, clientSec := keypair(b)
	endpoint, serverKey := serveSecure(b, map[string]string{clientPub: "reader"})
	c, err := wire.Dial(endpoint, 0, slog.New(slog.DiscardHandler), wire.WithSecurity(wire.Security{PublicKey: clientPub, SecretKey: clientSec, ServerKey: serverKey}))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		var got string
		if err := c.Call(ctx, "echo", echoReq{Text: "x"}, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallParallel(b *testing.B) {
	srv, _ := serve(b, "tcp://127.0.0.1:*")
	c := dial(b, srv.Endpoint(), 0)
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var got string
			if err := c.Call(ctx, "echo", echoReq{Text: "x"}, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// keypair makes a fresh CURVE keypair.
func keypair(t testing.TB) (public, secret string) {
	t.Helper()
	public, secret, err := zmq.NewCurveKeypair()
	require.NoError(t, err)
	return public, secret
}

// serveSecure starts a CURVE server that accepts the given client keys
// (public key -> role) and lets role "reader" call only echo.
// serveSecure starts a CURVE server on loopback TCP, bound as well to an
// inproc endpoint of its own, "inproc://" + the server's public key.
func serveSecure(t testing.TB, clients map[string]string) (endpoint, serverKey string) {
	t.Helper()
	pub, sec := keypair(t)
	srv, err := wire.Listen("tcp://127.0.0.1:*", echoMux().Serve, slog.New(slog.DiscardHandler), wire.WithSecurity(wire.Security{
		PublicKey: pub, SecretKey: sec, Clients: clients,
		Allow: func(role, method string) bool { return role == "admin" || role == "reader" && method == "echo" },
	}), wire.AlsoBind("inproc://"+pub))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return srv.Endpoint(), pub
}

// TestCurveServerAcceptsOnlyKnownKeysAndChecksRoles calls a CURVE server
// over TCP and over its inproc endpoint. Over inproc, where libzmq runs no
// handshake, a client's role is that of the key it names in its routing
// id, checked as over TCP; a client naming no known key has no role and is
// refused every call, and the server's key is not checked.
func TestCurveServerAcceptsOnlyKnownKeysAndChecksRoles(t *testing.T) {
	t.Parallel()
	adminPub, adminSec := keypair(t)
	readerPub, readerSec := keypair(t)
	strangerPub, strangerSec := keypair(t)
	endpoint, serverKey := serveSecure(t, map[string]string{adminPub: "admin", readerPub: "reader"})
	_, otherServerKey := keypair(t)

	for _, tc := range []struct {
		name        string
		opts        []wire.Option
		method      string
		tcp, inproc faas.Code
	}{
		{"admin calls anything", []wire.Option{wire.WithSecurity(wire.Security{PublicKey: adminPub, SecretKey: adminSec, ServerKey: serverKey})}, "fail", faas.Conflict, faas.Conflict},
		{"reader calls echo", []wire.Option{wire.WithSecurity(wire.Security{PublicKey: readerPub, SecretKey: readerSec, ServerKey: serverKey})}, "echo", "", ""},
		{"reader may not call fail", []wire.Option{wire.WithSecurity(wire.Security{PublicKey: readerPub, SecretKey: readerSec, ServerKey: serverKey})}, "fail", faas.Forbidden, faas.Forbidden},
		{"unknown key", []wire.Option{wire.WithSecurity(wire.Security{PublicKey: strangerPub, SecretKey: strangerSec, ServerKey: serverKey})}, "echo", faas.Unavailable, faas.Forbidden},
		{"plaintext", nil, "echo", faas.Unavailable, faas.Forbidden},
		{"wrong server key", []wire.Option{wire.WithSecurity(wire.Security{PublicKey: adminPub, SecretKey: adminSec, ServerKey: otherServerKey})}, "echo", faas.Unavailable, ""},
	} {
		t.Run(tc.name+" over tcp", func(t *testing.T) {
			t.Parallel()
			callSecure(t, endpoint, tc.opts, tc.method, tc.tcp)
		})
		t.Run(tc.name+" over inproc", func(t *testing.T) {
			t.Parallel()
			callSecure(t, "inproc://"+serverKey, tc.opts, tc.method, tc.inproc)
		})
	}
}

// TestTCPPeerCannotClaimAnotherKeysRole: a CURVE client over TCP that
// names another client's key in its routing id, as an inproc peer does,
// keeps the role of the key it proved.
func TestTCPPeerCannotClaimAnotherKeysRole(t *testing.T) {
	t.Parallel()
	adminPub, _ := keypair(t)
	readerPub, readerSec := keypair(t)
	endpoint, serverKey := serveSecure(t, map[string]string{adminPub: "admin", readerPub: "reader"})
	sock, err := zmq.NewSocket(zmq.DEALER)
	require.NoError(t, err)
	defer sock.Close()
	require.NoError(t, sock.SetLinger(0))
	require.NoError(t, sock.SetRcvtimeo(5*time.Second))
	require.NoError(t, sock.SetIdentity(adminPub+"/1"))
	require.NoError(t, sock.ClientAuthCurve(serverKey, readerPub, readerSec))
	require.NoError(t, sock.Connect(endpoint))
	_, err = sock.SendMessage("\x00\x00\x00\x00\x00\x00\x00\x01", "", "fail", `{"text":"hi"}`)
	require.NoError(t, err)
	reply, err := sock.RecvMessage(0)
	require.NoError(t, err)
	require.Len(t, reply, 3)
	require.Contains(t, reply[2], string(faas.Forbidden))
}

// callSecure calls method on the server at endpoint through a client made
// with opts and checks the answer: want, or "hi" echoed.
func callSecure(t *testing.T, endpoint string, opts []wire.Option, method string, want faas.Code) {
	t.Helper()
	c, err := wire.Dial(endpoint, 200*time.Millisecond, slog.New(slog.DiscardHandler), opts...)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var got string
	err = c.Call(ctx, method, echoReq{Text: "hi"}, &got)
	require.Equal(t, want, faas.ErrorCode(err), "err %v", err)
	if want == "" {
		require.Equal(t, "hi", got)
	}
}

func TestSecureServerNeedsClientKeys(t *testing.T) {
	t.Parallel()
	pub, sec := keypair(t)
	_, err := wire.Listen("tcp://127.0.0.1:*", echoMux().Serve, slog.New(slog.DiscardHandler), wire.WithSecurity(wire.Security{PublicKey: pub, SecretKey: sec}))
	require.ErrorContains(t, err, "no client keys")
}

// TestOversizedFrameIsDropped sends one frame over MaxRequestSize: the
// server drops that connection unanswered and keeps serving others.
func TestOversizedFrameIsDropped(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "tcp://127.0.0.1:*")
	sock := rawREQ(t, srv.Endpoint(), time.Second)
	_, err := sock.SendMessage("echo", make([]byte, wire.MaxRequestSize+1))
	require.NoError(t, err)
	_, err = sock.RecvMessage(0)
	require.Error(t, err, "an oversized request was answered")

	c := dial(t, srv.Endpoint(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got string
	require.NoError(t, c.Call(ctx, "echo", echoReq{Text: "still here"}, &got))
	require.Equal(t, "still here", got)
}

// TestRefusedClientGivesUpInTime calls a CURVE server again and again
// without a key. The server refuses every handshake, which can leave the
// client's REQ socket with no peer to queue a request on; a send that
// blocked then would hang the call past its context for good.
func TestRefusedClientGivesUpInTime(t *testing.T) {
	t.Parallel()
	pub, _ := keypair(t)
	endpoint, _ := serveSecure(t, map[string]string{pub: "reader"})
	c, err := wire.Dial(endpoint, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer c.Close()
	for i := range 100 {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			done <- c.Call(ctx, "echo", echoReq{Text: "hi"}, nil)
		}()
		select {
		case err := <-done:
			require.Equal(t, faas.Unavailable, faas.ErrorCode(err), "call %d: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d still blocked 5s after its context ended", i)
		}
	}
}
