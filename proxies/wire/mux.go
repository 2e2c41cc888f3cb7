package wire

import (
	"context"
	"maps"
	"reflect"

	"faas/proxies/faas"
)

// Mux routes requests to typed handlers by method name. Its Serve method is
// a Handler.
type Mux struct {
	routes   map[string]func(context.Context, []byte) (any, error)
	messages map[string]Messages
}

// Messages are the Go types of a method's request body and result.
type Messages struct {
	Request, Reply reflect.Type
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	return &Mux{
		routes:   make(map[string]func(context.Context, []byte) (any, error)),
		messages: make(map[string]Messages),
	}
}

// Handle registers fn for method; the request body is decoded into Req and
// fn's result is the reply.
func Handle[Req, Resp any](m *Mux, method string, fn func(context.Context, Req) (Resp, error)) {
	m.routes[method] = func(ctx context.Context, body []byte) (any, error) {
		var req Req
		if err := Unmarshal(body, &req); err != nil {
			return nil, faas.Errorf(faas.Invalid, "%s: malformed body: %v", method, err)
		}
		return fn(ctx, req)
	}
	m.messages[method] = Messages{Request: reflect.TypeFor[Req](), Reply: reflect.TypeFor[Resp]()}
}

// Messages lists the message types of every routed method, so that a test
// can prove the codec carries each of them exactly.
func (m *Mux) Messages() map[string]Messages {
	return maps.Clone(m.messages)
}

// Has reports whether method is routed, so that a caller may use method
// names as metric labels without letting a peer invent new ones.
func (m *Mux) Has(method string) bool {
	_, ok := m.routes[method]
	return ok
}

// Serve dispatches one request.
func (m *Mux) Serve(ctx context.Context, method string, body []byte) (any, error) {
	route, ok := m.routes[method]
	if !ok {
		return nil, faas.Errorf(faas.Invalid, "unknown method %q", method)
	}
	return route(ctx, body)
}
