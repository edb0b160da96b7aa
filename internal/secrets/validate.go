package secrets

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

const (
	// MaxNameLength bounds a secret's name, in characters.
	MaxNameLength = 127
	// MaxValueBytes bounds a value. It stays below Linux's limit on one
	// environment string (128 KiB), so every value can be a variable.
	MaxValueBytes = 64 << 10
	// MaxFilePathBytes bounds a file mount's path.
	MaxFilePathBytes = 1024
	// ReservedPrefix starts the variables the runner sets itself
	// (RUNYARD_OUTPUT, RUNYARD_POD_KEY, ...); a secret must not shadow them.
	ReservedPrefix = "RUNYARD_"
)

// scopeFields are the request fields of each scope kind, for errors.
var scopeFields = map[ScopeKind]string{
	ScopeOrganization:   "organizationId",
	ScopeUser:           "userId",
	ScopeServiceAccount: "serviceAccountId",
	ScopeProject:        "projectId",
}

// validateScope checks the scope at field (scope, filter.scope) of a request
// of a caller of orgID. Naming another organization is CodeNotFound, as its
// objects are.
func validateScope(field, orgID string, sc Scope) error {
	member, ok := scopeFields[sc.Kind]
	if !ok {
		return apperr.Invalid(field, "exactly one of organizationId, userId or serviceAccountId is required")
	}
	field += "." + member
	if sc.Kind == ScopeProject {
		return apperr.Invalid(field, "runyard has no projects: use organizationId, userId or serviceAccountId")
	}
	if err := identity.ValidateUUID(field, sc.ID); err != nil {
		return err
	}
	if sc.Kind == ScopeOrganization && sc.ID != orgID {
		return apperr.NotFound("organization %q not found", sc.ID)
	}
	return nil
}

func validateName(name string, envVar bool) error {
	n := utf8.RuneCountInString(name)
	if n == 0 {
		return apperr.Invalid("name", "is required")
	}
	if n > MaxNameLength {
		return apperr.Invalid("name", "must be at most %d characters, got %d", MaxNameLength, n)
	}
	if !utf8.ValidString(name) {
		return apperr.Invalid("name", "must be UTF-8")
	}
	if strings.TrimSpace(name) != name {
		return apperr.Invalid("name", "must not begin or end with white space")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return apperr.Invalid("name", "must not contain control characters")
		}
	}
	if !envVar {
		return nil
	}
	// The name becomes the variable's name: a portable shell name, so that
	// $NAME works in every command an automation runs.
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return apperr.Invalid("name", "must be an environment variable name (letters, digits and '_', not starting with a digit) when environmentVariable is set, got %q", name)
		}
	}
	if why := ReservedEnvName(name); why != "" {
		return apperr.Invalid("name", "%s", why)
	}
	return nil
}

// reservedEnvNames are the variables the runner or the host sets for every
// command and that a secret or an automation's env must not shadow: a
// changed PATH or LD_PRELOAD runs other programs than the command names,
// and HOME, SHELL and USER are the runner user's.
var reservedEnvNames = []string{"PATH", "HOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "SHELL", "USER"}

// ReservedEnvName says why name may not be set by a secret or by the env of
// a service or task, or returns "" when it may. The names are compared as
// written (variables are case-sensitive); the runner's own prefix in any
// case.
func ReservedEnvName(name string) string {
	if strings.HasPrefix(strings.ToUpper(name), ReservedPrefix) {
		return fmt.Sprintf("%q is reserved: variables starting with %s are set by the runner", name, ReservedPrefix)
	}
	for _, r := range reservedEnvNames {
		if name == r {
			return fmt.Sprintf("%q is reserved: it may not be shadowed (reserved: %s and %s*)", name, strings.Join(reservedEnvNames, ", "), ReservedPrefix)
		}
	}
	return ""
}

func validateFilePath(p string) error {
	const field = "filePath"
	switch {
	case len(p) > MaxFilePathBytes:
		return apperr.Invalid(field, "must be at most %d bytes", MaxFilePathBytes)
	case !utf8.ValidString(p):
		return apperr.Invalid(field, "must be UTF-8")
	case strings.ContainsRune(p, 0):
		return apperr.Invalid(field, "must not contain NUL bytes")
	case !strings.HasPrefix(p, "/"):
		return apperr.Invalid(field, "must be an absolute path, got %q", p)
	case p == "/" || strings.HasSuffix(p, "/"):
		return apperr.Invalid(field, "must name a file, got %q", p)
	case path.Clean(p) != p:
		return apperr.Invalid(field, "must be a clean path (no '.', '..' or repeated '/'), got %q", p)
	}
	return nil
}

// validateValue checks a value for a secret mounted as envVar (or not).
func validateValue(v Value, envVar bool) error {
	switch {
	case v == "":
		return apperr.Invalid("value", "is required")
	case len(v) > MaxValueBytes:
		return apperr.Invalid("value", "must be at most %d bytes, got %d", MaxValueBytes, len(v))
	case envVar && strings.ContainsRune(string(v), 0):
		return apperr.Invalid("value", "must not contain NUL bytes: an environment variable cannot hold them")
	}
	return nil
}

// hostLabel is one DNS label of a registry host name.
var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validateRegistryHost accepts what a docker config's auths key holds: a
// host name or IP address with an optional port, without a scheme or path
// ("ghcr.io", "registry.example.com:5000", "10.0.0.1:5000").
func validateRegistryHost(h string) error {
	const field = "containerRegistryBasicAuthHost"
	if len(h) > 253+6 {
		return apperr.Invalid(field, "must be at most %d bytes", 253+6)
	}
	host, port := h, ""
	if hp, p, err := net.SplitHostPort(h); err == nil {
		host, port = hp, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return apperr.Invalid(field, "must be a registry host with an optional port 1 to 65535, got %q", h)
		}
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if !hostLabel.MatchString(l) {
			return apperr.Invalid(field, "must be a registry host name such as ghcr.io or registry.example.com:5000 (no scheme or path), got %q", h)
		}
	}
	return nil
}
