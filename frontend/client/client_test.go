package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// answer serves one canned answer to every request.
func answer(t testing.TB, status int, hdr http.Header, body string) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL, client.WithUser("alice", "tok"))
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		hdr    http.Header
		body   string
		code   faas.Code
		msg    string
		failed bool
		retry  time.Duration
		other  string
	}{
		{name: "error", status: 404, body: `{"error":true,"code":"not_found","res":"job not found"}`, code: faas.NotFound, msg: "job not found"},
		{name: "job failed", status: 422, body: `{"error":true,"code":"function_error","res":"kaput"}`, code: faas.FunctionError, msg: "kaput", failed: true},
		{name: "retry after", status: 429, hdr: http.Header{"Retry-After": {"3"}}, body: `{"error":true,"code":"too_many_requests","res":"slow down"}`, code: faas.TooMany, msg: "slow down", retry: 3 * time.Second},
		{name: "message not a string", status: 400, body: `{"error":true,"code":"invalid","res":{"x":1}}`, code: faas.Invalid, msg: `{"x":1}`},
		{name: "no code", status: 500, body: `{"error":true,"res":"oops"}`, code: "", msg: "oops"},
		{name: "not the envelope", status: 502, body: `<html>bad gateway</html>`, other: "is not the API's JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := answer(t, tc.status, tc.hdr, tc.body).Info(context.Background(), "j1")
			if tc.other != "" {
				require.ErrorContains(t, err, tc.other)
				return
			}
			var fe *faas.Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.code, fe.Code)
			require.Equal(t, tc.msg, fe.Message)
			require.Equal(t, tc.failed, client.JobFailed(err))
			var he *client.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, tc.status, he.Status)
			require.Equal(t, tc.retry, he.RetryAfter)
		})
	}
}

func TestRunOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := answer(t, 202, http.Header{"Location": {"/j/j1"}}, `{"error":false,"res":"j1"}`).Run(ctx, "add", client.Run{})
	require.NoError(t, err)
	require.Equal(t, client.Outcome{JobID: "j1"}, out)

	out, err = answer(t, 200, http.Header{"Location": {"/j/j2"}, "Idempotent-Replayed": {"true"}}, `{"error":false,"res":9}`).Run(ctx, "add", client.Run{Wait: time.Second})
	require.NoError(t, err)
	require.Equal(t, client.Outcome{JobID: "j2", Done: true, Result: []byte("9"), Replayed: true}, out)

	out, err = answer(t, 422, http.Header{"Location": {"/j/j3"}}, `{"error":true,"code":"timeout","res":"too long"}`).Run(ctx, "add", client.Run{Wait: time.Second})
	require.True(t, client.JobFailed(err))
	require.Equal(t, "j3", out.JobID, "a failed job still names itself")
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	err := client.New(srv.URL).Healthz(context.Background())
	require.Equal(t, faas.Unavailable, faas.ErrorCode(err))
	require.False(t, client.JobFailed(err))
	require.False(t, errors.Is(err, context.Canceled))
}

func TestPutFunctionForms(t *testing.T) {
	t.Parallel()
	type seen struct{ query, ctype, body string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.RawQuery, r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"error":false,"res":{"name":"f","version":7,"timeout_ms":5000,"memory_mb":64,"updated":"2026-01-01T00:00:00Z"}}`)
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, client.WithUser("alice", "tok"))
	ctx := context.Background()

	view, created, err := c.PutFunction(ctx, "f", client.Deploy{Source: "x => x", Timeout: 5 * time.Second, MemoryMB: 64})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, int64(7), view.Version)
	require.Equal(t, seen{"memory=64&timeout=5s", "", "x => x"}, <-got, "raw source, settings in the query")

	_, _, err = c.PutFunction(ctx, "f", client.Deploy{Source: "x => x", Timeout: 5 * time.Second, Env: map[string]string{"A": "1"}, Secrets: map[string]string{"KEY": "s3cret"}})
	require.NoError(t, err)
	s := <-got
	require.Empty(t, s.query)
	require.Equal(t, "application/json", s.ctype)
	require.JSONEq(t, `{"src":"x => x","timeout":"5s","env":{"A":"1"},"secrets":{"KEY":"s3cret"}}`, s.body, "the JSON form with env or secrets")
}
