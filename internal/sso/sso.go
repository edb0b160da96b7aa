// Package sso holds the rules of single sign-on with OpenID Connect (issue
// 12, item 3): the provider settings and their validation, who may sign in
// (a verified email, an allowed domain), which role a new member gets (a
// claim's values mapped to roles), and the one-time login state that ties a
// provider's answer to the browser and the request that asked for it.
//
// The protocol itself (discovery, the code exchange, ID token verification)
// is the adapter internal/api/oidclogin; this package has no HTTP in it.
package sso

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// CallbackPath is where the provider sends the browser back; the URL to
// register at the provider is the server's public URL followed by it.
const CallbackPath = "/auth/oidc/callback"

// LoginPath starts a sign-in.
const LoginPath = "/auth/oidc/login"

// StateLifetime is how long a started sign-in may take at the provider.
const StateLifetime = 10 * time.Minute

// DefaultScopes are asked for when the configuration names none.
var DefaultScopes = []string{"openid", "email", "profile"}

// NoRole as the default role refuses a new user none of whose role claim
// values is mapped.
const NoRole = "none"

// Config is the provider and the sign-in rules (runyard server --oidc-*).
type Config struct {
	// Issuer is the provider's issuer URL (discovery is Issuer +
	// /.well-known/openid-configuration). Empty disables single sign-on.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes asked for; "openid" is always among them.
	Scopes []string
	// AllowedDomains, when not empty, are the email domains that may sign
	// in (lowercase, exact match of the part after the last '@').
	AllowedDomains []string
	// RoleClaim names the ID token claim (a string or a list of strings)
	// whose values RoleMap maps to roles.
	RoleClaim string
	// RoleMap maps claim values to roles, in the order given: the first
	// entry whose value the claim carries decides.
	RoleMap []RoleMapping
	// DefaultRole is the role of a new member whose claim maps to no role;
	// empty refuses such a sign-in.
	DefaultRole identity.Role
	// Organization is the name of the organization new users join.
	Organization string
}

// RoleMapping maps one claim value to a role.
type RoleMapping struct {
	Value string
	Role  identity.Role
}

// Enabled reports whether single sign-on is configured.
func (c *Config) Enabled() bool { return c.Issuer != "" }

// ParseRoleMap reads "value=role,value=role" (flag --oidc-role-map).
func ParseRoleMap(field, s string) ([]RoleMapping, error) {
	var out []RoleMapping
	for _, part := range splitList(s) {
		value, role, ok := strings.Cut(part, "=")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			return nil, apperr.Invalid(field, "%q is not value=role", part)
		}
		r, err := identity.ParseRole(field, role)
		if err != nil {
			return nil, err
		}
		out = append(out, RoleMapping{Value: value, Role: r})
	}
	return out, nil
}

// ParseList reads a comma-separated list (flags --oidc-allowed-domains,
// --oidc-scopes), dropping empty items.
func ParseList(s string) []string { return splitList(s) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the configuration of an enabled provider and fills the
// defaults; each error names the flag to fix.
func (c *Config) Validate() error {
	if !c.Enabled() {
		if c.ClientID != "" || c.ClientSecret != "" {
			return apperr.Invalid("--oidc-issuer", "is required with --oidc-client-id and --oidc-client-secret")
		}
		return nil
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return apperr.Invalid("--oidc-issuer", "%q must be an absolute http or https URL", c.Issuer)
	}
	if c.ClientID == "" {
		return apperr.Invalid("--oidc-client-id", "is required with --oidc-issuer")
	}
	if c.ClientSecret == "" {
		return apperr.Invalid("--oidc-client-secret", "is required with --oidc-issuer (or set RUNYARD_OIDC_CLIENT_SECRET)")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	for i, d := range c.AllowedDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || strings.ContainsAny(d, "@/ ") {
			return apperr.Invalid("--oidc-allowed-domains", "%q is not an email domain", c.AllowedDomains[i])
		}
		c.AllowedDomains[i] = d
	}
	if len(c.RoleMap) > 0 && c.RoleClaim == "" {
		return apperr.Invalid("--oidc-role-claim", "is required with --oidc-role-map")
	}
	if c.DefaultRole != "" {
		if _, err := identity.ParseRole("--oidc-default-role", string(c.DefaultRole)); err != nil {
			return err
		}
	}
	if c.DefaultRole == "" && c.RoleClaim == "" {
		return apperr.Invalid("--oidc-default-role", "is required without --oidc-role-claim: new users need a role")
	}
	if c.Organization == "" {
		c.Organization = "default"
	}
	return nil
}

// Reason is why a sign-in was refused: the words the browser shows and the
// audit entry records. None carries a token, a code or a secret.
type Reason struct {
	Code    apperr.Code
	Message string
}

func (r *Reason) Error() string { return r.Message }

// Refused returns the error of a refused sign-in.
func Refused(code apperr.Code, format string, args ...any) *Reason {
	return &Reason{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Claims are what the rules read from a verified ID token.
type Claims struct {
	Subject string
	Email   string
	// EmailVerified is nil when the token does not say.
	EmailVerified *bool
	Name          string
	// Raw holds every claim, for the role claim.
	Raw map[string]any
}

// Decision is who signs in: the email the account is found or created by,
// its display name, and the role a new member gets.
type Decision struct {
	Email string
	Name  string
	Role  identity.Role
	// RoleFromClaim is set when the role claim decided Role: the provider
	// then governs the member's role at every sign-in. Otherwise Role
	// (the default role) is only for a new member, and a role an admin
	// gave later stays.
	RoleFromClaim bool
}

// Decide applies the rules to verified claims: an email is required, and
// verified when the token says; its domain must be allowed; the role claim
// maps to a role, or the default role applies.
func (c *Config) Decide(cl Claims) (*Decision, error) {
	email := strings.ToLower(strings.TrimSpace(cl.Email))
	at := strings.LastIndexByte(email, '@')
	if email == "" || at <= 0 || at == len(email)-1 {
		return nil, Refused(apperr.CodePermissionDenied, "the identity provider sent no email address (ask for the \"email\" scope)")
	}
	if cl.EmailVerified != nil && !*cl.EmailVerified {
		return nil, Refused(apperr.CodePermissionDenied, "the email address is not verified at the identity provider")
	}
	if len(c.AllowedDomains) > 0 && !slices.Contains(c.AllowedDomains, email[at+1:]) {
		return nil, Refused(apperr.CodePermissionDenied, "email domain %q may not sign in here", email[at+1:])
	}
	role, fromClaim := c.DefaultRole, false
	if c.RoleClaim != "" {
		values := claimValues(cl.Raw[c.RoleClaim])
		for _, m := range c.RoleMap {
			if slices.Contains(values, m.Value) {
				role, fromClaim = m.Role, true
				break
			}
		}
	}
	if role == "" {
		return nil, Refused(apperr.CodePermissionDenied, "no role: claim %q carries no value mapped to a role", c.RoleClaim)
	}
	name := strings.TrimSpace(cl.Name)
	return &Decision{Email: email, Name: name, Role: role, RoleFromClaim: fromClaim}, nil
}

// claimValues reads a string or a list of strings.
func claimValues(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

// SafeReturnPath returns p when it is a path on this server ("/x?y"), and
// "/" otherwise: a return path never leads to another site.
func SafeReturnPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}

// LoginState is a started sign-in: it is stored when the browser goes to
// the provider and taken (once) when it comes back, on whichever replica.
type LoginState struct {
	// StateHash is the SHA-256 (hex) of the state parameter.
	StateHash string
	// BrowserHash is the SHA-256 (hex) of the value of the short cookie
	// set on the browser that started the sign-in.
	BrowserHash string
	// Nonce must come back in the ID token.
	Nonce string
	// Verifier is the PKCE code verifier sent with the code exchange.
	Verifier string
	// ReturnTo is the safe path to go to after sign-in.
	ReturnTo  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// StateStore keeps login states; internal/store implements it.
type StateStore interface {
	// CreateLoginState stores st and drops the states expired before
	// st.CreatedAt.
	CreateLoginState(ctx context.Context, st *LoginState) error
	// TakeLoginState removes and returns the state with that hash, so a
	// state is used once on every replica. It fails with CodeNotFound.
	TakeLoginState(ctx context.Context, stateHash string) (*LoginState, error)
}
