package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// DefaultTimeout is how long a client waits for one reply before it
// assumes the request or its reply was lost and sends the request again.
const DefaultTimeout = 3 * time.Second

// maxBusy bounds the calls a client has under way at once; more wait for
// one to end, within their own deadline. A server refuses what it cannot
// take (MaxInFlight, shared by all its clients), and a burst from one
// process is better queued here than refused there.
const maxBusy = 256

// idLen is the size of a request id: a uint64, big-endian.
const idLen = 8

// Client sends requests to one server over one DEALER socket, many at
// once: the zguide's asynchronous client. A request carries an id in its
// routing envelope, [id, empty, request frames...], which the ROUTER
// echoes back, and each reply goes to the caller waiting on that id.
// Calls therefore neither wait for a free socket nor for each other, and
// a slow one (a long poll) holds up nobody. Callers send on the socket
// themselves, one at a time; one goroutine reads it (see conn).
//
// It keeps the Lazy Pirate's guarantees: a reply that does not come in
// time means the request is sent again, with the same id, until the
// caller's context ends (every request must be safe to repeat; the Store
// and JobQueue APIs are built so); the first reply wins and a late
// duplicate is dropped. ZeroMQ reconnects to a restarted server by
// itself, and ZMTP heartbeats drop a connection whose peer went silent,
// which closing the REQ socket used to do.
type Client struct {
	endpoint string
	timeout  time.Duration
	log      *slog.Logger

	busy chan struct{}
	seq  atomic.Uint64
	conn *conn
	done chan struct{} // closed when the reading goroutine has returned

	mu      sync.Mutex
	pending map[uint64]chan []byte // by request id; buffered, never waited on
	closed  bool

	closeOnce sync.Once
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
	dealer, err := newDealer(endpoint, timeout, applyOptions(opts).sec)
	if err != nil {
		return nil, err
	}
	c := &Client{
		endpoint: endpoint, timeout: timeout, log: log,
		busy: make(chan struct{}, maxBusy), done: make(chan struct{}),
		pending: make(map[uint64]chan []byte),
	}
	recv := func(sock *zmq.Socket) (inbound, error) {
		msg, err := sock.RecvMessageBytes(zmq.DONTWAIT)
		return inbound{msg: msg}, err
	}
	if c.conn, err = newConn(dealer, recv, c.deliver); err != nil {
		return nil, err
	}
	go func() {
		defer close(c.done)
		if err := c.conn.serve(); err != nil {
			c.log.Error("bus client stopped", "endpoint", c.endpoint, "err", err)
		}
	}()
	return c, nil
}

// newDealer opens the client's socket to the server. Failing to open one
// means the process ran out of sockets or files for now: unavailable,
// worth a retry, not an internal fault. A malformed endpoint fails here.
// Requests sent before the connection is up (or while it is down) wait
// in the socket's queue and leave once it is.
func newDealer(endpoint string, timeout time.Duration, sec Security) (*zmq.Socket, error) {
	sock, err := newSocket(zmq.DEALER, MaxReplySize)
	if err != nil {
		return nil, faas.Errorf(faas.Unavailable, "%s: %v", endpoint, err)
	}
	for _, step := range []func() error{
		func() error { return secureClient(sock, endpoint, sec) },
		// A peer that vanished without closing its connection (a host
		// gone) would otherwise swallow requests until TCP gives up.
		func() error { return sock.SetHeartbeatIvl(timeout) },
		func() error { return sock.SetHeartbeatTimeout(2 * timeout) },
		func() error { return sock.Connect(endpoint) },
	} {
		if err := step(); err != nil {
			sock.Close()
			return nil, fmt.Errorf("dial %s: %w", endpoint, err)
		}
	}
	return sock, nil
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
	body, err := Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", method, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		// A call with no deadline still ends: three tries' worth.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*(c.timeout+hold))
		defer cancel()
	}
	select {
	case c.busy <- struct{}{}:
		defer func() { <-c.busy }()
	case <-ctx.Done():
		return faas.Errorf(faas.Unavailable, "%s: no reply from %s: %v", method, c.endpoint, ctx.Err())
	}
	deadline, _ := ctx.Deadline()
	id := c.seq.Add(1)
	reply := make(chan []byte, 1)
	if err := c.register(id, reply); err != nil {
		return err
	}
	defer c.unregister(id)
	frames := [][]byte{binary.BigEndian.AppendUint64(nil, id), nil, []byte(method), body, []byte(tracing.Parent(ctx)), nil}
	wait := time.NewTimer(c.timeout + hold)
	defer wait.Stop()
	for try := 1; ; try++ {
		// The budget is what is left now, not when the call began.
		if frames[5] = encodeBudget(deadline); frames[5] == nil {
			return faas.Errorf(faas.Unavailable, "%s: no reply from %s: %v", method, c.endpoint, context.DeadlineExceeded)
		}
		err := c.conn.send(frames)
		if errors.Is(err, errClosed) {
			return faas.Errorf(faas.Unavailable, "%s: client for %s is closed", method, c.endpoint)
		}
		if err != nil {
			// Not queued (no server yet and the queue full): like a lost
			// request, sent again when the reply is overdue.
			c.log.Debug("request not sent", "endpoint", c.endpoint, "method", method, "err", err)
		}
		select {
		case frame := <-reply:
			return decodeReply(frame, resp)
		case <-ctx.Done():
			return faas.Errorf(faas.Unavailable, "%s: no reply from %s: %v", method, c.endpoint, ctx.Err())
		case <-c.done:
			return faas.Errorf(faas.Unavailable, "%s: client for %s is closed", method, c.endpoint)
		case <-wait.C:
			wait.Reset(c.timeout + hold)
			c.log.Debug("no reply, sending again", "endpoint", c.endpoint, "method", method, "try", try)
		}
	}
}

func (c *Client) register(id uint64, reply chan []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return faas.Errorf(faas.Unavailable, "client for %s is closed", c.endpoint)
	}
	c.pending[id] = reply
	return nil
}

func (c *Client) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// deliver hands a reply, [id, empty, reply], to its caller, if it still
// waits: a duplicate (the answer to a request sent twice) or the answer
// to a caller that gave up is dropped.
func (c *Client) deliver(in inbound) {
	msg := in.msg
	if len(msg) != 3 || len(msg[0]) != idLen || len(msg[1]) != 0 {
		c.log.Warn("dropped malformed reply", "endpoint", c.endpoint, "frames", len(msg))
		return
	}
	c.mu.Lock()
	reply := c.pending[binary.BigEndian.Uint64(msg[0])]
	c.mu.Unlock()
	select {
	case reply <- msg[2]: // a nil channel (nobody waits) never takes it
	default: // a duplicate is already there
	}
}

// decodeReply decodes a reply frame, its result straight into resp: the
// decoder fills the value an interface's non-nil pointer points to, so the
// result is not first copied out as raw JSON and then parsed again.
func decodeReply(frame []byte, resp any) error {
	r := Reply{Res: resp}
	if resp == nil {
		// Nobody reads a result: skip it rather than build one of maps.
		r.Res = new(skip)
	}
	if err := Unmarshal(frame, &r); err != nil {
		return faas.Errorf(faas.Internal, "decode reply: %v", err)
	}
	if r.Error != nil {
		return r.Error
	}
	return nil
}

// skip is a result decoded only to be dropped.
type skip struct{}

func (*skip) UnmarshalJSON([]byte) error { return nil }

// Close stops the client and closes its socket; calls under way end
// with Unavailable.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.conn.close()
		<-c.done
	})
	return nil
}
