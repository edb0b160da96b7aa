package automations

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/secrets"
)

// Limits where the seed gives none; they match the automations file's (spec
// package) where both have the field.
const (
	maxName        = 256
	maxDescription = 4096
	maxCommand     = 64 << 10
	maxImage       = 1024
	maxEnvVars     = 256
	maxEnvValue    = 32 << 10
	maxSession     = 128
	maxMessage     = 4096
	maxURL         = 2048
	maxOutputs     = 64
	maxOutputKey   = 128
	maxOutputValue = 4096
	// MaxFilterValues bounds each list filter, so one request stays one
	// reasonable query on either database.
	MaxFilterValues = 100
)

var (
	envNamePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)
	outputKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// validateText checks free text: valid UTF-8 without NUL (PostgreSQL text
// cannot hold it, exec cannot pass it), at most maxRunes characters, and no
// control characters but line breaks and tabs where multiline.
func validateText(field, s string, maxRunes int, multiline bool) error {
	if !utf8.ValidString(s) {
		return apperr.Invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return apperr.Invalid(field, "must be at most %d characters, got %d", maxRunes, n)
	}
	for _, r := range s {
		if r == 0 || unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return apperr.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// validateCommand checks a shell command. An empty optional command is
// unset; a blank one is refused, since it would run and succeed at once.
func validateCommand(field, cmd string, required bool) error {
	if strings.TrimSpace(cmd) == "" {
		switch {
		case required:
			return apperr.Invalid(field, "is required")
		case cmd != "":
			return apperr.Invalid(field, "must not be blank; leave it out to unset it")
		}
		return nil
	}
	return validateText(field, cmd, maxCommand, true)
}

func validateCommands(field string, c spec.Commands) error {
	if err := validateCommand(field+".start", c.Start, true); err != nil {
		return err
	}
	if err := validateCommand(field+".ready", c.Ready, false); err != nil {
		return err
	}
	return validateCommand(field+".stop", c.Stop, false)
}

// validateRunsOn follows the automations file's rules: docker or machine,
// not both; docker needs an image; docker.environment entries are
// NAME=value.
func validateRunsOn(field string, r spec.RunsOn) error {
	if r.Docker != nil && r.Machine != nil {
		return apperr.Invalid(field, "must set docker or machine, not both")
	}
	if r.Docker == nil {
		return nil
	}
	img := r.Docker.Image
	switch {
	case img == "":
		return apperr.Invalid(field+".docker.image", "is required")
	case len(img) > maxImage || !utf8.ValidString(img) ||
		strings.IndexFunc(img, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return apperr.Invalid(field+".docker.image", "must be an image reference of at most %d bytes without spaces", maxImage)
	}
	for i, e := range r.Docker.Environment {
		f := fmt.Sprintf("%s.docker.environment[%d]", field, i)
		name, value, ok := strings.Cut(e, "=")
		// NAME alone would make docker copy the variable from the runner's
		// own environment, which leaks the host into the container.
		if !ok || !envNamePattern.MatchString(name) {
			return apperr.Invalid(f, "must be NAME=value")
		}
		if err := validateText(f, value, maxEnvValue, true); err != nil {
			return err
		}
	}
	return nil
}

func validateEnv(field string, env []EnvVar) error {
	if len(env) > maxEnvVars {
		return apperr.Invalid(field, "at most %d variables, got %d", maxEnvVars, len(env))
	}
	seen := map[string]int{}
	for i, v := range env {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !envNamePattern.MatchString(v.Name) {
			return apperr.Invalid(f+".name", "must be a variable name (letters, digits, '_', not starting with a digit), got %q", v.Name)
		}
		if why := secrets.ReservedEnvName(v.Name); why != "" {
			return apperr.Invalid(f+".name", "%s", why)
		}
		if j, ok := seen[v.Name]; ok {
			return apperr.Invalid(f+".name", "%q is also set by %s[%d]", v.Name, field, j)
		}
		seen[v.Name] = i
		if v.SecretID != "" {
			if v.Value != "" {
				return apperr.Invalid(f, "must set value or valueFrom, not both")
			}
			if err := identity.ValidateUUID(f+".valueFrom.secretRef.id", v.SecretID); err != nil {
				return err
			}
			continue
		}
		if err := validateText(f+".value", v.Value, maxEnvValue, true); err != nil {
			return err
		}
	}
	return nil
}

// validateTriggers checks the API's triggers: every trigger is allowed, each
// once.
func validateTriggers(field string, triggers []spec.Trigger) error {
	for i, t := range triggers {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !t.Valid() {
			return apperr.Invalid(f, "must set one trigger")
		}
		for j := range i {
			if triggers[j] == t {
				return apperr.Invalid(f, "%q is listed twice (also [%d])", t, j)
			}
		}
	}
	return nil
}

func validateNameDescription(prefix, name, description string) error {
	if err := validateText(prefix+".name", name, maxName, false); err != nil {
		return err
	}
	return validateText(prefix+".description", description, maxDescription, true)
}

func validateUUIDs(field string, ids []string) error {
	if len(ids) > MaxFilterValues {
		return apperr.Invalid(field, "at most %d values, got %d", MaxFilterValues, len(ids))
	}
	for i, id := range ids {
		if err := identity.ValidateUUID(fmt.Sprintf("%s[%d]", field, i), id); err != nil {
			return err
		}
	}
	return nil
}

func validateReferences(field string, refs []string) error {
	if len(refs) > MaxFilterValues {
		return apperr.Invalid(field, "at most %d values, got %d", MaxFilterValues, len(refs))
	}
	for i, r := range refs {
		if err := spec.ValidateReference(fmt.Sprintf("%s[%d]", field, i), r); err != nil {
			return err
		}
	}
	return nil
}

func validateEnums[T comparable](field string, vals, known []T) error {
	if len(vals) > MaxFilterValues {
		return apperr.Invalid(field, "at most %d values, got %d", MaxFilterValues, len(vals))
	}
	for i, v := range vals {
		if !oneOf(v, known) {
			return apperr.Invalid(fmt.Sprintf("%s[%d]", field, i), "unknown value %v", v)
		}
	}
	return nil
}

// validateOutput checks an output map; an empty value unsets its key.
func validateOutput(field string, out map[string]string) error {
	if len(out) > maxOutputs {
		return apperr.Invalid(field, "at most %d entries, got %d", maxOutputs, len(out))
	}
	for k, v := range out {
		if !outputKeyPattern.MatchString(k) {
			return apperr.Invalid(field, "key %q must be 1 to %d letters, digits, '_', '.' or '-'", k, maxOutputKey)
		}
		if err := validateText(field+"."+k, v, maxOutputValue, true); err != nil {
			return err
		}
	}
	return nil
}

// mergeOutput applies update to out: an empty value unsets its key. The
// merged map is bounded like one update, so outputs cannot grow without end.
func mergeOutput(field string, out, update map[string]string) (map[string]string, error) {
	if len(update) == 0 {
		return out, nil
	}
	merged := make(map[string]string, len(out)+len(update))
	for k, v := range out {
		merged[k] = v
	}
	for k, v := range update {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	if len(merged) > maxOutputs {
		return nil, apperr.Invalid(field, "would hold %d entries, at most %d: unset some by setting them to \"\"", len(merged), maxOutputs)
	}
	if len(merged) == 0 {
		return nil, nil
	}
	return merged, nil
}
