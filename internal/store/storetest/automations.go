package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
)

// This file is the conformance of an environment's automations: services,
// tasks and task executions. The rules (references across kinds, cycles,
// phases) are the domain's and tested there; the store's part is to keep
// every field, select and page, confine each organization, serialize the
// changes to one environment and undo a refused one.

// storedEnvironment stores an environment of orgID on runnerID.
func storedEnvironment(t *testing.T, s store.Store, orgID, runnerID string) *environments.Environment {
	t.Helper()
	e := newEnvironment(orgID, runnerID, "automations")
	must(t, s.CreateEnvironment(ctx, e), "create environment")
	return e
}

var automationsCreator = identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalUser}

// newService returns a service of env with every field set, so that a field
// a store loses shows.
func newService(env *environments.Environment, ref string) *automations.Service {
	return &automations.Service{
		ID: uuid.NewString(), OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref,
		Name: "Service " + ref, Description: "runs " + ref + "\nand more", Role: automations.RoleEditor,
		TriggeredBy: []spec.Trigger{spec.TriggerPostEnvironmentStart, spec.TriggerManual},
		Source:      automations.SourceUpsert,
		Creator:     automationsCreator, CreatedAt: base, UpdatedAt: base.Add(time.Second),
		Spec: automations.ServiceSpec{
			SpecVersion: 3, DesiredPhase: automations.ServicePhaseRunning,
			Commands: spec.Commands{Start: "npm start", Ready: "curl -sf localhost:3000", Stop: "pkill node"},
			Session:  "session-" + ref,
			RunsOn:   spec.RunsOn{Docker: &spec.Docker{Image: "node:22", Environment: []string{"A=1", "B=two words"}}},
			Env: []automations.EnvVar{
				{Name: "PORT", Value: "3000"}, {Name: "TOKEN", SecretID: uuid.NewString()},
			},
		},
		Status: automations.ServiceStatus{
			StatusVersion: 4, Phase: automations.ServicePhaseRunning, FailureMessage: "once failed",
			LogURL: "https://logs.example/" + ref, Session: "session-" + ref,
			Output: map[string]string{"url": "http://localhost:3000", "pid": "42"},
		},
	}
}

// newTask returns a task of env with every field set.
func newTask(env *environments.Environment, ref string, dependsOn ...string) *automations.Task {
	return &automations.Task{
		ID: uuid.NewString(), OrgID: env.OrgID, EnvironmentID: env.ID, Reference: ref,
		Name: "Task " + ref, Description: "does " + ref, Creator: automationsCreator,
		TriggeredBy: []spec.Trigger{spec.TriggerPrebuild}, Source: automations.SourceAPI,
		CreatedAt: base, UpdatedAt: base.Add(2 * time.Second),
		Spec: automations.TaskSpec{
			Command: "make " + ref, RunsOn: spec.RunsOn{Machine: &spec.Machine{}},
			Env: []automations.EnvVar{{Name: "CI", Value: "1"}},
		},
		DependsOn: dependsOn,
	}
}

// newExecution returns an execution of task t with a two-group plan and
// every field set.
func newExecution(t *automations.Task, phase automations.ExecutionPhase) *automations.TaskExecution {
	started, completed := base.Add(time.Minute), base.Add(2*time.Minute)
	s1, s2 := uuid.NewString(), uuid.NewString()
	return &automations.TaskExecution{
		ID: uuid.NewString(), OrgID: t.OrgID, EnvironmentID: t.EnvironmentID, TaskID: t.ID, TaskReference: t.Reference,
		Creator: automationsCreator, StartedBy: "manual", CreatedAt: base, StartedAt: &started, CompletedAt: &completed,
		Spec: automations.ExecutionSpec{
			DesiredPhase: automations.ExecutionPhaseRunning,
			Plan: []automations.Group{
				{Steps: []automations.Step{{ID: s1, Label: "db", ServiceID: uuid.NewString()}}},
				{Steps: []automations.Step{{ID: s2, DependsOn: []string{s1}, Label: t.Name,
					Task: &automations.StepTask{ID: t.ID, Spec: t.Spec}}}},
			},
		},
		Status: automations.ExecutionStatus{
			StatusVersion: 2, Phase: phase, FailureMessage: "step failed", LogURL: "https://logs.example/x",
			Steps: []automations.StepStatus{
				{ID: s1, Phase: automations.ExecutionPhaseSucceeded},
				{ID: s2, Phase: automations.ExecutionPhaseFailed, FailureMessage: "exit 1", Output: map[string]string{"k": "v"}},
			},
		},
	}
}

// create stores ch in env through EditAutomations.
func create(t *testing.T, s store.Store, env *environments.Environment, ch *automations.Changes) {
	t.Helper()
	must(t, s.EditAutomations(ctx, env.OrgID, env.ID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
		return ch, nil
	}), "edit automations")
}

// loadSet returns the set EditAutomations hands to its fn.
func loadSet(t *testing.T, s store.Store, env *environments.Environment) *automations.Set {
	t.Helper()
	var out *automations.Set
	must(t, s.EditAutomations(ctx, env.OrgID, env.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
		out = set
		return nil, nil
	}), "load set")
	return out
}

func testAutomationsRoundTrip(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	env := storedEnvironment(t, s, org.ID, uuid.NewString())
	svc := newService(env, "web")
	task := newTask(env, "build", svc.ID)
	x := newExecution(task, automations.ExecutionPhaseFailed)
	// Empty lists and maps read back as nil, as the domain builds them.
	bare := &automations.Service{
		ID: uuid.NewString(), OrgID: org.ID, EnvironmentID: env.ID, Reference: "bare", Name: "bare",
		Role: automations.RoleUnspecified, TriggeredBy: []spec.Trigger{}, Creator: automationsCreator, CreatedAt: base, UpdatedAt: base,
		Spec: automations.ServiceSpec{SpecVersion: 1, DesiredPhase: automations.ServicePhaseStopped,
			Commands: spec.Commands{Start: "sleep 1"}, Session: "s", Env: []automations.EnvVar{}},
		Status: automations.ServiceStatus{Phase: automations.ServicePhaseUnspecified, Output: map[string]string{}},
	}
	bareTask := &automations.Task{ID: uuid.NewString(), OrgID: org.ID, EnvironmentID: env.ID, Reference: "bare-task",
		Name: "bare-task", Creator: automationsCreator, CreatedAt: base, UpdatedAt: base, DependsOn: []string{},
		Spec: automations.TaskSpec{Command: "true"}}
	create(t, s, env, &automations.Changes{
		CreateServices:   []*automations.Service{svc, bare},
		CreateTasks:      []*automations.Task{task, bareTask},
		CreateExecutions: []*automations.TaskExecution{x},
	})
	if svc.Seq == 0 || bare.Seq <= svc.Seq || task.Seq == 0 || x.Seq == 0 {
		t.Fatalf("EditAutomations did not assign ascending Seqs: services %d, %d, task %d, execution %d", svc.Seq, bare.Seq, task.Seq, x.Seq)
	}

	gotSvc, err := s.FindServiceByID(ctx, org.ID, svc.ID)
	must(t, err, "find service")
	if !reflect.DeepEqual(gotSvc, svc) {
		t.Fatalf("service round trip:\n got %+v\nwant %+v", gotSvc, svc)
	}
	gotTask, err := s.FindTaskByID(ctx, org.ID, task.ID)
	must(t, err, "find task")
	if !reflect.DeepEqual(gotTask, task) {
		t.Fatalf("task round trip:\n got %+v\nwant %+v", gotTask, task)
	}
	gotX, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find task execution")
	if !reflect.DeepEqual(gotX, x) {
		t.Fatalf("task execution round trip:\n got %+v\nwant %+v", gotX, x)
	}
	gotBare, err := s.FindServiceByID(ctx, org.ID, bare.ID)
	must(t, err, "find bare service")
	bare.TriggeredBy, bare.Spec.Env, bare.Status.Output = nil, nil, nil
	if !reflect.DeepEqual(gotBare, bare) {
		t.Fatalf("bare service round trip:\n got %+v\nwant %+v", gotBare, bare)
	}
	gotBareTask, err := s.FindTaskByID(ctx, org.ID, bareTask.ID)
	must(t, err, "find bare task")
	bareTask.DependsOn = nil
	if !reflect.DeepEqual(gotBareTask, bareTask) {
		t.Fatalf("bare task round trip:\n got %+v\nwant %+v", gotBareTask, bareTask)
	}

	// The set holds the same objects in creation order.
	set := loadSet(t, s, env)
	if !reflect.DeepEqual(set.Services, []*automations.Service{svc, bare}) || !reflect.DeepEqual(set.Tasks, []*automations.Task{task, bareTask}) {
		t.Fatalf("set: services %+v, tasks %+v", set.Services, set.Tasks)
	}

	// Another organization sees none of them, and an unknown ID is missing.
	for _, orgID := range []string{other.ID, org.ID} {
		id := func(id string) string {
			if orgID == org.ID {
				return uuid.NewString()
			}
			return id
		}
		_, err = s.FindServiceByID(ctx, orgID, id(svc.ID))
		wantCode(t, err, apperr.CodeNotFound, "find service")
		_, err = s.FindTaskByID(ctx, orgID, id(task.ID))
		wantCode(t, err, apperr.CodeNotFound, "find task")
		_, err = s.FindTaskExecutionByID(ctx, orgID, id(x.ID))
		wantCode(t, err, apperr.CodeNotFound, "find task execution")
		_, err = s.UpdateService(ctx, orgID, id(svc.ID), func(*automations.Service) error { return nil })
		wantCode(t, err, apperr.CodeNotFound, "update service")
		_, err = s.UpdateTaskExecution(ctx, orgID, id(x.ID), func(*automations.TaskExecution) error { return nil })
		wantCode(t, err, apperr.CodeNotFound, "update task execution")
		envID := id(env.ID)
		err = s.EditAutomations(ctx, orgID, envID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
			t.Error("EditAutomations called fn for a missing environment")
			return nil, nil
		})
		wantCode(t, err, apperr.CodeNotFound, "edit automations")
		if want := fmt.Sprintf("environment %q not found", envID); apperr.As(err).Message != want {
			t.Fatalf("edit automations of a missing environment: message %q, want %q", apperr.As(err).Message, want)
		}
	}
	for _, f := range []struct {
		name string
		n    func() (int, error)
	}{
		{"services", func() (int, error) {
			got, err := s.FindServices(ctx, automations.ServiceFilter{OrgID: other.ID})
			return len(got), err
		}},
		{"tasks", func() (int, error) {
			got, err := s.FindTasks(ctx, automations.TaskFilter{OrgID: other.ID})
			return len(got), err
		}},
		{"task executions", func() (int, error) {
			got, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: other.ID, RunnerID: env.RunnerID})
			return len(got), err
		}},
	} {
		n, err := f.n()
		must(t, err, "list "+f.name)
		if n != 0 {
			t.Fatalf("another organization lists %d %s", n, f.name)
		}
	}
}

func testUpdateService(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	env := storedEnvironment(t, s, org.ID, uuid.NewString())
	svc := newService(env, "db")
	svc.Status = automations.ServiceStatus{Phase: automations.ServicePhaseUnspecified}
	create(t, s, env, &automations.Changes{CreateServices: []*automations.Service{svc}})

	want := *svc
	want.Name, want.Description, want.Role = "Database", "postgres", automations.RoleAIAgent
	want.TriggeredBy = []spec.Trigger{spec.TriggerPostMachineStart}
	want.Spec.DesiredPhase, want.Spec.SpecVersion = automations.ServicePhaseStopped, 9
	want.Status = automations.ServiceStatus{StatusVersion: 5, Phase: automations.ServicePhaseFailed, FailureMessage: "exit 2",
		LogURL: "https://logs", Session: "s2", Output: map[string]string{"a": "b"}}
	want.UpdatedAt = base.Add(time.Hour)
	got, err := s.UpdateService(ctx, org.ID, svc.ID, func(cur *automations.Service) error {
		if !reflect.DeepEqual(cur, svc) {
			t.Errorf("UpdateService fn got %+v, want %+v", cur, svc)
		}
		*cur = want
		return nil
	})
	must(t, err, "update service")
	reread, err := s.FindServiceByID(ctx, org.ID, svc.ID)
	must(t, err, "find service")
	if !reflect.DeepEqual(got, &want) || !reflect.DeepEqual(reread, &want) {
		t.Fatalf("after update:\nreturned %+v\n  stored %+v\n    want %+v", got, reread, &want)
	}

	refused := errors.New("refused")
	_, err = s.UpdateService(ctx, org.ID, svc.ID, func(cur *automations.Service) error {
		cur.Name = "changed"
		return refused
	})
	if err != refused {
		t.Fatalf("a refusing fn: got %v, want its own error", err)
	}
	after, err := s.FindServiceByID(ctx, org.ID, svc.ID)
	must(t, err, "find service")
	if after.Name != want.Name {
		t.Fatalf("a refused update changed the service: name %q", after.Name)
	}

	// Concurrent read-modify-writes do not lose each other.
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateService(ctx, org.ID, svc.ID, func(cur *automations.Service) error {
				cur.Status.StatusVersion++
				return nil
			}); err != nil {
				t.Errorf("concurrent update: %v", err)
			}
		}()
	}
	wg.Wait()
	final, err := s.FindServiceByID(ctx, org.ID, svc.ID)
	must(t, err, "find service")
	if got, want := final.Status.StatusVersion, uint64(5+n); got != want {
		t.Fatalf("after %d concurrent increments statusVersion = %d, want %d", n, got, want)
	}
}

func testUpdateTaskExecution(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	env := storedEnvironment(t, s, org.ID, uuid.NewString())
	task := newTask(env, "test")
	x := newExecution(task, automations.ExecutionPhasePending)
	x.StartedAt, x.CompletedAt, x.Status = nil, nil, automations.ExecutionStatus{Phase: automations.ExecutionPhasePending}
	create(t, s, env, &automations.Changes{CreateTasks: []*automations.Task{task}, CreateExecutions: []*automations.TaskExecution{x}})
	got, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find task execution")
	if !reflect.DeepEqual(got, x) {
		t.Fatalf("pending execution round trip:\n got %+v\nwant %+v", got, x)
	}

	full := newExecution(task, automations.ExecutionPhaseFailed)
	want := *x
	want.Spec.DesiredPhase = automations.ExecutionPhaseStopped
	want.Status, want.StartedAt, want.CompletedAt = full.Status, full.StartedAt, full.CompletedAt
	got, err = s.UpdateTaskExecution(ctx, org.ID, x.ID, func(cur *automations.TaskExecution) error {
		cur.Spec.DesiredPhase = want.Spec.DesiredPhase
		cur.Status, cur.StartedAt, cur.CompletedAt = want.Status, want.StartedAt, want.CompletedAt
		return nil
	})
	must(t, err, "update task execution")
	reread, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find task execution")
	if !reflect.DeepEqual(got, &want) || !reflect.DeepEqual(reread, &want) {
		t.Fatalf("after update:\nreturned %+v\n  stored %+v\n    want %+v", got, reread, &want)
	}
	// The phase column follows the status: the phase filter finds it.
	byPhase, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: org.ID, Phases: []automations.ExecutionPhase{automations.ExecutionPhaseFailed}})
	must(t, err, "find by phase")
	if len(byPhase) != 1 || byPhase[0].ID != x.ID {
		t.Fatalf("failed executions after the update: %v", executionIDs(byPhase))
	}

	refused := errors.New("refused")
	_, err = s.UpdateTaskExecution(ctx, org.ID, x.ID, func(cur *automations.TaskExecution) error {
		cur.Status.Phase = automations.ExecutionPhaseSucceeded
		return refused
	})
	if err != refused {
		t.Fatalf("a refusing fn: got %v, want its own error", err)
	}
	after, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find task execution")
	if after.Status.Phase != automations.ExecutionPhaseFailed {
		t.Fatalf("a refused update changed the execution: phase %s", after.Status.Phase)
	}
}

func testEditAutomations(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	env := storedEnvironment(t, s, org.ID, uuid.NewString())
	web, db := newService(env, "web"), newService(env, "db")
	build := newTask(env, "build")
	deploy := newTask(env, "deploy", build.ID, web.ID)
	x := newExecution(build, automations.ExecutionPhaseSucceeded)

	var seen *environments.Environment
	must(t, s.EditAutomations(ctx, org.ID, env.ID, func(e *environments.Environment, set *automations.Set) (*automations.Changes, error) {
		seen = e
		if len(set.Services) != 0 || len(set.Tasks) != 0 {
			t.Errorf("a new environment's set: %+v", set)
		}
		return &automations.Changes{
			CreateServices:   []*automations.Service{web, db},
			CreateTasks:      []*automations.Task{build, deploy},
			CreateExecutions: []*automations.TaskExecution{x},
		}, nil
	}), "create")
	if !reflect.DeepEqual(seen, env) {
		t.Fatalf("EditAutomations fn got environment %+v, want %+v", seen, env)
	}

	t.Run("RefusedChangesNothing", func(t *testing.T) {
		refused := errors.New("refused")
		err := s.EditAutomations(ctx, org.ID, env.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
			set.Services[0].Name = "changed in memory"
			return &automations.Changes{CreateServices: []*automations.Service{newService(env, "never")}}, refused
		})
		if err != refused {
			t.Fatalf("a refusing fn: got %v, want its own error", err)
		}
		set := loadSet(t, s, env)
		if got := serviceRefs(set.Services); !reflect.DeepEqual(got, []string{"web", "db"}) || set.Services[0].Name != web.Name {
			t.Fatalf("a refused edit changed the services: %v, name %q", got, set.Services[0].Name)
		}
	})

	t.Run("DuplicateReference", func(t *testing.T) {
		tests := []struct {
			name string
			ch   func() *automations.Changes
		}{
			{"Service", func() *automations.Changes {
				return &automations.Changes{CreateTasks: []*automations.Task{newTask(env, "lint")},
					CreateServices: []*automations.Service{newService(env, "web")}}
			}},
			{"Task", func() *automations.Changes {
				return &automations.Changes{CreateServices: []*automations.Service{newService(env, "cache")},
					CreateTasks: []*automations.Task{newTask(env, "build")}}
			}},
			{"SameChange", func() *automations.Changes {
				return &automations.Changes{CreateTasks: []*automations.Task{newTask(env, "twice"), newTask(env, "twice")}}
			}},
			{"UpdatedService", func() *automations.Changes {
				again := *db
				again.Reference = "web"
				return &automations.Changes{UpdateServices: []*automations.Service{&again}}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.EditAutomations(ctx, org.ID, env.ID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
					return tt.ch(), nil
				})
				wantCode(t, err, apperr.CodeConflict, "duplicate reference")
				set := loadSet(t, s, env)
				if got, want := serviceRefs(set.Services), []string{"web", "db"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("services after a conflict: %v, want %v", got, want)
				}
				if got, want := taskRefs(set.Tasks), []string{"build", "deploy"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("tasks after a conflict: %v, want %v", got, want)
				}
			})
		}
		// The same reference in another environment is no conflict.
		env2 := storedEnvironment(t, s, org.ID, env.RunnerID)
		create(t, s, env2, &automations.Changes{CreateServices: []*automations.Service{newService(env2, "web")},
			CreateTasks: []*automations.Task{newTask(env2, "build")}})
	})

	t.Run("MissingItem", func(t *testing.T) {
		gone := newTask(env, "gone")
		for name, ch := range map[string]*automations.Changes{
			"UpdateService": {UpdateServices: []*automations.Service{newService(env, "ghost")}},
			"UpdateTask":    {UpdateTasks: []*automations.Task{gone}},
			"DeleteService": {DeleteServices: []string{uuid.NewString()}},
			"DeleteTask":    {DeleteTasks: []string{gone.ID}},
		} {
			err := s.EditAutomations(ctx, org.ID, env.ID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
				return ch, nil
			})
			wantCode(t, err, apperr.CodeNotFound, name)
		}
	})

	t.Run("UpdateDeleteAndReuse", func(t *testing.T) {
		must(t, s.EditAutomations(ctx, org.ID, env.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
			// A service is removed and its reference reused by a new one;
			// a task and a service may share a reference (a service being
			// deleted keeps its reference while the file gives it to a
			// task), the domain keeps the rest unique.
			w, b := set.Services[0], set.Tasks[0]
			w.Spec.DesiredPhase, w.Spec.SpecVersion = automations.ServicePhaseDeleted, w.Spec.SpecVersion+1
			b.Name, b.DependsOn, b.Spec.Command = "Build", []string{set.Services[1].ID}, "make all"
			return &automations.Changes{
				DeleteServices: []string{set.Services[1].ID},
				CreateServices: []*automations.Service{newService(env, "db")},
				UpdateServices: []*automations.Service{w},
				UpdateTasks:    []*automations.Task{b},
				DeleteTasks:    []string{deploy.ID},
				CreateTasks:    []*automations.Task{newTask(env, "web")},
			}, nil
		}), "edit")
		set := loadSet(t, s, env)
		if got, want := serviceRefs(set.Services), []string{"web", "db"}; !reflect.DeepEqual(got, want) || set.Services[1].ID == db.ID {
			t.Fatalf("services: %v (db %q, was %q), want %v with a new db", got, set.Services[1].ID, db.ID, want)
		}
		if got, want := taskRefs(set.Tasks), []string{"build", "web"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("tasks: %v, want %v", got, want)
		}
		if w := set.Services[0]; w.Spec.DesiredPhase != automations.ServicePhaseDeleted || w.Spec.SpecVersion != web.Spec.SpecVersion+1 {
			t.Fatalf("updated service: %+v", w.Spec)
		}
		if b := set.Tasks[0]; b.Name != "Build" || b.Spec.Command != "make all" || !reflect.DeepEqual(b.DependsOn, []string{db.ID}) {
			t.Fatalf("updated task: %+v", b)
		}
		// The execution outlives its task's changes, and deploy's removal.
		got, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
		must(t, err, "find execution")
		if !reflect.DeepEqual(got, x) {
			t.Fatalf("execution after its task changed:\n got %+v\nwant %+v", got, x)
		}
	})

	t.Run("ExecutionOutlivesTask", func(t *testing.T) {
		must(t, s.EditAutomations(ctx, org.ID, env.ID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
			return &automations.Changes{DeleteTasks: []string{build.ID}}, nil
		}), "delete task")
		_, err := s.FindTaskByID(ctx, org.ID, build.ID)
		wantCode(t, err, apperr.CodeNotFound, "deleted task")
		got, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: org.ID, TaskIDs: []string{build.ID}})
		must(t, err, "find executions of the deleted task")
		if len(got) != 1 || !reflect.DeepEqual(got[0], x) {
			t.Fatalf("executions of the deleted task: %v", executionIDs(got))
		}
	})

	t.Run("Serialized", func(t *testing.T) {
		// Each edit names its new service after the number it sees: only
		// edits that see every committed one succeed without a conflict.
		fresh := storedEnvironment(t, s, org.ID, env.RunnerID)
		const n = 12
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.EditAutomations(ctx, org.ID, fresh.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
					return &automations.Changes{CreateServices: []*automations.Service{
						newService(fresh, fmt.Sprintf("s%02d", len(set.Services))),
					}}, nil
				})
				if err != nil {
					t.Errorf("concurrent edit: %v", err)
				}
			}()
		}
		wg.Wait()
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("s%02d", i))
		}
		if got := serviceRefs(loadSet(t, s, fresh).Services); !reflect.DeepEqual(got, want) {
			t.Fatalf("after %d concurrent edits: %v", n, got)
		}
	})

	t.Run("EditAndUpdateService", func(t *testing.T) {
		// EditAutomations and UpdateService change one service at once:
		// neither loses the other's change.
		fresh := storedEnvironment(t, s, org.ID, env.RunnerID)
		svc := newService(fresh, "both")
		svc.Spec.SpecVersion, svc.Status.StatusVersion = 0, 0
		create(t, s, fresh, &automations.Changes{CreateServices: []*automations.Service{svc}})
		const n = 10
		var wg sync.WaitGroup
		for range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				err := s.EditAutomations(ctx, org.ID, fresh.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
					set.Services[0].Spec.SpecVersion++
					return &automations.Changes{UpdateServices: set.Services}, nil
				})
				if err != nil {
					t.Errorf("concurrent edit: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := s.UpdateService(ctx, org.ID, svc.ID, func(cur *automations.Service) error {
					cur.Status.StatusVersion++
					return nil
				}); err != nil {
					t.Errorf("concurrent update: %v", err)
				}
			}()
		}
		wg.Wait()
		got, err := s.FindServiceByID(ctx, org.ID, svc.ID)
		must(t, err, "find service")
		if got.Spec.SpecVersion != n || got.Status.StatusVersion != n {
			t.Fatalf("after %d edits and %d updates: specVersion %d, statusVersion %d", n, n, got.Spec.SpecVersion, got.Status.StatusVersion)
		}
	})
}

func serviceRefs(xs []*automations.Service) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.Reference)
	}
	return out
}

func taskRefs(xs []*automations.Task) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.Reference)
	}
	return out
}

func serviceIDs(xs []*automations.Service) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID)
	}
	return out
}

func taskIDs(xs []*automations.Task) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID)
	}
	return out
}

func executionIDs(xs []*automations.TaskExecution) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID)
	}
	return out
}

// automationsFixture is two environments on runner A and one on runner B of
// one organization, and one of another organization on runner A.
type automationsFixture struct {
	org, other        *identity.Organization
	runnerA, runnerB  string
	envs              []*environments.Environment // a1, a2, b1
	services          []*automations.Service
	tasks             []*automations.Task
	executions        []*automations.TaskExecution
	otherSvc          *automations.Service
	otherTask         *automations.Task
	otherExecution    *automations.TaskExecution
	tasksByEnv        map[string][]*automations.Task
	executionsByPhase map[automations.ExecutionPhase][]string
}

// newAutomationsFixture stores, per environment, the services and tasks
// "web" and "db" (services editors, tasks in between) and executions of
// each task, interleaved across environments so that seq order differs
// from environment order.
func newAutomationsFixture(t *testing.T, s store.Store) *automationsFixture {
	t.Helper()
	f := &automationsFixture{org: newOrg(t, s), other: newOrg(t, s), runnerA: uuid.NewString(), runnerB: uuid.NewString(),
		tasksByEnv: map[string][]*automations.Task{}, executionsByPhase: map[automations.ExecutionPhase][]string{}}
	f.envs = []*environments.Environment{
		storedEnvironment(t, s, f.org.ID, f.runnerA), storedEnvironment(t, s, f.org.ID, f.runnerA), storedEnvironment(t, s, f.org.ID, f.runnerB),
	}
	phases := []automations.ExecutionPhase{automations.ExecutionPhasePending, automations.ExecutionPhaseRunning, automations.ExecutionPhaseSucceeded}
	for round, ref := range []string{"web", "db"} {
		for i, env := range f.envs {
			svc := newService(env, ref)
			if ref == "db" {
				svc.Role = automations.RoleDefault
			}
			task := newTask(env, ref+"-task")
			create(t, s, env, &automations.Changes{CreateServices: []*automations.Service{svc}, CreateTasks: []*automations.Task{task}})
			f.services = append(f.services, svc)
			f.tasks = append(f.tasks, task)
			f.tasksByEnv[env.ID] = append(f.tasksByEnv[env.ID], task)
			phase := phases[(round*len(f.envs)+i)%len(phases)]
			x := newExecution(task, phase)
			create(t, s, env, &automations.Changes{CreateExecutions: []*automations.TaskExecution{x}})
			f.executions = append(f.executions, x)
			f.executionsByPhase[phase] = append(f.executionsByPhase[phase], x.ID)
		}
	}
	// The other organization: same runner ID, same references.
	oenv := storedEnvironment(t, s, f.other.ID, f.runnerA)
	f.otherSvc, f.otherTask = newService(oenv, "web"), newTask(oenv, "web-task")
	f.otherExecution = newExecution(f.otherTask, automations.ExecutionPhasePending)
	create(t, s, oenv, &automations.Changes{CreateServices: []*automations.Service{f.otherSvc},
		CreateTasks: []*automations.Task{f.otherTask}, CreateExecutions: []*automations.TaskExecution{f.otherExecution}})
	return f
}

// pick returns the IDs of the items at idx of all (in the order of all,
// which is seq order).
func pick[T any](all []T, id func(T) string, idx ...int) []string {
	var out []string
	for i, x := range all {
		for _, j := range idx {
			if i == j {
				out = append(out, id(x))
			}
		}
	}
	return out
}

func testFindServices(t *testing.T, s store.Store) {
	f := newAutomationsFixture(t, s)
	// services: 0 web/a1, 1 web/a2, 2 web/b1, 3 db/a1, 4 db/a2, 5 db/b1.
	p := func(idx ...int) []string {
		return pick(f.services, func(x *automations.Service) string { return x.ID }, idx...)
	}
	a1, a2, b1 := f.envs[0].ID, f.envs[1].ID, f.envs[2].ID
	tests := []struct {
		name string
		f    automations.ServiceFilter
		want []string
	}{
		{"All", automations.ServiceFilter{}, p(0, 1, 2, 3, 4, 5)},
		{"Environments", automations.ServiceFilter{EnvironmentIDs: []string{a1, b1}}, p(0, 2, 3, 5)},
		{"References", automations.ServiceFilter{References: []string{"db"}}, p(3, 4, 5)},
		{"IDs", automations.ServiceFilter{IDs: []string{f.services[4].ID, f.services[1].ID, f.otherSvc.ID}}, p(1, 4)},
		{"Roles", automations.ServiceFilter{Roles: []automations.ServiceRole{automations.RoleEditor}}, p(0, 1, 2)},
		{"RolesNone", automations.ServiceFilter{Roles: []automations.ServiceRole{automations.RoleAIAgent}}, nil},
		{"RunnerA", automations.ServiceFilter{RunnerID: f.runnerA}, p(0, 1, 3, 4)},
		{"RunnerB", automations.ServiceFilter{RunnerID: f.runnerB}, p(2, 5)},
		{"RunnerUnknown", automations.ServiceFilter{RunnerID: uuid.NewString()}, nil},
		{"Combined", automations.ServiceFilter{RunnerID: f.runnerA, References: []string{"web"}, EnvironmentIDs: []string{a2, b1}}, p(1)},
		{"FirstPage", automations.ServiceFilter{Limit: 2}, p(0, 1)},
		{"Page", automations.ServiceFilter{After: f.services[1].Seq, Limit: 2}, p(2, 3)},
		{"LastPage", automations.ServiceFilter{After: f.services[3].Seq, Limit: 5}, p(4, 5)},
		{"PageFiltered", automations.ServiceFilter{RunnerID: f.runnerA, After: f.services[1].Seq, Limit: 1}, p(3)},
		{"PastEnd", automations.ServiceFilter{After: f.services[5].Seq}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.OrgID = f.org.ID
			got, err := s.FindServices(ctx, tt.f)
			must(t, err, "find services")
			if ids := serviceIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.FindServices(ctx, automations.ServiceFilter{OrgID: f.org.ID, IDs: []string{f.services[2].ID}})
	must(t, err, "find one")
	if len(got) != 1 || !reflect.DeepEqual(got[0], f.services[2]) {
		t.Fatalf("listed service differs:\n got %+v\nwant %+v", got, f.services[2])
	}
	got, err = s.FindServices(ctx, automations.ServiceFilter{OrgID: f.other.ID, RunnerID: f.runnerA})
	must(t, err, "find in other organization")
	if ids := serviceIDs(got); !reflect.DeepEqual(ids, []string{f.otherSvc.ID}) {
		t.Fatalf("other organization's services on runner A: %v", ids)
	}
}

func testFindTasks(t *testing.T, s store.Store) {
	f := newAutomationsFixture(t, s)
	// tasks: 0 web-task/a1, 1 web-task/a2, 2 web-task/b1, 3 db-task/a1, ...
	p := func(idx ...int) []string {
		return pick(f.tasks, func(x *automations.Task) string { return x.ID }, idx...)
	}
	a2, b1 := f.envs[1].ID, f.envs[2].ID
	tests := []struct {
		name string
		f    automations.TaskFilter
		want []string
	}{
		{"All", automations.TaskFilter{}, p(0, 1, 2, 3, 4, 5)},
		{"Environments", automations.TaskFilter{EnvironmentIDs: []string{a2}}, p(1, 4)},
		{"References", automations.TaskFilter{References: []string{"web-task", "nope"}}, p(0, 1, 2)},
		{"IDs", automations.TaskFilter{IDs: []string{f.tasks[5].ID, f.tasks[0].ID, f.otherTask.ID}}, p(0, 5)},
		{"Combined", automations.TaskFilter{EnvironmentIDs: []string{a2, b1}, References: []string{"db-task"}}, p(4, 5)},
		{"Page", automations.TaskFilter{After: f.tasks[0].Seq, Limit: 3}, p(1, 2, 3)},
		{"LastPage", automations.TaskFilter{After: f.tasks[4].Seq, Limit: 3}, p(5)},
		{"None", automations.TaskFilter{EnvironmentIDs: []string{uuid.NewString()}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.OrgID = f.org.ID
			got, err := s.FindTasks(ctx, tt.f)
			must(t, err, "find tasks")
			if ids := taskIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.FindTasks(ctx, automations.TaskFilter{OrgID: f.org.ID, IDs: []string{f.tasks[3].ID}})
	must(t, err, "find one")
	if len(got) != 1 || !reflect.DeepEqual(got[0], f.tasks[3]) {
		t.Fatalf("listed task differs:\n got %+v\nwant %+v", got, f.tasks[3])
	}
}

func testFindTaskExecutions(t *testing.T, s store.Store) {
	f := newAutomationsFixture(t, s)
	// executions: one per task, in the tasks' order; phases PENDING,
	// RUNNING, SUCCEEDED, PENDING, RUNNING, SUCCEEDED.
	p := func(idx ...int) []string {
		return pick(f.executions, func(x *automations.TaskExecution) string { return x.ID }, idx...)
	}
	a1 := f.envs[0].ID
	active := []automations.ExecutionPhase{automations.ExecutionPhasePending, automations.ExecutionPhaseRunning}
	tests := []struct {
		name string
		f    automations.ExecutionFilter
		want []string
	}{
		{"All", automations.ExecutionFilter{}, p(0, 1, 2, 3, 4, 5)},
		{"Environments", automations.ExecutionFilter{EnvironmentIDs: []string{a1}}, p(0, 3)},
		{"TaskIDs", automations.ExecutionFilter{TaskIDs: []string{f.tasks[4].ID, f.tasks[2].ID, f.otherTask.ID}}, p(2, 4)},
		{"TaskReferences", automations.ExecutionFilter{TaskReferences: []string{"db-task"}}, p(3, 4, 5)},
		{"Phases", automations.ExecutionFilter{Phases: active}, p(0, 1, 3, 4)},
		{"PhaseSucceeded", automations.ExecutionFilter{Phases: []automations.ExecutionPhase{automations.ExecutionPhaseSucceeded}}, p(2, 5)},
		{"RunnerA", automations.ExecutionFilter{RunnerID: f.runnerA}, p(0, 1, 3, 4)},
		{"RunnerActive", automations.ExecutionFilter{RunnerID: f.runnerB, Phases: active}, nil},
		{"RunnerBSucceeded", automations.ExecutionFilter{RunnerID: f.runnerB, Phases: []automations.ExecutionPhase{automations.ExecutionPhaseSucceeded}}, p(2, 5)},
		{"Page", automations.ExecutionFilter{After: f.executions[2].Seq, Limit: 2}, p(3, 4)},
		{"PageFiltered", automations.ExecutionFilter{RunnerID: f.runnerA, After: f.executions[1].Seq, Limit: 1}, p(3)},
		{"None", automations.ExecutionFilter{TaskReferences: []string{"nope"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.OrgID = f.org.ID
			got, err := s.FindTaskExecutions(ctx, tt.f)
			must(t, err, "find task executions")
			if ids := executionIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: f.org.ID, TaskIDs: []string{f.tasks[1].ID}})
	must(t, err, "find one")
	if len(got) != 1 || !reflect.DeepEqual(got[0], f.executions[1]) {
		t.Fatalf("listed execution differs:\n got %+v\nwant %+v", got, f.executions[1])
	}
	got, err = s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: f.other.ID, RunnerID: f.runnerA, Phases: active})
	must(t, err, "find in other organization")
	if ids := executionIDs(got); !reflect.DeepEqual(ids, []string{f.otherExecution.ID}) {
		t.Fatalf("other organization's executions on runner A: %v", ids)
	}
}

func testAutomationsCascade(t *testing.T, s store.Store) {
	f := newAutomationsFixture(t, s)
	count := func(orgID, envID string) (services, tasks, executions int) {
		t.Helper()
		svcs, err := s.FindServices(ctx, automations.ServiceFilter{OrgID: orgID, EnvironmentIDs: []string{envID}})
		must(t, err, "find services")
		ts, err := s.FindTasks(ctx, automations.TaskFilter{OrgID: orgID, EnvironmentIDs: []string{envID}})
		must(t, err, "find tasks")
		xs, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: orgID, EnvironmentIDs: []string{envID}})
		must(t, err, "find executions")
		return len(svcs), len(ts), len(xs)
	}
	want := func(env *environments.Environment, n int) {
		t.Helper()
		if s, ts, xs := count(env.OrgID, env.ID); s != n || ts != n || xs != n {
			t.Fatalf("environment %q: %d services, %d tasks, %d executions, want %d of each", env.ID, s, ts, xs, n)
		}
	}
	a1, a2, b1 := f.envs[0], f.envs[1], f.envs[2]

	// A kept environment keeps its automations.
	kept := errors.New("kept")
	if err := s.DeleteEnvironment(ctx, a1.OrgID, a1.ID, func(*environments.Environment) error { return kept }); !errors.Is(err, kept) {
		t.Fatalf("delete refused by keep: got %v", err)
	}
	want(a1, 2)

	must(t, s.DeleteEnvironment(ctx, a1.OrgID, a1.ID, nil), "delete environment")
	want(a1, 0)
	for _, id := range []string{f.services[0].ID, f.services[3].ID} {
		_, err := s.FindServiceByID(ctx, f.org.ID, id)
		wantCode(t, err, apperr.CodeNotFound, "service of the deleted environment")
	}
	_, err := s.FindTaskByID(ctx, f.org.ID, f.tasks[0].ID)
	wantCode(t, err, apperr.CodeNotFound, "task of the deleted environment")
	_, err = s.FindTaskExecutionByID(ctx, f.org.ID, f.executions[0].ID)
	wantCode(t, err, apperr.CodeNotFound, "execution of the deleted environment")
	want(a2, 2)
	want(b1, 2)

	// DeleteRunnerEnvironments takes the automations of the runner's
	// environments of one organization only.
	n, err := s.DeleteRunnerEnvironments(ctx, f.org.ID, f.runnerA)
	must(t, err, "delete runner A's environments")
	if n != 1 {
		t.Fatalf("removed %d environments of runner A, want 1", n)
	}
	want(a2, 0)
	want(b1, 2)
	svcs, err := s.FindServices(ctx, automations.ServiceFilter{OrgID: f.org.ID, RunnerID: f.runnerA})
	must(t, err, "find services on runner A")
	if len(svcs) != 0 {
		t.Fatalf("services on runner A after its environments went: %v", serviceIDs(svcs))
	}
	if _, err := s.FindServiceByID(ctx, f.other.ID, f.otherSvc.ID); err != nil {
		t.Fatalf("the other organization's service on runner A: %v", err)
	}
	if _, err := s.FindTaskExecutionByID(ctx, f.other.ID, f.otherExecution.ID); err != nil {
		t.Fatalf("the other organization's execution on runner A: %v", err)
	}
	// A deleted environment takes no new automations.
	err = s.EditAutomations(ctx, f.org.ID, a2.ID, func(*environments.Environment, *automations.Set) (*automations.Changes, error) {
		return &automations.Changes{CreateServices: []*automations.Service{newService(a2, "late")}}, nil
	})
	wantCode(t, err, apperr.CodeNotFound, "edit a deleted environment")
	if !strings.Contains(err.Error(), a2.ID) {
		t.Fatalf("edit a deleted environment: %v does not name it", err)
	}
}

// testAutomationSources checks that a service's and a task's source is
// stored, read back by every read and changed by an update, and that
// EditAutomations writes the environment's automations-file bookkeeping
// with the changes and nothing else of the environment.
func testAutomationSources(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	env := storedEnvironment(t, s, org.ID, uuid.NewString())
	sources := []automations.Source{automations.SourceFile, automations.SourceUpsert, automations.SourceAPI}
	ch := &automations.Changes{}
	for _, src := range sources {
		svc := newService(env, "svc-"+string(src))
		svc.Source = src
		task := newTask(env, "task-"+string(src))
		task.Source = src
		ch.CreateServices = append(ch.CreateServices, svc)
		ch.CreateTasks = append(ch.CreateTasks, task)
	}
	create(t, s, env, ch)
	for i, src := range sources {
		svc, err := s.FindServiceByID(ctx, org.ID, ch.CreateServices[i].ID)
		must(t, err, "find service")
		task, err := s.FindTaskByID(ctx, org.ID, ch.CreateTasks[i].ID)
		must(t, err, "find task")
		if svc.Source != src || task.Source != src {
			t.Errorf("sources read back: service %q, task %q, want %q", svc.Source, task.Source, src)
		}
	}
	set := loadSet(t, s, env)
	for _, x := range set.Services {
		if want := automations.Source(strings.TrimPrefix(x.Reference, "svc-")); x.Source != want {
			t.Errorf("service %s in the set has source %q, want %q", x.Reference, x.Source, want)
		}
	}
	found, err := s.FindServices(ctx, automations.ServiceFilter{OrgID: org.ID, EnvironmentIDs: []string{env.ID}})
	must(t, err, "find services")
	for _, x := range found {
		if want := automations.Source(strings.TrimPrefix(x.Reference, "svc-")); x.Source != want {
			t.Errorf("service %s listed with source %q, want %q", x.Reference, x.Source, want)
		}
	}

	// A file apply takes over a file-managed item: the source changes, and
	// the environment's bookkeeping is written in the same transaction.
	started := base.Add(time.Hour)
	af := env.Spec.AutomationsFile
	af.FileRequested, af.FileApplied, af.TriggeredStart = 2, 2, &started
	must(t, s.EditAutomations(ctx, org.ID, env.ID, func(_ *environments.Environment, set *automations.Set) (*automations.Changes, error) {
		svc, task := set.Services[0], set.Tasks[0]
		svc.Source, task.Source = automations.SourceUpsert, automations.SourceUpsert
		return &automations.Changes{UpdateServices: []*automations.Service{svc}, UpdateTasks: []*automations.Task{task}, EnvironmentFile: &af}, nil
	}), "take over")
	svc, err := s.FindServiceByID(ctx, org.ID, ch.CreateServices[0].ID)
	must(t, err, "find service")
	task, err := s.FindTaskByID(ctx, org.ID, ch.CreateTasks[0].ID)
	must(t, err, "find task")
	if svc.Source != automations.SourceUpsert || task.Source != automations.SourceUpsert {
		t.Errorf("after the update: service %q, task %q, want upsert", svc.Source, task.Source)
	}
	got, err := s.FindEnvironmentByID(ctx, org.ID, env.ID)
	must(t, err, "find environment")
	want := env.Spec
	want.AutomationsFile = af
	if !reflect.DeepEqual(got.Spec, want) {
		t.Errorf("environment spec after the edit:\n got %+v\nwant %+v", got.Spec, want)
	}
	if ts := got.Spec.AutomationsFile.TriggeredStart; ts == nil || !ts.Equal(started) {
		t.Errorf("triggeredStart read back as %v, want %v", got.Spec.AutomationsFile.TriggeredStart, started)
	}
	if got.Status.Phase != env.Status.Phase || !got.UpdatedAt.Equal(env.UpdatedAt) {
		t.Errorf("the edit changed more of the environment: phase %s, updatedAt %v", got.Status.Phase, got.UpdatedAt)
	}
}
