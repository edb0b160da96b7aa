// Package previewhttp serves preview URLs (internal/preview): a request
// whose Host is PORT--ENVIRONMENT_ID.PREVIEW_DOMAIN is relayed, as it is
// (HTTP/1.1, HTTP/2 over TLS or h2c, WebSocket upgrades), to the port on
// the environment's runner over a TCP session of the runner's own stream.
// It sits in front of every other surface: a preview host reaches nothing
// of the control plane but this.
//
// What a preview host never passes to the environment: its sign-in cookies
// (runyard_preview, runyard_preview_state), an API key it authenticated
// (Authorization: Bearer ryd_...), and the control plane's relay header.
// The console's own session cookie never reaches a preview host at all: it
// is a host-only cookie of the console's host, and a preview host is
// another host (see docs/authorization.md, after the SSH server).
package previewhttp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/preview"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/sessions"
)

// Cookie names on a preview host.
const (
	GrantCookie = "runyard_preview"
	StateCookie = "runyard_preview_state"
)

// SessionChecker tells whether a console session still lives
// (sessions.Service).
type SessionChecker interface {
	Get(ctx context.Context, sessionID string) (*sessions.Session, error)
}

// Handler serves preview hosts.
type Handler struct {
	Preview *preview.Service
	// Keys authenticates an API key sent to a preview host.
	Keys     apiauth.Authenticator
	Sessions SessionChecker
	// Proxy relays a request to the replica holding the environment's
	// runner's stream; Holds tells whether this replica holds it.
	Proxy *replicaproxy.Proxy
	Holds func(runnerID string) bool
	// ConsoleURL is the console's public URL, where browsers sign in.
	ConsoleURL func() string
	Log        *slog.Logger

	once   sync.Once
	h1, h2 *http.Transport
	live   sessionCache
}

// Matches reports whether r is for a preview host.
func (h *Handler) Matches(r *http.Request) bool {
	if h == nil || h.Preview == nil {
		return false
	}
	_, _, ok := h.Preview.Domain.ParseHost(r.Host)
	return ok
}

// idleConn is how long an idle connection to a port is kept for the next
// request: an open connection is an open session, which keeps the
// environment active.
const idleConn = 30 * time.Second

func (h *Handler) init() {
	h.once.Do(func() {
		dial := func(ctx context.Context, _, addr string) (net.Conn, error) { return h.dial(ctx, addr) }
		h.h1 = &http.Transport{DialContext: dial, IdleConnTimeout: idleConn, MaxIdleConnsPerHost: 8, ForceAttemptHTTP2: false}
		// gRPC needs HTTP/2 end to end: an HTTP/2 request for gRPC goes
		// to the port as h2c.
		h.h2 = &http.Transport{DialContext: dial, IdleConnTimeout: idleConn, Protocols: new(http.Protocols)}
		h.h2.Protocols.SetUnencryptedHTTP2(true)
		h.live.ttl = 10 * time.Second
	})
}

// dial opens a TCP session to the port addr names ("ENVIRONMENT_ID:PORT").
func (h *Handler) dial(ctx context.Context, addr string) (net.Conn, error) {
	envID, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, err
	}
	t, err := h.Preview.Find(ctx, envID, port)
	if err != nil {
		return nil, err
	}
	st, err := h.Preview.Access.OpenPort(ctx, t.Env, port, "preview")
	if err != nil {
		return nil, err
	}
	if conn, ok := envaccess.Raw(st); ok {
		// The runner's own connection to the port: read and written as
		// it is, with no framing.
		return &rawConn{Conn: conn, st: st, addr: addr}, nil
	}
	return &streamConn{st: st, addr: addr}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	envID, port, ok := h.Preview.Domain.ParseHost(r.Host)
	if !ok {
		h.page(w, http.StatusNotFound, "Not a preview URL", "This host names no environment port.", "")
		return
	}
	ctx := r.Context()
	if r.URL.Path == preview.CallbackPath {
		h.callback(w, r)
		return
	}
	t, err := h.Preview.Find(ctx, envID, port)
	if err != nil {
		h.fail(w, r, err, envID, port)
		return
	}
	if !t.Public() {
		g, err := h.grant(ctx, r)
		if err == nil {
			err = preview.Admit(t, g)
		}
		if apperr.Is(err, apperr.CodeUnauthenticated) && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isWebSocket(r) {
			h.signIn(w, r, envID, port)
			return
		}
		if err != nil {
			h.fail(w, r, err, envID, port)
			return
		}
	}
	if err := preview.Runs(t); err != nil {
		h.fail(w, r, err, envID, port)
		return
	}
	if h.Holds != nil && !h.Holds(t.Env.RunnerID) {
		if h.Proxy.Relay(w, r, &replicaproxy.ElsewhereError{OrgID: t.Env.OrgID, RunnerID: t.Env.RunnerID}) {
			return
		}
	}
	// The request is admitted: what it sends (an upload, a WebSocket's
	// life) is the port's business, not bounded by the API's read timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	h.proxy(w, r, envID, port)
}

// proxy relays r to the port.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request, envID string, port int) {
	tr := h.h1
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		tr = h.h2
	}
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = net.JoinHostPort(envID, strconv.Itoa(port))
			// The application sees the host the browser used.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			if pr.In.TLS == nil && h.Preview.Scheme == "https" {
				// TLS ended at a proxy in front of the control plane.
				pr.Out.Header.Set("X-Forwarded-Proto", "https")
			}
			stripOwn(pr.Out)
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			h.fail(w, r, err, envID, port)
		},
	}
	rp.ServeHTTP(w, r)
}

// stripOwn removes from a request to the environment what is the control
// plane's: its cookies, an API key it authenticated, the relay header.
func stripOwn(r *http.Request) {
	r.Header.Del(replicaproxy.Header)
	if s, err := apiauth.Secret(r.Header); err == nil && strings.HasPrefix(s, "ryd_") {
		r.Header.Del("Authorization")
	}
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	var keep []string
	for _, c := range cookies {
		if c.Name == GrantCookie || c.Name == StateCookie {
			continue
		}
		keep = append(keep, c.Name+"="+c.Value)
	}
	if len(keep) > 0 {
		r.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

// grant returns who r signed in as: an API key in Authorization, or the
// host's grant cookie. None is CodeUnauthenticated.
func (h *Handler) grant(ctx context.Context, r *http.Request) (*preview.Grant, error) {
	if s, err := apiauth.Secret(r.Header); err == nil && strings.HasPrefix(s, "ryd_") {
		c, err := h.Keys.Authenticate(ctx, s)
		if err != nil {
			return nil, err
		}
		return preview.GrantOf(c), nil
	}
	var last error = apperr.Unauthenticated("sign in to open this port")
	// Every cookie of the name is tried: a page of another preview host
	// may have set one for the whole preview domain, which names that host
	// and so never counts here.
	for _, c := range r.CookiesNamed(GrantCookie) {
		g, err := h.Preview.Check(c.Value, r.Host)
		if err != nil {
			last = err
			continue
		}
		if g.SessionID != "" {
			if err := h.live.check(ctx, h.Sessions, g.SessionID); err != nil {
				return nil, err
			}
		}
		return g, nil
	}
	return nil, last
}

// signIn sends a browser to the console to sign in to the preview host,
// with a new state in a cookie of the host.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, envID string, port int) {
	var b [18]byte
	_, _ = rand.Read(b[:])
	state := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: state, Path: "/", MaxAge: 600,
		HttpOnly: true, Secure: h.Preview.Scheme == "https", SameSite: http.SameSiteLaxMode})
	q := url.Values{"state": {state}, "next": {preview.SafePath(r.URL.RequestURI())}}
	target := fmt.Sprintf("%s/environments/%s/ports/%d/preview?%s", strings.TrimRight(h.ConsoleURL(), "/"), envID, port, q.Encode())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback redeems a sign-in code the console sent the browser back with.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := ""
	if c, err := r.Cookie(StateCookie); err == nil {
		state = c.Value
	}
	v, _, err := h.Preview.Redeem(q.Get("code"), r.Host, state)
	if err != nil {
		h.page(w, http.StatusUnauthorized, "Sign-in failed", apperr.As(err).Public(), "/")
		return
	}
	secure := h.Preview.Scheme == "https"
	// Host-only (no Domain): no other preview host, and not the console,
	// ever receives it. HttpOnly: the environment's own scripts, which
	// run on this origin, cannot read it.
	http.SetCookie(w, &http.Cookie{Name: GrantCookie, Value: v, Path: "/", MaxAge: int(preview.GrantLifetime / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, preview.SafePath(q.Get("next")), http.StatusSeeOther)
}

// fail answers with a page that says what is wrong.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, envID string, port int) {
	e := apperr.As(err)
	switch e.Code {
	case apperr.CodeNotFound:
		h.page(w, http.StatusNotFound, "Not found", e.Public(), "")
	case apperr.CodeUnauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="runyard preview"`)
		h.page(w, http.StatusUnauthorized, "Sign in to open this port", e.Public()+
			" A browser is sent to sign in; a program sends Authorization: Bearer with an API key of the environment's creator or an admin.", "")
	case apperr.CodePermissionDenied:
		h.page(w, http.StatusForbidden, "Not allowed", e.Public(), "")
	case apperr.CodeFailedPrecondition:
		h.page(w, http.StatusServiceUnavailable, "The environment is not running", e.Public(), "")
	case apperr.CodeUnavailable, apperr.CodeInvalid:
		// Nothing listens on the port, or the runner is away.
		h.page(w, http.StatusBadGateway, fmt.Sprintf("Nothing answers on port %d", port),
			fmt.Sprintf("The environment %s has no server listening on port %d, or its runner cannot be reached now (%s). Start the server in the environment, then reload this page.",
				envID, port, e.Public()), r.URL.RequestURI())
	default:
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection") {
			h.page(w, http.StatusBadGateway, fmt.Sprintf("Port %d did not answer", port),
				fmt.Sprintf("The server on port %d of environment %s closed the connection without an answer.", port, envID), r.URL.RequestURI())
			return
		}
		if h.Log != nil {
			h.Log.Error("serve a preview", "environment", envID, "port", port, "err", err)
		}
		h.page(w, http.StatusInternalServerError, "Internal error", "The control plane could not serve this preview; see its log.", "")
	}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · runyard preview</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2em}.s{color:#777;font-size:.9rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Retry}}<p><a href="{{.Retry}}">Try again</a></p>{{end}}
<p class="s">runyard · HTTP {{.Status}}</p></body></html>
`))

// page writes a small HTML page of the control plane's (never cached, not
// framable).
func (h *Handler) page(w http.ResponseWriter, status int, title, msg, retry string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		Title, Message, Retry string
		Status                int
	}{title, msg, retry, status})
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// sessionCache remembers for a few seconds that a console session lives,
// so a page's many requests do not each read it.
type sessionCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]time.Time // session ID -> checked at
}

func (c *sessionCache) check(ctx context.Context, s SessionChecker, id string) error {
	now := time.Now()
	c.mu.Lock()
	at, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Sub(at) < c.ttl {
		return nil
	}
	if s == nil {
		return apperr.Unauthenticated("sign in again")
	}
	if _, err := s.Get(ctx, id); err != nil {
		c.mu.Lock()
		delete(c.m, id)
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]time.Time{}
	}
	c.m[id] = now
	c.mu.Unlock()
	return nil
}
