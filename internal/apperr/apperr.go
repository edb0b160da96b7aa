// Package apperr is runyard's one error type. Domain code returns *Error with a
// Code; each surface (Connect, REST, CLI) maps the Code once, through the table
// in this file, to its own status. Only CodeInternal errors are logged, and
// their details never reach a client.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error. The values are the Connect protocol's code names,
// so the Connect adapter converts without a second table.
type Code string

const (
	CodeInvalid            Code = "invalid_argument"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "already_exists"
	CodeUnauthenticated    Code = "unauthenticated"
	CodePermissionDenied   Code = "permission_denied"
	CodeFailedPrecondition Code = "failed_precondition"
	CodeResourceExhausted  Code = "resource_exhausted"
	CodeAborted            Code = "aborted"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
)

// mapping is the single table from Code to the status of each surface.
var mapping = map[Code]struct {
	http int
	exit int
}{
	CodeInvalid:            {http.StatusBadRequest, 2},
	CodeNotFound:           {http.StatusNotFound, 3},
	CodeConflict:           {http.StatusConflict, 4},
	CodeUnauthenticated:    {http.StatusUnauthorized, 5},
	CodePermissionDenied:   {http.StatusForbidden, 6},
	CodeFailedPrecondition: {http.StatusPreconditionFailed, 7},
	CodeResourceExhausted:  {http.StatusTooManyRequests, 8},
	CodeAborted:            {http.StatusConflict, 10},
	CodeUnavailable:        {http.StatusServiceUnavailable, 9},
	CodeInternal:           {http.StatusInternalServerError, 1},
}

// Error is a classified error. Field names the offending request field for
// CodeInvalid; Message is safe to show to the caller.
type Error struct {
	Code    Code
	Field   string
	Message string
	// Err is the underlying cause. It is kept for logs and errors.Is, and is
	// never shown to a client.
	Err error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil && e.Code == CodeInternal {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Public is the message a client may see: internal causes are hidden.
func (e *Error) Public() string {
	if e.Code == CodeInternal {
		return "internal error"
	}
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports a bad request field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing object. what is e.g. `runner "d2c9..."`.
func NotFound(format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func Conflict(format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

func Unauthenticated(format string, args ...any) *Error {
	return &Error{Code: CodeUnauthenticated, Message: fmt.Sprintf(format, args...)}
}

func PermissionDenied(format string, args ...any) *Error {
	return &Error{Code: CodePermissionDenied, Message: fmt.Sprintf(format, args...)}
}

func FailedPrecondition(format string, args ...any) *Error {
	return &Error{Code: CodeFailedPrecondition, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure.
func Internal(err error, format string, args ...any) *Error {
	return &Error{Code: CodeInternal, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the Code of err, CodeInternal for unclassified errors.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// As returns err as *Error, classifying an unknown error as internal.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// HTTPStatus maps a code to the HTTP status of the REST surfaces.
func HTTPStatus(code Code) int {
	if m, ok := mapping[code]; ok {
		return m.http
	}
	return http.StatusInternalServerError
}

// ExitCode maps a code to the CLI's process exit code.
func ExitCode(code Code) int {
	if m, ok := mapping[code]; ok {
		return m.exit
	}
	return 1
}

// Codes lists every code, for tests that walk the table.
func Codes() []Code {
	out := make([]Code, 0, len(mapping))
	for c := range mapping {
		out = append(out, c)
	}
	return out
}

// CodeForStatus is the code an HTTP status stands for (the first in the
// table's order of codes with that status), CodeInternal when none does.
func CodeForStatus(status int) Code {
	for _, c := range []Code{CodeInvalid, CodeNotFound, CodeConflict, CodeUnauthenticated, CodePermissionDenied,
		CodeFailedPrecondition, CodeResourceExhausted, CodeAborted, CodeUnavailable} {
		if HTTPStatus(c) == status {
			return c
		}
	}
	return CodeInternal
}
