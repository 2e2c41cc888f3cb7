package frontend_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/frontend/client"
)

// TestBadRequests sends every malformed or forbidden request the API
// defines and checks status, code and message.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	alice, aliceToken := p.newUser(t, "alice")
	bob, bobToken := p.newUser(t, "bob")
	p.upload(t, alice, aliceToken, "add", addSrc)
	p.upload(t, bob, bobToken, "add", addSrc)
	bobJob := p.submit(t, bob, bobToken, "add", "[1,2]")
	// A well-formed token that belongs to no one.
	unknownToken := strings.Repeat("A", 43)

	long := strings.Repeat("n", 65)
	maxSource := 256 << 10
	fits := "function big(){}\n//" + strings.Repeat("x", maxSource-len("function big(){}\n//"))
	au := "/u/" + alice

	tests := []struct {
		name         string
		method, path string
		token        string
		header       http.Header // replaces the bearer token when set
		body         []byte
		status       int
		code         string
		contains     string
	}{
		{name: "register bad char", method: "POST", path: "/u/bad!name", status: 400, code: "invalid", contains: "invalid user name"},
		{name: "register space", method: "POST", path: "/u/a%20b", status: 400, code: "invalid"},
		{name: "register too long", method: "POST", path: "/u/" + long, status: 400, code: "invalid"},
		{name: "register dots", method: "POST", path: "/u/...", status: 400, code: "invalid", contains: "not dots alone"},
		{name: "register dot", method: "POST", path: "/u/.", status: 400, code: "invalid", contains: "not dots alone"},
		{name: "function dots", method: "POST", path: au + "/fn/..", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: "invalid function name \"..\""},
		{name: "register 64 chars ok", method: "POST", path: "/u/" + long[:64], status: 201},
		{name: "function bad name", method: "POST", path: au + "/fn/a$b", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: "invalid function name"},
		{name: "function too long name", method: "GET", path: au + "/fn/" + long, token: aliceToken, status: 400, code: "invalid"},
		{name: "timeout zero", method: "POST", path: au + "/fn/f?timeout=0s", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: "timeout"},
		{name: "timeout negative", method: "POST", path: au + "/fn/f?timeout=-1s", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid"},
		{name: "timeout over 5m", method: "POST", path: au + "/fn/f?timeout=5m1s", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid"},
		{name: "timeout not a duration", method: "POST", path: au + "/fn/f?timeout=soon", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid"},
		{name: "timeout 5m ok", method: "POST", path: au + "/fn/f5m?timeout=5m", token: aliceToken, body: []byte(addSrc), status: 201},
		{name: "memory too small", method: "POST", path: au + "/fn/f?memory=8", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: "memory"},
		{name: "memory too large", method: "POST", path: au + "/fn/f?memory=9000", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid"},
		{name: "memory not a number", method: "POST", path: au + "/fn/f?memory=lots", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid"},
		{name: "concurrency negative", method: "POST", path: au + "/fn/f?concurrency=-1", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: `invalid concurrency "-1"`},
		{name: "concurrency not a number", method: "POST", path: au + "/fn/f?concurrency=lots", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: `invalid concurrency "lots"`},
		{name: "concurrency fractional", method: "POST", path: au + "/fn/f?concurrency=1.5", token: aliceToken, body: []byte(addSrc), status: 400, code: "invalid", contains: `invalid concurrency "1.5"`},
		{name: "memory 64 ok", method: "POST", path: au + "/fn/fmem?memory=64", token: aliceToken, body: []byte(addSrc), status: 201},
		{name: "wait zero", method: "POST", path: au + "/fn/add/run?wait=0s", token: aliceToken, body: []byte("[1,2]"), status: 400, code: "invalid", contains: "wait"},
		{name: "wait over 60s", method: "POST", path: au + "/fn/add/run?wait=61s", token: aliceToken, body: []byte("[1,2]"), status: 400, code: "invalid"},
		{name: "wait not a duration", method: "POST", path: au + "/fn/add/run?wait=1", token: aliceToken, body: []byte("[1,2]"), status: 400, code: "invalid"},
		{name: "args object", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: []byte(`{"a":1}`), status: 400, code: "invalid", contains: "array"},
		{name: "args number", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: []byte(`5`), status: 400, code: "invalid", contains: "array"},
		{name: "args null", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: []byte(`null`), status: 400, code: "invalid", contains: "array"},
		{name: "args invalid JSON", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: []byte(`[1,`), status: 400, code: "invalid", contains: "not valid JSON"},
		{name: "args trailing data", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: []byte(`[1] [2]`), status: 400, code: "invalid"},
		{name: "args over 1 MiB", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: jsonArrayOf(1<<20 + 1), status: 413, code: "too_large"},
		{name: "args 1 MiB ok", method: "POST", path: au + "/fn/add/run", token: aliceToken, body: jsonArrayOf(1 << 20), status: 202},
		{name: "source syntax error", method: "POST", path: au + "/fn/f", token: aliceToken, body: []byte("function f(a,b){return a+}"), status: 400, code: "invalid", contains: "Line 1:"},
		{name: "source not a function", method: "POST", path: au + "/fn/f", token: aliceToken, body: []byte("1+2"), status: 400, code: "invalid", contains: "must define a function"},
		{name: "source empty", method: "POST", path: au + "/fn/f", token: aliceToken, status: 400, code: "invalid"},
		{name: "source not UTF-8", method: "POST", path: au + "/fn/f", token: aliceToken, body: []byte("function f(){return '\xff'}"), status: 400, code: "invalid", contains: "UTF-8"},
		{name: "source over 256 KiB", method: "POST", path: au + "/fn/f", token: aliceToken, body: []byte(fits + "x"), status: 413, code: "too_large"},
		{name: "source 256 KiB ok", method: "POST", path: au + "/fn/big", token: aliceToken, body: []byte(fits), status: 201},
		{name: "no token", method: "GET", path: au + "/fn", status: 401, code: "unauthorized", contains: "missing Authorization"},
		{name: "basic auth", method: "GET", path: au + "/fn", header: http.Header{"Authorization": {"Basic YWxpY2U6eA=="}}, status: 401, code: "unauthorized", contains: "malformed Authorization"},
		{name: "malformed token", method: "GET", path: au + "/fn", token: "not-a-token", status: 401, code: "unauthorized", contains: "malformed bearer token"},
		{name: "unknown token", method: "GET", path: au + "/fn", token: unknownToken, status: 401, code: "unauthorized", contains: "invalid bearer token"},
		{name: "unknown token on job", method: "GET", path: "/j/" + bobJob, token: unknownToken, status: 401, code: "unauthorized"},
		{name: "no token on job", method: "GET", path: "/j/" + bobJob, status: 401, code: "unauthorized"},
		{name: "other user's token", method: "GET", path: au + "/fn", token: bobToken, status: 403, code: "forbidden", contains: "does not grant access to this user"},
		{name: "other user's token, no such user", method: "GET", path: "/u/ghost/fn", token: bobToken, status: 403, code: "forbidden", contains: "does not grant access to this user"},
		{name: "other user's token, delete user", method: "DELETE", path: au, token: bobToken, status: 403, code: "forbidden"},
		{name: "other user's job", method: "GET", path: "/j/" + bobJob, token: aliceToken, status: 404, code: "not_found", contains: "job not found"},
		{name: "other user's job result", method: "GET", path: "/j/" + bobJob + "/res", token: aliceToken, status: 404, code: "not_found", contains: "job not found"},
		{name: "other user's job delete", method: "DELETE", path: "/j/" + bobJob, token: aliceToken, status: 404, code: "not_found", contains: "job not found"},
		{name: "unknown job", method: "GET", path: "/j/" + uuid.NewString(), token: aliceToken, status: 404, code: "not_found", contains: "job not found"},
		{name: "malformed job id", method: "GET", path: "/j/42/info", token: aliceToken, status: 404, code: "not_found", contains: "job not found"},
		{name: "unknown function run", method: "POST", path: au + "/fn/nope/run", token: aliceToken, body: []byte("[]"), status: 404, code: "not_found"},
		{name: "unknown function get", method: "GET", path: au + "/fn/nope", token: aliceToken, status: 404, code: "not_found"},
		{name: "unknown function delete", method: "DELETE", path: au + "/fn/nope", token: aliceToken, status: 404, code: "not_found"},
		{name: "re-register", method: "POST", path: au, status: 409, code: "conflict", contains: "already exists"},
		{name: "unknown route", method: "GET", path: "/nope", status: 404, code: "not_found"},
		{name: "trailing slash", method: "GET", path: au + "/fn/", token: aliceToken, status: 404, code: "not_found"},
		{name: "wrong method", method: "PUT", path: au, token: aliceToken, status: 405, code: "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = bearer(tc.token)
			}
			status, rep := p.doHeader(t, tc.method, tc.path, tc.body, h)
			require.Equal(t, tc.status, status, "res: %s", rep.Res)
			require.Equal(t, tc.code, rep.Code)
			if tc.contains != "" {
				require.Contains(t, rep.str(t), tc.contains)
			}
		})
	}

	t.Run("oversize source without Content-Length", func(t *testing.T) {
		t.Parallel()
		body := func() io.Reader { return io.MultiReader(strings.NewReader(fits), strings.NewReader("x")) }
		req, err := http.NewRequest("POST", p.url+au+"/fn/chunked", body())
		require.NoError(t, err)
		// A body of unknown length goes chunked, with no Content-Length.
		require.Zero(t, req.ContentLength)
		status, rep := p.send(t, client.Request{Method: "POST", Path: au + "/fn/chunked", Body: body(), Header: bearer(aliceToken)})
		require.Equal(t, http.StatusRequestEntityTooLarge, status, "res: %s", rep.Res)
		require.Equal(t, "too_large", rep.Code)
	})

	t.Run("another user's job looks missing", func(t *testing.T) {
		t.Parallel()
		_, theirs := p.do(t, "GET", "/j/"+bobJob+"/info", aliceToken, nil)
		_, missing := p.do(t, "GET", "/j/"+uuid.NewString()+"/info", aliceToken, nil)
		require.Equal(t, missing.Code, theirs.Code)
		require.JSONEq(t, string(missing.Res), string(theirs.Res))
		// And the owner still sees it.
		p.expect(t, http.StatusOK, "GET", "/j/"+bobJob+"/info", bobToken, nil)
	})
}

// jsonArrayOf returns a JSON array of exactly n bytes.
func jsonArrayOf(n int) []byte {
	// ["xxxx...x"]
	var b bytes.Buffer
	b.WriteString(`["`)
	b.WriteString(strings.Repeat("x", n-4))
	b.WriteString(`"]`)
	return b.Bytes()
}

// TestReRegisterKeepsUser checks that a taken name is refused and that the
// refusal changes nothing: the old token and functions still work.
func TestReRegisterKeepsUser(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "keep")
	p.upload(t, user, token, "add", addSrc)

	rep := p.expect(t, http.StatusConflict, "POST", "/u/"+user, "", nil)
	require.Equal(t, "conflict", rep.Code)

	rep = p.expect(t, http.StatusOK, "GET", "/u/"+user+"/fn", token, nil)
	require.JSONEq(t, `{"add":"`+addSrc+`"}`, string(rep.Res))
}
