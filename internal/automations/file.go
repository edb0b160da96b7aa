package automations

import (
	"context"
	"errors"
	"fmt"
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

// UpsertFile makes the file-managed services and tasks of an environment
// what file says, in one transaction, as an apply of the source
// SourceUpsert (see applyFile). An invalid file is refused with the path of
// the offending field under "automationsFile" and changes nothing. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid, CodeNotFound,
// CodeConflict (the file names an API-created item) and
// CodeFailedPrecondition (the environment is being deleted, or the file
// drops an item that an API-created task depends on).
func (s *Manager) UpsertFile(ctx context.Context, envID string, file *spec.File) (*UpsertResult, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
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
	err = s.edit(ctx, c.OrgID, envID, func(env *environments.Environment, set *Set) (*Changes, error) {
		*res = UpsertResult{}
		return s.applyFile(c, env, set, file, SourceUpsert, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
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

// applyFile computes the changes that make the file-managed items of set
// (SourceFile and SourceUpsert) what file says, as an apply of source src:
//
//   - an item the file lists is created, or updated and from then on of
//     source src (the last file to list an item manages it);
//   - a file-managed item the file does not list is removed (a service that
//     may run is stopped first, as DeleteService does);
//   - an API-created item (SourceAPI) is never changed or removed: a file
//     that lists its reference is refused (CodeConflict), and so is one
//     that removes an item an API-created task depends on
//     (CodeFailedPrecondition).
//
// file is valid, so its dependencies resolve within it and form no cycle.
func (s *Manager) applyFile(c *identity.Caller, env *environments.Environment, set *Set, file *spec.File, src Source, res *UpsertResult) (*Changes, error) {
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
	apiItem := func(ref string) string {
		if x := services[ref]; x != nil && !x.Source.FileManaged() {
			return "service"
		}
		if x := tasks[ref]; x != nil && !x.Source.FileManaged() {
			return "task"
		}
		return ""
	}
	for _, ref := range sortedKeys(file.Services) {
		if kind := apiItem(ref); kind != "" {
			return nil, apiTaken("automationsFile.services."+ref, ref, kind)
		}
	}
	for _, ref := range sortedKeys(file.Tasks) {
		if kind := apiItem(ref); kind != "" {
			return nil, apiTaken("automationsFile.tasks."+ref, ref, kind)
		}
	}
	// IDs by reference of what the file keeps or creates, for dependsOn.
	ids := map[string]string{}

	for _, ref := range sortedKeys(file.Services) {
		fs := file.Services[ref]
		cur := services[ref]
		if cur == nil {
			svc := &Service{
				ID: uuid.NewString(), OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref, Source: src,
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
		next.Source = src
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
		// A change of source alone (the other file source's item, now
		// managed by this one) is stored but not reported: nothing a user
		// sees changed.
		taken := next
		taken.Source = cur.Source
		if !reflect.DeepEqual(&taken, cur) {
			next.UpdatedAt = now
			res.ServiceIDs = append(res.ServiceIDs, cur.ID)
		}
		*cur = next
		ch.UpdateServices = append(ch.UpdateServices, cur)
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
				ID: ids[ref], OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref, Source: src,
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
		next.Source = src
		if reflect.DeepEqual(&next, cur) {
			continue
		}
		taken := next
		taken.Source = cur.Source
		if !reflect.DeepEqual(&taken, cur) {
			next.UpdatedAt = now
			res.TaskIDs = append(res.TaskIDs, cur.ID)
		}
		*cur = next
		ch.UpdateTasks = append(ch.UpdateTasks, cur)
	}

	// What the file lacks of the file-managed items goes. Tasks go at once
	// (executions keep their own copy); a service that may run is stopped
	// first. A stopping service keeps its reference until it is gone, also
	// when the file now uses the reference for a task.
	for _, x := range set.Tasks {
		if _, ok := file.Tasks[x.Reference]; !ok && x.Source.FileManaged() {
			ch.DeleteTasks = append(ch.DeleteTasks, x.ID)
		}
	}
	for _, x := range set.Tasks {
		if !x.Source.FileManaged() {
			for _, d := range x.DependsOn {
				if gone := goneRef(set, ch.DeleteTasks, file, d); gone != "" {
					return nil, apperr.FailedPrecondition("the automations file drops %s, which task %q (created through the API) depends on: keep it in the file, or change or delete task %q first",
						gone, x.Reference, x.Reference)
				}
			}
		}
	}
	for _, x := range set.Services {
		if _, ok := file.Services[x.Reference]; ok || !x.Source.FileManaged() {
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
	return ch, nil
}

// goneRef names the item with ID id if the apply removes it: a task in
// deleted, or a file-managed service the file does not list. It returns ""
// for an item that stays.
func goneRef(set *Set, deleted []string, file *spec.File, id string) string {
	if t := set.task(id); t != nil && slices.Contains(deleted, id) {
		return fmt.Sprintf("task %q", t.Reference)
	}
	if x := set.service(id); x != nil && x.Source.FileManaged() {
		if _, ok := file.Services[x.Reference]; !ok {
			return fmt.Sprintf("service %q", x.Reference)
		}
	}
	return ""
}

// apiTaken refuses a file that lists the reference of an API-created item.
func apiTaken(field, ref, kind string) error {
	create := "CreateService"
	if kind == "task" {
		create = "CreateTask"
	}
	return &apperr.Error{Code: apperr.CodeConflict, Field: field,
		Message: fmt.Sprintf("reference %q is used by a %s created through the API (%s), which no automations file changes: delete that %s or rename the file's item", ref, kind, create, kind)}
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
