package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/authhttp"
	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/api/connectapi"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/api/releaseshttp"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/releases"
)

// What a client that has not authenticated may hold. The guard in front of
// every handler makes these true:
//
//   - A request that may carry a body is authenticated from its headers
//     before any of its body is read; without a valid credential it is
//     refused (401) and its connection is cut, so a client that trickles a
//     body without a token holds nothing. Only ExchangeToken (its body is
//     the credential) and the public GETs (/healthz, /metrics, signed
//     manifest downloads) go on without one.
//   - Reading a request (headers, then body) is bounded by ReadHeaderTimeout
//     and ReadTimeout. Requests without a body, whose answer may last (a
//     followed log, a terminal WebSocket), and the runners' streams, once
//     authenticated, have the read deadline lifted.
//   - Per remote IP address, at most MaxUnauthenticatedPerIP requests with
//     a body and without a credential (ExchangeToken) may be in flight (429
//     beyond), and at most as many connections may wait longer than a
//     second for their first request: a newer one closes the oldest of
//     those.
//   - A body over the limit is 413 (too large), never 429 (too many).
const (
	// DefaultReadTimeout bounds reading one request, body included: 4 MiB
	// at 70 KB/s.
	DefaultReadTimeout = time.Minute
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxUnauthenticatedPerIP is the per-address limit of
	// unauthenticated requests in flight and of connections waiting for
	// their first request.
	DefaultMaxUnauthenticatedPerIP = 64
	// pendingGrace is how long a new connection may wait for its first
	// request before a newer one from its address may close it: a client
	// sends its request at once, a connection burst (runners reconnecting
	// after a restart) is never cut.
	pendingGrace = time.Second
	// refuseDrain is how long a refused HTTP/1 request's body is read on
	// (up to net/http's 256 KiB) before the connection closes: long enough
	// for a client that sent its body at once to read the answer, too short
	// for a trickling one to hold anything.
	refuseDrain = time.Second
)

// guard enforces the limits above in front of h.
type guard struct {
	auth apiauth.Authenticator
	// sessions authenticates browser session cookies; nil accepts none.
	sessions apiauth.SessionAuthenticator
	next     http.Handler
	maxBody  int64
	perIP    int
	log      *slog.Logger
	now      func() time.Time

	mu sync.Mutex
	// inFlight counts the unauthenticated requests of each remote address.
	inFlight map[string]int
	// pending lists, oldest first, each address's connections that have
	// not sent a request yet.
	pending map[string][]pendingConn
	// npending counts the connections in pending, for ConnState to read
	// without the lock.
	npending atomic.Int64
	// lastEvictLog keeps a flood of silent connections from flooding the
	// log too: one line a minute.
	lastEvictLog time.Time
}

type pendingConn struct {
	c net.Conn
	// addr identifies the connection in later states, which net/http may
	// report with a wrapper of the connection it announced as new (h2c).
	addr  string
	since time.Time
}

func newGuard(auth apiauth.Authenticator, next http.Handler, perIP int, log *slog.Logger) *guard {
	return &guard{
		auth: auth, next: next, maxBody: connectapi.MaxRequestBytes, perIP: perIP, log: log, now: time.Now,
		inFlight: map[string]int{}, pending: map[string][]pendingConn{},
	}
}

// closePending closes the connections that have not sent a request yet. It
// runs when a shutdown begins (RegisterOnShutdown, after the listeners
// closed): net/http counts such a connection as busy for its first five
// seconds, so a client's spare connection, dialed for a request another
// connection served, held every shutdown up until its deadline. Nothing
// was read from them, so no request is cut.
func (g *guard) closePending() {
	g.mu.Lock()
	var conns []net.Conn
	for _, list := range g.pending {
		for _, p := range list {
			conns = append(conns, p.c)
		}
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ConnState is the http.Server's ConnState hook: it tracks connections until
// their first request and closes the oldest waiting ones of an address that
// has too many.
func (g *guard) ConnState(c net.Conn, state http.ConnState) {
	if state != http.StateNew && g.npending.Load() == 0 {
		// Nothing waits: every request of a kept-alive connection goes
		// through here twice (active, idle), and formatting its address
		// cost more than the rest of the guard (issue 17).
		return
	}
	addr := c.RemoteAddr().String()
	ip := hostOf(addr)
	var evict []net.Conn
	g.mu.Lock()
	list := g.pending[ip]
	if state == http.StateNew {
		now := g.now()
		list = append(list, pendingConn{c: c, addr: addr, since: now})
		for len(list) > g.perIP && now.Sub(list[0].since) >= pendingGrace {
			evict = append(evict, list[0].c)
			list = list[1:]
		}
	} else {
		for i, p := range list {
			if p.addr == addr {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}
	g.npending.Add(int64(len(list) - len(g.pending[ip])))
	if len(list) == 0 {
		delete(g.pending, ip)
	} else {
		g.pending[ip] = list
	}
	logEvict := len(evict) > 0 && g.now().Sub(g.lastEvictLog) >= time.Minute
	if logEvict {
		g.lastEvictLog = g.now()
	}
	g.mu.Unlock()
	// Closing a TLS connection may write an alert: not under the lock.
	for _, c := range evict {
		c.Close()
	}
	if logEvict {
		g.log.Warn("closing connections that sent no request within a second, past the per-address limit (logged once a minute)",
			"remote", ip, "limit", g.perIP)
	}
}

func (g *guard) acquire(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight[ip] >= g.perIP {
		return false
	}
	g.inFlight[ip]++
	return true
}

func (g *guard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight[ip]--; g.inFlight[ip] <= 0 {
		delete(g.inFlight, ip)
	}
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A browser's session cookie is decided here, before any body is read,
	// for every surface at once: they all take the outcome.
	byCookie := false
	if secret := apiauth.SessionCookie(r); secret != "" && g.sessions != nil && !strings.HasPrefix(r.URL.Path, authhttp.Prefix) {
		c, err := apiauth.AuthenticateSession(r.Context(), g.sessions, r, secret)
		if err != nil && !apperr.Is(err, apperr.CodeUnauthenticated) && !apperr.Is(err, apperr.CodePermissionDenied) {
			g.log.ErrorContext(r.Context(), "authenticate a session", "method", r.Method, "path", r.URL.Path, "err", err)
			g.refuse(w, r, http.StatusServiceUnavailable, &apperr.Error{Code: apperr.CodeUnavailable, Message: "cannot check the session now: retry later"})
			return
		}
		if err != nil && r.ContentLength != 0 {
			g.refuse(w, r, apperr.HTTPStatus(apperr.CodeOf(err)), err)
			return
		}
		// Without a body, each surface answers a refused cookie itself
		// (a page that needs no credential ignores it).
		r = r.WithContext(apiauth.WithOutcome(r.Context(), c, err))
		byCookie = true
	}
	if r.ContentLength == 0 {
		// Nothing to read but headers, which are in: ReadTimeout has
		// nothing left to bound, and would end a followed log or a terminal.
		_ = rc.SetReadDeadline(time.Time{})
		g.next.ServeHTTP(w, r)
		return
	}
	connect := connectProcedure(r.URL.Path)
	maxBody := g.maxBody
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, releaseshttp.PublishPrefix) {
		// A published release holds archives of the whole binary; its
		// handler bounds the body and lifts the read deadline once the
		// caller may publish.
		maxBody = releases.MaxUploadBytes
	}
	if connect == "" || isUnaryConnect(r) {
		if r.ContentLength > maxBody {
			g.refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge(maxBody))
			return
		}
	}
	if byCookie {
		if strings.HasPrefix(connect, runnerControlPrefix) || connect == watchEventsProcedure {
			_ = rc.SetReadDeadline(time.Time{})
		}
	} else if isPublic(r, connect) {
		// No credential to check: it holds a place of its address until
		// it ends (ReadTimeout bounds its body).
		ip := clientip.From(r)
		if !g.acquire(ip) {
			g.refuse(w, r, http.StatusTooManyRequests, &apperr.Error{Code: apperr.CodeResourceExhausted,
				Message: fmt.Sprintf("too many requests without a valid token in flight from %s (at most %d): send Authorization: Bearer <token>, or retry later", ip, g.perIP)})
			return
		}
		defer g.release(ip)
	} else {
		// A request with a credential is checked at once, from its
		// headers; one without is refused at once. Neither waits for its
		// body first.
		secret, err := apiauth.Secret(r.Header)
		if err == nil && secret == "" {
			err = apperr.Unauthenticated("authentication required: send Authorization: Bearer <token>")
		}
		var c *identity.Caller
		if err == nil {
			// What apiauth.Authenticate asks, without the context it
			// would make: nothing was decided before the guard.
			c, err = g.auth.Authenticate(r.Context(), secret)
		}
		if err != nil {
			if !apperr.Is(err, apperr.CodeUnauthenticated) {
				g.log.ErrorContext(r.Context(), "authenticate a request", "method", r.Method, "path", r.URL.Path, "err", err)
				g.refuse(w, r, http.StatusServiceUnavailable, &apperr.Error{Code: apperr.CodeUnavailable, Message: "cannot check the token now: retry later"})
				return
			}
			g.refuse(w, r, http.StatusUnauthorized, err)
			return
		}
		r = r.WithContext(apiauth.WithOutcome(r.Context(), c, nil))
		if strings.HasPrefix(connect, runnerControlPrefix) || connect == watchEventsProcedure {
			// The runner's streams last as long as it is connected, a
			// watch as long as its watcher.
			_ = rc.SetReadDeadline(time.Time{})
		}
	}
	if r.ContentLength < 0 && isUnaryConnect(r) {
		// connect-go would answer a body over its limit with
		// resource_exhausted, which is 429: read it here to answer 413.
		b, err := io.ReadAll(io.LimitReader(r.Body, g.maxBody+1))
		if err != nil {
			return // the client is gone or too slow: ReadTimeout
		}
		if int64(len(b)) > g.maxBody {
			g.refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge(g.maxBody))
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	g.next.ServeHTTP(w, r)
}

// refuse answers r with err without reading its body, and makes sure the
// connection does not wait for the rest of it.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	if r.ProtoMajor == 1 {
		// Without "Connection: close" net/http reads up to 256 KiB of the
		// body before it sends the answer. (HTTP/2 resets the stream
		// instead.)
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(g.now().Add(refuseDrain))
	}
	if connectProcedure(r.URL.Path) != "" && status != http.StatusRequestEntityTooLarge {
		// connect-go says it in the client's protocol (Connect, gRPC,
		// gRPC-Web, unary or streaming), from an empty request; the
		// interceptor returns err before the method runs.
		for _, h := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
			r.Header.Del(h)
		}
		body := []byte{}
		if isEnveloped(r) {
			body = make([]byte, 5) // one empty, uncompressed message
		}
		r = r.WithContext(apiauth.WithOutcome(r.Context(), nil, err))
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		g.next.ServeHTTP(w, r)
		return
	}
	e := apperr.As(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="runyard"`)
	}
	if connectProcedure(r.URL.Path) != "" {
		// A Connect error, as connect-go writes one.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": string(e.Code), "message": e.Public()})
		return
	}
	jsonerr.JSON(w, status, jsonerr.Body{Error: e.Public(), Code: string(e.Code)})
}

func tooLarge(limit int64) error {
	return &apperr.Error{Code: apperr.CodeResourceExhausted, Field: "body", Message: fmt.Sprintf("must be at most %d bytes", limit)}
}

// runnerControlPrefix starts the paths of the runners' long-lived streams.
const runnerControlPrefix = "/runyard.runner.v1.RunnerControlService/"

// watchEventsProcedure is the change feed's stream (internal/events).
const watchEventsProcedure = "/gitpod.v1.EventService/WatchEvents"

// connectProcedure returns the Connect procedure r's path names
// ("/pkg.Service/Method", also when the path has connectapi.PathPrefix before
// it), or "". A REST path under /api/v1/ names no procedure: its first
// segment has no dot.
func connectProcedure(path string) string {
	if rest, ok := strings.CutPrefix(path, connectapi.PathPrefix); ok && strings.HasPrefix(rest, "/") {
		path = rest
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || !strings.HasPrefix(path, "/") || !strings.Contains(svc, ".") || method == "" || strings.Contains(method, "/") {
		return ""
	}
	return path
}

// isPublic reports whether r may go on without a credential.
func isPublic(r *http.Request, procedure string) bool {
	switch {
	case procedure == "/gitpod.v1.IdentityService/ExchangeToken":
		return true // the exchange token in the body is the credential
	case strings.HasPrefix(r.URL.Path, authhttp.Prefix):
		return true // the sign-in body is the credential; the handlers check the cookie
	case procedure == "/runyard.v1.UserAdminService/AcceptInvite":
		return true // so is the invite: it signs a new user up
	case r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/version" || r.URL.Path == "/metrics" || strings.HasPrefix(r.URL.Path, "/api/v3/manifests/")):
		return true // a signed URL is its own credential
	}
	return false
}

func contentType(r *http.Request) string {
	v := r.Header.Get("Content-Type")
	switch v {
	case "application/proto", "application/json":
		// What ParseMediaType answers for them, without the map of
		// parameters it makes (twice per Connect call).
		return v
	}
	ct, _, _ := mime.ParseMediaType(v)
	return ct
}

// isUnaryConnect reports whether r is a unary call of the Connect protocol,
// whose errors carry their own HTTP status.
func isUnaryConnect(r *http.Request) bool {
	if r.Method != http.MethodPost || connectProcedure(r.URL.Path) == "" {
		return false
	}
	ct := contentType(r)
	return ct == "application/json" || ct == "application/proto"
}

// isEnveloped reports whether r's body is a stream of enveloped messages
// (gRPC, gRPC-Web, Connect streaming).
func isEnveloped(r *http.Request) bool {
	ct := contentType(r)
	return strings.HasPrefix(ct, "application/grpc") || strings.HasPrefix(ct, "application/connect+")
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
