package wire

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
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
// once: the zguide's asynchronous client. One goroutine owns the socket;
// a request carries an id in its routing envelope, [id, empty, request
// frames...], which the ROUTER echoes back, and the owner hands each
// reply to the caller waiting on that id. Calls therefore neither wait
// for a free socket nor for each other, and a slow one (a long poll)
// holds up nobody.
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
	in   *outlet       // requests to the owner
	done chan struct{} // closed when the owner has returned

	mu      sync.Mutex
	pending map[uint64]*call
	closed  bool

	closeOnce sync.Once
}

// call is one request waiting for its reply.
type call struct {
	deadline time.Time   // the caller's: the budget the server is given
	reply    chan []byte // buffered: the owner never waits on a caller
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
	in, pull, err := newOutlet("client")
	if err != nil {
		dealer.Close()
		return nil, err
	}
	c := &Client{
		endpoint: endpoint, timeout: timeout, log: log,
		busy: make(chan struct{}, maxBusy), in: in, done: make(chan struct{}),
		pending: make(map[uint64]*call),
	}
	go c.run(dealer, pull)
	return c, nil
}

// newDealer opens the client's socket to the server. Failing to open one
// means the process ran out of sockets or files for now: unavailable,
// worth a retry, not an internal fault. A malformed endpoint fails here.
func newDealer(endpoint string, timeout time.Duration, sec Security) (*zmq.Socket, error) {
	sock, err := newSocket(zmq.DEALER, MaxReplySize)
	if err != nil {
		return nil, faas.Errorf(faas.Unavailable, "%s: %v", endpoint, err)
	}
	for _, step := range []func() error{
		func() error { return secureClient(sock, sec) },
		// Queue requests only on a live connection: while the server is
		// down (or refuses our handshake) they wait in the owner's outbox,
		// where those whose caller gave up are dropped, instead of
		// reaching a restarted server in a burst nobody waits for.
		func() error { return sock.SetImmediate(true) },
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
	select {
	case c.busy <- struct{}{}:
		defer func() { <-c.busy }()
	case <-ctx.Done():
		return faas.Errorf(faas.Unavailable, "%s: no reply from %s: %v", method, c.endpoint, ctx.Err())
	}
	deadline, _ := ctx.Deadline()
	id := c.seq.Add(1)
	cl := &call{deadline: deadline, reply: make(chan []byte, 1)}
	if err := c.register(id, cl); err != nil {
		return err
	}
	defer c.unregister(id)
	// The last frame is the budget, which the owner fills in when it puts
	// the request on the socket: only then is it known what is left.
	frames := [][]byte{binary.BigEndian.AppendUint64(nil, id), nil, []byte(method), body, []byte(tracing.Parent(ctx)), nil}
	wait := time.NewTimer(c.timeout + hold)
	defer wait.Stop()
	for try := 1; ; try++ {
		if err := c.in.send(frames); err != nil {
			return faas.Errorf(faas.Unavailable, "%s to %s: %v", method, c.endpoint, err)
		}
		select {
		case frame := <-cl.reply:
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

func (c *Client) register(id uint64, cl *call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return faas.Errorf(faas.Unavailable, "client for %s is closed", c.endpoint)
	}
	c.pending[id] = cl
	return nil
}

func (c *Client) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// waiting returns the call still waiting under the id in an envelope
// frame, or nil.
func (c *Client) waiting(frame []byte) *call {
	if len(frame) != idLen {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[binary.BigEndian.Uint64(frame)]
}

// run owns the DEALER socket: it sends the requests callers hand it
// through the outlet, and hands each reply to the caller waiting for it.
// A request the socket cannot take yet (no live connection) waits in the
// outbox, while its caller does.
func (c *Client) run(dealer, pull *zmq.Socket) {
	defer close(c.done)
	defer dealer.Close()
	defer pull.Close()
	poller := zmq.NewPoller()
	poller.Add(pull, zmq.POLLIN)
	dealerID := poller.Add(dealer, zmq.POLLIN)
	var outbox [][][]byte
	for {
		events := zmq.POLLIN
		if len(outbox) > 0 {
			events |= zmq.POLLOUT
		}
		if _, err := poller.Update(dealerID, events); err != nil {
			c.log.Error("bus client stopped", "endpoint", c.endpoint, "err", err)
			return
		}
		if _, err := poller.Poll(-1); err != nil {
			c.log.Error("bus client stopped", "endpoint", c.endpoint, "err", err)
			return
		}
		// Read everything ready, not one message per poll: a poll is a
		// system call, and under load many requests and replies are.
		for {
			msg, err := pull.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			if isMarker(msg, stopMarker) {
				return
			}
			outbox = append(outbox, msg)
		}
		for {
			msg, err := dealer.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			c.deliver(msg)
		}
		outbox = c.flush(dealer, outbox)
	}
}

// deliver hands a reply, [id, empty, reply], to its caller, if it still
// waits: a duplicate (the answer to a request sent twice) or the answer
// to a caller that gave up is dropped.
func (c *Client) deliver(msg [][]byte) {
	if len(msg) != 3 || len(msg[1]) != 0 {
		c.log.Warn("dropped malformed reply", "endpoint", c.endpoint, "frames", len(msg))
		return
	}
	if cl := c.waiting(msg[0]); cl != nil {
		select {
		case cl.reply <- msg[2]:
		default: // a duplicate is already there
		}
	}
}

// flush sends what it can of the outbox, oldest first, and returns the
// rest. A request whose caller has gone is dropped unsent.
func (c *Client) flush(dealer *zmq.Socket, outbox [][][]byte) [][][]byte {
	for len(outbox) > 0 {
		msg := outbox[0]
		cl := c.waiting(msg[0])
		if cl != nil {
			msg[len(msg)-1] = encodeBudget(cl.deadline)
		}
		if cl == nil || msg[len(msg)-1] == nil {
			outbox = outbox[1:]
			continue
		}
		_, err := dealer.SendMessageDontwait(msg)
		if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
			break // no live connection: POLLOUT says when there is one
		}
		if err != nil {
			// The caller sends it again when its reply is overdue.
			c.log.Warn("send request", "endpoint", c.endpoint, "err", err)
		}
		outbox = outbox[1:]
	}
	if len(outbox) == 0 {
		return nil // let the backing array of a burst go
	}
	return outbox
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

// Close stops the client and closes its socket; calls under way end
// with Unavailable.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		if err := c.in.send(stopMarker); err != nil {
			c.log.Warn("stop bus client", "endpoint", c.endpoint, "err", err)
		}
		<-c.done
		c.in.close()
	})
	return nil
}
