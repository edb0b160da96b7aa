package automations

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

// TaskInput is a task to create.
type TaskInput struct {
	EnvironmentID string
	Reference     string
	// Name defaults to the reference.
	Name        string
	Description string
	TriggeredBy []spec.Trigger
	Spec        TaskSpec
	// DependsOn holds IDs of tasks and services of the same environment.
	DependsOn []string
}

func (in *TaskInput) validate() error {
	if err := identity.ValidateUUID("environmentId", in.EnvironmentID); err != nil {
		return err
	}
	if err := spec.ValidateReference("metadata.reference", in.Reference); err != nil {
		return err
	}
	if err := validateNameDescription("metadata", in.Name, in.Description); err != nil {
		return err
	}
	if err := validateTriggers("metadata.triggeredBy", in.TriggeredBy); err != nil {
		return err
	}
	if err := validateTaskSpec("spec", in.Spec); err != nil {
		return err
	}
	return validateDependsOnIDs(in.DependsOn)
}

func validateTaskSpec(field string, ts TaskSpec) error {
	if err := validateCommand(field+".command", ts.Command, true); err != nil {
		return err
	}
	if err := validateRunsOn(field+".runsOn", ts.RunsOn); err != nil {
		return err
	}
	return validateEnv(field+".env", ts.Env)
}

func validateDependsOnIDs(ids []string) error {
	if len(ids) > MaxFilterValues {
		return apperr.Invalid("dependsOn", "at most %d dependencies, got %d", MaxFilterValues, len(ids))
	}
	for i, id := range ids {
		if err := identity.ValidateUUID(fmt.Sprintf("dependsOn[%d]", i), id); err != nil {
			return err
		}
		if j := slices.Index(ids[:i], id); j >= 0 {
			return apperr.Invalid(fmt.Sprintf("dependsOn[%d]", i), "%q is listed twice (also dependsOn[%d])", id, j)
		}
	}
	return nil
}

// checkDependsOn checks that every dependency of t is another task or a
// service of set that is not being deleted, and that t closes no cycle. t is
// in set already.
func checkDependsOn(set *Set, t *Task) error {
	for i, id := range t.DependsOn {
		field := fmt.Sprintf("dependsOn[%d]", i)
		if id == t.ID {
			return apperr.Invalid(field, "a task cannot depend on itself")
		}
		if set.task(id) != nil {
			continue
		}
		svc := set.service(id)
		if svc == nil {
			return apperr.Invalid(field, "%q is not a task or service of environment %q", id, t.EnvironmentID)
		}
		if svc.Deleting() {
			return apperr.Invalid(field, "service %q is being deleted", svc.Reference)
		}
	}
	return set.checkCycles("dependsOn")
}

// CreateTask adds a task to an environment of the caller's organization. It
// needs ScopeEnvironmentsWrite and fails with CodeInvalid (including a
// dependency that is not in the environment), CodeNotFound (the
// environment), CodeConflict (the reference is taken) and
// CodeFailedPrecondition (the environment is being deleted).
func (s *Manager) CreateTask(ctx context.Context, in TaskInput) (*Task, error) {
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
	t := &Task{
		ID: uuid.NewString(), OrgID: c.OrgID, EnvironmentID: in.EnvironmentID, Reference: in.Reference,
		Name: in.Name, Description: in.Description, TriggeredBy: slices.Clone(in.TriggeredBy), Source: SourceAPI,
		Creator: c.Subject, CreatedAt: now, UpdatedAt: now,
		Spec:      TaskSpec{Command: in.Spec.Command, RunsOn: in.Spec.RunsOn, Env: slices.Clone(in.Spec.Env)},
		DependsOn: slices.Clone(in.DependsOn),
	}
	if t.Name == "" {
		t.Name = t.Reference
	}
	err = s.edit(ctx, c.OrgID, in.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
		if kind := set.taken(in.Reference); kind != "" {
			return nil, referenceTaken(in.EnvironmentID, in.Reference, kind)
		}
		set.Tasks = append(set.Tasks, t)
		if err := checkDependsOn(set, t); err != nil {
			return nil, err
		}
		return &Changes{CreateTasks: []*Task{t}}, nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// GetTask returns a task of the caller's organization. It needs
// ScopeEnvironmentsRead and fails with CodeInvalid and CodeNotFound.
func (s *Manager) GetTask(ctx context.Context, id string) (*Task, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	t, err := s.Store.FindTaskByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, taskNotFound(id, err)
	}
	return t, nil
}

// TaskListFilter selects tasks for ListTasks; empty fields select
// everything.
type TaskListFilter struct {
	EnvironmentIDs []string
	References     []string
	TaskIDs        []string
}

// ListTasks returns one page of the caller's organization's tasks, oldest
// first, and the next page's token. It needs ScopeEnvironmentsRead.
func (s *Manager) ListTasks(ctx context.Context, f TaskListFilter, page paging.Page) ([]*Task, string, error) {
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
	if err := validateUUIDs("filter.taskIds", f.TaskIDs); err != nil {
		return nil, "", err
	}
	items, err := s.Store.FindTasks(ctx, TaskFilter{
		OrgID: c.OrgID, EnvironmentIDs: f.EnvironmentIDs, References: f.References, IDs: f.TaskIDs,
		After: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	items, next := paging.Trim(page, items, func(t *Task) int64 { return t.Seq })
	return items, next, nil
}

// TaskUpdate is a change to a task; nil fields keep their value.
type TaskUpdate struct {
	Name        *string
	Description *string
	// TriggeredBy replaces the triggers when set (an empty list clears
	// them).
	TriggeredBy *[]spec.Trigger
	Command     *string
	RunsOn      *spec.RunsOn
	// Env replaces the variables when not empty.
	Env []EnvVar
	// DependsOn replaces the dependencies when not empty.
	DependsOn []string
}

func (u *TaskUpdate) apply(t *Task) error {
	if u.Name != nil {
		if err := validateText("metadata.name", *u.Name, maxName, false); err != nil {
			return err
		}
		t.Name = *u.Name
		if t.Name == "" {
			t.Name = t.Reference
		}
	}
	if u.Description != nil {
		if err := validateText("metadata.description", *u.Description, maxDescription, true); err != nil {
			return err
		}
		t.Description = *u.Description
	}
	if u.TriggeredBy != nil {
		if err := validateTriggers("metadata.triggeredBy.trigger", *u.TriggeredBy); err != nil {
			return err
		}
		t.TriggeredBy = slices.Clone(*u.TriggeredBy)
	}
	if u.Command != nil {
		if err := validateCommand("spec.command", *u.Command, true); err != nil {
			return err
		}
		t.Spec.Command = *u.Command
	}
	if u.RunsOn != nil {
		if err := validateRunsOn("spec.runsOn", *u.RunsOn); err != nil {
			return err
		}
		t.Spec.RunsOn = *u.RunsOn
	}
	if len(u.Env) > 0 {
		if err := validateEnv("spec.env", u.Env); err != nil {
			return err
		}
		t.Spec.Env = slices.Clone(u.Env)
	}
	if len(u.DependsOn) > 0 {
		if err := validateDependsOnIDs(u.DependsOn); err != nil {
			return err
		}
		t.DependsOn = slices.Clone(u.DependsOn)
	}
	return nil
}

// UpdateTask changes a task; executions already created keep the task as it
// was. A change of dependencies that would close a cycle is refused naming
// the cycle, and changes nothing. It needs ScopeEnvironmentsWrite and fails
// with CodeInvalid and CodeNotFound.
func (s *Manager) UpdateTask(ctx context.Context, id string, u TaskUpdate) (*Task, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	if len(u.Env) > 0 {
		if err := s.checkEnv(ctx, c.OrgID, "", "spec.env", u.Env); err != nil {
			return nil, err
		}
	}
	cur, err := s.Store.FindTaskByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, taskNotFound(id, err)
	}
	var out *Task
	err = s.edit(ctx, c.OrgID, cur.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
		t := set.task(id)
		if t == nil {
			return nil, apperr.NotFound("task %q not found", id)
		}
		if err := u.apply(t); err != nil {
			return nil, err
		}
		if len(u.DependsOn) > 0 {
			if err := checkDependsOn(set, t); err != nil {
				return nil, err
			}
		}
		t.UpdatedAt = s.now()
		out = t
		return &Changes{UpdateTasks: []*Task{t}}, nil
	})
	if err != nil {
		return nil, taskNotFound(id, err)
	}
	return out, nil
}

// DeleteTask removes a task; its executions stay. It needs
// ScopeEnvironmentsWrite and fails with CodeNotFound and
// CodeFailedPrecondition (another task depends on it).
func (s *Manager) DeleteTask(ctx context.Context, id string) error {
	c, err := requireWrite(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return err
	}
	cur, err := s.Store.FindTaskByID(ctx, c.OrgID, id)
	if err != nil {
		return taskNotFound(id, err)
	}
	err = s.Store.EditAutomations(ctx, c.OrgID, cur.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
		t := set.task(id)
		if t == nil {
			return nil, apperr.NotFound("task %q not found", id)
		}
		if deps := set.dependents(id); len(deps) > 0 {
			return nil, apperr.FailedPrecondition("task %q cannot be deleted: task %s depends on it", t.Reference, quoteJoin(deps))
		}
		return &Changes{DeleteTasks: []string{id}}, nil
	})
	if err != nil {
		return taskNotFound(id, err)
	}
	return nil
}
