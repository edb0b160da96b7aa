// Package oidclogin is the browser's single sign-on with an OpenID provider
// (issue 12, item 3): GET /auth/oidc/login sends the browser to the
// provider (authorization-code flow with PKCE S256, state and nonce), and
// GET /auth/oidc/callback takes it back: the state is taken once from the
// store and must belong to this browser (a short HttpOnly cookie), the code
// is exchanged (golang.org/x/oauth2, with the PKCE verifier), the ID token is
// verified (github.com/coreos/go-oidc: the issuer's keys, audience = client
// id, expiry, and our nonce), internal/sso's rules decide who signs in with
// which role, the user is found or provisioned and a browser session issued.
//
// Every refusal answers in words (an HTML page, or JSON for a client that
// asks for it), creates nothing, and is recorded in the audit log as a
// failed sign-in with its reason; no token, code or secret is ever shown,
// logged or recorded. (This is not internal/api/oidc, which serves our own
// issuer's keys for GetIDToken.)
package oidclogin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/users"
)

// SurfaceAuth is the audit log's surface of sign-ins (password sign-ins
// share it).
const SurfaceAuth = audit.SurfaceAuth

// MethodCallback is the audit log's method of an OIDC sign-in, successful
// or not: the callback's route.
const MethodCallback = "GET " + sso.CallbackPath

// MethodLogin is the audit log's method of a sign-in refused at its start
// (rate-limited, or the provider unreachable): the login route. A start that
// goes to the provider is not recorded; its callback is.
const MethodLogin = "GET " + sso.LoginPath

// TypeUser is the audit log's object type of a sign-in: the user.
const TypeUser = "RESOURCE_TYPE_USER"

// cookiePrefix names the cookie that binds a started sign-in to the browser;
// the name ends with part of the state's hash, so two sign-ins started in
// two tabs do not overwrite each other's cookie.
const cookiePrefix = "runyard_oidc_"

// Users finds the account that signs in, or creates it with a membership of
// orgID in role on first sign-in (users.Service).
type Users interface {
	Provision(ctx context.Context, email, name, orgID string, role identity.Role) (*users.User, error)
}

// Sessions issues the browser session of a user who signed in: it creates
// the session record and sets the session cookie on w.
type Sessions interface {
	SignIn(w http.ResponseWriter, r *http.Request, userID, orgID string) error
}

// Orgs finds the organization new users join.
type Orgs interface {
	FindOrganizationByName(ctx context.Context, name string) (*identity.Organization, error)
}

// Members reads an existing member's role, which a sign-in without a mapped
// role claim keeps (internal/store implements it).
type Members interface {
	FindUserByEmail(ctx context.Context, email string) (*users.User, error)
	FindMemberships(ctx context.Context, orgID, userID string) ([]*users.Membership, error)
}

// Handler serves the two routes.
type Handler struct {
	cfg      sso.Config
	states   sso.StateStore
	users    Users
	sessions Sessions
	orgs     Orgs
	members  Members
	limit    func(ip string) error
	audit    *audit.Service
	log      *slog.Logger
	// publicURL is the server's URL as browsers reach it; the callback
	// URL registered at the provider is publicURL() + sso.CallbackPath.
	publicURL func() string
	// Now is the clock of login states.
	Now func() time.Time
	// HTTPClient talks to the provider.
	HTTPClient *http.Client
	// RetryEvery is how long a failed discovery waits before the next.
	RetryEvery time.Duration

	mu       sync.Mutex
	provider *oidc.Provider
	lastTry  time.Time
	lastErr  error
}

// Deps are what the handler calls.
type Deps struct {
	States    sso.StateStore
	Users     Users
	Sessions  Sessions
	Orgs      Orgs
	Members   Members
	Audit     *audit.Service
	PublicURL func() string
	Log       *slog.Logger
	// Limit, when set, spends one sign-in attempt of a client address (the
	// per-IP budget password sign-ins share) or refuses with
	// CodeResourceExhausted (sessions.RetryAfter says how long).
	Limit func(ip string) error
}

// New returns the handler of cfg (validated by cfg.Validate).
func New(cfg sso.Config, d Deps) *Handler {
	return &Handler{
		cfg: cfg, states: d.States, users: d.Users, sessions: d.Sessions, orgs: d.Orgs, members: d.Members, limit: d.Limit, audit: d.Audit,
		log: d.Log, publicURL: d.PublicURL, Now: time.Now,
		HTTPClient: &http.Client{Timeout: 15 * time.Second},
		RetryEvery: 5 * time.Second,
	}
}

// Mount registers the routes on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	for _, rt := range h.routes() {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
}

// MountDisabled registers the routes of a server without single sign-on:
// they answer not_found in words, instead of the mux's bare 404, so that a
// browser sent to them learns how to sign in instead.
func MountDisabled(mux *http.ServeMux) {
	h := &Handler{}
	for _, rt := range h.routes() {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			h.answer(w, r, &sso.Reason{Code: apperr.CodeNotFound,
				Message: "single sign-on is not configured on this server (runyard server --oidc-issuer): sign in with a password or an API key"})
		})
	}
}

// Routes lists the pattern of every route Mount registers, from the same
// table, for the authorization matrix (internal/server.Routes).
func Routes() []string {
	var out []string
	for _, rt := range (&Handler{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// routes is the table Mount, MountDisabled and Routes read.
func (h *Handler) routes() []route {
	return []route{{"GET " + sso.LoginPath, h.login}, {"GET " + sso.CallbackPath, h.callback}}
}

// Start discovers the provider in the background until it answers or ctx
// ends, so that the server starts while the provider is down and signs in
// as soon as it is up. Sign-ins meanwhile try discovery again themselves.
func (h *Handler) Start(ctx context.Context) {
	go func() {
		wait := time.Second
		for {
			if _, err := h.discover(ctx, true); err == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
		}
	}()
}

// discover returns the provider, asking its discovery document when it is
// not known yet. A sign-in (force false) retries at most every RetryEvery.
func (h *Handler) discover(ctx context.Context, force bool) (*oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, nil
	}
	if !force && h.lastErr != nil && h.Now().Sub(h.lastTry) < h.RetryEvery {
		return nil, h.lastErr
	}
	h.lastTry = h.Now()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, h.HTTPClient), h.cfg.Issuer)
	if err != nil {
		if h.lastErr == nil {
			h.log.Warn("OpenID provider unreachable: single sign-on is unavailable until it answers (retrying)", "issuer", h.cfg.Issuer, "err", err)
		}
		h.lastErr = err
		return nil, err
	}
	if h.lastErr != nil {
		h.log.Info("OpenID provider reachable again: single sign-on is available", "issuer", h.cfg.Issuer)
	} else {
		h.log.Info("OpenID provider discovered: single sign-on is available", "issuer", h.cfg.Issuer)
	}
	h.lastErr = nil
	h.provider = p
	return p, nil
}

func (h *Handler) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     h.cfg.ClientID,
		ClientSecret: h.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  strings.TrimRight(h.publicURL(), "/") + sso.CallbackPath,
		Scopes:       h.cfg.Scopes,
	}
}

// login starts a sign-in: it stores the login state and sends the browser to
// the provider.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	// Each start stores a state: a client starting sign-ins in a loop is
	// held to the rate password sign-ins are.
	if h.limit != nil {
		if err := h.limit(clientip.From(r)); err != nil {
			if d, ok := sessions.RetryAfter(err); ok {
				w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
			}
			e := apperr.As(err)
			h.refuseStart(w, r, sso.Refused(e.Code, "%s", e.Public()))
			return
		}
	}
	p, err := h.discover(r.Context(), false)
	if err != nil {
		h.refuseStart(w, r, sso.Refused(apperr.CodeUnavailable, "the identity provider cannot be reached; try again later"))
		return
	}
	state, nonce, browser := random(), random(), random()
	verifier := oauth2.GenerateVerifier()
	now := h.Now().UTC().Truncate(time.Microsecond)
	st := &sso.LoginState{
		StateHash: hash(state), BrowserHash: hash(browser), Nonce: nonce, Verifier: verifier,
		ReturnTo:  sso.SafeReturnPath(r.URL.Query().Get("return_to")),
		CreatedAt: now, ExpiresAt: now.Add(sso.StateLifetime),
	}
	if err := h.states.CreateLoginState(r.Context(), st); err != nil {
		h.log.ErrorContext(r.Context(), "store OIDC login state", "err", err)
		h.refuseStart(w, r, sso.Refused(apperr.CodeInternal, "internal error"))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookiePrefix + st.StateHash[:16], Value: browser, Path: "/auth/oidc/",
		MaxAge: int(sso.StateLifetime / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(h.publicURL(), "https://"),
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback finishes a sign-in.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	var cookieName string
	if state != "" {
		cookieName = cookiePrefix + hash(state)[:16]
		// The cookie has done its job whatever happens next.
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	userID, orgID, returnTo, err := h.signIn(w, r, state, cookieName)
	if err != nil {
		var reason *sso.Reason
		if !errors.As(err, &reason) {
			h.log.ErrorContext(ctx, "OIDC sign-in failed", "err", err)
			reason = sso.Refused(apperr.CodeInternal, "internal error")
		}
		h.recordFailure(ctx, r, MethodCallback, reason)
		h.answer(w, r, reason)
		return
	}
	h.log.InfoContext(ctx, "signed in with OIDC", "user", userID, "organization", orgID)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// signIn is the callback's work; a *sso.Reason error is a refusal in words.
// Nothing is created before every check passed.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, state, cookieName string) (userID, orgID, returnTo string, err error) {
	ctx := r.Context()
	q := r.URL.Query()
	if state == "" {
		return "", "", "", sso.Refused(apperr.CodeInvalid, "the answer of the identity provider has no state; start the sign-in again")
	}
	// Taken first, so that whatever follows, this state never serves again.
	st, err := h.states.TakeLoginState(ctx, hash(state))
	switch {
	case apperr.Is(err, apperr.CodeNotFound):
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "this sign-in is unknown or was already used; start the sign-in again")
	case err != nil:
		return "", "", "", fmt.Errorf("take login state: %w", err)
	}
	c, cerr := r.Cookie(cookieName)
	if cerr != nil || hash(c.Value) != st.BrowserHash {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "this sign-in was started in another browser (or its cookie expired); start the sign-in again")
	}
	if !h.Now().Before(st.ExpiresAt) {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "this sign-in took longer than %s; start the sign-in again", sso.StateLifetime)
	}
	if e := q.Get("error"); e != "" {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the identity provider refused the sign-in (%s)", printable(e, 64))
	}
	code := q.Get("code")
	if code == "" {
		return "", "", "", sso.Refused(apperr.CodeInvalid, "the answer of the identity provider has no authorization code")
	}
	p, err := h.discover(ctx, false)
	if err != nil {
		return "", "", "", sso.Refused(apperr.CodeUnavailable, "the identity provider cannot be reached; try again later")
	}
	octx := oidc.ClientContext(ctx, h.HTTPClient)
	tok, err := h.oauth2Config(p).Exchange(octx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		h.log.WarnContext(ctx, "OIDC code exchange refused", "err", exchangeError(err))
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the identity provider did not accept the authorization code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the identity provider sent no ID token")
	}
	idt, err := p.VerifierContext(octx, &oidc.Config{ClientID: h.cfg.ClientID, Now: h.Now}).Verify(octx, raw)
	if err != nil {
		return "", "", "", verifyReason(err)
	}
	if idt.Nonce == "" || idt.Nonce != st.Nonce {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the ID token does not carry this sign-in's nonce")
	}
	var cl struct {
		Email         string     `json:"email"`
		EmailVerified *boolClaim `json:"email_verified"`
		Name          string     `json:"name"`
	}
	var all map[string]any
	if err := idt.Claims(&cl); err != nil {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the ID token's claims cannot be read")
	}
	if err := idt.Claims(&all); err != nil {
		return "", "", "", sso.Refused(apperr.CodeUnauthenticated, "the ID token's claims cannot be read")
	}
	claims := sso.Claims{Subject: idt.Subject, Email: cl.Email, Name: cl.Name, Raw: all}
	if cl.EmailVerified != nil {
		v := bool(*cl.EmailVerified)
		claims.EmailVerified = &v
	}
	d, err := h.cfg.Decide(claims)
	if err != nil {
		return "", "", "", err
	}
	org, err := h.orgs.FindOrganizationByName(ctx, h.cfg.Organization)
	if err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			return "", "", "", sso.Refused(apperr.CodeFailedPrecondition, "the organization %q that new users join does not exist", h.cfg.Organization)
		}
		return "", "", "", fmt.Errorf("find organization %q: %w", h.cfg.Organization, err)
	}
	role := d.Role
	if !d.RoleFromClaim {
		// The default role is for a new member; provisioning must not
		// move the role an admin gave since.
		if role, err = h.currentRole(ctx, d.Email, org.ID, role); err != nil {
			return "", "", "", err
		}
	}
	u, err := h.users.Provision(ctx, d.Email, d.Name, org.ID, role)
	if err != nil {
		if e := apperr.As(err); e.Code != apperr.CodeInternal {
			return "", "", "", sso.Refused(e.Code, "%s", e.Public())
		}
		return "", "", "", fmt.Errorf("provision user: %w", err)
	}
	if u.DisabledAt != nil {
		return "", "", "", sso.Refused(apperr.CodePermissionDenied, "this account is disabled")
	}
	// The sign-in's audit entry goes in with the session it creates.
	actx, draft := audit.Begin(ctx, SurfaceAuth, MethodCallback, TypeUser, clientip.From(r), r.UserAgent())
	audit.SetObject(actx, TypeUser, u.ID)
	draft.SetCaller(&identity.Caller{OrgID: org.ID, Subject: identity.Subject{ID: u.ID, Principal: identity.PrincipalUser}, UserID: u.ID, Role: d.Role})
	if err := h.sessions.SignIn(w, r.WithContext(actx), u.ID, org.ID); err != nil {
		// Recorded by the callback as a failed sign-in.
		if e := apperr.As(err); e.Code != apperr.CodeInternal {
			return "", "", "", sso.Refused(e.Code, "%s", e.Public())
		}
		return "", "", "", fmt.Errorf("issue session: %w", err)
	}
	if h.audit != nil {
		if err := h.audit.Finish(actx, draft, audit.OutcomeOK); err != nil {
			h.log.ErrorContext(ctx, "audit log", "err", err)
		}
	}
	return u.ID, org.ID, st.ReturnTo, nil
}

// currentRole is the role of the member with email in orgID, or role when
// there is none yet.
func (h *Handler) currentRole(ctx context.Context, email, orgID string, role identity.Role) (identity.Role, error) {
	u, err := h.members.FindUserByEmail(ctx, email)
	switch {
	case apperr.Is(err, apperr.CodeNotFound):
		return role, nil
	case err != nil:
		return "", fmt.Errorf("find user: %w", err)
	}
	ms, err := h.members.FindMemberships(ctx, orgID, u.ID)
	if err != nil {
		return "", fmt.Errorf("find membership: %w", err)
	}
	if len(ms) == 1 {
		return ms[0].Role, nil
	}
	return role, nil
}

// refuseStart answers a sign-in refused before it went to the provider, and
// records it: a client held back by the rate limit shows in the audit log as
// a password sign-in's would.
func (h *Handler) refuseStart(w http.ResponseWriter, r *http.Request, reason *sso.Reason) {
	h.recordFailure(r.Context(), r, MethodLogin, reason)
	h.answer(w, r, reason)
}

// recordFailure writes the failed sign-in's audit entry under method: the
// reason in words, in the organization new users join.
func (h *Handler) recordFailure(ctx context.Context, r *http.Request, method string, reason *sso.Reason) {
	if h.audit == nil {
		return
	}
	var orgID string
	if org, err := h.orgs.FindOrganizationByName(ctx, h.cfg.Organization); err == nil {
		orgID = org.ID
	}
	e := &audit.Entry{
		OrgID: orgID, Surface: SurfaceAuth, Method: method, ObjectType: TypeUser,
		ClientIP: clientip.From(r), UserAgent: truncate(r.UserAgent(), 256),
		Outcome:   FailureOutcome(reason),
		CreatedAt: h.Now().UTC().Truncate(time.Microsecond),
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.audit.Store.AppendAudit(ctx, e); err != nil {
		h.log.ErrorContext(ctx, "audit log: failed sign-in", "err", err)
	}
}

// FailureOutcome is the audit outcome of a refused sign-in: its code and
// reason, e.g. `permission_denied: failed sign-in: email domain "x.org" may
// not sign in here`.
func FailureOutcome(reason *sso.Reason) string {
	return string(reason.Code) + ": failed sign-in: " + reason.Message
}

// answer writes a refusal: JSON ({"error","code"}) for a client that asks
// for it, a small page otherwise.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, reason *sso.Reason) {
	w.Header().Set("Cache-Control", "no-store")
	status := apperr.HTTPStatus(reason.Code)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		jsonerr.JSON(w, status, jsonerr.Body{Error: reason.Message, Code: string(reason.Code)})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = page.Execute(w, struct{ Message, Login string }{reason.Message, sso.LoginPath})
}

var page = template.Must(template.New("refused").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign-in refused · runyard</title></head>
<body><h1>Sign-in refused</h1><p>{{.Message}}</p><p><a href="{{.Login}}">Sign in again</a></p></body></html>
`))

// verifyReason says in words why go-oidc refused an ID token.
func verifyReason(err error) *sso.Reason {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return sso.Refused(apperr.CodeUnauthenticated, "the ID token has expired")
	case strings.Contains(msg, "expected audience"):
		return sso.Refused(apperr.CodeUnauthenticated, "the ID token was issued for another client (audience)")
	case strings.Contains(msg, "issued by a different provider"):
		return sso.Refused(apperr.CodeUnauthenticated, "the ID token was issued by another provider")
	case strings.Contains(msg, "signature"):
		return sso.Refused(apperr.CodeUnauthenticated, "the ID token's signature does not verify with the provider's keys")
	}
	return sso.Refused(apperr.CodeUnauthenticated, "the ID token does not verify")
}

// exchangeError keeps the provider's error code of a refused exchange and
// drops the rest (the response body could echo what was sent).
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Sprintf("status %d, error %q", re.Response.StatusCode, printable(re.ErrorCode, 64))
	}
	return "request failed"
}

// boolClaim reads email_verified, which some providers send as a string.
type boolClaim bool

func (b *boolClaim) UnmarshalJSON(p []byte) error {
	switch strings.Trim(string(p), `"`) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("email_verified: not a boolean")
	}
	return nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// printable keeps the letters, digits and _-. of s, at most n of them: a
// provider's error code, shown and recorded, carries nothing else.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
