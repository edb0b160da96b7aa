package identity

import (
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
)

// Role is a member's role in an organization (Ona's organization roles).
// A role is a set of scopes, and nothing else: authorization keeps asking
// for scopes (Require), so a user's role and an API key are checked the
// same way, and a key owned by a user can never carry a scope its owner's
// role lacks (Role.Allows).
type Role string

const (
	RoleAdmin            Role = "admin"
	RoleMember           Role = "member"
	RoleRunnersAdmin     Role = "runners-admin"
	RoleAutomationsAdmin Role = "automations-admin"
	RoleAuditReader      Role = "audit-reader"
)

// memberScopes is what every member may do: use the organization's runners,
// and create and use environments, pods and secrets.
var memberScopes = []Scope{
	ScopeRunnersRead,
	ScopeEnvironmentsRead, ScopeEnvironmentsWrite,
	ScopePodsRead, ScopePodsWrite,
	ScopeSecretsRead, ScopeSecretsWrite,
}

// RoleScopes is the one table from roles to scopes; docs/ARCHITECTURE.md
// shows it. automations-admin has no scope beyond a member's yet, since
// automations are governed by environments:write; audit-reader reads,
// the audit log included.
var RoleScopes = map[Role][]Scope{
	RoleAdmin:            {ScopeAdmin},
	RoleMember:           memberScopes,
	RoleRunnersAdmin:     append(slices.Clone(memberScopes), ScopeRunnersWrite),
	RoleAutomationsAdmin: memberScopes,
	RoleAuditReader:      {ScopeRunnersRead, ScopeEnvironmentsRead, ScopePodsRead, ScopeAuditRead},
}

// KnownRoles lists the roles in the order help texts show them.
var KnownRoles = []Role{RoleAdmin, RoleMember, RoleRunnersAdmin, RoleAutomationsAdmin, RoleAuditReader}

// ParseRole validates a role name; field names the request field or flag
// for errors.
func ParseRole(field, name string) (Role, error) {
	r := Role(strings.TrimSpace(name))
	if _, ok := RoleScopes[r]; !ok {
		names := make([]string, len(KnownRoles))
		for i, k := range KnownRoles {
			names[i] = string(k)
		}
		if r == "" {
			return "", apperr.Invalid(field, "is required (known: %s)", strings.Join(names, ", "))
		}
		return "", apperr.Invalid(field, "unknown role %q (known: %s)", name, strings.Join(names, ", "))
	}
	return r, nil
}

// Scopes returns the role's scopes (a copy).
func (r Role) Scopes() []Scope { return slices.Clone(RoleScopes[r]) }

// Has reports whether the role grants scope; admin grants every scope.
func (r Role) Has(scope Scope) bool {
	s := RoleScopes[r]
	return slices.Contains(s, ScopeAdmin) || slices.Contains(s, scope)
}

// Allows checks that every scope of a key is within the role, so that a key
// never does more than its owner. It fails with CodePermissionDenied naming
// the first scope the role lacks.
func (r Role) Allows(scopes []Scope) error {
	for _, s := range scopes {
		if !r.Has(s) {
			return apperr.PermissionDenied("role %s does not grant scope %q", r, s)
		}
	}
	return nil
}
