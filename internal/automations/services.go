package automations

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// ServiceInput is a service to create.
type ServiceInput struct {
	EnvironmentID string
	Reference     string
	// Name defaults to the reference.
	Name        string
	Description string
	Role        ServiceRole
	TriggeredBy []spec.Trigger
	// Spec's DesiredPhase may be UNSPECIFIED (STOPPED), STOPPED or RUNNING;
	// its SpecVersion is the service's to keep.
	Spec ServiceSpec
}

func (in *ServiceInput) validate() error {
	if err := identity.ValidateUUID("environmentId", in.EnvironmentID); err != nil {
		return err
	}
	if err := spec.ValidateReference("metadata.reference", in.Reference); err != nil {
		return err
	}
	if err := validateNameDescription("metadata", in.Name, in.Description); err != nil {
		return err
	}
	if in.Role == "" {
		in.Role = RoleUnspecified
	}
	if !oneOf(in.Role, Roles) {
		return apperr.Invalid("metadata.role", "unknown value %q", in.Role)
	}
	if err := validateTriggers("metadata.triggeredBy", in.TriggeredBy); err != nil {
		return err
	}
	switch in.Spec.DesiredPhase {
	case "", ServicePhaseUnspecified:
		in.Spec.DesiredPhase = ServicePhaseStopped
	case ServicePhaseStopped, ServicePhaseRunning:
	default:
		return apperr.Invalid("spec.desiredPhase", "must be SERVICE_PHASE_RUNNING or SERVICE_PHASE_STOPPED, got %q", in.Spec.DesiredPhase)
	}
	if err := validateCommands("spec.commands", in.Spec.Commands); err != nil {
		return err
	}
	if err := validateText("spec.session", in.Spec.Session, maxSession, false); err != nil {
		return err
	}
	if err := validateRunsOn("spec.runsOn", in.Spec.RunsOn); err != nil {
		return err
	}
	return validateEnv("spec.env", in.Spec.Env)
}

// CreateService adds a service to an environment of the caller's
// organization. It needs ScopeEnvironmentsWrite and fails with CodeInvalid,
// CodeNotFound (the environment), CodeConflict (the reference is taken) and
// CodeFailedPrecondition (the environment is being deleted).
func (s *Manager) CreateService(ctx context.Context, in ServiceInput) (*Service, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := s.checkEnv(ctx, c.OrgID, in.EnvironmentID, "spec.env", in.Spec.Env); err != nil {
		return nil, err
	}
	now := s.now()
	svc := &Service{
		ID: uuid.NewString(), OrgID: c.OrgID, EnvironmentID: in.EnvironmentID,
		Reference: in.Reference, Name: in.Name, Description: in.Description, Role: in.Role,
		TriggeredBy: slices.Clone(in.TriggeredBy), Source: SourceAPI, Creator: c.Subject, CreatedAt: now, UpdatedAt: now,
		Spec: ServiceSpec{
			SpecVersion: 1, DesiredPhase: in.Spec.DesiredPhase, Commands: in.Spec.Commands,
			Session: in.Spec.Session, RunsOn: in.Spec.RunsOn, Env: slices.Clone(in.Spec.Env),
		},
		Status: ServiceStatus{Phase: ServicePhaseUnspecified},
	}
	if svc.Name == "" {
		svc.Name = svc.Reference
	}
	if svc.Spec.Session == "" {
		svc.Spec.Session = newSession()
	}
	err = s.edit(ctx, c.OrgID, in.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
		if kind := set.taken(in.Reference); kind != "" {
			return nil, referenceTaken(in.EnvironmentID, in.Reference, kind)
		}
		return &Changes{CreateServices: []*Service{svc}}, nil
	})
	if err != nil {
		return nil, err
	}
	return svc, nil
}

// GetService returns a service of the caller's organization. It needs
// ScopeEnvironmentsRead and fails with CodeInvalid and CodeNotFound.
func (s *Manager) GetService(ctx context.Context, id string) (*Service, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	svc, err := s.Store.FindServiceByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, serviceNotFound(id, err)
	}
	if err := s.markServicesUnreachable(ctx, c.OrgID, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// ServiceListFilter selects services for ListServices; empty fields select
// everything.
type ServiceListFilter struct {
	EnvironmentIDs []string
	References     []string
	Roles          []ServiceRole
	ServiceIDs     []string
}

// ListServices returns one page of the caller's organization's services,
// oldest first, and the next page's token. It needs ScopeEnvironmentsRead.
func (s *Manager) ListServices(ctx context.Context, f ServiceListFilter, page paging.Page) ([]*Service, string, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.environmentIds", f.EnvironmentIDs); err != nil {
		return nil, "", err
	}
	if err := validateReferences("filter.references", f.References); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.roles", f.Roles, Roles); err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.serviceIds", f.ServiceIDs); err != nil {
		return nil, "", err
	}
	items, err := s.Store.FindServices(ctx, ServiceFilter{
		OrgID: c.OrgID, EnvironmentIDs: f.EnvironmentIDs, References: f.References, Roles: f.Roles, IDs: f.ServiceIDs,
		After: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list services: %w", err)
	}
	items, next := paging.Trim(page, items, func(x *Service) int64 { return x.Seq })
	if err := s.markServicesUnreachable(ctx, c.OrgID, items...); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// ServiceUpdate is a change to a service; nil fields keep their value.
type ServiceUpdate struct {
	Name        *string
	Description *string
	// TriggeredBy replaces the triggers when set (an empty list clears
	// them).
	TriggeredBy *[]spec.Trigger
	Role        *ServiceRole
	// Spec may change only while the service is stopped.
	Spec *ServiceSpecUpdate
	// Status comes only from the environment's runner.
	Status *StatusUpdate
}

type ServiceSpecUpdate struct {
	Start, Ready, Stop *string
	RunsOn             *spec.RunsOn
	// Env replaces the variables when not empty.
	Env []EnvVar
}

// StatusUpdate is a runner's change to a service's status; nil fields keep
// their value and Output is merged (an empty value unsets its key).
type StatusUpdate struct {
	Phase          *ServicePhase
	FailureMessage *string
	LogURL         *string
	Session        *string
	Output         map[string]string
}

func (u *ServiceUpdate) hasUserFields() bool {
	return u.Name != nil || u.Description != nil || u.TriggeredBy != nil || u.Role != nil || u.Spec != nil
}

// apply validates the user's part of u and applies it to svc. It reports
// whether the spec changed.
func (u *ServiceUpdate) apply(svc *Service) (bool, error) {
	if u.Name != nil {
		if err := validateText("metadata.name", *u.Name, maxName, false); err != nil {
			return false, err
		}
		svc.Name = *u.Name
		if svc.Name == "" {
			svc.Name = svc.Reference
		}
	}
	if u.Description != nil {
		if err := validateText("metadata.description", *u.Description, maxDescription, true); err != nil {
			return false, err
		}
		svc.Description = *u.Description
	}
	if u.TriggeredBy != nil {
		if err := validateTriggers("metadata.triggeredBy.trigger", *u.TriggeredBy); err != nil {
			return false, err
		}
		svc.TriggeredBy = slices.Clone(*u.TriggeredBy)
	}
	if u.Role != nil {
		if !oneOf(*u.Role, Roles) {
			return false, apperr.Invalid("metadata.role", "unknown value %q", *u.Role)
		}
		svc.Role = *u.Role
	}
	su := u.Spec
	if su == nil {
		return false, nil
	}
	if !svc.Stopped() {
		return false, apperr.FailedPrecondition("service %q is not stopped (phase %s, desired %s): stop it before changing its spec",
			svc.Reference, shortPhase(svc.Status.Phase), shortPhase(svc.Spec.DesiredPhase))
	}
	next := svc.Spec
	if su.Start != nil {
		next.Commands.Start = *su.Start
	}
	if su.Ready != nil {
		next.Commands.Ready = *su.Ready
	}
	if su.Stop != nil {
		next.Commands.Stop = *su.Stop
	}
	if err := validateCommands("spec.commands", next.Commands); err != nil {
		return false, err
	}
	if su.RunsOn != nil {
		if err := validateRunsOn("spec.runsOn", *su.RunsOn); err != nil {
			return false, err
		}
		next.RunsOn = *su.RunsOn
	}
	if len(su.Env) > 0 {
		if err := validateEnv("spec.env", su.Env); err != nil {
			return false, err
		}
		next.Env = slices.Clone(su.Env)
	}
	next.SpecVersion++
	svc.Spec = next
	return true, nil
}

// shortPhase is a phase without its enum prefix, for messages.
func shortPhase[T ~string](p T) string {
	s := string(p)
	if i := strings.LastIndex(s, "_PHASE_"); i >= 0 {
		return s[i+len("_PHASE_"):]
	}
	return s
}

// UpdateService changes a service. Users (ScopeEnvironmentsWrite) change its
// metadata at any time and its spec only while it is stopped
// (CodeFailedPrecondition otherwise). The status is written only by the
// runner of the service's environment, with a runner token and nothing else
// in the request; the runner's updates are ordered by arrival, as the
// request carries no statusVersion (ReportService orders by version). It
// fails with CodeInvalid, CodeNotFound and CodePermissionDenied.
func (s *Manager) UpdateService(ctx context.Context, id string, u ServiceUpdate) (*Service, error) {
	if u.Status != nil {
		if u.hasUserFields() {
			return nil, apperr.Invalid("status", "must be sent alone: metadata and spec are changed by users, the status by the runner")
		}
		if c, ok := identity.FromContext(ctx); ok && c.Subject.Principal != identity.PrincipalRunner {
			return nil, apperr.PermissionDenied("status is written only by the environment's runner (environmentservice:update_status)")
		}
		return s.ReportService(ctx, ServiceReport{ID: id, StatusUpdate: *u.Status})
	}
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	if u.Spec != nil && len(u.Spec.Env) > 0 {
		if err := s.checkEnv(ctx, c.OrgID, "", "spec.env", u.Spec.Env); err != nil {
			return nil, err
		}
	}
	specChanged := false
	svc, err := s.Store.UpdateService(ctx, c.OrgID, id, func(svc *Service) error {
		if svc.Deleting() {
			return apperr.FailedPrecondition("service %q is being deleted", svc.Reference)
		}
		changed, err := u.apply(svc)
		if err != nil {
			return err
		}
		specChanged = changed
		svc.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return nil, serviceNotFound(id, err)
	}
	if specChanged {
		s.serviceChanged(ctx, svc)
	}
	return svc, nil
}

// serviceChanged tells the runner of svc's environment.
func (s *Manager) serviceChanged(ctx context.Context, svc *Service) {
	if s.Changed == nil {
		return
	}
	if env, err := s.Store.FindEnvironmentByID(ctx, svc.OrgID, svc.EnvironmentID); err == nil {
		s.changed(svc.OrgID, env.RunnerID)
	}
}

// setDesired changes a service's desired phase through fn, which reports
// whether it changed anything. envID, when set, is the environment the
// caller means: a service of another one is not found.
func (s *Manager) setDesired(ctx context.Context, envID, id string, fn func(*Service) (bool, error)) error {
	c, err := requireWrite(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return err
	}
	if envID != "" {
		// A service never moves to another environment: checking before
		// the update is as good as within it.
		cur, err := s.Store.FindServiceByID(ctx, c.OrgID, id)
		if err != nil {
			return serviceNotFound(id, err)
		}
		if cur.EnvironmentID != envID {
			return notInEnvironment("service", id, envID)
		}
	}
	changed := false
	svc, err := s.Store.UpdateService(ctx, c.OrgID, id, func(svc *Service) error {
		var err error
		changed, err = fn(svc)
		return err
	})
	if err != nil {
		return serviceNotFound(id, err)
	}
	if changed {
		s.serviceChanged(ctx, svc)
	}
	return nil
}

// StartService asks the runner to run a service and returns at once. A
// stopped or failed service starts in a new session; one that runs or is
// starting is left alone. It needs ScopeEnvironmentsWrite and fails with
// CodeNotFound and CodeFailedPrecondition (the service is being deleted).
func (s *Manager) StartService(ctx context.Context, id string) error {
	return s.StartServiceIn(ctx, "", id)
}

// StartServiceIn is StartService for a service of environment envID: a
// service of another environment is not found (CodeNotFound), so a path
// that names both cannot act on the wrong one.
func (s *Manager) StartServiceIn(ctx context.Context, envID, id string) error {
	return s.setDesired(ctx, envID, id, func(svc *Service) (bool, error) {
		if svc.Deleting() {
			return false, apperr.FailedPrecondition("service %q is being deleted", svc.Reference)
		}
		return start(svc, s.now()), nil
	})
}

// StopService asks the runner to stop a service and returns at once;
// stopping a stopped service changes nothing. It needs
// ScopeEnvironmentsWrite and fails with CodeNotFound.
func (s *Manager) StopService(ctx context.Context, id string) error {
	return s.StopServiceIn(ctx, "", id)
}

// StopServiceIn is StopService for a service of environment envID, as
// StartServiceIn.
func (s *Manager) StopServiceIn(ctx context.Context, envID, id string) error {
	return s.setDesired(ctx, envID, id, func(svc *Service) (bool, error) {
		if svc.Spec.DesiredPhase == ServicePhaseStopped || svc.Deleting() {
			return false, nil
		}
		svc.Spec.DesiredPhase = ServicePhaseStopped
		svc.Spec.SpecVersion++
		svc.UpdatedAt = s.now()
		return true, nil
	})
}

// DeleteService deletes a service and returns at once. A stopped service, or
// any with force, is removed now (with force the runner kills what still
// runs when the service leaves its desired state); otherwise its desired
// phase becomes DELETED and the runner's report that it stopped removes it.
// It needs ScopeEnvironmentsWrite and fails with CodeNotFound and
// CodeFailedPrecondition (a task depends on the service).
func (s *Manager) DeleteService(ctx context.Context, id string, force bool) error {
	c, err := requireWrite(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return err
	}
	cur, err := s.Store.FindServiceByID(ctx, c.OrgID, id)
	if err != nil {
		return serviceNotFound(id, err)
	}
	err = s.Store.EditAutomations(ctx, c.OrgID, cur.EnvironmentID, func(env *environments.Environment, set *Set) (*Changes, error) {
		svc := set.service(id)
		if svc == nil {
			return nil, apperr.NotFound("service %q not found", id)
		}
		if deps := set.dependents(id); len(deps) > 0 {
			return nil, apperr.FailedPrecondition("service %q cannot be deleted: task %s depends on it", svc.Reference, quoteJoin(deps))
		}
		if force || svc.Stopped() {
			return &Changes{DeleteServices: []string{id}}, nil
		}
		if svc.Deleting() {
			return &Changes{}, nil
		}
		svc.Spec.DesiredPhase = ServicePhaseDeleted
		svc.Spec.SpecVersion++
		svc.UpdatedAt = s.now()
		return &Changes{UpdateServices: []*Service{svc}}, nil
	})
	if err != nil {
		return serviceNotFound(id, err)
	}
	s.serviceChanged(ctx, cur)
	return nil
}

func quoteJoin(refs []string) string {
	q := make([]string, len(refs))
	for i, r := range refs {
		q[i] = fmt.Sprintf("%q", r)
	}
	return strings.Join(q, ", ")
}
