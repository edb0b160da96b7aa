package authhttp

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
)

// The CLI's browser login (`runyard login --web`; the rules are in
// internal/identity/clilogin.go):
//
//	GET  /auth/cli/approve?port=&state=&challenge=&name= → the approval page (sign-in first)
//	POST /auth/cli/approve  (form, with the session's CSRF token) → 303 to http://127.0.0.1:PORT/callback?code=&state=
//	POST /auth/cli/token    {"code","verifier"} → {"key","keyId"}: the key, once
//
// The page is served here rather than by the console because its form
// must be allowed to go on to the CLI's loopback address (form-action in
// its Content-Security-Policy), which no console page allows.
const (
	PathCLIApprove = "/auth/cli/approve"
	PathCLIToken   = "/auth/cli/token"
)

// CLILogin serves the CLI's browser login.
type CLILogin struct {
	// Auth is the sign-in handler: its session checks, audit and errors.
	Auth     *Handler
	Identity *identity.Service
	// HasUsers reports whether the installation has any user account. The
	// browser login gives a key of the approving user, so without users it
	// cannot end well: every route refuses it at once, and the CLI's probe
	// (a token request without a code) learns that before opening a browser.
	HasUsers func(ctx context.Context) (bool, error)
}

// noUsers is the refusal of a browser login on a server without users.
const noUsers = "this server has no user accounts, so no one can approve a browser login: log in with an API key (runyard login --web=false)"

// usersExist is false only when HasUsers says so; a failed check lets the
// login go on (the approval needs a user anyway).
func (h *CLILogin) usersExist(r *http.Request) bool {
	if h.HasUsers == nil {
		return true
	}
	ok, err := h.HasUsers(r.Context())
	return err != nil || ok
}

// MountCLILogin registers the CLI login's routes on mux.
func MountCLILogin(mux *http.ServeMux, h *CLILogin) {
	mux.HandleFunc("GET "+PathCLIApprove, h.page)
	mux.HandleFunc("POST "+PathCLIApprove, h.Auth.audited("POST "+PathCLIApprove, h.approve))
	mux.HandleFunc("POST "+PathCLIToken, h.Auth.audited("POST "+PathCLIToken, h.token))
}

// CLILoginRoutes lists the patterns MountCLILogin registers.
func CLILoginRoutes() []string {
	return []string{"GET " + PathCLIApprove, "POST " + PathCLIApprove, "POST " + PathCLIToken}
}

// cliRequest is what the CLI asks for, from the page's query or form.
type cliRequest struct {
	Port      int
	State     string
	Challenge string
	Name      string
}

func parseCLIRequest(v url.Values) (cliRequest, error) {
	r := cliRequest{State: v.Get("state"), Challenge: v.Get("challenge"), Name: strings.TrimSpace(v.Get("name"))}
	port, err := strconv.Atoi(v.Get("port"))
	if err != nil || port < 1024 || port > 65535 {
		return r, apperr.Invalid("port", "must be the CLI's loopback port (1024 to 65535)")
	}
	r.Port = port
	if n := len(r.State); n < 16 || n > 128 || strings.Trim(r.State, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return r, apperr.Invalid("state", "must be 16 to 128 base64url characters")
	}
	if err := identity.ValidateCLIChallenge("challenge", r.Challenge); err != nil {
		return r, err
	}
	if len([]rune(r.Name)) > 100 {
		return r, apperr.Invalid("name", "must be at most 100 characters")
	}
	return r, nil
}

// callback is where the approval sends the browser: the CLI's listener on
// this machine's loopback address, never another host.
func (r cliRequest) callback(query url.Values) string {
	return "http://127.0.0.1:" + strconv.Itoa(r.Port) + "/callback?" + query.Encode()
}

// setPageHeaders sets the page's headers: nothing inline or from elsewhere,
// no framing, and forms may go only here and to the CLI's port.
func setPageHeaders(w http.ResponseWriter, port int) {
	action := "'self'"
	if port > 0 {
		action += " http://127.0.0.1:" + strconv.Itoa(port)
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action "+action+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer the browser posts the
	// form with "Origin: null", which the same-host check refuses.
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
}

var cliPage = template.Must(template.New("cli").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · runyard</title></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if .Req}}
<p>The runyard CLI asks for an API key to act as you:</p>
<ul>
<li>Key name: <strong data-testid="key-name">{{.Name}}</strong></li>
<li>You: user <code>{{.UserID}}</code>, role <strong>{{.Role}}</strong>, organization <code>{{.OrgID}}</code></li>
<li>Scopes (your role's): <code>{{.Scopes}}</code></li>
</ul>
<p>Approve only if you just ran <code>runyard login</code> on this computer: the CLI waits on port {{.Req.Port}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="port" value="{{.Req.Port}}">
<input type="hidden" name="state" value="{{.Req.State}}">
<input type="hidden" name="challenge" value="{{.Req.Challenge}}">
<input type="hidden" name="name" value="{{.Req.Name}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
{{end}}
</main></body></html>
`))

type cliPageData struct {
	Title, Error, Name, UserID, Role, OrgID, Scopes, CSRF, Action string
	Req                                                           *cliRequest
}

func (h *CLILogin) renderPage(w http.ResponseWriter, status, port int, d cliPageData) {
	setPageHeaders(w, port)
	w.WriteHeader(status)
	_ = cliPage.Execute(w, d)
}

func (h *CLILogin) page(w http.ResponseWriter, r *http.Request) {
	if !h.usersExist(r) {
		h.renderPage(w, http.StatusPreconditionFailed, 0, cliPageData{Title: "No browser login here", Error: noUsers})
		return
	}
	secret, c, err := h.Auth.authenticate(r, false)
	if err != nil {
		// Sign in first, then back here (the console's sign-in page goes
		// to next, a path on this server).
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	req, err := parseCLIRequest(r.URL.Query())
	if err != nil {
		e := apperr.As(err)
		h.renderPage(w, apperr.HTTPStatus(e.Code), 0, cliPageData{Title: "This login link is broken", Error: e.Public() + ". Run `runyard login --web` again."})
		return
	}
	d := cliPageData{Title: "Approve the runyard CLI", Req: &req, Name: req.Name, UserID: c.UserID, Role: string(c.Role), OrgID: c.OrgID,
		CSRF: sessions.CSRFToken(secret), Action: PathCLIApprove}
	if d.Name == "" {
		d.Name = "runyard CLI"
	}
	scopes := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		scopes[i] = string(s)
	}
	d.Scopes = strings.Join(scopes, " ")
	if c.UserID == "" {
		d.Req = nil
		d.Error = "This browser is signed in with an API key, not as a user. Sign out, sign in with your account, and open the link from the CLI again."
		h.renderPage(w, http.StatusForbidden, 0, d)
		return
	}
	h.renderPage(w, http.StatusOK, req.Port, d)
}

func (h *CLILogin) approve(w http.ResponseWriter, r *http.Request) error {
	if !h.usersExist(r) {
		return apperr.FailedPrecondition(noUsers)
	}
	ck, err := r.Cookie(sessions.CookieName)
	if err != nil || ck.Value == "" {
		return apperr.Unauthenticated("not signed in: sign in and open the link from the CLI again")
	}
	c, err := h.Auth.Sessions.Authenticate(r.Context(), ck.Value)
	if err != nil {
		return err
	}
	if !sameOrigin(r) {
		return apperr.PermissionDenied("this form was posted from another site")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return apperr.Invalid("form", "could not be read")
	}
	// The page's form carries the session's CSRF token as a field; a
	// script may send it in the header instead, as on every other write.
	csrf := r.PostForm.Get("csrf")
	if csrf == "" {
		csrf = r.Header.Get(sessions.CSRFHeader)
	}
	if err := sessions.CheckCSRF(ck.Value, csrf); err != nil {
		return err
	}
	if d, ok := audit.FromContext(r.Context()); ok {
		d.SetCaller(c)
	}
	req, err := parseCLIRequest(r.PostForm)
	if err != nil {
		return err
	}
	if r.PostForm.Get("decision") != "approve" {
		// The CLI learns of the refusal at once instead of waiting.
		http.Redirect(w, r, req.callback(url.Values{"error": {"access_denied"}, "state": {req.State}}), http.StatusSeeOther)
		return nil
	}
	ctx := identity.NewContext(r.Context(), c)
	code, t, err := h.Identity.ApproveCLILogin(ctx, req.Challenge, req.Name)
	if err != nil {
		return err
	}
	audit.SetObject(r.Context(), audit.TypeAPIKey, t.ID)
	http.Redirect(w, r, req.callback(url.Values{"code": {code}, "state": {req.State}}), http.StatusSeeOther)
	return nil
}

func (h *CLILogin) token(w http.ResponseWriter, r *http.Request) error {
	if !h.usersExist(r) {
		return apperr.FailedPrecondition(noUsers)
	}
	var req struct {
		Code     *string `json:"code"`
		Verifier *string `json:"verifier"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Code == nil || *req.Code == "" {
		return apperr.Invalid("code", "is required")
	}
	if req.Verifier == nil || *req.Verifier == "" {
		return apperr.Invalid("verifier", "is required")
	}
	secret, t, err := h.Identity.RedeemCLILogin(r.Context(), *req.Code, *req.Verifier)
	if err != nil {
		return err
	}
	audit.SetObject(r.Context(), audit.TypeAPIKey, t.ID)
	w.Header().Set("Cache-Control", "no-store")
	jsonerr.JSON(w, http.StatusOK, map[string]string{"key": secret, "keyId": t.ID})
	return nil
}

// sameOrigin reports whether a post comes from this host's pages: browsers
// send Origin with every POST.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
