package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestMapping(t *testing.T) {
	tests := []struct {
		code Code
		http int
		exit int
	}{
		{CodeInvalid, http.StatusBadRequest, 2},
		{CodeNotFound, http.StatusNotFound, 3},
		{CodeConflict, http.StatusConflict, 4},
		{CodeUnauthenticated, http.StatusUnauthorized, 5},
		{CodePermissionDenied, http.StatusForbidden, 6},
		{CodeFailedPrecondition, http.StatusPreconditionFailed, 7},
		{CodeInternal, http.StatusInternalServerError, 1},
		{Code("bogus"), http.StatusInternalServerError, 1},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.code); got != tt.http {
			t.Errorf("HTTPStatus(%s) = %d, want %d", tt.code, got, tt.http)
		}
		if got := ExitCode(tt.code); got != tt.exit {
			t.Errorf("ExitCode(%s) = %d, want %d", tt.code, got, tt.exit)
		}
	}
	// Exit codes are distinct so scripts can tell failures apart.
	seen := map[int]Code{}
	for _, c := range Codes() {
		if prev, dup := seen[ExitCode(c)]; dup {
			t.Errorf("codes %s and %s share exit code %d", prev, c, ExitCode(c))
		}
		seen[ExitCode(c)] = c
	}
}

func TestPublicHidesInternalDetails(t *testing.T) {
	cause := errors.New("pq: password authentication failed for user admin")
	err := fmt.Errorf("load runner: %w", Internal(cause, "query failed"))
	e := As(err)
	if e.Code != CodeInternal || e.Public() != "internal error" {
		t.Fatalf("internal error public message = %q", e.Public())
	}
	if !errors.Is(err, cause) {
		t.Fatal("Internal does not wrap its cause")
	}
	if got := Invalid("name", "must be %d to %d characters", 3, 127).Public(); got != "name: must be 3 to 127 characters" {
		t.Fatalf("invalid public message = %q", got)
	}
	if CodeOf(errors.New("plain")) != CodeInternal {
		t.Fatal("an unclassified error is not internal")
	}
}
