package environments

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Limits where the API gives none. They keep a spec within what a database
// row and a git command line hold, well above real use.
const (
	maxName         = 256
	maxSession      = 128
	maxURI          = 2048
	maxPath         = 1024
	maxCloneTarget  = 255
	maxGitIdentity  = 256
	maxInitializers = 8
	maxMessages     = 16
	maxMessage      = 4096
)

// CreateInput is an environment to create.
type CreateInput struct {
	// Name is optional; without one, the repository's name (or
	// "environment-" and the start of the ID) is used.
	Name *string
	Spec Spec
	// Devcontainer and Secrets are spec fields runyard cannot honour:
	// validation refuses them when set (spec_fields.go).
	Devcontainer Devcontainer
	Secrets      []SpecSecret
	// PrebuildID makes the environment a prebuild's; only the prebuilds
	// service sets it.
	PrebuildID string
}

// validate checks in.Spec and fills its defaults: desired phase RUNNING, the
// git target mode REMOTE_HEAD, the checkout location (the repository's name),
// the automations file path.
func (in *CreateInput) validate() error {
	if in.Name != nil {
		if err := validateText("name", *in.Name, maxName, false); err != nil {
			return err
		}
		if strings.TrimSpace(*in.Name) == "" {
			return apperr.Invalid("name", "must not be blank; leave it out to get a generated name")
		}
	}
	s := &in.Spec
	if err := identity.ValidateUUID("spec.machine.class", s.Machine.Class); err != nil {
		return err
	}
	switch s.DesiredPhase {
	case "", PhaseUnspecified:
		s.DesiredPhase = PhaseRunning
	case PhaseRunning, PhaseStopped:
	default:
		return apperr.Invalid("spec.desiredPhase", "must be ENVIRONMENT_PHASE_RUNNING or ENVIRONMENT_PHASE_STOPPED, got %q", s.DesiredPhase)
	}
	for _, f := range []struct{ field, v string }{
		{"spec.machine.session", s.Machine.Session},
		{"spec.content.session", s.Content.Session},
		{"spec.automationsFile.session", s.AutomationsFile.Session},
	} {
		if err := validateText(f.field, f.v, maxSession, false); err != nil {
			return err
		}
	}
	if err := validateContent(&s.Content); err != nil {
		return err
	}
	if err := validateAutomationsFile(&s.AutomationsFile); err != nil {
		return err
	}
	if err := refuseUnsupported(in.Devcontainer, in.Secrets); err != nil {
		return err
	}
	return validateSpecFields(s)
}

func validateContent(c *Content) error {
	if len(c.Initializers) > maxInitializers {
		return apperr.Invalid("spec.content.initializer.specs", "at most %d initializers, got %d", maxInitializers, len(c.Initializers))
	}
	seen := map[string]int{}
	for i := range c.Initializers {
		field := fmt.Sprintf("spec.content.initializer.specs[%d]", i)
		if u := c.Initializers[i].ContextURL; u != nil {
			g, err := gitOfContextURL(field+".contextUrl.url", *u)
			if err != nil {
				return err
			}
			c.Initializers[i].Git = g
		}
		g := c.Initializers[i].Git
		if g == nil {
			return apperr.Invalid(field, "must set git or contextUrl")
		}
		if err := validateGit(field+".git", g); err != nil {
			return err
		}
		if j, ok := seen[g.CheckoutLocation]; ok {
			return apperr.Invalid(field+".git.checkoutLocation", "%q is also the checkout location of specs[%d]", g.CheckoutLocation, j)
		}
		seen[g.CheckoutLocation] = i
	}
	if err := validateText("spec.content.gitUsername", c.GitUsername, maxGitIdentity, false); err != nil {
		return err
	}
	return validateText("spec.content.gitEmail", c.GitEmail, maxGitIdentity, false)
}

// scpLike matches git's scp-like syntax, user@host:path.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// validateRemote accepts what `git clone` takes and nothing that could read
// as one of its options.
func validateRemote(field, uri string) error {
	if uri == "" {
		return apperr.Invalid(field, "is required")
	}
	if err := validateText(field, uri, maxURI, false); err != nil {
		return err
	}
	if strings.HasPrefix(uri, "-") || strings.ContainsFunc(uri, unicode.IsSpace) {
		return apperr.Invalid(field, "must be a git URL without spaces, got %q", uri)
	}
	if scpLike.MatchString(uri) {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return apperr.Invalid(field, "must be a git URL (https://, ssh://, git://, file:// or user@host:path), got %q", uri)
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
		if u.Host == "" {
			return apperr.Invalid(field, "must name a host, got %q", uri)
		}
	case "file":
		if u.Path == "" {
			return apperr.Invalid(field, "must name a path, got %q", uri)
		}
	default:
		return apperr.Invalid(field, "must be a git URL (https://, ssh://, git://, file:// or user@host:path), got %q", uri)
	}
	return nil
}

// refPattern is a conservative subset of git check-ref-format: what a
// branch or tag name needs, without what a shell or git would misread.
var (
	refPattern    = regexp.MustCompile(`^[A-Za-z0-9._/+@-]+$`)
	commitPattern = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)
)

func validateGit(field string, g *Git) error {
	if err := validateRemote(field+".remoteUri", g.RemoteURI); err != nil {
		return err
	}
	if g.UpstreamRemoteURI != "" {
		if err := validateRemote(field+".upstreamRemoteUri", g.UpstreamRemoteURI); err != nil {
			return err
		}
	}
	if g.TargetMode == "" || g.TargetMode == CloneTargetUnspecified {
		g.TargetMode = CloneTargetRemoteHead
	}
	if !oneOf(g.TargetMode, CloneTargetModes) {
		return apperr.Invalid(field+".targetMode", "unknown value %q", g.TargetMode)
	}
	target := g.CloneTarget
	switch g.TargetMode {
	case CloneTargetRemoteHead:
		// The target is optional: the remote's default branch is checked
		// out. The vendor's clients send the branch name anyway.
		if target != "" && !validRef(target) {
			return apperr.Invalid(field+".cloneTarget", "must be a branch name, got %q", target)
		}
	case CloneTargetRemoteCommit:
		if !commitPattern.MatchString(target) {
			return apperr.Invalid(field+".cloneTarget", "must be a commit hash (4 to 64 hex digits) with targetMode %s, got %q", g.TargetMode, target)
		}
	default:
		if target == "" {
			return apperr.Invalid(field+".cloneTarget", "is required with targetMode %s", g.TargetMode)
		}
		if !validRef(target) {
			return apperr.Invalid(field+".cloneTarget", "must be a branch or tag name, got %q", target)
		}
	}
	loc, err := cleanRelative(field+".checkoutLocation", g.CheckoutLocation)
	if err != nil {
		return err
	}
	if loc == "" {
		loc = repoName(g.RemoteURI)
	}
	g.CheckoutLocation = loc
	return nil
}

func validRef(ref string) bool {
	return len(ref) <= maxCloneTarget && refPattern.MatchString(ref) && !strings.HasPrefix(ref, "-") &&
		!strings.HasPrefix(ref, "/") && !strings.HasSuffix(ref, "/") && !strings.Contains(ref, "..") &&
		!strings.Contains(ref, "//") && !strings.HasSuffix(ref, ".lock") && ref != "@"
}

// cleanRelative accepts a path relative to the workspace that cannot climb
// out of it; empty stays empty.
func cleanRelative(field, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if err := validateText(field, p, maxPath, false); err != nil {
		return "", err
	}
	if path.IsAbs(p) || strings.HasPrefix(p, "-") {
		return "", apperr.Invalid(field, "must be a relative path, got %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", apperr.Invalid(field, "must not contain \"..\", got %q", p)
		}
	}
	if c := path.Clean(p); c != "." {
		return c, nil
	}
	return "", nil
}

// repoName is the last path element of a remote without ".git": what `git
// clone` names the directory.
func repoName(uri string) string {
	s := strings.TrimRight(uri, "/")
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(s, ".git")
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, "-") {
		return "repository"
	}
	return s
}

func validateAutomationsFile(a *AutomationsFile) error {
	p, err := cleanRelative("spec.automationsFile.automationsFilePath", a.Path)
	if err != nil {
		return err
	}
	if p == "" {
		p = DefaultAutomationsFilePath
	}
	a.Path = p
	for i, t := range a.TriggerFilter {
		if !t.Valid() {
			return apperr.Invalid(fmt.Sprintf("spec.automationsFile.triggerFilter[%d]", i), "unknown trigger %q", t)
		}
	}
	return nil
}

// validateText checks free text: valid UTF-8 without NUL (PostgreSQL text
// cannot hold it), at most maxRunes characters, and no control characters
// but line breaks and tabs where multiline.
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

// validateStatus checks a runner's report.
func validateStatus(st *Status) error {
	if st.StatusVersion == 0 {
		return apperr.Invalid("status.statusVersion", "is required: a runner orders its reports by it")
	}
	if !oneOf(st.Phase, Phases) {
		return apperr.Invalid("status.phase", "unknown value %q", st.Phase)
	}
	for _, l := range []struct {
		field string
		msgs  []string
	}{{"status.failureMessage", st.FailureMessage}, {"status.warningMessage", st.WarningMessage}} {
		if len(l.msgs) > maxMessages {
			return apperr.Invalid(l.field, "at most %d messages, got %d", maxMessages, len(l.msgs))
		}
		for i, m := range l.msgs {
			if err := validateText(fmt.Sprintf("%s[%d]", l.field, i), m, maxMessage, true); err != nil {
				return err
			}
		}
	}
	type text struct{ field, v string }
	texts := []text{}
	if a := st.RunnerACK; a != nil {
		if a.StatusCode != "" && !oneOf(a.StatusCode, AckStatusCodes) {
			return apperr.Invalid("status.runnerAck.statusCode", "unknown value %q", a.StatusCode)
		}
		texts = append(texts, text{"status.runnerAck.message", a.Message})
	}
	if m := st.Machine; m != nil {
		if m.Phase != "" && !oneOf(m.Phase, MachinePhases) {
			return apperr.Invalid("status.machine.phase", "unknown value %q", m.Phase)
		}
		texts = append(texts, text{"status.machine.session", m.Session}, text{"status.machine.failureMessage", m.FailureMessage},
			text{"status.machine.warningMessage", m.WarningMessage})
	}
	if c := st.Content; c != nil {
		if c.Phase != "" && !oneOf(c.Phase, ContentPhases) {
			return apperr.Invalid("status.content.phase", "unknown value %q", c.Phase)
		}
		texts = append(texts, text{"status.content.session", c.Session}, text{"status.content.contentLocationInMachine", c.Location},
			text{"status.content.failureMessage", c.FailureMessage}, text{"status.content.warningMessage", c.WarningMessage})
	}
	if a := st.AutomationsFile; a != nil {
		if a.Phase != "" && !oneOf(a.Phase, ContentPhases) {
			return apperr.Invalid("status.automationsFile.phase", "unknown value %q", a.Phase)
		}
		if a.Presence != "" && !oneOf(a.Presence, Presences) {
			return apperr.Invalid("status.automationsFile.automationsFilePresence", "unknown value %q", a.Presence)
		}
		texts = append(texts, text{"status.automationsFile.session", a.Session}, text{"status.automationsFile.automationsFilePath", a.Path},
			text{"status.automationsFile.failureMessage", a.FailureMessage}, text{"status.automationsFile.warningMessage", a.WarningMessage})
	}
	for _, t := range texts {
		if err := validateText(t.field, t.v, maxMessage, true); err != nil {
			return err
		}
	}
	return nil
}
