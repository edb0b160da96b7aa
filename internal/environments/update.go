package environments

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// UpdateInput is a change to an environment (gitpod.v1 UpdateEnvironment).
// A nil field is left as it is.
type UpdateInput struct {
	ID   string
	Name *string

	GitUsername    *string
	GitEmail       *string
	ContentSession *string
	// Initializers, when not nil, is spec.content.initializer.
	Initializers *[]Initializer

	AutomationsFilePath    *string
	AutomationsFileSession *string

	// Ports, when not nil, replaces spec.ports. The vendor's request cannot
	// tell an empty list from none, so its handler leaves Ports nil for an
	// empty list ("nothing to update").
	Ports *[]Port
	// SSHPublicKeys are upserted by ID; one without a value removes the key
	// with its ID (spec.sshPublicKeys).
	SSHPublicKeys []SSHPublicKeyChange
	// TimeoutDisconnected, when not nil, is the new spec.timeout.disconnected;
	// zero disables the inactivity stop.
	TimeoutDisconnected *time.Duration

	// What runyard cannot honour: a devcontainer. Setting one is refused,
	// naming the field, so a client is never silently ignored.
	DevcontainerFilePath *string
	DevcontainerSession  *string
}

// SSHPublicKeyChange is an entry of UpdateEnvironment's spec.sshPublicKeys.
type SSHPublicKeyChange struct {
	ID string
	// Value is the key in the authorized_keys format; nil or blank removes
	// the key with ID.
	Value *string
}

func (in *UpdateInput) refuseUnsupported() error {
	switch {
	case in.DevcontainerFilePath != nil && *in.DevcontainerFilePath != "":
		return apperr.Invalid("spec.devcontainer.devcontainerFilePath", "runyard runs environments on the runner's host and builds no devcontainer")
	case in.DevcontainerSession != nil && *in.DevcontainerSession != "":
		return apperr.Invalid("spec.devcontainer.session", "runyard runs environments on the runner's host and builds no devcontainer")
	}
	return nil
}

// Update changes an environment's name, git identity, automations file,
// ports, SSH keys and inactivity timeout, also while it runs. A changed
// automations file path or session asks the runner to read and apply the
// repository's automations file again (as ReloadAutomationsFile does): at
// once when the environment runs, at its next start otherwise. A changed git
// identity reaches the runner with the new spec and applies to the next
// content initialization. Ports replace the spec's list (and so
// status.environmentUrls.ports); SSH keys are upserted and removed by ID. A
// new timeout counts from the last activity, as the inactivity stop always
// does: one shorter than the time since then stops the environment at the
// next sweep, and zero never stops it. The content initializer and its
// session can change only while no runner has picked the environment up:
// runyard's runner initializes content once and cannot re-initialize a
// workspace in place. The machine class never changes. Updating to what is
// already there changes nothing. It needs ScopeEnvironmentsWrite and fails
// with CodeInvalid, CodeNotFound and CodeFailedPrecondition (being deleted;
// content of a started environment).
func (s *Service) Update(ctx context.Context, in UpdateInput) (*Environment, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", in.ID); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	changed := false
	e, err := s.Store.UpdateEnvironment(ctx, c.OrgID, in.ID, func(e *Environment) error {
		changed = false
		if e.Deleting() {
			return apperr.FailedPrecondition("environment %q is being deleted", in.ID)
		}
		next := e.Spec
		next.Content.Initializers = append([]Initializer(nil), e.Spec.Content.Initializers...)
		name := e.Name
		if in.Name != nil {
			name = *in.Name
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&next.Content.GitUsername, in.GitUsername)
		set(&next.Content.GitEmail, in.GitEmail)
		set(&next.Content.Session, in.ContentSession)
		if in.Initializers != nil {
			next.Content.Initializers = *in.Initializers
		}
		set(&next.AutomationsFile.Path, in.AutomationsFilePath)
		set(&next.AutomationsFile.Session, in.AutomationsFileSession)
		if err := validateAutomationsFile(&next.AutomationsFile); err != nil {
			return err
		}
		contentChanged := next.Content.Session != e.Spec.Content.Session || !sameInitializers(next.Content.Initializers, e.Spec.Content.Initializers)
		if contentChanged && e.PickedUp() {
			return apperr.FailedPrecondition("environment %q: spec.content.initializer and spec.content.session can change only before its runner initialized the content; create a new environment instead", in.ID)
		}
		fileChanged := next.AutomationsFile.Path != e.Spec.AutomationsFile.Path || next.AutomationsFile.Session != e.Spec.AutomationsFile.Session
		if fileChanged {
			next.AutomationsFile.FileRequested++
		}
		if in.Ports != nil {
			next.Ports = nilIfEmpty(*in.Ports)
		}
		keys, err := upsertSSHKeys(e.Spec.SSHPublicKeys, in.SSHPublicKeys)
		if err != nil {
			return err
		}
		next.SSHPublicKeys = keys
		if in.TimeoutDisconnected != nil {
			next.Timeout.Disconnected = *in.TimeoutDisconnected
		}
		specChanged := contentChanged || fileChanged ||
			next.Content.GitUsername != e.Spec.Content.GitUsername || next.Content.GitEmail != e.Spec.Content.GitEmail ||
			!slices.Equal(next.Ports, e.Spec.Ports) || !slices.Equal(next.SSHPublicKeys, e.Spec.SSHPublicKeys) ||
			next.Timeout != e.Spec.Timeout
		if !specChanged && name == e.Name {
			return nil
		}
		if specChanged {
			next.SpecVersion++
		}
		e.Spec, e.Name, e.UpdatedAt = next, name, s.now()
		changed = specChanged
		return nil
	})
	if err != nil {
		return nil, notFound(in.ID, err)
	}
	if changed {
		s.changed(e.OrgID, e.RunnerID)
	}
	return e, nil
}

func (in *UpdateInput) validate() error {
	if in.Name != nil {
		if err := validateText("metadata.name", *in.Name, maxName, false); err != nil {
			return err
		}
		if strings.TrimSpace(*in.Name) == "" {
			return apperr.Invalid("metadata.name", "must not be blank")
		}
	}
	for _, f := range []struct {
		field string
		v     *string
		max   int
	}{
		{"spec.content.gitUsername", in.GitUsername, maxGitIdentity},
		{"spec.content.gitEmail", in.GitEmail, maxGitIdentity},
		{"spec.content.session", in.ContentSession, maxSession},
		{"spec.automationsFile.session", in.AutomationsFileSession, maxSession},
	} {
		if f.v == nil {
			continue
		}
		if err := validateText(f.field, *f.v, f.max, false); err != nil {
			return err
		}
	}
	if in.Initializers != nil {
		c := Content{Initializers: *in.Initializers}
		if err := validateContent(&c); err != nil {
			return err
		}
	}
	if in.Ports != nil {
		ports := slices.Clone(*in.Ports)
		if err := ValidatePorts("spec.ports", ports); err != nil {
			return err
		}
		in.Ports = &ports
	}
	if err := in.validateSSHKeys(); err != nil {
		return err
	}
	if in.TimeoutDisconnected != nil {
		if err := ValidateTimeout("spec.timeout.disconnected", *in.TimeoutDisconnected); err != nil {
			return err
		}
	}
	return in.refuseUnsupported()
}

// validateSSHKeys checks spec.sshPublicKeys of an update: each entry names a
// key once, and a value, when there is one, is a key in the authorized_keys
// format. A blank value becomes nil (remove the key).
func (in *UpdateInput) validateSSHKeys() error {
	if len(in.SSHPublicKeys) > maxSSHKeys {
		return apperr.Invalid("spec.sshPublicKeys", "at most %d keys, got %d", maxSSHKeys, len(in.SSHPublicKeys))
	}
	keys := slices.Clone(in.SSHPublicKeys)
	seen := map[string]int{}
	for i := range keys {
		k := &keys[i]
		f := fmt.Sprintf("spec.sshPublicKeys[%d]", i)
		if err := validateSSHKeyID(f+".id", k.ID); err != nil {
			return err
		}
		if j, ok := seen[k.ID]; ok {
			return apperr.Invalid(f+".id", "%q is also the id of spec.sshPublicKeys[%d]", k.ID, j)
		}
		seen[k.ID] = i
		if k.Value == nil || strings.TrimSpace(*k.Value) == "" {
			k.Value = nil
			continue
		}
		v, err := normalizeSSHKey(f+".value", *k.Value)
		if err != nil {
			return err
		}
		k.Value = &v
	}
	in.SSHPublicKeys = keys
	return nil
}

// upsertSSHKeys applies changes to keys: a key with a value replaces the one
// with its ID in place or is appended, one without removes it (a key that is
// not there is already removed).
func upsertSSHKeys(keys []SSHPublicKey, changes []SSHPublicKeyChange) ([]SSHPublicKey, error) {
	if len(changes) == 0 {
		return keys, nil
	}
	out := slices.Clone(keys)
	for _, c := range changes {
		i := slices.IndexFunc(out, func(k SSHPublicKey) bool { return k.ID == c.ID })
		switch {
		case c.Value == nil && i >= 0:
			out = slices.Delete(out, i, i+1)
		case c.Value == nil:
		case i >= 0:
			out[i].Value = *c.Value
		default:
			out = append(out, SSHPublicKey{ID: c.ID, Value: *c.Value})
		}
	}
	if len(out) > maxSSHKeys {
		return nil, apperr.Invalid("spec.sshPublicKeys", "an environment has at most %d keys; this update would leave it %d", maxSSHKeys, len(out))
	}
	return nilIfEmpty(out), nil
}

// nilIfEmpty keeps an emptied list nil, as a spec without one reads back.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func sameInitializers(a, b []Initializer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i].Git == nil) != (b[i].Git == nil) || a[i].Git != nil && *a[i].Git != *b[i].Git {
			return false
		}
	}
	return true
}

// LogsTokens issues logs tokens (identity.Service).
type LogsTokens interface {
	IssueLogsToken(ctx context.Context, c *identity.Caller, envID, runnerID string) (string, time.Time, error)
}

// LogOwner tells whether log logID on runnerID is the log of a service or a
// task execution of environment envID of orgID (wired to the automations'
// storage; environments cannot import it).
type LogOwner func(ctx context.Context, orgID, envID, runnerID, logID string) (bool, error)

// CreateLogsToken returns a token that lets its bearer read, for
// identity.LogsTokenTTL, the logs of environment id's services and task
// executions (their status.logUrl), and nothing else. Whoever may read the
// environment may hand out such a token. It needs ScopeEnvironmentsRead and
// fails with CodeInvalid and CodeNotFound.
func (s *Service) CreateLogsToken(ctx context.Context, id string) (string, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsRead)
	if err != nil {
		return "", err
	}
	if err := identity.ValidateUUID("environmentId", id); err != nil {
		return "", err
	}
	if s.LogsTokens == nil {
		return "", fmt.Errorf("create logs token: no issuer configured")
	}
	e, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, id)
	if err != nil {
		return "", notFound(id, err)
	}
	tok, _, err := s.LogsTokens.IssueLogsToken(ctx, c, e.ID, e.RunnerID)
	if err != nil {
		return "", fmt.Errorf("create logs token: %w", err)
	}
	return tok, nil
}

// AuthorizeLog decides whether the caller may read log logID on runnerID
// (GET /logs/{runner}/{log}): a caller with ScopeEnvironmentsRead may read
// every log of its organization's runners (another organization's runner is
// CodeNotFound); a logs token only the logs of its environment's services
// and executions, which must still exist. It fails with
// CodeUnauthenticated, CodePermissionDenied, CodeInvalid and CodeNotFound.
func (s *Service) AuthorizeLog(ctx context.Context, runnerID, logID string) error {
	c, err := identity.RequireLogs(ctx, runnerID)
	if err != nil {
		return err
	}
	if c.Logs == nil {
		// A runner of another organization is not found, as one that does
		// not exist, whether or not it is connected.
		if err := identity.ValidateUUID("runner", runnerID); err != nil {
			return err
		}
		if _, err := s.Store.FindRunnerByID(ctx, c.OrgID, runnerID); err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				return apperr.NotFound("runner %q not found", runnerID)
			}
			return fmt.Errorf("find runner %q: %w", runnerID, err)
		}
		return nil
	}
	if s.LogOwner == nil {
		return apperr.PermissionDenied("logs tokens are not accepted by this server")
	}
	ok, err := s.LogOwner(ctx, c.OrgID, c.Logs.EnvironmentID, runnerID, logID)
	if err != nil {
		return fmt.Errorf("authorize log %q: %w", logID, err)
	}
	if !ok {
		return apperr.PermissionDenied("this logs token is for the logs of environment %q only", c.Logs.EnvironmentID)
	}
	return nil
}
