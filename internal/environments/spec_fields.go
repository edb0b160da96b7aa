package environments

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/contexturl"
)

// Devcontainer is spec.devcontainer. runyard runs environments on the
// runner's host, without a container, so a non-empty file path, image or
// dotfiles repository is refused rather than silently ignored.
type Devcontainer struct {
	FilePath           string
	DefaultImage       string
	DotfilesRepository string
}

// SpecSecret is an entry of spec.secrets. runyard mounts the organization's
// (and the creator's) secrets into every environment, so a per-environment
// list is refused rather than half honoured.
type SpecSecret struct {
	ID, Name string
}

// Limits of the recorded spec fields.
const (
	maxPorts        = 64
	maxPortName     = 128
	maxSSHKeys      = 32
	maxSSHKeyID     = 128
	maxSSHKeyBytes  = 16 << 10
	MinDisconnected = 30 * time.Minute
	maxDisconnected = 365 * 24 * time.Hour
)

// refuseUnsupported names the first field set to a value runyard cannot
// honour. Sessions are accepted: they only say when to re-apply.
func refuseUnsupported(d Devcontainer, secrets []SpecSecret) error {
	switch {
	case d.FilePath != "":
		return apperr.Invalid("spec.devcontainer.devcontainerFilePath", "is not supported: runyard runs environments on the runner's host, without a devcontainer")
	case d.DefaultImage != "":
		return apperr.Invalid("spec.devcontainer.defaultDevcontainerImage", "is not supported: runyard runs environments on the runner's host, without a devcontainer")
	case d.DotfilesRepository != "":
		return apperr.Invalid("spec.devcontainer.dotfiles", "is not supported: runyard runs environments on the runner's host, without a devcontainer")
	case len(secrets) > 0:
		return apperr.Invalid("spec.secrets", "is not supported: every environment receives its organization's and its creator's secrets (SecretService)")
	}
	return nil
}

// validateSpecFields checks and normalizes spec.ports, spec.sshPublicKeys,
// spec.timeout and spec.admission.
func validateSpecFields(s *Spec) error {
	if err := ValidatePorts("spec.ports", s.Ports); err != nil {
		return err
	}
	if err := ValidateSSHPublicKeys("spec.sshPublicKeys", s.SSHPublicKeys); err != nil {
		return err
	}
	if err := ValidateTimeout("spec.timeout.disconnected", s.Timeout.Disconnected); err != nil {
		return err
	}
	a, err := validateAdmission("spec.admission", s.Admission)
	if err != nil {
		return err
	}
	s.Admission = a
	return nil
}

func validateAdmission(field string, a Admission) (Admission, error) {
	switch {
	case a == "" || a == AdmissionUnspecified:
		return "", nil
	case oneOf(a, Admissions):
		return a, nil
	}
	return "", apperr.Invalid(field, "unknown value %q", a)
}

// ValidatePorts checks the ports at field and normalizes their admission.
func ValidatePorts(field string, ports []Port) error {
	if len(ports) > maxPorts {
		return apperr.Invalid(field, "at most %d ports, got %d", maxPorts, len(ports))
	}
	seen := map[int32]int{}
	for i := range ports {
		p := &ports[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		if p.Port < 1 || p.Port > 65535 {
			return apperr.Invalid(f+".port", "must be 1 to 65535, got %d", p.Port)
		}
		if j, ok := seen[p.Port]; ok {
			return apperr.Invalid(f+".port", "port %d is also %s[%d]", p.Port, field, j)
		}
		seen[p.Port] = i
		if err := validateText(f+".name", p.Name, maxPortName, false); err != nil {
			return err
		}
		a, err := validateAdmission(f+".admission", p.Admission)
		if err != nil {
			return err
		}
		p.Admission = a
	}
	return nil
}

// ValidateSSHPublicKeys checks the keys at field: unique IDs, each value one
// key in the authorized_keys format, stored without surrounding space.
func ValidateSSHPublicKeys(field string, keys []SSHPublicKey) error {
	if len(keys) > maxSSHKeys {
		return apperr.Invalid(field, "at most %d keys, got %d", maxSSHKeys, len(keys))
	}
	seen := map[string]int{}
	for i := range keys {
		k := &keys[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := validateSSHKeyID(f+".id", k.ID); err != nil {
			return err
		}
		if j, ok := seen[k.ID]; ok {
			return apperr.Invalid(f+".id", "%q is also the id of %s[%d]", k.ID, field, j)
		}
		seen[k.ID] = i
		v, err := normalizeSSHKey(f+".value", k.Value)
		if err != nil {
			return err
		}
		k.Value = v
	}
	return nil
}

func validateSSHKeyID(field, id string) error {
	if id == "" {
		return apperr.Invalid(field, "is required")
	}
	if err := validateText(field, id, maxSSHKeyID, false); err != nil {
		return err
	}
	if strings.ContainsFunc(id, unicode.IsSpace) {
		return apperr.Invalid(field, "must not contain spaces, got %q", id)
	}
	return nil
}

// normalizeSSHKey returns value without surrounding space, or an error
// unless it is one public key in the authorized_keys format.
func normalizeSSHKey(field, value string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return "", apperr.Invalid(field, "is required")
	}
	if len(value) > maxSSHKeyBytes || strings.ContainsAny(value, "\r\n") {
		return "", apperr.Invalid(field, "must be one public key in the authorized_keys format")
	}
	if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(value)); err != nil || len(rest) > 0 {
		return "", apperr.Invalid(field, "must be one public key in the authorized_keys format (such as \"ssh-ed25519 AAAA... me@host\")")
	}
	return value, nil
}

// ValidateTimeout checks spec.timeout.disconnected: zero disables the
// inactivity stop, as in the vendor's API; anything else is at least
// MinDisconnected.
func ValidateTimeout(field string, d time.Duration) error {
	switch {
	case d == 0:
		return nil
	case d < 0:
		return apperr.Invalid(field, "must not be negative, got %s", d)
	case d < MinDisconnected:
		return apperr.Invalid(field, "must be at least %s, or 0 to never stop the environment for inactivity, got %s", MinDisconnected, d)
	case d > maxDisconnected:
		return apperr.Invalid(field, "must be at most %s, got %s", maxDisconnected, d)
	}
	return nil
}

// gitOfContextURL is the git initializer a context URL names.
func gitOfContextURL(field, raw string) (*Git, error) {
	c, err := contexturl.Parse(field, raw)
	if err != nil {
		return nil, err
	}
	g := &Git{RemoteURI: c.CloneURL, TargetMode: CloneTargetRemoteHead}
	switch c.Mode {
	case contexturl.Branch:
		g.TargetMode, g.CloneTarget = CloneTargetRemoteBranch, c.Ref
	case contexturl.Tag:
		g.TargetMode, g.CloneTarget = CloneTargetRemoteTag, c.Ref
	case contexturl.Commit:
		g.TargetMode, g.CloneTarget = CloneTargetRemoteCommit, c.Commit
	}
	return g, nil
}
