package pool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"faas/proxies/faas"
	"faas/worker/sandbox"
)

// The parent and a sandbox talk over the sandbox's stdin and stdout, one
// request and one reply at a time, in frames:
//
//	total length (uint32) | header length (uint32) | header (JSON) | parts
//
// The header is small and names the lengths of the parts that follow it;
// the parts (source, arguments, result value, logs) travel as raw bytes, so
// they are neither escaped nor validated on the way, and a megabyte of
// arguments costs one copy. Lengths are little-endian.

// frameHead is the size of the two lengths that start a frame.
const frameHead = 8

// Key names the function version a job runs: the sandbox compiles each key
// once and caches the program.
type Key struct {
	Owner   string `json:"o"`
	Name    string `json:"n"`
	Version int64  `json:"v"`
}

func (k Key) String() string { return fmt.Sprintf("%s/%s@%d", k.Owner, k.Name, k.Version) }

// request is a job for the sandbox. The source is sent only when the
// sandbox has asked for it (reply.NeedSource): a function runs many times
// and is compiled once per sandbox.
type request struct {
	Key      Key            `json:"k"`
	Limits   sandbox.Limits `json:"l"`
	MemoryMB int            `json:"m"`
	// SourceLen and ArgsLen are the lengths of the parts.
	SourceLen int  `json:"s,omitempty"`
	HasSource bool `json:"hs,omitempty"`
	// Env comes with the source (see Job.Env).
	Env     map[string]string `json:"env,omitempty"`
	ArgsLen int               `json:"a,omitempty"`
	// Stream asks for the console lines while the job runs, in reply
	// frames of their own before the result (reply.LinesLen).
	Stream bool `json:"st,omitempty"`
	// Probe asks a test binary's sandbox to report on its fences.
	Probe bool `json:"p,omitempty"`
}

// reply is a sandbox.Result, or a request for the function's source, or
// word that the source sent has compiled and the job has started: the
// parent's deadline for the job runs from then, so that compiling a large
// source does not eat into the job's time.
type reply struct {
	Err        *faas.Error   `json:"e,omitempty"`
	Duration   time.Duration `json:"d,omitempty"`
	NeedSource bool          `json:"ns,omitempty"`
	Compiled   bool          `json:"c,omitempty"`
	// ValueLen is the length of the result value, which is present when
	// Err is nil.
	ValueLen int `json:"v,omitempty"`
	LogsLen  int `json:"g,omitempty"`
	// LinesLen is the length of a JSON array of faas.LogLine the job
	// printed: such a reply is news of a running job, and more follow.
	LinesLen int `json:"ln,omitempty"`
	// Host names a request of the running job's to its worker (see
	// host.go), whose argument, HostLen bytes of JSON, is the part; the
	// worker answers with a hostAnswer frame, and more replies follow.
	Host    string `json:"h,omitempty"`
	HostLen int    `json:"hl,omitempty"`
	// Calls are the fused calls of the job, with its result.
	Calls          []faas.Call `json:"calls,omitempty"`
	CallsTruncated bool        `json:"ct,omitempty"`
}

// hello is the first frame a sandbox sends, once it is ready for jobs.
type hello struct {
	// NoKernelLimit says why the kernel cannot enforce memory caps here,
	// if it cannot: then only the watchdog does.
	NoKernelLimit string `json:"nokernel,omitempty"`
	// Unfenced lists the fences the sandbox could not put up, as
	// "fence: reason".
	Unfenced []string `json:"unfenced,omitempty"`
}

// errFrameTooLarge means the other side sent more than it may: a broken
// or hostile sandbox, which is killed.
var errFrameTooLarge = errors.New("frame too large")

var zeroHead [frameHead]byte

// encoder writes frames through one reused buffer, so a job allocates no
// new buffer on the way out once the buffer has grown to the usual size.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}

// frame builds a frame from the header and parts. The result is valid
// until the next call.
func (e *encoder) frame(hdr any, parts ...[]byte) ([]byte, error) {
	e.buf.Reset()
	e.buf.Write(zeroHead[:])
	if err := e.enc.Encode(hdr); err != nil {
		return nil, err
	}
	hlen := e.buf.Len() - frameHead
	for _, p := range parts {
		e.buf.Write(p)
	}
	b := e.buf.Bytes()
	if uint64(len(b)-4) > 1<<32-1 {
		return nil, errFrameTooLarge
	}
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(b)-4))
	binary.LittleEndian.PutUint32(b[4:8], uint32(hlen))
	return b, nil
}

// decoder reads frames into one reused buffer.
type decoder struct {
	r   io.Reader
	buf []byte
}

// next reads a frame of at most max bytes, decodes its header into hdr
// and returns the parts, which stay valid until the next call.
func (d *decoder) next(hdr any, max int) ([]byte, error) {
	var head [frameHead]byte
	if _, err := io.ReadFull(d.r, head[:]); err != nil {
		return nil, err
	}
	total := int(binary.LittleEndian.Uint32(head[0:4]))
	hlen := int(binary.LittleEndian.Uint32(head[4:8]))
	if total > max || total < 4 || hlen > total-4 {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, total, max)
	}
	n := total - 4
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if err := json.Unmarshal(b[:hlen], hdr); err != nil {
		return nil, fmt.Errorf("bad frame header: %w", err)
	}
	return b[hlen:], nil
}

// split cuts the parts of a frame by the lengths its header gives.
func split(parts []byte, lens ...int) ([][]byte, error) {
	out := make([][]byte, len(lens))
	for i, n := range lens {
		if n < 0 || n > len(parts) {
			return nil, errors.New("bad frame: parts shorter than the header says")
		}
		out[i], parts = parts[:n:n], parts[n:]
	}
	if len(parts) != 0 {
		return nil, errors.New("bad frame: parts longer than the header says")
	}
	return out, nil
}
