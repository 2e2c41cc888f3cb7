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

// Server answers requests on a ROUTER socket.
//
// One goroutine owns the ROUTER socket. Handlers hand their replies to it
// through an outlet (an inproc PUSH socket whose PULL end it polls beside
// the ROUTER), so replies need no lock on the ROUTER, no goroutine
// between the handler and the owner, and no polling timeout adds latency.
type Server struct {
	router   *zmq.Socket
	pull     *zmq.Socket
	out      *outlet
	endpoint string
	handler  Handler
	log      *slog.Logger
	inflight sync.WaitGroup
	slots    chan struct{}
	sec      Security
	// unregister withdraws the server's keys from the ZAP handler.
	unregister func()
	// reserved holds the budgets of methods that do not share slots.
	reserved map[string]chan struct{}
}

// Listen binds a ROUTER socket to addr (for example "tcp://127.0.0.1:27444",
// or "tcp://127.0.0.1:*" for a port chosen by the system). Binding happens
// here, so an address in use fails now rather than inside Run. Without
// WithSecurity the socket is plaintext and open to anyone who reaches it.
func Listen(addr string, h Handler, log *slog.Logger, opts ...Option) (*Server, error) {
	o := applyOptions(opts)
	s := &Server{handler: h, log: log, slots: make(chan struct{}, MaxInFlight), sec: o.sec}
	var err error
	if s.router, err = newSocket(zmq.ROUTER, MaxRequestSize); err != nil {
		return nil, err
	}
	if s.unregister, err = secureServer(s.router, o.sec); err != nil {
		s.router.Close()
		return nil, err
	}
	if err = s.router.Bind(addr); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if s.endpoint, err = s.router.GetLastEndpoint(); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("bound endpoint: %w", err)
	}
	if s.out, s.pull, err = newOutlet("replies"); err != nil {
		s.closeSockets()
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
// reply and closes the sockets.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeSockets()
	quit := make(chan struct{})
	defer close(quit)
	go s.drain(ctx, quit)

	poller := zmq.NewPoller()
	poller.Add(s.router, zmq.POLLIN)
	poller.Add(s.pull, zmq.POLLIN)
	stopping := false
	for {
		polled, err := poller.Poll(-1)
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		for _, p := range polled {
			if p.Socket == s.router {
				role, msg, err := s.receive()
				if err != nil {
					return fmt.Errorf("receive: %w", err)
				}
				if !stopping {
					s.dispatch(ctx, role, msg)
				}
				continue
			}
			msg, err := p.Socket.RecvMessageBytes(0)
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			switch {
			case isMarker(msg, stopMarker):
				// ctx has ended: serve no more, let handlers finish.
				stopping = true
			case isMarker(msg, doneMarker):
				// Every handler has replied, or the drain timed out.
				return nil
			default:
				if _, err := s.router.SendMessage(msg); err != nil {
					s.log.Warn("send reply", "err", err)
				}
			}
		}
	}
}

// drain waits for ctx to end, tells the polling loop to stop taking
// requests, and once in-flight handlers have replied (or drainTimeout
// passed) tells it to return. Replies travel the same outlet ahead of
// the done marker, so none is lost. quit ends it if Run returned first.
func (s *Server) drain(ctx context.Context, quit chan struct{}) {
	select {
	case <-ctx.Done():
	case <-quit:
		return
	}
	s.mark(stopMarker)
	handled := make(chan struct{})
	go func() { s.inflight.Wait(); close(handled) }()
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	select {
	case <-handled:
	case <-deadline.C:
		s.log.Warn("shutdown: handlers still running, closing anyway")
	case <-quit:
		return
	}
	s.mark(doneMarker)
}

// mark sends a control message to the polling loop.
func (s *Server) mark(marker [][]byte) {
	if err := s.out.send(marker); err != nil {
		s.log.Warn("signal server loop", "err", err)
	}
}

// receive reads one request from the ROUTER with the role of its sender.
// The ZAP handler stamped the role on the connection as its user id, which
// every frame from the peer carries; the first frame, the routing id, is
// made by the ROUTER itself and carries none.
func (s *Server) receive() (role string, msg [][]byte, err error) {
	first, err := s.router.RecvBytes(0)
	if err != nil {
		return "", nil, err
	}
	msg = [][]byte{first}
	for {
		more, err := s.router.GetRcvmore()
		if err != nil || !more {
			return role, msg, err
		}
		var frame []byte
		if len(msg) == 1 {
			var meta map[string]string
			frame, meta, err = s.router.RecvBytesWithMetadata(0, userID)
			role = meta[userID]
		} else {
			frame, err = s.router.RecvBytes(0)
		}
		if err != nil {
			return "", nil, err
		}
		msg = append(msg, frame)
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
	s.inflight.Add(1)
	go func() {
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
	}()
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
		s.log.Error("request failed", "method", method, "err", err)
	}
	return res, err
}

func (s *Server) reply(envelope [][]byte, res any, err error) {
	msg := make([][]byte, 0, len(envelope)+1)
	msg = append(msg, envelope...)
	if err := s.out.send(append(msg, encodeReply(res, err))); err != nil {
		// Only after Run has returned: the reply is dropped, and the
		// caller sends the request again to whichever server is there.
		s.log.Warn("queue reply", "err", err)
	}
}

func (s *Server) closeSockets() {
	if s.out != nil {
		s.out.close()
	}
	for _, sock := range []*zmq.Socket{s.router, s.pull} {
		if sock != nil {
			sock.Close()
		}
	}
	if s.unregister != nil {
		s.unregister()
	}
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
