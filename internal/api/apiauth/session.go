package apiauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
)

// SessionAuthenticator resolves a session cookie's secret to its caller
// (sessions.Service).
type SessionAuthenticator interface {
	Authenticate(ctx context.Context, secret string) (*identity.Caller, error)
}

// SessionCookie returns the browser session cookie of a request that has
// no Authorization header, or "": a header always wins over the cookie.
func SessionCookie(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return ""
	}
	ck, err := r.Cookie(sessions.CookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// AuthenticateSession returns the caller of r's session cookie secret. Since
// a browser sends the cookie with whatever request a page of another site
// makes it send, a request that may change something (any method but GET,
// HEAD and OPTIONS) must also carry the session's CSRF token in
// X-CSRF-Token, and a WebSocket upgrade (a GET that a page of another site
// could open: a pod terminal) must come from a page of this server (its
// Origin's host is the request's Host). Both refusals are
// CodePermissionDenied; a session that does not authenticate is
// CodeUnauthenticated.
func AuthenticateSession(ctx context.Context, s SessionAuthenticator, r *http.Request, secret string) (*identity.Caller, error) {
	c, err := s.Authenticate(ctx, secret)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if err := sessions.CheckCSRF(secret, r.Header.Get(sessions.CSRFHeader)); err != nil {
			return nil, err
		}
	}
	if isWebSocket(r) && !sameOrigin(r) {
		return nil, apperr.PermissionDenied("a WebSocket authenticated by the session cookie must be opened by a page of this server: Origin %q is not %q", r.Header.Get("Origin"), r.Host)
	}
	return c, nil
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
