package automations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// Manager manages the services, tasks and task executions of environments.
type Manager struct {
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Changed, when set, is called after the desired automations of an
	// environment on runnerID changed (a service's spec, a new or stopped
	// execution, a removal), so that the runner can be told.
	Changed func(orgID, runnerID string)
}

// NewManager returns a Manager on store with the real clock.
func NewManager(store Store) *Manager { return &Manager{Store: store, Now: time.Now} }

// now is the clock at the storage's precision, so what a method returns
// equals what a later read finds.
func (s *Manager) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func (s *Manager) changed(orgID, runnerID string) {
	if s.Changed != nil && runnerID != "" {
		s.Changed(orgID, runnerID)
	}
}

func newSession() string { return uuid.NewString() }

func envNotFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("environment %q not found", id)
	}
	return fmt.Errorf("environment %q: %w", id, err)
}

func serviceNotFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("service %q not found", id)
	}
	return fmt.Errorf("service %q: %w", id, err)
}

func taskNotFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("task %q not found", id)
	}
	return fmt.Errorf("task %q: %w", id, err)
}

// notInEnvironment is the answer for an item the caller names under an
// environment it is not in.
func notInEnvironment(kind, id, envID string) error {
	return apperr.NotFound("%s %q is not in environment %q", kind, id, envID)
}

func executionNotFound(id string, err error) error {
	if apperr.Is(err, apperr.CodeNotFound) {
		return apperr.NotFound("task execution %q not found", id)
	}
	return fmt.Errorf("task execution %q: %w", id, err)
}

// edit runs fn in one EditAutomations transaction on an environment that
// is not being deleted, and tells the environment's runner when its desired
// automations changed. An environment being deleted takes no change
// (CodeFailedPrecondition).
func (s *Manager) edit(ctx context.Context, orgID, envID string, fn func(*environments.Environment, *Set) (*Changes, error)) error {
	var runnerID string
	notify := false
	err := s.Store.EditAutomations(ctx, orgID, envID, func(env *environments.Environment, set *Set) (*Changes, error) {
		runnerID, notify = env.RunnerID, false
		if env.Deleting() {
			return nil, apperr.FailedPrecondition("environment %q is being deleted", envID)
		}
		ch, err := fn(env, set)
		if err != nil {
			return nil, err
		}
		notify = ch != nil && len(ch.CreateServices)+len(ch.UpdateServices)+len(ch.DeleteServices)+len(ch.CreateExecutions) > 0
		return ch, nil
	})
	if err != nil {
		// The store names a missing environment itself ("environment %q
		// not found"), and fn's errors carry their codes.
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("change the automations of environment %q: %w", envID, err)
	}
	if notify {
		s.changed(orgID, runnerID)
	}
	return nil
}

// taken returns what uses ref in set ("service" or "task"), or "".
func (s *Set) taken(ref string) string {
	for _, x := range s.Services {
		if x.Reference == ref {
			return "service"
		}
	}
	for _, x := range s.Tasks {
		if x.Reference == ref {
			return "task"
		}
	}
	return ""
}

func referenceTaken(envID, ref, kind string) error {
	return apperr.Conflict("reference %q is already used by a %s of environment %q", ref, kind, envID)
}

// dependents returns the references of the tasks of set that depend on id,
// other than those in skip.
func (s *Set) dependents(id string, skip ...string) []string {
	var refs []string
	for _, t := range s.Tasks {
		if slices.Contains(t.DependsOn, id) && !slices.Contains(skip, t.ID) {
			refs = append(refs, t.Reference)
		}
	}
	slices.Sort(refs)
	return refs
}

// graph is the dependency graph of set keyed by ID: tasks with their
// dependencies, services as leaves.
func (s *Set) graph() spec.Graph {
	g := spec.Graph{}
	for _, x := range s.Services {
		g[x.ID] = nil
	}
	for _, x := range s.Tasks {
		g[x.ID] = x.DependsOn
	}
	return g
}

// checkCycles refuses a set whose graph has a cycle, naming it by
// references.
func (s *Set) checkCycles(field string) error {
	cycle := spec.FindCycle(s.graph())
	if cycle == nil {
		return nil
	}
	refs := make([]string, len(cycle))
	for i, id := range cycle {
		refs[i] = id
		if t := s.task(id); t != nil {
			refs[i] = t.Reference
		} else if x := s.service(id); x != nil {
			refs[i] = x.Reference
		}
	}
	return apperr.Invalid(field, "dependency cycle %s", spec.FormatCycle(refs))
}

// start asks svc to run: unless it runs or is about to, its desired phase
// becomes RUNNING in a new session, which makes the runner start it even if
// it exited before. It reports whether svc changed.
func start(svc *Service, now time.Time) bool {
	if svc.Spec.DesiredPhase == ServicePhaseRunning &&
		(svc.startPending() || svc.Status.Phase == ServicePhaseStarting || svc.Status.Phase == ServicePhaseRunning) {
		return false
	}
	svc.Spec.DesiredPhase = ServicePhaseRunning
	svc.Spec.Session = newSession()
	svc.Spec.SpecVersion++
	svc.UpdatedAt = now
	return true
}

// requireRead and requireWrite are the two permissions of the service:
// reading and changing an environment's automations go with reading and
// changing the environment.
func requireRead(ctx context.Context) (*identity.Caller, error) {
	return identity.Require(ctx, identity.ScopeEnvironmentsRead)
}

func requireWrite(ctx context.Context) (*identity.Caller, error) {
	return identity.Require(ctx, identity.ScopeEnvironmentsWrite)
}

// checkEnv validates env at field and checks that every secretRef names a
// secret of organization orgID: a missing one is refused at create and
// update time, not found out when the runner fails to start the command.
//
// envID, when set, is the environment the item is created in: it is looked
// up first, so that an environment of another organization is not found
// before anything is said about its secrets.
func (s *Manager) checkEnv(ctx context.Context, orgID, envID, field string, env []EnvVar) error {
	if err := validateEnv(field, env); err != nil {
		return err
	}
	if envID != "" && slices.ContainsFunc(env, func(v EnvVar) bool { return v.SecretID != "" }) {
		if _, err := s.Store.FindEnvironmentByID(ctx, orgID, envID); err != nil {
			return envNotFound(envID, err)
		}
	}
	for i, v := range env {
		if v.SecretID == "" {
			continue
		}
		_, err := s.Store.FindSecretByID(ctx, orgID, v.SecretID)
		if apperr.Is(err, apperr.CodeNotFound) {
			return apperr.Invalid(fmt.Sprintf("%s[%d].valueFrom.secretRef.id", field, i), "secret %q does not exist in this organization", v.SecretID)
		}
		if err != nil {
			return fmt.Errorf("find secret %q: %w", v.SecretID, err)
		}
	}
	return nil
}
