package wire

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	zmq "github.com/pebbe/zmq4"
)

// errClosed is what sending through a closed outlet returns.
var errClosed = errors.New("closed")

var inprocSeq atomic.Int64

// outlet is how goroutines hand messages to the goroutine that owns a
// bus socket: an inproc PUSH socket whose PULL end that goroutine polls
// beside its bus socket, so a message wakes it at once (no polling slice,
// no timer) and the bus socket never needs a lock. Senders take turns on
// the PUSH socket under a mutex rather than through a goroutine of its
// own: ZeroMQ lets a socket move between threads across a full memory
// barrier, which the mutex is, and the hop to another goroutine is what
// a round trip on loopback can least afford.
type outlet struct {
	mu   sync.Mutex
	push *zmq.Socket // nil once closed
}

// newOutlet returns an outlet and the PULL socket its messages arrive
// on, for the owning goroutine to poll. Neither end has a high-water
// mark: a sender holding the mutex must never block, and the owners
// bound what is in flight themselves (maxBusy, MaxInFlight).
func newOutlet(name string) (*outlet, *zmq.Socket, error) {
	addr := fmt.Sprintf("inproc://wire-%s-%d", name, inprocSeq.Add(1))
	pull, err := newSocket(zmq.PULL, -1)
	if err != nil {
		return nil, nil, err
	}
	push, err := newSocket(zmq.PUSH, -1)
	if err != nil {
		pull.Close()
		return nil, nil, err
	}
	for _, step := range []func() error{
		func() error { return pull.SetRcvhwm(0) },
		func() error { return push.SetSndhwm(0) },
		func() error { return pull.Bind(addr) }, // inproc: bind before connect
		func() error { return push.Connect(addr) },
	} {
		if err := step(); err != nil {
			pull.Close()
			push.Close()
			return nil, nil, fmt.Errorf("%s channel: %w", name, err)
		}
	}
	return &outlet{push: push}, pull, nil
}

// Control messages to an owner goroutine: one frame, never a request or a
// reply (those carry an envelope). stopMarker tells it to stop.
var (
	stopMarker = [][]byte{{}}
	doneMarker = [][]byte{{1}}
)

func isMarker(msg [][]byte, marker [][]byte) bool {
	return len(msg) == 1 && string(msg[0]) == string(marker[0])
}

// send hands msg to the owning goroutine. It never blocks: with no
// high-water mark the PUSH socket queues whatever its PULL end has not
// read yet, and once the owner has closed that end it refuses at once
// rather than waiting, mutex held, for a peer that will not come back.
func (o *outlet) send(msg [][]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.push == nil {
		return errClosed
	}
	_, err := o.push.SendMessageDontwait(msg)
	return err
}

// close closes the outlet; later sends fail with errClosed. Messages
// not yet received are dropped with it.
func (o *outlet) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.push != nil {
		o.push.Close()
		o.push = nil
	}
}
