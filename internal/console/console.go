// Package console serves runyard's web console at /: server-rendered pages
// (html/template) over the domain services, with small TypeScript islands
// (assets/, built by scripts/console-build.sh and embedded) for what a page
// needs a browser for: live updates over the change feed, relative times,
// the pod terminal (xterm.js over the REST API's terminal WebSocket).
//
// The console is one adapter, like the Connect and REST APIs: it reads the
// caller from the request (the guard authenticated it: a bearer key, or a
// browser session cookie), calls the domain services with the caller's
// permissions and renders what they return. It holds no privilege of its
// own and no rule of the domain: what a user may press follows the caller's
// scopes, and the services refuse what the scopes do not allow anyway.
package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/preview"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/users"
)

// Services are the domain services the console renders.
type Services struct {
	Identity     *identity.Service
	Orgs         *orgs.Service
	Runners      *runners.Service
	Pods         *pods.Service
	Environments *environments.Service
	Automations  *automations.Manager
	Secrets      *secrets.Service
	Events       *events.Service
	// Audit records the console's writes and reads the audit log; nil
	// records nothing.
	Audit *audit.Service
	// Users manages members, invites and accounts (the team pages).
	Users *users.Service
	// PublicURL is the URL runners and CLIs reach the control plane at, for
	// the commands the console shows.
	PublicURL func() string
	// RunnerImage is the image of the Kubernetes manifest shown; empty
	// means manifest.DefaultImage().
	RunnerImage string
	// Preview signs browsers in to preview URLs (preview.go); nil when
	// they are off.
	Preview *preview.Service
}

// SurfaceConsole names the console in the audit log.
const SurfaceConsole = "console"

// The audit log's object types (gitpod.v1 ResourceType).
const (
	typeRunner      = "RESOURCE_TYPE_RUNNER"
	typeEnvironment = "RESOURCE_TYPE_ENVIRONMENT"
	typeService     = "RESOURCE_TYPE_SERVICE"
	typeTask        = "RESOURCE_TYPE_TASK"
)

// Mount registers the console's pages on mux. Their paths do not collide
// with the APIs': those live under /api/, /v1/, /logs/, /.well-known/ and
// /<package>.<Service>/.
func Mount(mux *http.ServeMux, svc Services, log *slog.Logger) {
	h := &handler{svc: svc, log: log, pages: mustParsePages(), assets: loadAssets()}
	for _, rt := range h.routes() {
		mux.Handle(rt.pattern, rt.handler)
	}
}

// Routes lists the pattern of every route Mount registers, from the same
// table, for the authorization matrix (internal/server.Routes).
func Routes() []string {
	var out []string
	for _, rt := range (&handler{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// route is one of the console's routes: its mux pattern and handler.
type route struct {
	pattern string
	handler http.Handler
}

// routes is the console's route table. A handler built here only captures
// h: it does not run, so Routes may build the table of an empty handler.
func (h *handler) routes() []route {
	var rs []route
	get := func(pattern string, fn pageFunc) { rs = append(rs, route{"GET " + pattern, h.page(fn)}) }
	post := func(pattern, object string, fn actionFunc) {
		rs = append(rs, route{"POST " + pattern, h.action(pattern, object, fn)})
	}

	get("/{$}", h.overview)
	get("/signin", h.signin)
	get("/runners", h.runnersList)
	get("/runners/{id}", h.runnerDetail)
	post("/runners/{id}/drain", typeRunner, h.runnerDrain)
	post("/runners/{id}/resume", typeRunner, h.runnerResume)
	post("/runners/{id}/delete", typeRunner, h.runnerDelete)
	post("/runners/{id}/token", typeRunner, h.runnerToken)
	get("/pods", h.podsList)
	get("/pods/new", h.podNew)
	post("/pods/new", audit.TypePod, h.podCreate)
	get("/pods/{key}", h.podDetail)
	post("/pods/{key}/terminate", audit.TypePod, h.podTerminate)
	get("/environments", h.environmentsList)
	get("/environments/new", h.environmentNew)
	post("/environments/new", typeEnvironment, h.environmentCreate)
	get("/environments/{id}", h.environmentDetail)
	get("/environments/{id}/logs/{kind}/{item}", h.environmentLog)
	post("/environments/{id}/start", typeEnvironment, h.envAction(h.envStart))
	post("/environments/{id}/stop", typeEnvironment, h.envAction(h.envStop))
	post("/environments/{id}/services/{item}/start", typeService, h.envAction(h.serviceStart))
	post("/environments/{id}/services/{item}/stop", typeService, h.envAction(h.serviceStop))
	post("/environments/{id}/tasks/{item}/start", typeTask, h.envAction(h.taskStart))
	get("/environments/{id}/automations", h.automationsFile)
	post("/environments/{id}/automations", typeEnvironment, h.automationsApply)
	// A check changes nothing: not in the audit log.
	post("/environments/{id}/automations/validate", "", h.automationsValidate)
	get("/secrets", h.secretsList)
	post("/secrets/new", typeSecret, h.secretCreate)
	post("/secrets/{id}/value", typeSecret, h.secretUpdate)
	post("/secrets/{id}/delete", typeSecret, h.secretDelete)
	get("/agents", h.agentsList)
	post("/agents/new", audit.TypeAgentType, h.agentCreate)
	post("/agents/{id}/delete", audit.TypeAgentType, h.agentDelete)
	post("/agents/{id}/edit", audit.TypeAgentType, h.agentEdit)
	h.teamRoutes(get, post)
	rs = append(rs,
		route{"GET /console/events", withHeaders(http.HandlerFunc(h.events), "")},
		route{"GET " + assetsPath + "{file}", withHeaders(http.HandlerFunc(h.asset), "")},
		route{"GET /environments/{id}/ports/{port}/preview", withHeaders(http.HandlerFunc(h.previewSignIn), "")},
	)
	return rs
}

type handler struct {
	svc    Services
	log    *slog.Logger
	pages  map[string]*pageTemplate
	assets assetTable
}

// view is what every page template gets.
type view struct {
	Title string
	// Nav is the section the page belongs to, for the navigation.
	Nav    string
	Caller *identity.Caller
	// Org is the caller's organization's name.
	Org string
	// Path is the page's path with its query, for links back to it.
	Path   string
	Assets assetTable
	// Nonce allows the page's xterm.js style elements (terminal pages).
	Nonce string
	// Live makes the page refetch its [data-live] parts on changes.
	Live bool
	// Events is the page's change feed when not the organization's: an
	// environment's, with its services, tasks and executions.
	Events string
	// Cursor is the change feed's position when the page was read: the
	// page's feed starts there, so a change made between the read and
	// the feed's start is not missed.
	Cursor int64
	// Poll, in seconds, makes it refetch them on a timer too, for what
	// changes without an event: a runner's liveness (renewals are not in
	// the change feed).
	Poll int
	// Orgs are the organizations a signed-in user may switch between (the
	// header's switcher), when more than one.
	Orgs []orgChoice
	// Error is shown above the page's content.
	Error *problem
	// Notice is a one-line confirmation.
	Notice string
	Now    time.Time
	Data   any
}

// watch makes the page live on the organization's changes of kinds (the
// console's feed, internal/events): only those wake it.
func (v *view) watch(kinds ...string) {
	v.Live = true
	v.Events = "/console/events?kinds=" + url.QueryEscape(strings.Join(kinds, ","))
}

// Can reports whether the caller holds scope, to show a control or not.
func (v *view) Can(scope string) bool {
	return v.Caller != nil && v.Caller.Has(identity.Scope(scope))
}

// problem is an error as the console shows it: what happened and what to do.
type problem struct {
	Status int
	Title  string
	Detail string
	Hint   string
}

// pageFunc renders one page for an authenticated caller into v; it returns
// the template name.
type pageFunc func(ctx context.Context, r *http.Request, v *view) (string, error)

// actionFunc performs a write and returns where to go next, or a page to
// render (a token shown once) with its template name.
type actionFunc func(ctx context.Context, r *http.Request, v *view) (redirect, tmpl string, err error)

// caller returns r's context with its caller, or an unauthenticated error.
// The guard authenticated the request's credential (an Authorization header
// or a session cookie) and put the outcome in the context; a GET without a
// body may reach here unauthenticated, and Authenticate does it then.
func (h *handler) caller(r *http.Request) (context.Context, *identity.Caller, error) {
	ctx, err := apiauth.Authenticate(r.Context(), h.svc.Identity, r.Header)
	if err != nil {
		return nil, nil, err
	}
	c, ok := identity.FromContext(ctx)
	if !ok {
		return nil, nil, apperr.Unauthenticated("sign in to use the console")
	}
	if c.Subject.Principal == identity.PrincipalRunner || c.Logs != nil {
		return nil, nil, apperr.PermissionDenied("a runner or logs token cannot use the console: sign in with an API key or your account")
	}
	return ctx, c, nil
}

func (h *handler) newView(ctx context.Context, r *http.Request, c *identity.Caller) *view {
	v := &view{Caller: c, Path: r.URL.RequestURI(), Assets: h.assets, Now: time.Now()}
	if h.svc.Events != nil && h.svc.Events.Hub != nil {
		v.Cursor = h.svc.Events.Hub.Position()
	}
	if c != nil && h.svc.Orgs != nil {
		if org, err := h.svc.Orgs.Get(ctx, c.OrgID); err == nil {
			v.Org = org.Name
		}
	}
	h.switcher(ctx, v)
	return v
}

// page serves a GET page: unauthenticated visitors go to the sign-in page,
// errors become a page that says what to do.
func (h *handler) page(fn pageFunc) http.Handler {
	return withHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, c, err := h.caller(r)
		if err != nil && apperr.Is(err, apperr.CodeUnauthenticated) && r.URL.Path != "/signin" {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.URL.Path == "/signin" {
			ctx, c = r.Context(), nil
			if err == nil {
				// Signed in already: the sign-in page still serves, to sign
				// in as someone else, and knows who is signed in.
				ctx, c, _ = h.caller(r)
			}
		} else if err != nil {
			h.renderError(w, r, nil, err)
			return
		}
		v := h.newView(ctx, r, c)
		tmpl, err := fn(ctx, r, v)
		if err != nil {
			h.renderError(w, r, v, err)
			return
		}
		h.render(w, r, http.StatusOK, tmpl, v)
	}), "")
}

// action serves a console write: a form the console's island posts with
// the session's CSRF token (the guard checks it for cookie sessions). It
// refuses another origin's post outright, records the call in the audit
// log (unless object is "": a post that changes nothing), and answers with
// the page to show next.
func (h *handler) action(pattern, object string, fn actionFunc) http.Handler {
	return withHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			h.renderError(w, r, nil, apperr.PermissionDenied("this form was posted from another site: open the console and try again"))
			return
		}
		ctx, c, err := h.caller(r)
		if err != nil {
			h.renderError(w, r, nil, err)
			return
		}
		if h.svc.Audit != nil && object != "" {
			var d *audit.Draft
			ctx, d = audit.Begin(ctx, SurfaceConsole, "POST "+pattern, object, clientip.From(r), r.UserAgent())
			d.SetCaller(c)
			// The route's own object: a service's or task's {item} within
			// its environment {id}, else {id} or a pod's {key}.
			for _, name := range []string{"item", "id", "key"} {
				if id := r.PathValue(name); id != "" {
					audit.SetObject(ctx, object, id)
					break
				}
			}
			defer func() {
				outcome := audit.OutcomeOK
				if code := d.FailedWith(); code != "" {
					outcome = code
				} else if err != nil {
					outcome = string(apperr.As(err).Code)
				}
				if ferr := h.svc.Audit.Finish(ctx, d, outcome); ferr != nil {
					h.log.ErrorContext(ctx, "audit log", "err", ferr)
				}
			}()
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err = r.ParseForm(); err != nil {
			err = apperr.Invalid("form", "could not read the form: %v", err)
			h.renderError(w, r, nil, err)
			return
		}
		v := h.newView(ctx, r, c)
		var next, tmpl string
		next, tmpl, err = fn(ctx, r, v)
		var fe *formError
		switch {
		case errors.As(err, &fe):
			// The form again, with what the user typed and what is wrong.
			v.Error = describe(fe.err)
			h.render(w, r, v.Error.Status, fe.tmpl, v)
		case err != nil:
			h.renderError(w, r, v, err)
		case tmpl != "":
			h.render(w, r, http.StatusOK, tmpl, v)
		default:
			http.Redirect(w, r, next, http.StatusSeeOther)
		}
	}), "")
}

// formError shows a form again with the error instead of an error page.
type formError struct {
	tmpl string
	err  error
}

func (e *formError) Error() string { return e.err.Error() }
func (e *formError) Unwrap() error { return e.err }

// sameOrigin reports whether a post comes from this host's pages: browsers
// send Origin with every POST; a client without a browser sends none.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// describe turns an error into what the console shows: the domain's message
// and what to do about it.
func describe(err error) *problem {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &problem{Status: http.StatusRequestEntityTooLarge, Title: "The form is too large", Detail: err.Error(), Hint: "Shorten what you typed and send it again."}
	}
	e := apperr.As(err)
	p := &problem{Status: apperr.HTTPStatus(e.Code), Detail: e.Public()}
	switch e.Code {
	case apperr.CodeUnauthenticated:
		p.Title, p.Hint = "You are not signed in", "Sign in again: your session may have ended or your key been revoked."
	case apperr.CodePermissionDenied:
		p.Title, p.Hint = "Not allowed", "Your key or role lacks the permission this needs. Ask an admin of the organization for it."
	case apperr.CodeNotFound:
		p.Title, p.Hint = "Not found", "It may have been deleted, or belong to another organization. Go back to the list and pick it again."
	case apperr.CodeInvalid:
		p.Title, p.Hint = "Check what you entered", "Correct the field named above and send the form again."
	case apperr.CodeConflict:
		p.Title, p.Hint = "Already exists", "Pick another name, or open the existing one."
	case apperr.CodeFailedPrecondition:
		p.Title, p.Hint = "Not possible right now", "Wait for the state named above to change, then try again."
	case apperr.CodeUnavailable:
		p.Title, p.Hint = "Temporarily unavailable", "Try again in a moment; if it persists, check that the runner is connected."
	default:
		p.Title, p.Hint = "Something went wrong on the server", "Try again; if it persists, the control plane's log says more."
	}
	return p
}

func (h *handler) renderError(w http.ResponseWriter, r *http.Request, v *view, err error) {
	p := describe(err)
	if p.Status >= 500 {
		h.log.ErrorContext(r.Context(), "console", "path", r.URL.Path, "err", err)
	}
	if v == nil {
		v = &view{Path: r.URL.RequestURI(), Assets: h.assets, Now: time.Now()}
		if c, ok := identity.FromContext(r.Context()); ok {
			v.Caller = c
		}
	}
	v.Error = p
	if v.Title == "" {
		v.Title = p.Title
	}
	h.render(w, r, p.Status, "error", v)
}

// newNonce returns a random CSP nonce.
func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csp is the Content-Security-Policy of every console response: nothing
// inline, nothing from another origin, no framing. nonce, when set, admits
// the style elements xterm.js creates (and nothing else).
func csp(nonce string) string {
	style := "style-src 'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		style,
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src 'self'",
		"form-action 'self'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// withHeaders sets the security headers of every console response.
func withHeaders(next http.Handler, nonce string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header(), nonce)
		next.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(hd http.Header, nonce string) {
	hd.Set("Content-Security-Policy", csp(nonce))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}
