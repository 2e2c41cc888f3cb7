package faas

import (
	"context"
	"errors"
	"fmt"
)

// Code classifies an Error. Codes cross process boundaries unchanged and are
// mapped to HTTP statuses in one table, in the frontend.
type Code string

// The error codes.
const (
	NotFound     Code = "not_found"
	Invalid      Code = "invalid"
	Conflict     Code = "conflict"
	Unauthorized Code = "unauthorized"
	// Forbidden: the caller is authenticated but may not do this: a user
	// on another user's route, or a bus peer whose role may not call the
	// method.
	Forbidden     Code = "forbidden"
	TooLarge      Code = "too_large"
	NotFinished   Code = "not_finished"
	FunctionError Code = "function_error"
	Timeout       Code = "timeout"
	Unavailable   Code = "unavailable"
	Internal      Code = "internal"
	// TooMany: the user has too much pending or sends too fast; retry later.
	TooMany Code = "too_many_requests"
	// Lost: the job's worker vanished on every attempt.
	Lost Code = "lost"
	// MemoryLimit: the function used more memory than its limit.
	MemoryLimit Code = "memory_limit"
	// QuotaExceeded: the user (or the platform) holds as much as an
	// operator's quota allows; retrying will not help until something is
	// deleted or the operator raises the quota.
	QuotaExceeded Code = "quota_exceeded"
	// FunctionDeleted: the job's function was deleted before the job ran.
	FunctionDeleted Code = "function_deleted"
	// CallDepth: a faas.call went deeper than the worker's
	// FAAS_MAX_CALL_DEPTH (a cycle of calls ends there too).
	CallDepth Code = "call_depth"
)

// Error is an error with a code, safe to show to the user who caused it.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain. A context
// that ran out or was cancelled (a server shutting down) means an
// unavailable dependency, worth retrying; anything else is Internal.
func ErrorCode(err error) Code {
	if err == nil {
		// Before e, which errors.As moves to the heap: success, the
		// usual case, costs no allocation.
		return ""
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Unavailable
	default:
		return Internal
	}
}

// AsError turns any error into an *Error. Internal errors keep their text
// out of the result: it may name hosts, files or queries.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := ErrorCode(err)
	if code == Unavailable {
		return &Error{Code: code, Message: "service unavailable, try again"}
	}
	return &Error{Code: code, Message: "internal error"}
}
