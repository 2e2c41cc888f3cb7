package frontend

import (
	"net/http"

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
	c.JSON(status, body{Res: res})
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
