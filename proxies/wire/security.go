package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	zmq "github.com/pebbe/zmq4"
)

// MaxRequestSize is every server socket's ZMQ_MAXMSGSIZE: libzmq drops the
// connection of a peer that announces a bigger frame, before allocating
// it. The largest legitimate requests are batches (jq.complete,
// db.CreateJobs, db.CompleteJobs): at most faas.MaxBatchBytes, 4 MiB, of
// arguments, results and logs when they hold several rows, and one row of
// 1 MiB of arguments (the frontend's limit), 1 MiB of result (the
// sandbox's) and 64 KiB of logs when alone; encoding/json may grow that
// up to six times by escaping <, > and & as \u003c: about 24 MiB at worst.
// 32 MiB leaves room for the envelope.
const MaxRequestSize = 32 << 20

// MaxReplySize is every client socket's ZMQ_MAXMSGSIZE. Replies come only
// from the server the client dialled (and, with CURVE, authenticated), but
// lists (a user's functions, the pending jobs a restarted queue reloads)
// have no bound in count, so this is what a client can afford to hold, not
// the largest legitimate reply: it stops a wrong endpoint from exhausting
// the client without cutting off a big but honest list.
const MaxReplySize = 512 << 20

// Security says how a bus socket authenticates its peer and encrypts its
// traffic: CURVE both ways (the zguide's Ironhouse pattern), or, for the
// zero value, plaintext with no authentication at all.
type Security struct {
	// PublicKey and SecretKey are this end's CURVE keypair, Z85-encoded.
	PublicKey, SecretKey string
	// ServerKey is, for a client, the public key of the server it dials:
	// the handshake fails against any other server.
	ServerKey string
	// Clients maps, for a server, each client public key it accepts to
	// the role that key carries. Any other key is refused in the handshake.
	Clients map[string]string
	// Allow reports, for a server, whether a role may call a method; a
	// refused call is answered Forbidden and never reaches the handler.
	// Nil allows every accepted client every method.
	Allow func(role, method string) bool
}

// Plaintext reports whether the socket runs without CURVE.
func (s Security) Plaintext() bool { return s.SecretKey == "" }

// Option changes how Listen or Dial sets up sockets.
type Option func(*options)

type options struct {
	sec  Security
	also []string
}

// WithSecurity makes the sockets use sec instead of plaintext.
func WithSecurity(sec Security) Option { return func(o *options) { o.sec = sec } }

// AlsoBind makes Listen bind its socket to endpoint as well (an empty one
// is skipped): an inproc:// endpoint for the clients that share the
// server's process (`faas up`), which then skip the loopback TCP stack and
// libzmq's I/O thread. A round trip over inproc takes about 15 µs where
// one over loopback TCP takes about 160 µs (BenchmarkCall).
func AlsoBind(endpoint string) Option {
	return func(o *options) {
		if endpoint != "" {
			o.also = append(o.also, endpoint)
		}
	}
}

func applyOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// secureServer makes sock a CURVE server that accepts only sec.Clients,
// through the process's ZAP handler under a domain of its own. The
// returned function withdraws the domain once the socket is closed.
func secureServer(sock *zmq.Socket, sec Security) (func(), error) {
	if sec.Plaintext() {
		return func() {}, nil
	}
	if len(sec.Clients) == 0 {
		return nil, errors.New("secure server with no client keys would refuse everyone")
	}
	domain, err := zapHandler.register(sec.Clients)
	if err != nil {
		return nil, err
	}
	if err := sock.ServerAuthCurve(domain, sec.SecretKey); err != nil {
		zapHandler.unregister(domain)
		return nil, fmt.Errorf("curve server: %w", err)
	}
	return func() { zapHandler.unregister(domain) }, nil
}

// secureClient makes sock a CURVE client of the server whose public key is
// sec.ServerKey. Over inproc, where libzmq runs no handshake, the socket
// names its public key in its routing id instead (see inprocRole).
func secureClient(sock *zmq.Socket, endpoint string, sec Security) error {
	if sec.Plaintext() {
		return nil
	}
	if sec.ServerKey == "" {
		return errors.New("secure client without the server's public key")
	}
	if strings.HasPrefix(endpoint, "inproc://") {
		id := fmt.Sprintf("%s/%d", sec.PublicKey, inprocPeers.Add(1))
		if err := sock.SetIdentity(id); err != nil {
			return fmt.Errorf("inproc routing id: %w", err)
		}
	}
	if err := sock.ClientAuthCurve(sec.ServerKey, sec.PublicKey, sec.SecretKey); err != nil {
		return fmt.Errorf("curve client: %w", err)
	}
	return nil
}

// inprocPeers numbers the inproc clients of this process: a ROUTER takes
// only one peer per routing id, and clients of one role share a key.
var inprocPeers atomic.Uint64

// inprocRole is the role of the inproc peer whose routing id is id, or ""
// for none. libzmq runs neither the CURVE handshake nor ZAP over inproc,
// so such a peer's messages carry no user id; it is code of this very
// process (nothing else reaches an inproc endpoint), which holds the keys
// anyway, and its claim to a client key is taken as it stands. A peer
// over TCP cannot make the same claim: on a CURVE socket every message it
// sends carries the user id its handshake earned, and that comes first.
func (s Security) inprocRole(id []byte) string {
	// The last slash: Z85, the keys' alphabet, has slashes of its own.
	i := bytes.LastIndexByte(id, '/')
	if i < 0 {
		return ""
	}
	return s.Clients[string(id[:i])]
}

// zapEndpoint is where libzmq asks for authentication decisions (RFC 27).
const zapEndpoint = "inproc://zeromq.zap.01"

// zapHandler answers libzmq's ZAP requests for every secure server in the
// process. Each server registers its accepted keys under a domain of its
// own, so the DB and JQ managers of `faas up`, or parallel tests, keep
// separate lists. It replaces pebbe/zmq4's AuthStart, whose key tables are
// package globals written without a lock while its handler reads them.
var zapHandler = &zap{domains: make(map[string]map[string]string)}

type zap struct {
	start sync.Once
	err   error
	seq   atomic.Int64

	mu      sync.RWMutex
	domains map[string]map[string]string // domain -> Z85 public key -> role
}

// register adds a server's accepted keys under a new domain and returns
// it, starting the handler first if need be: a CURVE server must never
// take a connection while no handler is bound.
func (z *zap) register(clients map[string]string) (string, error) {
	z.start.Do(func() { z.err = z.listen() })
	if z.err != nil {
		return "", z.err
	}
	keys := make(map[string]string, len(clients))
	for k, role := range clients {
		keys[k] = role
	}
	domain := fmt.Sprintf("faas-%d", z.seq.Add(1))
	z.mu.Lock()
	z.domains[domain] = keys
	z.mu.Unlock()
	return domain, nil
}

func (z *zap) unregister(domain string) {
	z.mu.Lock()
	delete(z.domains, domain)
	z.mu.Unlock()
}

// listen binds the handler's socket. Its goroutine owns the socket and
// lives as long as the process, like libzmq's own context: servers come
// and go, and a handler that stopped between them would let a CURVE
// server accept any key in the gap.
func (z *zap) listen() error {
	sock, err := zmq.NewSocket(zmq.REP)
	if err != nil {
		return fmt.Errorf("zap handler: %w", err)
	}
	if err := sock.Bind(zapEndpoint); err != nil {
		sock.Close()
		return fmt.Errorf("zap handler: bind %s: %w", zapEndpoint, err)
	}
	go z.serve(sock)
	return nil
}

func (z *zap) serve(sock *zmq.Socket) {
	for {
		req, err := sock.RecvMessageBytes(0)
		if err != nil {
			if zmq.AsErrno(err) == zmq.ETERM {
				sock.Close()
				return
			}
			continue
		}
		if _, err := sock.SendMessage(z.decide(req)); err != nil && zmq.AsErrno(err) == zmq.ETERM {
			sock.Close()
			return
		}
	}
}

// decide answers one ZAP request: [version, request id, domain, address,
// routing id, mechanism, credentials...]. A known CURVE key gets 200 with
// its role as the user id, which the server reads back off every message
// the connection brings; anything else gets 400 and no connection.
func (z *zap) decide(req [][]byte) [][]byte {
	if len(req) < 2 {
		return [][]byte{[]byte("1.0"), nil, []byte("500"), []byte("malformed request"), nil, nil}
	}
	version, id := req[0], req[1]
	deny := [][]byte{version, id, []byte("400"), []byte("no access"), nil, nil}
	if string(version) != "1.0" || len(req) != 7 || string(req[5]) != "CURVE" || len(req[6]) != 32 {
		return deny
	}
	key := zmq.Z85encode(string(req[6]))
	z.mu.RLock()
	role, ok := z.domains[string(req[2])][key]
	z.mu.RUnlock()
	if !ok {
		return deny
	}
	return [][]byte{version, id, []byte("200"), []byte("OK"), []byte(role), nil}
}
