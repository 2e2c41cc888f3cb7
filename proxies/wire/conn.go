package wire

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	zmq "github.com/pebbe/zmq4"
)

// errClosed is what sending on a closed conn returns.
var errClosed = errors.New("closed")

// inbound is one message received on a conn, with the role of its
// sender where the socket knows it (a server's CURVE peers).
type inbound struct {
	role string
	msg  [][]byte
}

// conn is a bus socket that goroutines share without a goroutine of its
// own in between. Whoever sends takes the mutex and sends directly; one
// goroutine (serve) waits for input in Go's network poller, on a
// duplicate of the socket's ZMQ_FD, and takes the mutex only to read.
// ZeroMQ allows a socket to be used from several threads one at a time
// across a full memory barrier, which the mutex is. No call waits inside
// the C library, so no goroutine hand-off, inproc hop or OS thread wake
// stands between a caller and the socket: on a loopback round trip
// those hops were the largest cost (see README, The wire protocol).
//
// ZMQ_FD only says that the socket may have changed, and any call on the
// socket may consume that signal; so whoever makes a call also reads
// whatever input is ready (drainLocked), and the poller's goroutine looks
// again after every wake.
type conn struct {
	mu      sync.Mutex
	sock    *zmq.Socket // nil once closed
	closing bool
	file    *os.File // the duplicate of ZMQ_FD
	raw     syscall.RawConn
	recv    func(*zmq.Socket) (inbound, error)
	handle  func(inbound)
}

// newConn shares sock. recv reads one message that is ready; handle deals
// with one, outside the mutex. conn owns sock from now on.
func newConn(sock *zmq.Socket, recv func(*zmq.Socket) (inbound, error), handle func(inbound)) (*conn, error) {
	fd, err := sock.GetFd()
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("socket fd: %w", err)
	}
	// A duplicate, because closing the os.File closes its descriptor and
	// the socket's own belongs to libzmq; both name the same eventfd, so
	// the duplicate is woken by what wakes the original.
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		sock.Close()
		return nil, fmt.Errorf("duplicate socket fd: %w", errno)
	}
	if err := syscall.SetNonblock(int(dup), true); err != nil {
		syscall.Close(int(dup))
		sock.Close()
		return nil, fmt.Errorf("socket fd: %w", err)
	}
	file := os.NewFile(dup, "zmq")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		sock.Close()
		return nil, fmt.Errorf("socket fd: %w", err)
	}
	return &conn{sock: sock, file: file, raw: raw, recv: recv, handle: handle}, nil
}

// send sends msg without blocking: zmq's EAGAIN when the socket cannot
// take it now (no peer, or its queue full).
func (c *conn) send(msg [][]byte) error {
	c.mu.Lock()
	if c.sock == nil || c.closing {
		c.mu.Unlock()
		return errClosed
	}
	_, err := c.sock.SendMessageDontwait(msg)
	in, _ := c.drainLocked()
	c.mu.Unlock()
	if len(in) > 0 {
		// Input that came in during the send: the poller's goroutine may
		// not be woken for it. Not handled here, because handling may
		// send again (a refusal) and a sender must not recurse.
		go c.handleAll(in)
	}
	return err
}

// drainLocked reads every message ready on the socket.
func (c *conn) drainLocked() ([]inbound, error) {
	var in []inbound
	for {
		events, err := c.sock.GetEvents()
		if err != nil || events&zmq.POLLIN == 0 {
			return in, err
		}
		m, err := c.recv(c.sock)
		if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
			return in, nil
		}
		if err != nil {
			return in, err
		}
		in = append(in, m)
	}
}

func (c *conn) handleAll(in []inbound) {
	for _, m := range in {
		c.handle(m)
	}
}

// serve waits for input and handles it until close; it returns nil then,
// or the socket's error.
func (c *conn) serve() error {
	var failed error
	err := c.raw.Read(func(uintptr) bool {
		for {
			c.mu.Lock()
			if c.sock == nil || c.closing {
				c.mu.Unlock()
				return true
			}
			in, err := c.drainLocked()
			c.mu.Unlock()
			c.handleAll(in)
			if err != nil {
				failed = err
				return true
			}
			if len(in) == 0 {
				return false // wait for the poller
			}
		}
	})
	if failed != nil {
		return failed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil // the poller's error says only that close began
	}
	return err
}

// close stops serve and closes the socket; later sends fail with
// errClosed.
func (c *conn) close() {
	c.mu.Lock()
	if c.sock == nil || c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	// Wakes serve and waits for it to leave the poller: without the
	// mutex, which serve may be waiting for.
	c.file.Close()
	c.mu.Lock()
	c.sock.Close()
	c.sock = nil
	c.mu.Unlock()
}
