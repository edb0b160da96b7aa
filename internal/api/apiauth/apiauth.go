// Package apiauth reads the credential of an HTTP request. Every API surface
// uses it, so Bearer and Kubiya's UserKey scheme work the same everywhere.
package apiauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
)

// Authenticator resolves a secret to a caller (identity.Service).
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (*identity.Caller, error)
}

// Secret returns the token of an Authorization header: "Bearer <token>" or
// "UserKey <token>". It returns "" without error when there is no header, so
// public methods work and protected ones fail in the domain with
// CodeUnauthenticated.
func Secret(h http.Header) (string, error) {
	v := strings.TrimSpace(h.Get("Authorization"))
	if v == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(v, " ")
	token = strings.TrimSpace(token)
	if !ok || token == "" || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "UserKey")) {
		return "", apperr.Unauthenticated("malformed Authorization header: want \"Bearer <token>\"")
	}
	return token, nil
}

// Authenticate returns ctx with the caller of the request's credential, or ctx
// unchanged when the request carries none. A credential that does not
// authenticate is an error: a client that sends a wrong token must learn so,
// even on a method that would work without one.
func Authenticate(ctx context.Context, a Authenticator, h http.Header) (context.Context, error) {
	if o, ok := ctx.Value(outcomeKey{}).(outcome); ok {
		if o.err != nil {
			return ctx, o.err
		}
		if o.caller != nil {
			return withCaller(ctx, o.caller), nil
		}
		return ctx, nil
	}
	secret, err := Secret(h)
	if err != nil || secret == "" {
		return ctx, err
	}
	c, err := a.Authenticate(ctx, secret)
	if err != nil {
		return ctx, err
	}
	return withCaller(ctx, c), nil
}

// withCaller returns ctx with the caller, and gives the call's audit entry
// its actor: an entry written after the call (a terminal attach recorded
// when it upgrades, a call relayed to another replica) is written outside
// the handler's context, so it learns the caller only from the draft.
func withCaller(ctx context.Context, c *identity.Caller) context.Context {
	if d, ok := audit.FromContext(ctx); ok && d != nil {
		d.SetCaller(c)
	}
	return identity.NewContext(ctx, c)
}
