// Package audithttp records the calls of runyard's plain HTTP APIs (the REST
// API and the Kubiya endpoints) in the audit log: the adapter of those
// surfaces over internal/audit, as connectapi's interceptor is for Connect.
package audithttp

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
)

// Surface says which API a request path belongs to, "" for one not recorded
// here (Connect records its own calls; /logs, /healthz, /metrics only read).
func Surface(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/v1/orgs/"), strings.HasPrefix(path, "/api/v1/releases"):
		return audit.SurfaceREST
	case strings.HasPrefix(path, "/api/v3/runners"), strings.HasPrefix(path, "/v1/runners/"):
		return audit.SurfaceKubiya
	}
	return ""
}

// Wrap records every mutating request that mux routes to the REST or Kubiya
// API: the methods other than GET and HEAD, and attaching to a pod's
// terminal with write access (a GET upgraded to a WebSocket, recorded when
// the upgrade succeeds: the keystrokes that follow are not calls). The
// method recorded is mux's pattern ("POST /api/v1/orgs/{org}/pods"), never
// the path, so no value from the request reaches the entry but the object's
// id. next is the handler to call, usually mux itself.
//
// relayed, when set, tells a request another replica relayed here (a pod's
// terminal whose runner is connected to this replica): that replica records
// the call, with the client's address, so this one does not record it again.
func Wrap(svc *audit.Service, mux *http.ServeMux, next http.Handler, log *slog.Logger, relayed func(*http.Request) bool) http.Handler {
	if svc == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if relayed != nil && relayed(r) {
			next.ServeHTTP(w, r)
			return
		}
		surface := Surface(r.URL.Path)
		terminal := r.Method == http.MethodGet && (strings.HasSuffix(r.URL.Path, "/terminal") && !readonly(r) || session(r.URL.Path))
		if surface == "" || ((r.Method == http.MethodGet || r.Method == http.MethodHead) && !terminal) {
			next.ServeHTTP(w, r)
			return
		}
		_, pattern := mux.Handler(r)
		if pattern == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, d := audit.Begin(r.Context(), surface, pattern, objectType(pattern), clientip.From(r), r.UserAgent())
		if id := objectID(r, pattern); id != "" {
			audit.SetObject(ctx, objectType(pattern), id)
		}
		if c, ok := apiauth.OutcomeCaller(ctx); ok {
			d.SetCaller(c)
		}
		rec := &recorder{ResponseWriter: w}
		if terminal {
			// Recorded when the upgrade succeeds, not when the session
			// ends hours later.
			rec.upgraded = func() { finish(svc, r.WithContext(ctx), d, audit.OutcomeOK, log) }
		}
		next.ServeHTTP(rec, r.WithContext(ctx))
		outcome := audit.OutcomeOK
		if code := d.FailedWith(); code != "" {
			outcome = code
		} else if rec.status >= 400 {
			outcome = string(apperr.CodeForStatus(rec.status))
		}
		finish(svc, r.WithContext(ctx), d, outcome, log)
	})
}

func finish(svc *audit.Service, r *http.Request, d *audit.Draft, outcome string, log *slog.Logger) {
	if err := svc.Finish(r.Context(), d, outcome); err != nil {
		log.ErrorContext(r.Context(), "audit log", "err", err)
	}
}

// session says path opens a session in an environment (a command, a
// shell, a port forward): each is recorded when it opens, like an attach.
func session(path string) bool {
	return strings.Contains(path, "/environments/") && (strings.HasSuffix(path, "/exec") || strings.HasSuffix(path, "/port-forward"))
}

func readonly(r *http.Request) bool {
	v := strings.ToLower(r.URL.Query().Get("readonly"))
	return v == "1" || v == "true"
}

// objectType is the type of object a route acts on.
func objectType(pattern string) string {
	switch {
	case strings.Contains(pattern, "/pods"):
		return audit.TypePod
	case strings.Contains(pattern, "/agents"):
		return audit.TypeAgentType
	case strings.Contains(pattern, "/environments"):
		return "RESOURCE_TYPE_ENVIRONMENT"
	}
	return "RESOURCE_TYPE_RUNNER"
}

// objectID is the route's own object: a pod's {key} or an object's {id}.
// A Kubiya runner's {name} is not its id: the store names the runner it
// creates (audit.SetObject).
func objectID(r *http.Request, pattern string) string {
	for _, name := range []string{"key", "id"} {
		if strings.Contains(pattern, "{"+name+"}") {
			return r.PathValue(name)
		}
	}
	return ""
}

// recorder keeps the status; Flush and Unwrap keep streaming and the
// WebSocket upgrade (http.ResponseController) working through it.
type recorder struct {
	http.ResponseWriter
	status   int
	upgraded func()
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		if status == http.StatusSwitchingProtocols && w.upgraded != nil {
			w.upgraded()
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack passes the connection on. A request relayed to another replica
// upgrades without WriteHeader (the reverse proxy writes the other
// replica's 101 on the hijacked connection itself), so a hijack before any
// status counts as the upgrade.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
		if w.upgraded != nil {
			w.upgraded()
		}
	}
	return c, rw, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
