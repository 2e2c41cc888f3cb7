package wire

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"faas/internal/reuse"
	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// Handler serves one request. Handlers run concurrently, each in its own
// goroutine, so a slow request (a long poll, a database write) does not hold
// up the others.
type Handler func(ctx context.Context, method string, body []byte) (any, error)

// MaxInFlight bounds the requests a server handles at once; beyond it the
// server answers Unavailable at once rather than queueing without limit.
const MaxInFlight = 4096

// drainTimeout bounds how long Run waits for in-flight handlers at shutdown.
const drainTimeout = 5 * time.Second

// handlerIdle is how long a handler goroutine waits for another request
// after serving one, before it exits (see package reuse). Under load the
// next request comes within milliseconds; longer would only keep the
// stacks of a burst's goroutines after it.
const handlerIdle = time.Second

// Server answers requests on a ROUTER socket.
//
// One goroutine reads the ROUTER socket and starts a handler for each
// request; handlers send their replies on it themselves, one at a time
// (see conn), so a reply goes out without a hop through another
// goroutine or socket.
type Server struct {
	conn     *conn
	endpoint string
	handler  Handler
	log      *slog.Logger
	slots    chan struct{}
	sec      Security
	// ctx is Run's, under which handlers run; set before any request is
	// read.
	ctx context.Context
	// unregister withdraws the server's keys from the ZAP handler.
	unregister func()
	// reserved holds the budgets of methods that do not share slots.
	reserved map[string]chan struct{}

	// mu orders admitting a request (inflight.Add) before shutdown's
	// inflight.Wait.
	mu       sync.Mutex
	stopping bool
	inflight sync.WaitGroup

	// handlers run the requests, on goroutines that served earlier ones.
	handlers *reuse.Goroutines
}

// Listen binds a ROUTER socket to addr (for example "tcp://127.0.0.1:27444",
// or "tcp://127.0.0.1:*" for a port chosen by the system). Binding happens
// here, so an address in use fails now rather than inside Run. Without
// WithSecurity the socket is plaintext and open to anyone who reaches it.
func Listen(addr string, h Handler, log *slog.Logger, opts ...Option) (*Server, error) {
	o := applyOptions(opts)
	s := &Server{handler: h, log: log, slots: make(chan struct{}, MaxInFlight), sec: o.sec, handlers: reuse.New(handlerIdle)}
	router, err := newSocket(zmq.ROUTER, MaxRequestSize)
	if err != nil {
		return nil, err
	}
	if s.unregister, err = secureServer(router, o.sec); err != nil {
		router.Close()
		return nil, err
	}
	if err = router.Bind(addr); err != nil {
		router.Close()
		s.unregister()
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if s.endpoint, err = router.GetLastEndpoint(); err != nil {
		router.Close()
		s.unregister()
		return nil, fmt.Errorf("bound endpoint: %w", err)
	}
	for _, also := range o.also {
		if err = router.Bind(also); err != nil {
			router.Close()
			s.unregister()
			return nil, fmt.Errorf("bind %s: %w", also, err)
		}
	}
	if s.conn, err = newConn(router, s.receive, func(in inbound) { s.dispatch(s.ctx, in.role, in.msg) }); err != nil {
		s.unregister()
		return nil, err
	}
	return s, nil
}

// Reserve gives methods a budget of n in-flight requests of their own,
// apart from the MaxInFlight that all others share, so that a flood of
// other requests cannot get them refused. Call it before Run.
func (s *Server) Reserve(n int, methods ...string) {
	if s.reserved == nil {
		s.reserved = make(map[string]chan struct{})
	}
	slots := make(chan struct{}, n)
	for _, m := range methods {
		s.reserved[m] = slots
	}
}

// Endpoint is the address the server is bound to, with the real port.
func (s *Server) Endpoint() string { return s.endpoint }

// Run serves until ctx ends, then waits (briefly) for in-flight handlers to
// reply and closes the socket.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeSockets()
	s.ctx = ctx
	served := make(chan error, 1)
	go func() { served <- s.conn.serve() }()
	select {
	case err := <-served:
		// Only a socket failure ends serve before ctx does.
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	handled := make(chan struct{})
	go func() { s.inflight.Wait(); close(handled) }()
	select {
	case <-handled:
		// Idle handler goroutines leave with ctx; none is busy.
		defer s.handlers.Wait()
	case <-time.After(drainTimeout):
		s.log.Warn("shutdown: handlers still running, closing anyway")
	}
	s.conn.close()
	return <-served
}

// admit counts a request in, unless the server is stopping.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.inflight.Add(1)
	return true
}

// receive reads one request from the ROUTER with the role of its sender.
// The ZAP handler stamped the role on the connection as its user id, which
// every frame from the peer carries; the first frame, the routing id, is
// made by the ROUTER itself and carries none. The frames of a message
// arrive together, so only the first may find nothing there. A message
// with no user id came over inproc, whose peer names its key in its
// routing id (Security.inprocRole).
func (s *Server) receive(sock *zmq.Socket) (inbound, error) {
	first, err := sock.RecvBytes(zmq.DONTWAIT)
	if err != nil {
		return inbound{}, err
	}
	in := inbound{msg: [][]byte{first}}
	for {
		more, err := sock.GetRcvmore()
		if err != nil || !more {
			if in.role == "" && !s.sec.Plaintext() {
				in.role = s.sec.inprocRole(first)
			}
			return in, err
		}
		var frame []byte
		if len(in.msg) == 1 {
			var meta map[string]string
			frame, meta, err = sock.RecvBytesWithMetadata(0, userID)
			in.role = meta[userID]
		} else {
			frame, err = sock.RecvBytes(0)
		}
		if err != nil {
			return inbound{}, err
		}
		in.msg = append(in.msg, frame)
	}
}

// userID is the message property holding the user id the ZAP handler gave
// the connection: the role of the peer's key.
const userID = "User-Id"

// dispatch starts a handler for one request from a peer of the given
// role, or refuses it.
func (s *Server) dispatch(ctx context.Context, role string, msg [][]byte) {
	envelope, frames, ok := splitEnvelope(msg)
	if !ok {
		s.log.Debug("dropped message without envelope", "frames", len(msg))
		return
	}
	req, err := DecodeRequest(frames)
	if err != nil {
		s.reply(envelope, nil, faas.Errorf(faas.Invalid, "malformed request: %v", err))
		return
	}
	if req.HasBudget && req.Budget <= 0 {
		// The caller has given up: nobody would read the reply.
		s.log.Debug("dropped request past its deadline", "method", req.Method)
		return
	}
	method := req.Method
	if !s.sec.Plaintext() && s.sec.Allow != nil && !s.sec.Allow(role, method) {
		s.log.Warn("refused call", "role", role, "method", method)
		s.reply(envelope, nil, faas.Errorf(faas.Forbidden, "role %q may not call %s", role, method))
		return
	}
	slots := s.slots
	if r, ok := s.reserved[method]; ok {
		slots = r
	}
	select {
	case slots <- struct{}{}:
	default:
		s.reply(envelope, nil, faas.Errorf(faas.Unavailable, "server busy"))
		return
	}
	if !s.admit() {
		<-slots
		return
	}
	s.handlers.Go(ctx, func() {
		defer s.inflight.Done()
		defer func() { <-slots }()
		hctx := ctx
		if req.HasBudget {
			// The handler stops when its caller stops waiting.
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, req.Budget)
			defer cancel()
		}
		res, err := s.serveTraced(hctx, req)
		s.reply(envelope, res, err)
	})
}

// serveTraced serves a request that is part of a trace inside a server
// span, a child of the caller's. Requests outside a trace (heartbeats,
// polls) start none, and pay nothing for it: not even the span options.
func (s *Server) serveTraced(ctx context.Context, req Request) (any, error) {
	if req.Parent == "" {
		return s.serve(ctx, req.Method, req.Body)
	}
	ctx, span := tracing.Start(ctx, req.Parent, req.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "zeromq"), attribute.String("rpc.method", req.Method)))
	defer span.End()
	res, err := s.serve(ctx, req.Method, req.Body)
	if err != nil {
		span.SetStatus(codes.Error, string(faas.ErrorCode(err)))
	}
	return res, err
}

// serve runs the handler, turning a panic into an internal error so one bad
// request cannot take the process down.
func (s *Server) serve(ctx context.Context, method string, body []byte) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic", "method", method, "panic", r)
			err = faas.Errorf(faas.Internal, "internal error")
		}
	}()
	res, err = s.handler(ctx, method, body)
	if err != nil && faas.ErrorCode(err) == faas.Internal {
		if ctx.Err() != nil {
			// Its caller gave up: work cut short, not a fault.
			s.log.Debug("request abandoned by its caller", "method", method, "err", err)
		} else {
			s.log.Error("request failed", "method", method, "err", err)
		}
	}
	return res, err
}

func (s *Server) reply(envelope [][]byte, res any, err error) {
	msg := make([][]byte, 0, len(envelope)+1)
	msg = append(msg, envelope...)
	if err := s.conn.send(append(msg, encodeReply(res, err))); err != nil {
		// Closed, after a drain that timed out: the caller sends the
		// request again to whichever server is there.
		s.log.Warn("send reply", "err", err)
	}
}

func (s *Server) closeSockets() {
	s.conn.close()
	s.unregister()
}

// newSocket returns a socket that never blocks its closing on unsent
// messages, so shutdown cannot hang on a vanished peer, and that drops the
// connection of a peer sending a frame over maxSize bytes (-1: no bound,
// for inproc sockets that carry only this process's own messages).
func newSocket(t zmq.Type, maxSize int64) (*zmq.Socket, error) {
	sock, err := zmq.NewSocket(t)
	if err != nil {
		return nil, fmt.Errorf("new socket: %w", err)
	}
	if err := sock.SetLinger(0); err != nil {
		sock.Close()
		return nil, fmt.Errorf("set linger: %w", err)
	}
	if err := sock.SetMaxmsgsize(maxSize); err != nil {
		sock.Close()
		return nil, fmt.Errorf("set max message size: %w", err)
	}
	return sock, nil
}
