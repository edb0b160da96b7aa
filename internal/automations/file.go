package automations

import (
	"context"
	"errors"
	"reflect"
	"slices"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// UpsertResult lists what an automations file created or changed, each in
// reference order.
type UpsertResult struct {
	ServiceIDs []string
	TaskIDs    []string
}

// UpsertFile makes an environment's services and tasks what file says, in
// one transaction: items are matched by reference, new ones are created,
// changed ones updated, and those the file lacks removed (a service that
// may run is stopped first, as DeleteService does). An invalid file is
// refused with the path of the offending field under "automationsFile" and
// changes nothing. It needs ScopeEnvironmentsWrite and fails with
// CodeInvalid, CodeNotFound and CodeFailedPrecondition (the environment is
// being deleted).
func (s *Manager) UpsertFile(ctx context.Context, envID string, file *spec.File) (*UpsertResult, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
	return s.upsertFile(ctx, c, envID, file, nil)
}

// validateFile checks file with the automations file's rules and names the
// offending field under automationsFile.
func validateFile(file *spec.File) error {
	if err := spec.Validate(file); err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code == apperr.CodeInvalid {
			field := "automationsFile"
			if ae.Field != "" {
				field += "." + ae.Field
			}
			return apperr.Invalid(field, "%s", ae.Message)
		}
		return err
	}
	return nil
}

// upsertFile is UpsertFile for caller c; check, when set, vets the
// environment inside the transaction (ApplyFile: is it the runner's?).
func (s *Manager) upsertFile(ctx context.Context, c *identity.Caller, envID string, file *spec.File, check func(*environments.Environment) error) (*UpsertResult, error) {
	if err := identity.ValidateUUID("environmentId", envID); err != nil {
		return nil, err
	}
	if file == nil {
		file = &spec.File{}
	}
	if err := validateFile(file); err != nil {
		return nil, err
	}
	file.SetDefaults()
	res := &UpsertResult{}
	err := s.edit(ctx, c.OrgID, envID, func(env *environments.Environment, set *Set) (*Changes, error) {
		if check != nil {
			if err := check(env); err != nil {
				return nil, err
			}
		}
		*res = UpsertResult{}
		return s.applyFile(c, env, set, file, res), nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// applyFile computes the changes that make set what file says. file is
// valid, so its dependencies resolve within it and form no cycle.
func (s *Manager) applyFile(c *identity.Caller, env *environments.Environment, set *Set, file *spec.File, res *UpsertResult) *Changes {
	now := s.now()
	ch := &Changes{}
	services := map[string]*Service{}
	for _, x := range set.Services {
		services[x.Reference] = x
	}
	tasks := map[string]*Task{}
	for _, x := range set.Tasks {
		tasks[x.Reference] = x
	}
	// IDs by reference of what the file keeps or creates, for dependsOn.
	ids := map[string]string{}

	for _, ref := range sortedKeys(file.Services) {
		fs := file.Services[ref]
		cur := services[ref]
		if cur == nil {
			svc := &Service{
				ID: uuid.NewString(), OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref,
				Creator: c.Subject, CreatedAt: now, UpdatedAt: now,
				Spec:   ServiceSpec{SpecVersion: 1, DesiredPhase: ServicePhaseStopped, Session: newSession()},
				Status: ServiceStatus{Phase: ServicePhaseUnspecified},
			}
			fileService(svc, fs)
			ch.CreateServices = append(ch.CreateServices, svc)
			res.ServiceIDs = append(res.ServiceIDs, svc.ID)
			ids[ref] = svc.ID
			continue
		}
		ids[ref] = cur.ID
		next := *cur
		fileService(&next, fs)
		if next.Deleting() {
			// In the file again: the service stays, stopped.
			next.Spec.DesiredPhase = ServicePhaseStopped
		}
		if !reflect.DeepEqual(next.Spec, cur.Spec) {
			next.Spec.SpecVersion++
		}
		if reflect.DeepEqual(&next, cur) {
			continue
		}
		next.UpdatedAt = now
		*cur = next
		ch.UpdateServices = append(ch.UpdateServices, cur)
		res.ServiceIDs = append(res.ServiceIDs, cur.ID)
	}
	for _, ref := range sortedKeys(file.Tasks) {
		if cur := tasks[ref]; cur != nil {
			ids[ref] = cur.ID
		} else {
			ids[ref] = uuid.NewString()
		}
	}
	for _, ref := range sortedKeys(file.Tasks) {
		ft := file.Tasks[ref]
		var deps []string
		for _, d := range ft.DependsOn {
			deps = append(deps, ids[d])
		}
		cur := tasks[ref]
		if cur == nil {
			t := &Task{
				ID: ids[ref], OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref,
				Creator: c.Subject, CreatedAt: now, UpdatedAt: now, DependsOn: deps,
			}
			fileTask(t, ft)
			ch.CreateTasks = append(ch.CreateTasks, t)
			res.TaskIDs = append(res.TaskIDs, t.ID)
			continue
		}
		next := *cur
		fileTask(&next, ft)
		next.DependsOn = deps
		if reflect.DeepEqual(&next, cur) {
			continue
		}
		next.UpdatedAt = now
		*cur = next
		ch.UpdateTasks = append(ch.UpdateTasks, cur)
		res.TaskIDs = append(res.TaskIDs, cur.ID)
	}

	// What the file lacks goes. Tasks go at once (executions keep their own
	// copy); a service that may run is stopped first. A stopping service
	// keeps its reference until it is gone, also when the file now uses the
	// reference for a task.
	for _, x := range set.Tasks {
		if _, ok := file.Tasks[x.Reference]; !ok {
			ch.DeleteTasks = append(ch.DeleteTasks, x.ID)
		}
	}
	for _, x := range set.Services {
		if _, ok := file.Services[x.Reference]; ok {
			continue
		}
		switch {
		case x.Stopped():
			ch.DeleteServices = append(ch.DeleteServices, x.ID)
		case !x.Deleting():
			x.Spec.DesiredPhase = ServicePhaseDeleted
			x.Spec.SpecVersion++
			x.UpdatedAt = now
			ch.UpdateServices = append(ch.UpdateServices, x)
		}
	}
	return ch
}

// fileService sets what an automations file says about a service; the rest
// (env, session, desired phase, status) is the API's.
func fileService(svc *Service, fs spec.Service) {
	svc.Name, svc.Description, svc.Role = fs.Name, fs.Description, RoleOf(fs.Role)
	svc.TriggeredBy = cloneOrNil(fs.TriggeredBy)
	svc.Spec.Commands, svc.Spec.RunsOn = fs.Commands, fs.RunsOn
}

// fileTask sets what an automations file says about a task but its
// dependencies, which the caller resolves to IDs.
func fileTask(t *Task, ft spec.Task) {
	t.Name, t.Description = ft.Name, ft.Description
	t.TriggeredBy = cloneOrNil(ft.TriggeredBy)
	t.Spec.Command, t.Spec.RunsOn = ft.Command, ft.RunsOn
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// cloneOrNil copies s, with nil for an empty s, so that what a file says
// compares equal to what the store reads back.
func cloneOrNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
