package cli

import (
	"fmt"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runners"
)

// unreachableIn returns the first of msgs that says the runner is
// unreachable (runners.UnreachableMessage), or "".
func unreachableIn(msgs ...string) string {
	for _, m := range msgs {
		if runners.IsUnreachable(m) {
			return m
		}
	}
	return ""
}

// unreachableError ends a wait for what that no news will end: its runner
// is unreachable (msg). Waiting on would hang until --timeout, and the user
// is better served by the reason now; exit code 9 (unavailable) tells it
// from a failure.
func unreachableError(what, msg string) error {
	return unreachableErrorHint(what, msg, "it goes on if the runner comes back within the control plane's --lost-after")
}

// unreachableErrorHint is unreachableError with another hint.
func unreachableErrorHint(what, msg, hint string) error {
	msg, _, _ = strings.Cut(msg, "; ")
	return &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("stopped waiting until %s: %s (%s)", what, msg, hint)}
}
