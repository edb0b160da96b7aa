package authzmatrix_test

import (
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/identity"
)

// kind is a kind of caller.
type kind string

const (
	kindNone              kind = "none"
	kindKey               kind = "service-account key"
	kindInstallationAdmin kind = "installation admin"
	kindRunner            kind = "runner"
	kindLogs              kind = "logs token"
	// A person: a browser session (cookie and CSRF token) or an API key
	// a user owns, holding the user's role's scopes.
	kindSession kind = "session"
	kindUserKey kind = "user key"
)

// principal is one caller of the matrix: a column of the table.
type principal struct {
	name string
	kind kind
	// authorization is the Authorization header, empty for nobody.
	authorization string
	// scopes are what the credential holds (a role's scopes for a role).
	scopes []identity.Scope
	// other is set for callers of the second organization, who name the
	// first organization's objects.
	other bool
	// session and csrf are a browser session's cookie value and CSRF
	// token, sent instead of an Authorization header.
	session, csrf string
	// email is a user's, to sign in again.
	email string
}

func (p principal) user() bool { return p.kind == kindSession || p.kind == kindUserKey }

func (p principal) has(s identity.Scope) bool {
	switch p.kind {
	case kindNone, kindRunner, kindLogs:
		return false
	}
	return slices.Contains(p.scopes, identity.ScopeAdmin) || slices.Contains(p.scopes, s)
}

// passes reports whether the row's rule lets p through; "A or B" passes
// when either does.
func (p principal) passes(needs string) bool {
	if a, b, ok := strings.Cut(needs, " or "); ok {
		return p.passes(a) || p.passes(b)
	}
	switch needs {
	case "user":
		return p.user()
	case "session":
		return p.kind == kindSession
	case "caller":
		return p.kind == kindKey || p.kind == kindInstallationAdmin || p.user()
	case "public", "signed-url":
		return true
	case "authenticated":
		return p.kind != kindNone
	case "identity":
		return p.kind != kindNone && p.kind != kindLogs
	case "runner":
		return p.kind == kindRunner
	case "installation-admin":
		return p.kind == kindInstallationAdmin
	case "logs":
		return p.kind == kindLogs || p.has(identity.ScopeEnvironmentsRead)
	case "unimplemented", "replica":
		return false
	}
	for s := range strings.SplitSeq(strings.TrimPrefix(needs, "scope:"), "|") {
		if p.has(identity.Scope(s)) {
			return true
		}
	}
	return false
}

// allowed is the expectation of a call the rule lets through: any answer
// of the method's own, none of the refusals.
const allowed = "allowed"

// expect is the answer the table promises p for r: a code, or allowed.
func expect(r row, p principal) string {
	public := r.needs == "public" || r.needs == "signed-url"
	switch {
	case p.kind == kindNone && !public, r.needs == "session" && p.kind != kindSession:
		return "unauthenticated"
	case r.needs == "unimplemented":
		return "unimplemented"
	case p.other && r.namesOrganization():
		return "not_found"
	case !p.passes(r.needs):
		return "permission_denied"
	case p.other && len(r.objects) > 0:
		return r.otherAnswer()
	}
	return allowed
}

// refusals are the answers an allowed call must not get: the rule's
// refusals, and what says the row's method is not what is served.
var refusals = []string{"unauthenticated", "permission_denied", "unimplemented", "internal", "unknown", "unrouted"}

// matches reports whether got (a code) is what want promises; want may
// list alternatives separated by "|".
func matches(want, got string) bool {
	for w := range strings.SplitSeq(want, "|") {
		if w == allowed && !slices.Contains(refusals, got) && !strings.HasPrefix(got, "http_5") || w == got {
			return true
		}
	}
	return false
}

// sessionCookie is the browser session's cookie.
const sessionCookie = "runyard_session"
