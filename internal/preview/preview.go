// Package preview is the rules of preview URLs: the ports an environment's
// spec lists (spec.ports) served by the control plane at
// SCHEME://PORT--ENVIRONMENT_ID.PREVIEW_DOMAIN, over a TCP session to the
// port on the environment's runner (internal/envaccess), so the runner still
// needs no inbound port. The HTTP adapter is internal/api/previewhttp.
//
// Who may open a port is its admission (spec.ports[].admission, else
// spec.admission): ADMISSION_LEVEL_EVERYONE is public; ADMISSION_LEVEL_OWNER_ONLY
// (the default) admits the environment's creator and the admins of its
// organization, signed in.
//
// A preview host is another origin than the console's, and what it serves
// is the environment's, not runyard's: its pages must never see the
// console's session. So a browser signs in to a preview host by a
// redirect through the console (the OAuth code flow's shape):
//
//	preview host ──302──▶ console /environments/ID/ports/PORT/preview?state=S&next=PATH
//	   (sets a state cookie S)     (the console session decides; mints a code bound to the host and S)
//	preview host /.runyard/preview/callback?code=C ◀──303──
//	   (checks C and the state cookie; sets its own grant cookie, for this host only)
//
// Codes and grants are signed with a server key every replica shares; a
// grant names the console session it came from, so signing out ends it.
package preview

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// KeyName names the server key that signs sign-in codes and grants.
const KeyName = "preview-signing"

// Lifetimes of what the sign-in hands out: a code crosses one redirect; a
// grant is renewed by another round trip through the console (no prompt
// while the console session lives), so a role change reaches a preview
// within this long. A signed-out console session ends its grants at once.
const (
	CodeLifetime  = time.Minute
	GrantLifetime = time.Hour
)

// Domain is a --preview-domain: the host (and port, when the browser uses
// one) that preview hosts end in.
type Domain struct {
	host string // lowercase, with :port when given
	port bool
}

// ParseDomain checks a --preview-domain value: a host name with an optional
// port ("preview.example.com", "localhost:8080"), no scheme or path.
func ParseDomain(flag, v string) (Domain, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return Domain{}, nil
	}
	bad := fmt.Errorf("%s %q must be a host name with an optional port, such as preview.example.com or localhost:8080 (no scheme, no path)", flag, v)
	if strings.ContainsAny(v, "/@?#") {
		return Domain{}, bad
	}
	host, port := v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Domain{}, bad
		}
	}
	if host == "" || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || net.ParseIP(host) != nil {
		// An IP address has no subdomains to put previews in.
		return Domain{}, bad
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return Domain{}, bad
		}
	}
	return Domain{host: v, port: port != ""}, nil
}

// Enabled reports whether preview URLs are served.
func (d Domain) Enabled() bool { return d.host != "" }

func (d Domain) String() string { return d.host }

// Host is the preview host of port in envID.
func (d Domain) Host(envID string, port int) string {
	return fmt.Sprintf("%d--%s.%s", port, envID, d.host)
}

// ParseHost returns the environment and port a request's Host names, and
// false when it is no preview host of d.
func (d Domain) ParseHost(host string) (envID string, port int, ok bool) {
	if !d.Enabled() {
		return "", 0, false
	}
	host = strings.ToLower(host)
	if !d.port {
		// Behind a proxy or on a default port the browser may send one.
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	label, ok := strings.CutSuffix(host, "."+d.host)
	if !ok {
		return "", 0, false
	}
	p, id, ok := strings.Cut(label, "--")
	if !ok || len(p) == 0 || len(p) > 5 || p[0] == '0' {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || identity.ValidateUUID("environmentId", id) != nil {
		return "", 0, false
	}
	return id, n, true
}

// Target is a port an environment's spec lists, found by its preview host.
type Target struct {
	Env       *environments.Environment
	Port      int
	Admission environments.Admission
}

// Public reports whether everyone may open the port.
func (t *Target) Public() bool { return t.Admission == environments.AdmissionEveryone }

// Grant is who a browser signed in to a preview host as: a snapshot of
// the caller taken when the console minted the code, checked again on
// every request against the environment as it is then.
type Grant struct {
	Host string `json:"h"`
	// State binds a code to the browser that started the sign-in.
	State     string             `json:"st,omitempty"`
	OrgID     string             `json:"o"`
	Subject   string             `json:"s"`
	Principal identity.Principal `json:"p"`
	// Admin is set when the caller held the admin scope.
	Admin bool `json:"a,omitempty"`
	// SessionID is the console session the grant came from, "" for an
	// API key: the adapter checks it is still live.
	SessionID string `json:"sid,omitempty"`
	Expires   int64  `json:"exp"`
}

// Service finds preview targets and signs browsers in to them.
type Service struct {
	Domain Domain
	// Scheme is http or https: what the control plane's public URL uses.
	Scheme string
	// Port is put in preview URLs when the domain names none: the public
	// URL's port, unless it is the scheme's default ("" then).
	Port   string
	Store  envaccess.Store
	Access *envaccess.Service
	// Key signs codes and grants (KeyName).
	Key []byte
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// URL is the preview URL of port in envID, "" when previews are off.
func (s *Service) URL(envID string, port int32) string {
	if s == nil || !s.Domain.Enabled() {
		return ""
	}
	h := s.Domain.Host(envID, int(port))
	if !s.Domain.port && s.Port != "" {
		h += ":" + s.Port
	}
	return s.Scheme + "://" + h
}

// canonical is the host a grant names for a request's Host: without the
// port when the domain names none.
func (s *Service) canonical(host string) string {
	host = strings.ToLower(host)
	if !s.Domain.port {
		if h, _, err := net.SplitHostPort(host); err == nil {
			return h
		}
	}
	return host
}

// Find returns the target of envID's port. It is the control plane's own
// look-up (a preview host names no organization) and fails with
// CodeNotFound when the environment does not exist or its spec does not
// list the port.
func (s *Service) Find(ctx context.Context, envID string, port int) (*Target, error) {
	e, err := s.Store.FindEnvironmentOfAnyOrganization(ctx, envID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, apperr.NotFound("environment %q not found", envID)
	}
	if err != nil {
		return nil, fmt.Errorf("find the environment of a preview: %w", err)
	}
	return targetOf(e, port)
}

func targetOf(e *environments.Environment, port int) (*Target, error) {
	for _, p := range e.Spec.Ports {
		if int(p.Port) != port {
			continue
		}
		return &Target{Env: e, Port: port, Admission: AdmissionOf(e, p)}, nil
	}
	return nil, apperr.NotFound("environment %q does not expose port %d (spec.ports)", e.ID, port)
}

// AdmissionOf is who may open port p of e: the port's admission, else
// the environment's (spec.admission), else the owner only.
func AdmissionOf(e *environments.Environment, p environments.Port) environments.Admission {
	a := p.Admission
	if a == "" || a == environments.AdmissionUnspecified {
		a = e.Spec.Admission
	}
	if a != environments.AdmissionEveryone {
		a = environments.AdmissionOwnerOnly
	}
	return a
}

// Admit decides whether g may open t: a public port admits anyone; an
// owner-only port the environment's creator and its organization's
// admins. Someone of another organization is CodeNotFound, as everywhere;
// anyone else of the organization CodePermissionDenied.
func Admit(t *Target, g *Grant) error {
	if t.Public() {
		return nil
	}
	if g == nil {
		return apperr.Unauthenticated("port %d of environment %q is for its owner: sign in", t.Port, t.Env.ID)
	}
	if g.OrgID != t.Env.OrgID {
		return apperr.NotFound("environment %q not found", t.Env.ID)
	}
	if g.Admin || (g.Subject == t.Env.Creator.ID && g.Principal == t.Env.Creator.Principal) {
		return nil
	}
	return apperr.PermissionDenied("port %d of environment %q is for the environment's creator and the organization's admins (its admission is owner)", t.Port, t.Env.ID)
}

// GrantOf is the grant of a caller: who it is and whether it is an admin.
func GrantOf(c *identity.Caller) *Grant {
	return &Grant{OrgID: c.OrgID, Subject: c.Subject.ID, Principal: c.Subject.Principal, Admin: c.Has(identity.ScopeAdmin), SessionID: c.SessionID}
}

// SignIn is the console's half of a browser's sign-in to a preview host:
// the caller (a console session or an API key) asks for port in envID,
// with the state the preview host gave the browser and the path to return
// to. It returns the preview host's callback URL with a code. It needs
// ScopeEnvironmentsRead; the environment must be the caller's
// organization's (else CodeNotFound) and list the port (CodeNotFound),
// and the caller must be admitted (CodePermissionDenied). Without
// previews it fails with CodeFailedPrecondition.
func (s *Service) SignIn(ctx context.Context, envID string, port int, state, next string) (string, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return "", err
	}
	if err := identity.ValidateUUID("environmentId", envID); err != nil {
		return "", err
	}
	e, err := s.Access.Environments.FindEnvironmentByID(ctx, c.OrgID, envID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return "", apperr.NotFound("environment %q not found", envID)
	}
	if err != nil {
		return "", fmt.Errorf("find environment: %w", err)
	}
	if !s.Domain.Enabled() {
		return "", apperr.FailedPrecondition("preview URLs are off on this control plane: start it with --preview-domain")
	}
	t, err := targetOf(e, port)
	if err != nil {
		return "", err
	}
	if state == "" || len(state) > 128 {
		return "", apperr.Invalid("state", "is required: open the preview URL to sign in to it")
	}
	g := GrantOf(c)
	if err := Admit(t, g); err != nil {
		return "", err
	}
	g.Host = s.Domain.Host(envID, port)
	g.State = state
	g.Expires = s.now().Add(CodeLifetime).Unix()
	code, err := s.sign("code", g)
	if err != nil {
		return "", err
	}
	q := url.Values{"code": {code}, "next": {SafePath(next)}}
	return s.URL(envID, int32(port)) + CallbackPath + "?" + q.Encode(), nil
}

// CallbackPath is the path on a preview host that redeems a sign-in code.
// It is the control plane's, never the environment's.
const CallbackPath = "/.runyard/preview/callback"

// Redeem turns a code into the grant a preview host keeps in its cookie:
// the code must be for host, signed, unexpired, and carry state (the
// browser's state cookie). It fails with CodeUnauthenticated.
func (s *Service) Redeem(code, host, state string) (string, *Grant, error) {
	var g Grant
	if err := s.verify("code", code, &g); err != nil {
		return "", nil, err
	}
	if g.Host != s.canonical(host) || state == "" || !hmac.Equal([]byte(g.State), []byte(state)) {
		return "", nil, apperr.Unauthenticated("this sign-in link is for another preview or another browser: open the preview URL again")
	}
	g.State = ""
	g.Expires = s.now().Add(GrantLifetime).Unix()
	v, err := s.sign("grant", &g)
	if err != nil {
		return "", nil, err
	}
	return v, &g, nil
}

// Check returns the grant of a preview host's cookie value, if it is
// signed, unexpired and for host. It fails with CodeUnauthenticated.
func (s *Service) Check(value, host string) (*Grant, error) {
	var g Grant
	if err := s.verify("grant", value, &g); err != nil {
		return nil, err
	}
	if g.Host != s.canonical(host) {
		return nil, apperr.Unauthenticated("the preview sign-in is for another host")
	}
	return &g, nil
}

func (s *Service) sign(kind string, g *Grant) (string, error) {
	if len(s.Key) == 0 {
		return "", &apperr.Error{Code: apperr.CodeInternal, Message: "preview URLs have no signing key"}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("encode a preview grant: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + s.mac(kind, payload), nil
}

func (s *Service) mac(kind, payload string) string {
	m := hmac.New(sha256.New, s.Key)
	m.Write([]byte("runyard-preview-" + kind + "." + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) verify(kind, v string, g *Grant) error {
	bad := apperr.Unauthenticated("invalid preview sign-in: open the preview URL again")
	payload, sig, ok := strings.Cut(v, ".")
	if !ok || len(s.Key) == 0 || !hmac.Equal([]byte(sig), []byte(s.mac(kind, payload))) {
		return bad
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(b, g) != nil {
		return bad
	}
	if s.now().Unix() >= g.Expires {
		return apperr.Unauthenticated("the preview sign-in has expired: open the preview URL again")
	}
	return nil
}

// SafePath returns next when it is a path of the same host ("/x?y"),
// else "/": a sign-in never redirects to another site.
func SafePath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// Runs refuses a target whose environment should not run
// (CodeFailedPrecondition), as envaccess.Runs.
func Runs(t *Target) error { return envaccess.Runs(t.Env) }
