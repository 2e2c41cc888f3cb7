// Package wire is the ZeroMQ request/reply protocol between the platform's
// processes: the envelope, a ROUTER server that serves requests
// concurrently, and a pipelining DEALER client that survives restarted
// servers.
//
// A request is two frames, [method, body], three when the caller is part
// of a trace: [method, body, traceparent], the W3C trace context of the
// calling span, or four when it carries its deadline: [method, body,
// traceparent or empty, budget], the caller's time left as 8 bytes of
// big-endian nanoseconds. A reply is one frame holding a JSON Reply.
// Bodies are JSON; errors travel as faas.Error values.
package wire

import (
	"encoding/binary"
	"fmt"
	"time"

	"faas/proxies/faas"
	"faas/proxies/tracing"
)

// MaxMethodLen bounds a method name so a hostile peer cannot make the
// server log or look up arbitrary data.
const MaxMethodLen = 64

// Reply is the single frame answering a request. Res is the handler's
// result as a typed value rather than raw JSON: it is marshalled in the
// same pass as the frame (marshalling it alone first would make the
// frame's marshal scan and copy it once more to validate it), and a
// client decodes it straight into its caller's value, the non-nil pointer
// it puts in Res. A nil Res is left out.
type Reply struct {
	Res   any         `json:"res,omitempty"`
	Error *faas.Error `json:"error,omitempty"`
}

// Request is a decoded request.
type Request struct {
	Method string
	Body   []byte
	// Parent is the caller's W3C traceparent, "" outside a trace. It is
	// only bounded here; tracing.WithParent ignores a malformed one.
	Parent string
	// Budget is the time the caller had left when the request was sent;
	// the server's handler must be done within it. Without the frame
	// (HasBudget false: a REQ peer that sends none) the request runs
	// under the server's own context. A budget that is not positive means
	// nobody waits for the reply any more.
	Budget    time.Duration
	HasBudget bool
}

// budgetLen is the size of the budget frame: an int64 of nanoseconds.
const budgetLen = 8

// DecodeRequest splits the frames after the routing envelope into a
// request. It is the first code to touch bytes from the network. The
// trace frame is optional, so peers that never send it are still served.
func DecodeRequest(frames [][]byte) (Request, error) {
	if len(frames) < 2 || len(frames) > 4 {
		return Request{}, fmt.Errorf("request has %d frames, want 2 to 4", len(frames))
	}
	m := frames[0]
	if len(m) == 0 || len(m) > MaxMethodLen {
		return Request{}, fmt.Errorf("method name of %d bytes", len(m))
	}
	for _, c := range m {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return Request{}, fmt.Errorf("method name has byte %#x", c)
		}
	}
	r := Request{Method: string(m), Body: frames[1]}
	if len(frames) >= 3 {
		if len(frames[2]) > tracing.MaxParentLen {
			return Request{}, fmt.Errorf("trace frame of %d bytes, want at most %d", len(frames[2]), tracing.MaxParentLen)
		}
		r.Parent = string(frames[2])
	}
	if len(frames) == 4 {
		if len(frames[3]) != budgetLen {
			return Request{}, fmt.Errorf("budget frame of %d bytes, want %d", len(frames[3]), budgetLen)
		}
		r.Budget = time.Duration(int64(binary.BigEndian.Uint64(frames[3])))
		r.HasBudget = true
	}
	return r, nil
}

// encodeBudget is the budget frame for the time left until deadline, or
// nil once it has passed: a request nobody waits for is not worth sending.
// The frame carries the time left rather than the deadline itself so that
// the server need not share the client's clock.
func encodeBudget(deadline time.Time) []byte {
	left := time.Until(deadline)
	if left <= 0 {
		return nil
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, budgetLen), uint64(left))
}

// splitEnvelope separates the ROUTER routing frames, which end at the first
// empty frame, from the request frames.
func splitEnvelope(msg [][]byte) (envelope, rest [][]byte, ok bool) {
	for i, f := range msg {
		if len(f) == 0 {
			return msg[:i+1], msg[i+1:], i > 0
		}
	}
	return nil, nil, false
}

// encodeReply marshals a handler's outcome into a reply frame.
func encodeReply(res any, err error) []byte {
	if err == nil {
		b, merr := Marshal(Reply{Res: res})
		if merr == nil {
			return b
		}
		err = faas.Errorf(faas.Internal, "encode reply: %v", merr)
	}
	b, _ := Marshal(Reply{Error: faas.AsError(err)}) // an Error of strings always marshals
	return b
}
