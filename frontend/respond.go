package frontend

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// statusOf is the one place where an error code becomes an HTTP status.
// A code missing here is a server fault until someone decides otherwise.
var statusOf = map[faas.Code]int{
	faas.NotFound:      http.StatusNotFound,
	faas.Invalid:       http.StatusBadRequest,
	faas.Conflict:      http.StatusConflict,
	faas.Unauthorized:  http.StatusUnauthorized,
	faas.Forbidden:     http.StatusForbidden,
	faas.TooLarge:      http.StatusRequestEntityTooLarge,
	faas.NotFinished:   http.StatusConflict,
	faas.FunctionError: http.StatusUnprocessableEntity,
	faas.Timeout:       http.StatusUnprocessableEntity,
	faas.Unavailable:   http.StatusServiceUnavailable,
	faas.Internal:      http.StatusInternalServerError,
	faas.TooMany:       http.StatusTooManyRequests,
	// Lost and MemoryLimit end jobs, like Timeout: the function's outcome.
	faas.Lost:        http.StatusUnprocessableEntity,
	faas.MemoryLimit: http.StatusUnprocessableEntity,
	// A quota is not a rate: 413, not 429, so that clients do not retry.
	faas.QuotaExceeded: http.StatusRequestEntityTooLarge,
	// FunctionDeleted ends a job too, one whose function went before it ran.
	faas.FunctionDeleted: http.StatusUnprocessableEntity,
	// CallDepth ends a job whose fused calls went too deep.
	faas.CallDepth: http.StatusUnprocessableEntity,
}

// httpStatus maps a code to its status, 500 for codes the table lacks.
func httpStatus(code faas.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// body is every response's JSON shape, kept from the reference project so
// its clients can read ours.
type body struct {
	Error bool      `json:"error"`
	Code  faas.Code `json:"code,omitempty"`
	Res   any       `json:"res"`
	// NextCursor, on a page of a listing, fetches the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ok answers a success with res.
func ok(c *gin.Context, status int, res any) {
	buf := envelopes.Get().(*[]byte)
	defer envelopes.Put(buf)
	if b, done := appendOK((*buf)[:0], res); done && bodyAllowed(status) {
		*buf = b
		// What c.JSON does with the bytes encoding/json makes; c.Data
		// would add a Content-Length that c.JSON leaves out.
		c.Status(status)
		if h := c.Writer.Header(); len(h["Content-Type"]) == 0 {
			h["Content-Type"] = jsonType
		}
		if _, err := c.Writer.Write(b); err != nil {
			// As c.Render: the client is gone, nobody reads the answer.
			_ = c.Error(err)
			c.Abort()
		}
		return
	}
	c.JSON(status, body{Res: res})
}

// jsonType is the Content-Type Gin's c.JSON sets.
var jsonType = []string{"application/json; charset=utf-8"}

// bodyAllowed reports whether an answer with status may carry a body, as
// Gin's c.Render decides.
func bodyAllowed(status int) bool {
	return status >= http.StatusOK && status != http.StatusNoContent && status != http.StatusNotModified
}

// envelopes recycles the buffers of appendOK; c.Data has written a buffer
// out by the time it returns.
var envelopes = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendOK appends the envelope of a success with res, byte for byte what
// encoding/json makes of body{Res: res}, for the answers of the hot path:
// a job id, a job's state, a job's result. Reflection took a third of the
// frontend's time on a status poll. It reports false, having appended
// nothing, for anything it cannot prove it encodes as encoding/json does
// (other types, strings and results needing escapes or compaction), which
// then goes the slow way.
func appendOK(dst []byte, res any) ([]byte, bool) {
	const head, tail = `{"error":false,"res":`, `}`
	switch v := res.(type) {
	case string:
		if !plainJSON(v, false) {
			return dst, false
		}
		dst = append(dst, head+`"`...)
		dst = append(dst, v...)
		return append(dst, `"`+tail...), true
	case int:
		dst = append(dst, head...)
		dst = strconv.AppendInt(dst, int64(v), 10)
		return append(dst, tail...), true
	case json.RawMessage:
		if !plainJSON(v, true) || !json.Valid(v) {
			return dst, false
		}
		dst = append(dst, head...)
		dst = append(dst, v...)
		return append(dst, tail...), true
	}
	return dst, false
}

// plainJSON reports whether s holds only bytes that encoding/json copies
// as they are: printable ASCII other than the HTML characters it escapes;
// in a string, other than the quote and backslash it escapes; in raw JSON,
// other than spaces, which it would compact away outside strings.
func plainJSON[T string | json.RawMessage](s T, raw bool) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < ' ' || b >= 0x7f || b == '<' || b == '>' || b == '&':
			return false
		case raw && b == ' ', !raw && (b == '"' || b == '\\'):
			return false
		}
	}
	return true
}

// okPage answers one page of a listing, with the cursor of the next page
// ("" on the last).
func okPage(c *gin.Context, res any, next string) {
	c.JSON(http.StatusOK, body{Res: res, NextCursor: next})
}

// fail answers with err's code and message. Server-side faults are logged
// here, once, with their detail; the client sees only a generic message,
// since the detail may name hosts, files or queries.
func (s *Server) fail(c *gin.Context, err error) {
	e := faas.AsError(err)
	status := httpStatus(e.Code)
	msg := e.Message
	if e.Code == faas.TooMany {
		c.Header("Retry-After", retryAfter(err))
		c.Set(rejectKey, rejectReason(err))
	}
	if status >= http.StatusInternalServerError {
		s.log.Warn("request failed", "method", c.Request.Method, "route", c.FullPath(), "code", e.Code, "err", err)
		msg = "internal error"
		if e.Code == faas.Unavailable {
			msg = "service unavailable, try again"
		}
	}
	abort(c, status, e.Code, msg)
}

// failJob answers with a failed job's own error: 422 whatever its code,
// because the request worked and it is the user's function that failed.
func failJob(c *gin.Context, e *faas.Error) {
	abort(c, http.StatusUnprocessableEntity, e.Code, e.Message)
}

// abort writes an error body, the only place that does, and leaves the
// code for the request log.
func abort(c *gin.Context, status int, code faas.Code, msg string) {
	c.Set(codeKey, string(code))
	c.AbortWithStatusJSON(status, body{Error: true, Code: code, Res: msg})
}

// codeKey is where abort leaves the error code for the request log.
const codeKey = "faas.code"
