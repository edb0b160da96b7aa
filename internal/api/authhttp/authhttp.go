// Package authhttp is the browser's sign-in API under /auth/: the HTTP
// adapter of internal/sessions. It sets and clears the HttpOnly session
// cookie and records every sign-in, failed sign-in, sign-out and switch in
// the audit log. No secret travels in a URL, and none is logged.
//
//	POST /auth/password {"email","password"} → 200 + cookie + Session JSON; 401 wrong credentials; 429 + Retry-After
//	POST /auth/key      {"key"}              → the same, the session acting as the API key
//	GET  /auth/session                       → the cookie's Session JSON (401 without one)
//	POST /auth/switch   {"organizationId"}   → a rotated session in another organization (X-CSRF-Token)
//	POST /auth/signout                       → 204, the session revoked and the cookie cleared (X-CSRF-Token)
package authhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
)

// Paths of the endpoints.
const (
	PathPassword = "/auth/password"
	PathKey      = "/auth/key"
	PathSession  = "/auth/session"
	PathSwitch   = "/auth/switch"
	PathSignout  = "/auth/signout"
)

// Prefix starts every path this package serves; the server's guard leaves
// the session cookie of these requests to the handlers.
const Prefix = "/auth/"

// maxBody bounds a sign-in request; a password is at most a few hundred
// bytes.
const maxBody = 16 << 10

// Session is the JSON answer of a sign-in, a switch and GET /auth/session.
type Session struct {
	CSRFToken      string    `json:"csrfToken"`
	OrganizationID string    `json:"organizationId"`
	UserID         string    `json:"userId,omitempty"`
	Role           string    `json:"role,omitempty"`
	Scopes         []string  `json:"scopes"`
	Principal      string    `json:"principal"`
	SubjectID      string    `json:"subjectId"`
	ExpiresAt      time.Time `json:"expiresAt"`
}

// Handler serves /auth/.
type Handler struct {
	Sessions *sessions.Service
	// Audit records the calls; nil records nothing.
	Audit *audit.Service
	// Secure reports whether cookies get the Secure attribute: when the
	// server runs TLS (or its public URL is https).
	Secure func() bool
	Log    *slog.Logger
}

// Mount registers the endpoints on mux.
func Mount(mux *http.ServeMux, h *Handler) {
	mux.HandleFunc("POST "+PathPassword, h.audited("POST "+PathPassword, h.password))
	mux.HandleFunc("POST "+PathKey, h.audited("POST "+PathKey, h.key))
	mux.HandleFunc("GET "+PathSession, h.session)
	mux.HandleFunc("POST "+PathSwitch, h.audited("POST "+PathSwitch, h.switchOrg))
	mux.HandleFunc("POST "+PathSignout, h.audited("POST "+PathSignout, h.signout))
}

// Routes lists the patterns Mount registers; the authorization matrix test
// (internal/api/authzmatrix) checks that docs/authorization.md has each.
func Routes() []string {
	return []string{"POST " + PathPassword, "POST " + PathKey, "GET " + PathSession, "POST " + PathSwitch, "POST " + PathSignout}
}

// audited records the call in the audit log: in the transaction of its
// change when it commits one, alone with its error code otherwise.
func (h *Handler) audited(method string, fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.Audit == nil {
			if err := fn(w, r); err != nil {
				h.writeError(w, r, err)
			}
			return
		}
		ctx, d := audit.Begin(r.Context(), audit.SurfaceAuth, method, "", clientip.From(r), r.UserAgent())
		r = r.WithContext(ctx)
		outcome := audit.OutcomeOK
		if err := fn(w, r); err != nil {
			outcome = string(apperr.CodeOf(err))
			h.writeError(w, r, err)
		}
		if err := h.Audit.Finish(ctx, d, outcome); err != nil {
			h.Log.ErrorContext(ctx, "audit log", "err", err)
		}
	}
}

func (h *Handler) password(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Email == nil {
		return apperr.Invalid("email", "is required")
	}
	if req.Password == nil {
		return apperr.Invalid("password", "is required")
	}
	iss, err := h.Sessions.SignInPassword(r.Context(), *req.Email, *req.Password, Meta(r))
	if err != nil {
		return err
	}
	h.issued(w, r, iss)
	return nil
}

func (h *Handler) key(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Key *string `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Key == nil {
		return apperr.Invalid("key", "is required")
	}
	iss, err := h.Sessions.SignInKey(r.Context(), *req.Key, Meta(r))
	if err != nil {
		return err
	}
	h.issued(w, r, iss)
	return nil
}

func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	secret, c, err := h.authenticate(r, false)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	sess, err := h.Sessions.Get(r.Context(), c.SessionID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	jsonerr.JSON(w, http.StatusOK, sessionJSON(c, sess, sessions.CSRFToken(secret)))
}

func (h *Handler) switchOrg(w http.ResponseWriter, r *http.Request) error {
	_, c, err := h.authenticate(r, true)
	if err != nil {
		return err
	}
	if d, ok := audit.FromContext(r.Context()); ok {
		d.SetCaller(c)
	}
	var req struct {
		OrganizationID *string `json:"organizationId"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.OrganizationID == nil {
		return apperr.Invalid("organizationId", "is required")
	}
	iss, err := h.Sessions.SwitchOrganization(r.Context(), c.SessionID, *req.OrganizationID, Meta(r))
	if err != nil {
		return err
	}
	h.issued(w, r, iss)
	return nil
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) error {
	_, c, err := h.authenticate(r, true)
	if err != nil {
		if apperr.Is(err, apperr.CodeUnauthenticated) {
			// The session is gone already: the cookie goes too.
			h.clearCookie(w)
		}
		return err
	}
	audit.SetObject(r.Context(), sessions.ObjectTypeSession, c.SessionID)
	if err := h.Sessions.Revoke(identity.NewContext(r.Context(), c), c.SessionID); err != nil {
		return err
	}
	h.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authenticate returns the cookie's secret and caller; csrf requires the
// session's CSRF token in its header.
func (h *Handler) authenticate(r *http.Request, csrf bool) (string, *identity.Caller, error) {
	ck, err := r.Cookie(sessions.CookieName)
	if err != nil || ck.Value == "" {
		return "", nil, apperr.Unauthenticated("not signed in: POST %s or %s first", PathPassword, PathKey)
	}
	c, err := h.Sessions.Authenticate(r.Context(), ck.Value)
	if err != nil {
		return "", nil, err
	}
	if csrf {
		if err := sessions.CheckCSRF(ck.Value, r.Header.Get(sessions.CSRFHeader)); err != nil {
			return "", nil, err
		}
	}
	return ck.Value, c, nil
}

// issued sets the new session's cookie and answers with its JSON.
func (h *Handler) issued(w http.ResponseWriter, r *http.Request, iss *sessions.Issued) {
	SetCookie(w, iss, h.Secure != nil && h.Secure())
	w.Header().Set("Cache-Control", "no-store")
	jsonerr.JSON(w, http.StatusOK, sessionJSON(iss.Caller, iss.Session, iss.CSRFToken))
}

// SetCookie sets the session cookie of iss on w: HttpOnly, SameSite=Lax,
// Path=/, lasting until the session's absolute expiry, Secure when secure.
// The OpenID Connect callback uses it too.
func SetCookie(w http.ResponseWriter, iss *sessions.Issued, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name: sessions.CookieName, Value: iss.Secret, Path: "/",
		Expires: iss.Session.ExpiresAt, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessions.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.Secure != nil && h.Secure(), SameSite: http.SameSiteLaxMode,
	})
}

func sessionJSON(c *identity.Caller, sess *sessions.Session, csrf string) Session {
	scopes := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		scopes[i] = string(s)
	}
	return Session{
		CSRFToken: csrf, OrganizationID: c.OrgID, UserID: c.UserID, Role: string(c.Role), Scopes: scopes,
		Principal: string(c.Subject.Principal), SubjectID: c.Subject.ID, ExpiresAt: sess.ExpiresAt,
	}
}

// writeError answers with err; a refused sign-in says when to come back.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if d, ok := sessions.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	jsonerr.Write(w, r, h.Log, err)
}

// Meta is what a sign-in knows of the browser of r: its address, user
// agent and the session cookie it came with (rotated out by the sign-in).
func Meta(r *http.Request) sessions.Meta {
	m := sessions.Meta{ClientIP: clientip.From(r), UserAgent: r.UserAgent()}
	if ck, err := r.Cookie(sessions.CookieName); err == nil {
		m.PreviousSecret = ck.Value
	}
	return m
}

// decode reads one JSON object into v; errors name the field.
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var sizeErr *http.MaxBytesError
		if errors.As(err, &sizeErr) {
			return apperr.Invalid("body", "must be at most %d bytes", sizeErr.Limit)
		}
		return apperr.Invalid("body", "cannot be read")
	}
	if !utf8.Valid(b) {
		return apperr.Invalid("body", "must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return apperr.Invalid(typeErr.Field, "must be a string, got a JSON %s", typeErr.Value)
		case errors.As(err, &typeErr):
			return apperr.Invalid("body", "must be a JSON object, got a JSON %s", typeErr.Value)
		case errors.Is(err, io.EOF):
			return apperr.Invalid("body", "is empty; want a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return apperr.Invalid(field, "is not a known field")
		}
		return apperr.Invalid("body", "is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.Invalid("body", "must hold one JSON object and nothing after it")
	}
	return nil
}
