package cli

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Interrupted is the cause of Execute's context when a signal ended it
// (main cancels the context with it): the command then exits 128 plus the
// signal's number, 130 for Ctrl-C.
type Interrupted struct{ Signal syscall.Signal }

func (i Interrupted) Error() string { return "interrupted by " + i.Signal.String() }

// interruptedBy is the number of the signal that ended ctx, 0 when none did.
func interruptedBy(ctx context.Context) int {
	var in Interrupted
	if errors.As(context.Cause(ctx), &in) {
		return int(in.Signal)
	}
	return 0
}

// interruptedError is a wait cut short by a signal: only the waiting
// stopped, and keeps says what goes on on the server and how to stop it.
type interruptedError struct {
	what  string
	keeps string
}

func (e *interruptedError) Error() string {
	msg := "interrupted while waiting until " + e.what + "; only the waiting stopped"
	if e.keeps != "" {
		msg += ": " + e.keeps
	}
	return msg
}

// waitError is what a wait that ran out of time or was interrupted returns.
// keeps says what the server goes on doing and how to stop it.
func waitError(ctx context.Context, timeout time.Duration, what, keeps string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s waiting until %s", timeout, what)
	}
	return &interruptedError{what: what, keeps: keeps}
}

// interruptMessage is what a command ended by a signal says.
func interruptMessage(err error) string {
	if errors.As(err, new(watchStopped)) {
		// A watch only read: nothing to say.
		return ""
	}
	var ie *interruptedError
	if errors.As(err, &ie) {
		return ie.Error()
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted; whatever this command asked the control plane to do goes on there"
	}
	return "interrupted: " + errorMessage(err)
}
