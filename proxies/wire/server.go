package wire

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"faas/proxies/faas"
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

var serverSeq atomic.Int64

// Server answers requests on a ROUTER socket.
//
// One goroutine owns the ROUTER socket. Handlers hand their replies to a
// second goroutine that owns an inproc PUSH socket; the owner polls the
// matching PULL socket beside the ROUTER, so replies need no lock on the
// ROUTER and no polling timeout adds latency.
type Server struct {
	router   *zmq.Socket
	pull     *zmq.Socket
	push     *zmq.Socket
	endpoint string
	handler  Handler
	log      *slog.Logger
	replies  chan [][]byte
	inflight sync.WaitGroup
	slots    chan struct{}
}

// Listen binds a ROUTER socket to addr (for example "tcp://*:27444", or
// "tcp://127.0.0.1:*" for a port chosen by the system). Binding happens
// here, so an address in use fails now rather than inside Run.
func Listen(addr string, h Handler, log *slog.Logger) (*Server, error) {
	s := &Server{handler: h, log: log, replies: make(chan [][]byte, 256), slots: make(chan struct{}, MaxInFlight)}
	var err error
	if s.router, err = newSocket(zmq.ROUTER); err != nil {
		return nil, err
	}
	if err = s.router.Bind(addr); err != nil {
		s.router.Close()
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if s.endpoint, err = s.router.GetLastEndpoint(); err != nil {
		s.router.Close()
		return nil, fmt.Errorf("bound endpoint: %w", err)
	}
	inproc := fmt.Sprintf("inproc://wire-replies-%d", serverSeq.Add(1))
	if s.pull, err = newSocket(zmq.PULL); err == nil {
		err = s.pull.Bind(inproc)
	}
	if err == nil {
		s.push, err = newSocket(zmq.PUSH)
	}
	if err == nil {
		err = s.push.Connect(inproc)
	}
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("reply channel: %w", err)
	}
	return s, nil
}

// Endpoint is the address the server is bound to, with the real port.
func (s *Server) Endpoint() string { return s.endpoint }

// Run serves until ctx ends, then waits (briefly) for in-flight handlers to
// reply and closes the sockets.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeSockets()
	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go s.sendReplies(ctx, stop, senderDone)

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
			msg, err := p.Socket.RecvMessageBytes(0)
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			switch {
			case p.Socket == s.pull && isMarker(msg, stopMarker):
				// ctx has ended: drain in-flight handlers.
				stopping = true
				go func() { s.inflight.Wait(); close(stop) }()
			case p.Socket == s.pull && isMarker(msg, doneMarker):
				// The sender has forwarded every reply.
				<-senderDone
				return nil
			case p.Socket == s.pull:
				if _, err := s.router.SendMessage(msg); err != nil {
					s.log.Warn("send reply", "err", err)
				}
			case !stopping:
				s.dispatch(ctx, msg)
			}
		}
	}
}

// The sender's control messages to the polling loop: one frame, never a
// reply (replies carry a routing envelope).
var (
	stopMarker = []byte{}
	doneMarker = []byte{1}
)

func isMarker(msg [][]byte, marker []byte) bool {
	return len(msg) == 1 && string(msg[0]) == string(marker)
}

// dispatch starts a handler for one request, or refuses it.
func (s *Server) dispatch(ctx context.Context, msg [][]byte) {
	envelope, frames, ok := splitEnvelope(msg)
	if !ok {
		s.log.Debug("dropped message without envelope", "frames", len(msg))
		return
	}
	method, body, err := DecodeRequest(frames)
	if err != nil {
		s.reply(envelope, nil, faas.Errorf(faas.Invalid, "malformed request: %v", err))
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.reply(envelope, nil, faas.Errorf(faas.Unavailable, "server busy"))
		return
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		defer func() { <-s.slots }()
		res, err := s.serve(ctx, method, body)
		s.reply(envelope, res, err)
	}()
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
	s.replies <- append(msg, encodeReply(res, err))
}

// sendReplies owns the PUSH socket. When ctx ends it sends the stop
// marker, keeps forwarding replies until stop closes (all handlers done) or
// the drain times out, then sends the done marker and closes done.
func (s *Server) sendReplies(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	send := func(msg [][]byte) {
		if _, err := s.push.SendMessage(msg); err != nil {
			s.log.Warn("queue reply", "err", err)
		}
	}
	for {
		select {
		case msg := <-s.replies:
			send(msg)
			continue
		case <-ctx.Done():
		}
		break
	}
	s.mark(stopMarker)
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	for {
		select {
		case msg := <-s.replies:
			send(msg)
		case <-stop:
			// Replies queued before the last handler returned.
			for {
				select {
				case msg := <-s.replies:
					send(msg)
				default:
					s.mark(doneMarker)
					return
				}
			}
		case <-deadline.C:
			s.log.Warn("shutdown: handlers still running, closing anyway")
			s.mark(doneMarker)
			return
		}
	}
}

// mark sends a control message to the polling loop.
func (s *Server) mark(marker []byte) {
	if _, err := s.push.SendBytes(marker, 0); err != nil {
		s.log.Warn("signal server loop", "err", err)
	}
}

func (s *Server) closeSockets() {
	for _, sock := range []*zmq.Socket{s.router, s.pull, s.push} {
		if sock != nil {
			sock.Close()
		}
	}
}

// newSocket returns a socket that never blocks its closing on unsent
// messages, so shutdown cannot hang on a vanished peer.
func newSocket(t zmq.Type) (*zmq.Socket, error) {
	sock, err := zmq.NewSocket(t)
	if err != nil {
		return nil, fmt.Errorf("new socket: %w", err)
	}
	if err := sock.SetLinger(0); err != nil {
		sock.Close()
		return nil, fmt.Errorf("set linger: %w", err)
	}
	return sock, nil
}
