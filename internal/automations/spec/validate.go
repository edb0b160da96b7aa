package spec

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
)

// Limits where the seed gives none. They keep a file within what a database
// row, a process table and a terminal can show, and well above what a real
// file needs.
const (
	maxReference   = 128
	maxName        = 256
	maxDescription = 4096
	maxCommand     = 64 << 10
	maxImage       = 1024
	maxEnvEntry    = 32 << 10
)

var referencePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidateReference checks one reference: 1 to 128 ASCII letters, digits,
// '-', '_' or '.', and not only dots. field names it in the error.
func ValidateReference(field, ref string) error {
	if !referencePattern.MatchString(ref) {
		return apperr.Invalid(field, "reference %q must be 1 to %d letters, digits, '-', '_' or '.'", ref, maxReference)
	}
	if strings.Trim(ref, ".") == "" {
		return apperr.Invalid(field, "reference %q must not be only dots", ref)
	}
	return nil
}

// Validate checks f against the rules in the package comment and returns
// the first violation as an invalid_argument *apperr.Error whose Field is the
// path of the offending value. Services and tasks are checked in reference
// order and a dependency cycle last, so the same file always gets the same
// message. A nil File is valid and empty.
func Validate(f *File) error {
	if f == nil {
		return nil
	}
	for _, ref := range sortedKeys(f.Services) {
		if err := validateService(child("services", ref), ref, f.Services[ref]); err != nil {
			return err
		}
	}
	for _, ref := range sortedKeys(f.Tasks) {
		if err := validateTask(f, child("tasks", ref), ref, f.Tasks[ref]); err != nil {
			return err
		}
	}
	if cycle := FindCycle(f.Graph()); cycle != nil {
		return apperr.Invalid("tasks", "dependency cycle %s", FormatCycle(cycle))
	}
	return nil
}

func validateService(path, ref string, s Service) error {
	if err := ValidateReference(path, ref); err != nil {
		return err
	}
	if err := validateText(path+".name", s.Name, maxName, false); err != nil {
		return err
	}
	if err := validateText(path+".description", s.Description, maxDescription, true); err != nil {
		return err
	}
	if !oneOf(s.Role, Roles) {
		return apperr.Invalid(path+".role", "must be one of %s, got %q", quoteAll(Roles), s.Role)
	}
	if err := validateCommand(path+".commands.start", s.Commands.Start, true); err != nil {
		return err
	}
	if err := validateCommand(path+".commands.ready", s.Commands.Ready, false); err != nil {
		return err
	}
	if err := validateCommand(path+".commands.stop", s.Commands.Stop, false); err != nil {
		return err
	}
	if err := validateRunsOn(path+".runsOn", s.RunsOn); err != nil {
		return err
	}
	return validateTriggers(path+".triggeredBy", s.TriggeredBy)
}

func validateTask(f *File, path, ref string, t Task) error {
	if err := ValidateReference(path, ref); err != nil {
		return err
	}
	if _, ok := f.Services[ref]; ok {
		return apperr.Invalid(path, "reference %q is already used by %s; services and tasks share references", ref, child("services", ref))
	}
	if err := validateText(path+".name", t.Name, maxName, false); err != nil {
		return err
	}
	if err := validateText(path+".description", t.Description, maxDescription, true); err != nil {
		return err
	}
	if err := validateCommand(path+".command", t.Command, true); err != nil {
		return err
	}
	for i, dep := range t.DependsOn {
		p := path + ".dependsOn[" + strconv.Itoa(i) + "]"
		_, isTask := f.Tasks[dep]
		_, isService := f.Services[dep]
		if !isTask && !isService {
			return apperr.Invalid(p, "%q is not a task or service in this file", dep)
		}
		if j := slices.Index(t.DependsOn[:i], dep); j >= 0 {
			return apperr.Invalid(p, "%q is listed twice (also dependsOn[%d])", dep, j)
		}
	}
	if err := validateRunsOn(path+".runsOn", t.RunsOn); err != nil {
		return err
	}
	return validateTriggers(path+".triggeredBy", t.TriggeredBy)
}

func validateTriggers(path string, triggers []Trigger) error {
	for i, tr := range triggers {
		p := path + "[" + strconv.Itoa(i) + "]"
		if !tr.InFile() {
			return apperr.Invalid(p, "must be one of %s, got %q", quoteAll(FileTriggers), tr)
		}
		if j := slices.Index(triggers[:i], tr); j >= 0 {
			return apperr.Invalid(p, "%q is listed twice (also [%d])", tr, j)
		}
	}
	return nil
}

func validateRunsOn(path string, r RunsOn) error {
	if r.Docker != nil && r.Machine != nil {
		return apperr.Invalid(path, "must set docker or machine, not both")
	}
	if r.Docker == nil {
		return nil
	}
	img := r.Docker.Image
	switch {
	case img == "":
		return apperr.Invalid(path+".docker.image", "is required")
	case len(img) > maxImage:
		return apperr.Invalid(path+".docker.image", "must be at most %d bytes", maxImage)
	case strings.IndexFunc(img, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 || !utf8.ValidString(img):
		return apperr.Invalid(path+".docker.image", "must be an image reference without spaces, got %q", img)
	}
	for i, e := range r.Docker.Environment {
		p := path + ".docker.environment[" + strconv.Itoa(i) + "]"
		name, value, ok := strings.Cut(e, "=")
		// NAME alone would make docker copy the variable from the runner's
		// own environment, which leaks the host into the container.
		if !ok || name == "" {
			return apperr.Invalid(p, "must be NAME=value")
		}
		if strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return apperr.Invalid(p, "variable name %q must not contain spaces or control characters", name)
		}
		if err := validateText(p, value, maxEnvEntry, true); err != nil {
			return err
		}
	}
	return nil
}

// validateCommand checks a shell command. An empty optional command is
// unset, as an empty proto string is; a blank one is a mistake, since it
// would run and succeed at once.
func validateCommand(path, cmd string, required bool) error {
	if strings.TrimSpace(cmd) == "" {
		switch {
		case required:
			return apperr.Invalid(path, "is required")
		case cmd != "":
			return apperr.Invalid(path, "must not be blank; leave it out to unset it")
		}
		return nil
	}
	return validateText(path, cmd, maxCommand, true)
}

// validateText checks free text. NUL and invalid UTF-8 cannot be stored in
// PostgreSQL text nor passed to exec; a single-line field also refuses line
// breaks and other control characters, which would break lists and logs.
func validateText(path, s string, maxRunes int, multiline bool) error {
	if !utf8.ValidString(s) {
		return apperr.Invalid(path, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return apperr.Invalid(path, "must be at most %d characters, got %d", maxRunes, n)
	}
	for _, r := range s {
		if r == 0 || unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return apperr.Invalid(path, "must not contain control characters")
		}
	}
	return nil
}

func quoteAll[T ~string](vals []T) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(string(v))
	}
	return strings.Join(q, ", ")
}
