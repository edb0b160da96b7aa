package apiauth

import (
	"context"

	"github.com/runyard/runyard/internal/identity"
)

// outcome is what authenticating a request's credential gave, decided once
// before its body is read (internal/server's guard).
type outcome struct {
	caller *identity.Caller
	err    error
}

type outcomeKey struct{}

// WithOutcome returns ctx carrying the outcome of authenticating the
// request: its caller (nil when it sent no credential) or the error that
// refuses it. Authenticate then answers with it instead of asking again.
func WithOutcome(ctx context.Context, c *identity.Caller, err error) context.Context {
	return context.WithValue(ctx, outcomeKey{}, outcome{caller: c, err: err})
}

// Refused returns the error a request was refused with before its body was
// read, if any: a public method, which skips Authenticate, must still not
// run for it.
func Refused(ctx context.Context) error {
	o, _ := ctx.Value(outcomeKey{}).(outcome)
	return o.err
}

// OutcomeCaller returns the caller the guard authenticated, if any: the
// audit log's HTTP adapter records it for calls that fail before their
// handler authenticates.
func OutcomeCaller(ctx context.Context) (*identity.Caller, bool) {
	o, _ := ctx.Value(outcomeKey{}).(outcome)
	return o.caller, o.caller != nil
}
