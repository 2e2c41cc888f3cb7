package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// DefaultTimeout is how long a client waits for one reply before it
// assumes the server is gone, drops the socket and tries again.
const DefaultTimeout = 3 * time.Second

// pollSlice bounds one wait inside the C library, so that a cancelled
// context is noticed promptly even while a reply is pending.
const pollSlice = 50 * time.Millisecond

// maxIdle bounds the sockets a client keeps open for reuse.
const maxIdle = 64

// maxBusy bounds the calls a client has under way at once; more wait for
// one to end. Each call holds a socket, and sockets are a limited
// resource of the process (ZeroMQ's own cap is 1023 by default): without
// this bound a burst of calls would exhaust them and every caller,
// including unrelated ones, would fail.
const maxBusy = 256

// Client sends requests to one server over a pool of REQ sockets. A REQ
// socket serves one goroutine at a time: a call takes one out of the pool
// and puts it back once the reply is in. It is the zguide's Lazy Pirate: a
// reply that does not come in time means the socket is closed (a REQ socket
// cannot send twice in a row) and the request is sent again on a new one,
// until the caller's context ends. Every request must therefore be safe to
// repeat; the Store and JobQueue APIs are built so.
type Client struct {
	endpoint string
	timeout  time.Duration
	log      *slog.Logger
	sec      Security

	busy chan struct{}

	mu     sync.Mutex
	idle   []*zmq.Socket
	closed bool
}

// Dial returns a client for the server at endpoint. Like ZeroMQ itself it
// connects lazily, so the server may start later. timeout is the wait for
// one reply (DefaultTimeout if zero). Without WithSecurity the client
// speaks plaintext, which a CURVE server refuses.
func Dial(endpoint string, timeout time.Duration, log *slog.Logger, opts ...Option) (*Client, error) {
	if endpoint == "" {
		return nil, errors.New("empty endpoint")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &Client{endpoint: endpoint, timeout: timeout, log: log, sec: applyOptions(opts).sec, busy: make(chan struct{}, maxBusy)}
	// Connect one socket now so a malformed endpoint fails here.
	sock, err := c.newSocket()
	if err != nil {
		return nil, err
	}
	c.put(sock)
	return c, nil
}

// Endpoint is the server address the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// Call sends method with req as its JSON body and decodes the result into
// resp (which may be nil). Errors from the server come back as *faas.Error;
// an unreachable server yields code Unavailable once ctx ends.
func (c *Client) Call(ctx context.Context, method string, req, resp any) error {
	return c.CallHold(ctx, 0, method, req, resp)
}

// CallHold is Call for requests the server may hold on purpose (long polls):
// each try waits hold longer than the usual timeout.
func (c *Client) CallHold(ctx context.Context, hold time.Duration, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", method, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		// A call with no deadline still ends: three tries' worth.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*(c.timeout+hold))
		defer cancel()
	}
	frames := [][]byte{[]byte(method), body}
	if parent := tracing.Parent(ctx); parent != "" {
		frames = append(frames, []byte(parent))
	}
	for try := 1; ; try++ {
		frame, err := c.roundTrip(ctx, c.timeout+hold, frames)
		if err == nil {
			return decodeReply(frame, resp)
		}
		if ctx.Err() != nil {
			return faas.Errorf(faas.Unavailable, "%s: no reply from %s: %v", method, c.endpoint, ctx.Err())
		}
		if !errors.Is(err, errNoReply) {
			return err
		}
		c.log.Debug("no reply, retrying on a new socket", "endpoint", c.endpoint, "method", method, "try", try)
	}
}

var errNoReply = errors.New("no reply")

// roundTrip sends one request and waits up to timeout (or ctx) for its reply.
func (c *Client) roundTrip(ctx context.Context, timeout time.Duration, frames [][]byte) ([]byte, error) {
	select {
	case c.busy <- struct{}{}:
		defer func() { <-c.busy }()
	case <-ctx.Done():
		return nil, errNoReply
	}
	sock, err := c.get()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if err := send(ctx, sock, deadline, frames); err != nil {
		sock.Close()
		if errors.Is(err, errNoReply) {
			return nil, err
		}
		return nil, faas.Errorf(faas.Unavailable, "send %s to %s: %v", frames[0], c.endpoint, err)
	}
	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)
	for {
		left := timeLeft(ctx, deadline)
		if left <= 0 {
			// The reply may still come; this socket can never send again.
			sock.Close()
			return nil, errNoReply
		}
		polled, err := poller.Poll(min(left, pollSlice))
		if err != nil {
			sock.Close()
			return nil, fmt.Errorf("poll %s: %w", c.endpoint, err)
		}
		if len(polled) == 0 {
			continue
		}
		msg, err := sock.RecvMessageBytes(0)
		if err != nil || len(msg) != 1 {
			sock.Close()
			return nil, faas.Errorf(faas.Unavailable, "bad reply from %s (%d frames): %v", c.endpoint, len(msg), err)
		}
		c.put(sock)
		return msg[0], nil
	}
}

// send sends the request once the socket can take it. A REQ socket has
// nowhere to queue a request while it has no connected peer (a CURVE
// handshake the server refused leaves it so), and a blocking send would
// then wait forever: the send waits, like the reply, until the deadline or
// ctx.
func send(ctx context.Context, sock *zmq.Socket, deadline time.Time, frames [][]byte) error {
	var poller *zmq.Poller
	for {
		_, err := sock.SendMessageDontwait(frames)
		if zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
			return err
		}
		left := timeLeft(ctx, deadline)
		if left <= 0 {
			return errNoReply
		}
		if poller == nil {
			poller = zmq.NewPoller()
			poller.Add(sock, zmq.POLLOUT)
		}
		if _, err := poller.Poll(min(left, pollSlice)); err != nil {
			return fmt.Errorf("poll: %w", err)
		}
	}
}

// timeLeft is what remains before the deadline or ctx's, whichever comes
// first; zero once ctx has ended.
func timeLeft(ctx context.Context, deadline time.Time) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	left := time.Until(deadline)
	if d, ok := ctx.Deadline(); ok && time.Until(d) < left {
		left = time.Until(d)
	}
	return left
}

func decodeReply(frame []byte, resp any) error {
	var r Reply
	if err := json.Unmarshal(frame, &r); err != nil {
		return faas.Errorf(faas.Internal, "decode reply: %v", err)
	}
	if r.Error != nil {
		return r.Error
	}
	if resp == nil || len(r.Res) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Res, resp); err != nil {
		return faas.Errorf(faas.Internal, "decode reply: %v", err)
	}
	return nil
}

func (c *Client) get() (*zmq.Socket, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, faas.Errorf(faas.Unavailable, "client for %s is closed", c.endpoint)
	}
	if n := len(c.idle); n > 0 {
		sock := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return sock, nil
	}
	c.mu.Unlock()
	return c.newSocket()
}

func (c *Client) put(sock *zmq.Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle) >= maxIdle {
		sock.Close()
		return
	}
	c.idle = append(c.idle, sock)
}

// newSocket opens a socket to the server. Failing to open one means the
// process ran out of sockets or files for now: unavailable, worth a retry,
// not an internal fault.
func (c *Client) newSocket() (*zmq.Socket, error) {
	sock, err := newSocket(zmq.REQ, MaxReplySize)
	if err != nil {
		return nil, faas.Errorf(faas.Unavailable, "%s: %v", c.endpoint, err)
	}
	if err := secureClient(sock, c.sec); err != nil {
		sock.Close()
		return nil, err
	}
	if err := sock.Connect(c.endpoint); err != nil {
		sock.Close()
		return nil, fmt.Errorf("connect %s: %w", c.endpoint, err)
	}
	return sock, nil
}

// Close closes the idle sockets; calls still under way close theirs when
// they end.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, sock := range c.idle {
		sock.Close()
	}
	c.idle = nil
	return nil
}
