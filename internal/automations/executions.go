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

// StartedByManual is the startedBy of an execution a user started.
const StartedByManual = string(spec.TriggerManual)

// plan orders root and its transitive dependencies into groups of steps
// (spec.Plan: a step runs after every step it depends on, in the earliest
// group that allows). Each step gets a new ID, so every execution's steps,
// and their logs, are its own; a task step carries the task's spec as it is
// now. It returns the plan and the services the plan awaits.
func plan(set *Set, root *Task) ([]Group, []*Service, error) {
	groups, err := spec.Plan(set.graph(), root.ID)
	if err != nil {
		return nil, nil, err
	}
	stepOf := map[string]string{}
	for _, g := range groups {
		for _, id := range g {
			stepOf[id] = uuid.NewString()
		}
	}
	var out []Group
	var services []*Service
	for _, g := range groups {
		var grp Group
		for _, id := range g {
			if t := set.task(id); t != nil {
				deps := make([]string, len(t.DependsOn))
				for i, d := range t.DependsOn {
					deps[i] = stepOf[d]
				}
				slices.Sort(deps)
				grp.Steps = append(grp.Steps, Step{
					ID: stepOf[id], DependsOn: deps, Label: t.Name,
					Task: &StepTask{ID: t.ID, Spec: TaskSpec{Command: t.Spec.Command, RunsOn: t.Spec.RunsOn, Env: slices.Clone(t.Spec.Env)}},
				})
				continue
			}
			svc := set.service(id)
			grp.Steps = append(grp.Steps, Step{ID: stepOf[id], Label: svc.Name, ServiceID: id})
			services = append(services, svc)
		}
		out = append(out, grp)
	}
	return out, services, nil
}

// newExecution builds an execution of root in set and starts the services it
// awaits, adding both to ch.
func (s *Manager) newExecution(c *identity.Caller, set *Set, root *Task, startedBy string, ch *Changes) (*TaskExecution, error) {
	groups, services, err := plan(set, root)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, svc := range services {
		if start(svc, now) && !slices.Contains(ch.UpdateServices, svc) {
			ch.UpdateServices = append(ch.UpdateServices, svc)
		}
	}
	x := &TaskExecution{
		ID: uuid.NewString(), OrgID: c.OrgID, EnvironmentID: root.EnvironmentID,
		TaskID: root.ID, TaskReference: root.Reference, Creator: c.Subject, StartedBy: startedBy, CreatedAt: now,
		Spec:   ExecutionSpec{DesiredPhase: ExecutionPhaseRunning, Plan: groups},
		Status: ExecutionStatus{Phase: ExecutionPhasePending},
	}
	ch.CreateExecutions = append(ch.CreateExecutions, x)
	return x, nil
}

// StartTask creates an execution of a task and its transitive dependencies
// and returns it PENDING: the environment's runner runs it and reports its
// phases. The services the plan awaits are started too. It needs
// ScopeEnvironmentsWrite and fails with CodeNotFound and
// CodeFailedPrecondition (the environment is not desired running).
func (s *Manager) StartTask(ctx context.Context, id string) (*TaskExecution, error) {
	return s.StartTaskIn(ctx, "", id)
}

// StartTaskIn is StartTask for a task of environment envID: a task of
// another environment is not found (CodeNotFound).
func (s *Manager) StartTaskIn(ctx context.Context, envID, id string) (*TaskExecution, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	cur, err := s.Store.FindTaskByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, taskNotFound(id, err)
	}
	if envID != "" && cur.EnvironmentID != envID {
		return nil, notInEnvironment("task", id, envID)
	}
	var x *TaskExecution
	err = s.edit(ctx, c.OrgID, cur.EnvironmentID, func(env *environments.Environment, set *Set) (*Changes, error) {
		if env.Spec.DesiredPhase != environments.PhaseRunning {
			return nil, apperr.FailedPrecondition("environment %q is stopped: start it before starting a task", env.ID)
		}
		t := set.task(id)
		if t == nil {
			return nil, apperr.NotFound("task %q not found", id)
		}
		ch := &Changes{}
		var err error
		x, err = s.newExecution(c, set, t, StartedByManual, ch)
		return ch, err
	})
	if err != nil {
		return nil, taskNotFound(id, err)
	}
	return x, nil
}

// GetTaskExecution returns an execution of the caller's organization. It
// needs ScopeEnvironmentsRead and fails with CodeInvalid and CodeNotFound.
func (s *Manager) GetTaskExecution(ctx context.Context, id string) (*TaskExecution, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return nil, err
	}
	x, err := s.Store.FindTaskExecutionByID(ctx, c.OrgID, id)
	if err != nil {
		return nil, executionNotFound(id, err)
	}
	if err := s.markExecutionsUnreachable(ctx, c.OrgID, x); err != nil {
		return nil, err
	}
	return x, nil
}

// ExecutionListFilter selects executions for ListTaskExecutions; empty
// fields select everything.
type ExecutionListFilter struct {
	EnvironmentIDs []string
	Phases         []ExecutionPhase
	TaskIDs        []string
	TaskReferences []string
}

// ListTaskExecutions returns one page of the caller's organization's task
// executions, oldest first, and the next page's token. It needs
// ScopeEnvironmentsRead.
func (s *Manager) ListTaskExecutions(ctx context.Context, f ExecutionListFilter, page paging.Page) ([]*TaskExecution, string, error) {
	c, err := requireRead(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.environmentIds", f.EnvironmentIDs); err != nil {
		return nil, "", err
	}
	if err := validateEnums("filter.phases", f.Phases, ExecutionPhases); err != nil {
		return nil, "", err
	}
	if err := validateUUIDs("filter.taskIds", f.TaskIDs); err != nil {
		return nil, "", err
	}
	if err := validateReferences("filter.taskReferences", f.TaskReferences); err != nil {
		return nil, "", err
	}
	items, err := s.Store.FindTaskExecutions(ctx, ExecutionFilter{
		OrgID: c.OrgID, EnvironmentIDs: f.EnvironmentIDs, Phases: f.Phases, TaskIDs: f.TaskIDs, TaskReferences: f.TaskReferences,
		After: page.After, Limit: page.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list task executions: %w", err)
	}
	items, next := paging.Trim(page, items, func(x *TaskExecution) int64 { return x.Seq })
	if err := s.markExecutionsUnreachable(ctx, c.OrgID, items...); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// StopTaskExecution asks the runner to stop an execution and returns at
// once: its running steps stop as a service stop does and it ends STOPPED.
// Stopping a finished or already stopping execution changes nothing. It
// needs ScopeEnvironmentsWrite and fails with CodeNotFound.
func (s *Manager) StopTaskExecution(ctx context.Context, id string) error {
	c, err := requireWrite(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("id", id); err != nil {
		return err
	}
	changed := false
	x, err := s.Store.UpdateTaskExecution(ctx, c.OrgID, id, func(x *TaskExecution) error {
		changed = false
		if x.Status.Phase.Finished() || x.Spec.DesiredPhase == ExecutionPhaseStopped {
			return nil
		}
		x.Spec.DesiredPhase = ExecutionPhaseStopped
		changed = true
		return nil
	})
	if err != nil {
		return executionNotFound(id, err)
	}
	if changed {
		if env, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, x.EnvironmentID); err == nil {
			s.changed(c.OrgID, env.RunnerID)
		}
	}
	return nil
}
