package wire

import (
	"context"
	"time"
)

// The typed halves of a proxy: Invoke on the client side and Handle (in
// mux.go) on the server side, so that each proxy method and each route is
// one line and every proxy is written the same way.

// Invoke is Call with a typed result.
func Invoke[Resp any](ctx context.Context, c *Client, method string, req any) (Resp, error) {
	return InvokeHold[Resp](ctx, c, 0, method, req)
}

// InvokeHold is CallHold with a typed result, for the methods a server may
// hold on purpose (long polls).
func InvokeHold[Resp any](ctx context.Context, c *Client, hold time.Duration, method string, req any) (Resp, error) {
	var resp Resp
	err := c.CallHold(ctx, hold, method, req, &resp)
	return resp, err
}

// HandleErr is Handle for a method whose only result is an error; its
// reply carries no result, which the client's Call(…, nil) expects.
func HandleErr[Req any](m *Mux, method string, fn func(context.Context, Req) error) {
	Handle(m, method, func(ctx context.Context, req Req) (any, error) {
		return nil, fn(ctx, req)
	})
}
