// Package jsonerr writes the JSON error answer of runyard's plain HTTP
// endpoints (the REST API and /logs): {"error": message, "code": code} with
// the status of the error's code.
package jsonerr

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
)

// Body is the JSON of an error answer.
type Body struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Write answers r with err. Internal errors are logged (never shown: the
// client gets "internal error"); an unauthenticated answer says which
// scheme to use.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := apperr.As(err)
	if e.Code == apperr.CodeInternal && !errors.Is(err, context.Canceled) {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Code == apperr.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="runyard"`)
	}
	audit.Failed(r.Context(), string(e.Code))
	JSON(w, apperr.HTTPStatus(e.Code), Body{Error: e.Public(), Code: string(e.Code)})
}

// JSON writes v as a JSON answer with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The answer types marshal without error; this is a bug.
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
