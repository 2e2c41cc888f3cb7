// Package client is the typed Go client of the platform's REST API. It
// speaks the {"error","code","res"} envelope, so its callers (the faas CLI,
// faas bench and the tests) see values and *faas.Error, never raw bodies.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"faas/proxies/faas"
)

// Client calls one platform's REST API as one user (or as nobody, for
// registration and the probes). It is safe for concurrent use.
type Client struct {
	base  string
	user  string
	token string
	http  *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through h instead of
// http.DefaultClient (a transport with a bigger pool, a proxy, a timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUser makes the client act as user, authenticating with token.
func WithUser(user, token string) Option {
	return func(c *Client) { c.user, c.token = user, token }
}

// New returns a client of the API at baseURL, such as http://127.0.0.1:8080.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// As returns a client of the same API acting as user with token.
func (c *Client) As(user, token string) *Client {
	cp := *c
	cp.user, cp.token = user, token
	return &cp
}

// User is the name the client acts as.
func (c *Client) User() string { return c.user }

// Token is the token the client authenticates with.
func (c *Client) Token() string { return c.token }

// BaseURL is the API's address.
func (c *Client) BaseURL() string { return c.base }

// Response is one decoded answer: its status, headers, the envelope's res
// and, on a page of a function listing, the next page's cursor.
type Response struct {
	Status     int
	Header     http.Header
	Res        json.RawMessage
	NextCursor string
}

// HTTPError is an error answer: the platform's *faas.Error (reachable with
// errors.As) and the HTTP status it came with.
type HTTPError struct {
	Status int
	Err    *faas.Error
	// RetryAfter is how long a 429 asks the caller to wait; 0 if it does
	// not say.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string { return e.Err.Error() }

// Unwrap gives errors.As the *faas.Error.
func (e *HTTPError) Unwrap() error { return e.Err }

// JobFailed reports whether err is a job's own failure (the function threw,
// ran out of time or memory, was lost or deleted), as opposed to the
// platform refusing or failing the request: the API answers those 422.
func JobFailed(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusUnprocessableEntity
}

// Request is one call of the API. Do sends it; the typed methods build it.
type Request struct {
	Method string
	// Path is the route with its query, such as /j/ID/res or /u/a/fn?limit=2.
	Path   string
	Body   io.Reader
	Header http.Header
	// NoAuth leaves out the Authorization header even if the client has a
	// token (registration, or a test of what an anonymous caller gets).
	NoAuth bool
}

// Do sends r and decodes the envelope. An error answer returns both the
// Response and an *HTTPError; a failure to reach the API or to read its
// answer returns only the error.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decode(r, resp)
}

// decode reads an answer's envelope.
func decode(r Request, resp *http.Response) (*Response, error) {
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", r.Method, r.Path, err)
	}
	var env struct {
		Error      bool            `json:"error"`
		Code       faas.Code       `json:"code"`
		Res        json.RawMessage `json:"res"`
		NextCursor string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%s %s: answer %d is not the API's JSON: %.200q", r.Method, r.Path, resp.StatusCode, raw)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Res: env.Res, NextCursor: env.NextCursor}
	if !env.Error {
		return out, nil
	}
	e := &faas.Error{Code: env.Code}
	if err := json.Unmarshal(env.Res, &e.Message); err != nil {
		e.Message = string(env.Res)
	}
	he := &HTTPError{Status: resp.StatusCode, Err: e}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		he.RetryAfter = time.Duration(secs) * time.Second
	}
	return out, he
}

// send makes the HTTP request; the caller closes the body.
func (c *Client) send(ctx context.Context, r Request) (*http.Response, error) {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if c.token != "" && !r.NoAuth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &faas.Error{Code: faas.Unavailable, Message: fmt.Sprintf("cannot reach %s: %v", c.base, rootCause(err))}
	}
	return resp, nil
}

// rootCause strips net/http's "Post "url": " prefix, which repeats what
// the caller's message already says.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends r and decodes res into out (unless out is nil).
func (c *Client) call(ctx context.Context, r Request, out any) (*Response, error) {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return resp, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.Res, out); err != nil {
			return resp, fmt.Errorf("%s %s: decode %.200s: %w", r.Method, r.Path, resp.Res, err)
		}
	}
	return resp, nil
}

// userPath is the path of the client's user, followed by rest.
func (c *Client) userPath(rest string) string {
	return "/u/" + url.PathEscape(c.user) + rest
}

// jsonBody encodes v as a request body.
func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// jsonHeader marks a body as JSON.
func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }
