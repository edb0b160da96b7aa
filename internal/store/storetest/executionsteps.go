package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

// This file is the conformance of a runner's reports on task executions
// (ReportTaskExecution, issue 17: one row per step) and the check of
// migration 00027, which moved the steps out of the status documents.

// planned returns an execution of task t whose plan has n task steps, one
// group each, none started.
func planned(t *automations.Task, n int) *automations.TaskExecution {
	x := newExecution(t, automations.ExecutionPhasePending)
	x.StartedAt, x.CompletedAt = nil, nil
	x.Status = automations.ExecutionStatus{Phase: automations.ExecutionPhasePending}
	x.Spec.Plan = nil
	for i := range n {
		x.Spec.Plan = append(x.Spec.Plan, automations.Group{Steps: []automations.Step{{
			ID: fmt.Sprintf("step-%03d", i), Label: fmt.Sprintf("s%d", i), Task: &automations.StepTask{ID: t.ID, Spec: t.Spec},
		}}})
	}
	return x
}

// stepReport reports step id in phase at version, changing nothing else.
func stepReport(s store.Store, x *automations.TaskExecution, runnerID string, version uint64, id string, phase automations.ExecutionPhase) error {
	r := automations.StepsReport{Version: version, Steps: []automations.StepStatus{{ID: id, Phase: phase, Output: map[string]string{"v": fmt.Sprint(version)}}}}
	return s.ReportTaskExecution(ctx, x.OrgID, runnerID, x.ID, r, func(*automations.TaskExecution) (bool, error) { return false, nil })
}

func testReportTaskExecution(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	runnerID := uuid.NewString()
	env := storedEnvironment(t, s, org.ID, runnerID)
	task := newTask(env, "build")
	x := planned(task, 3)
	create(t, s, env, &automations.Changes{CreateTasks: []*automations.Task{task}, CreateExecutions: []*automations.TaskExecution{x}})

	// fn sees the execution without plan and steps; what it returns is
	// stored with the steps in one go.
	started := base.Add(time.Minute)
	err := s.ReportTaskExecution(ctx, org.ID, runnerID, x.ID, automations.StepsReport{
		Version: 5, Replace: true,
		Steps: []automations.StepStatus{{ID: "step-000", Phase: automations.ExecutionPhaseSucceeded, Output: map[string]string{"a": "1"}},
			{ID: "step-001", Phase: automations.ExecutionPhaseRunning}},
	}, func(cur *automations.TaskExecution) (bool, error) {
		if cur.Spec.Plan != nil || cur.Status.Steps != nil || cur.ID != x.ID || cur.EnvironmentID != env.ID {
			t.Errorf("fn got plan %v, steps %v of %s in %s", cur.Spec.Plan, cur.Status.Steps, cur.ID, cur.EnvironmentID)
		}
		cur.Status = automations.ExecutionStatus{StatusVersion: 5, Phase: automations.ExecutionPhaseRunning, LogURL: "https://logs.example/x"}
		cur.StartedAt = &started
		return true, nil
	})
	must(t, err, "whole report")
	want := *x
	want.StartedAt = &started
	want.Status = automations.ExecutionStatus{StatusVersion: 5, Phase: automations.ExecutionPhaseRunning, LogURL: "https://logs.example/x",
		Steps: []automations.StepStatus{{ID: "step-000", Phase: automations.ExecutionPhaseSucceeded, Output: map[string]string{"a": "1"}},
			{ID: "step-001", Phase: automations.ExecutionPhaseRunning}}}
	got, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("after a whole report:\n got %+v\nwant %+v", got, &want)
	}

	// A report of one step updates that step only: the execution's status
	// (fn stores nothing) and the other steps stay.
	must(t, stepReport(s, x, runnerID, 6, "step-001", automations.ExecutionPhaseFailed), "step report")
	want.Status.Steps[1] = automations.StepStatus{ID: "step-001", Phase: automations.ExecutionPhaseFailed, Output: map[string]string{"v": "6"}}
	got, err = s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("after a report of step-001:\n got %+v\nwant %+v", got, &want)
	}
	// A step takes no report older than the one it holds...
	must(t, stepReport(s, x, runnerID, 4, "step-001", automations.ExecutionPhaseRunning), "older step report")
	// ...and an older whole report leaves the steps newer than it alone,
	// those it lacks included.
	must(t, s.ReportTaskExecution(ctx, org.ID, runnerID, x.ID, automations.StepsReport{Version: 5, Replace: true},
		func(*automations.TaskExecution) (bool, error) { return false, nil }), "older whole report")
	got, err = s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("older reports changed the steps:\n got %+v\nwant %+v", got, &want)
	}
	// A newer whole report without a step makes it not started.
	must(t, s.ReportTaskExecution(ctx, org.ID, runnerID, x.ID, automations.StepsReport{Version: 7, Replace: true,
		Steps: []automations.StepStatus{{ID: "step-000", Phase: automations.ExecutionPhaseSucceeded, Output: map[string]string{"a": "1"}}}},
		func(*automations.TaskExecution) (bool, error) { return false, nil }), "newer whole report")
	want.Status.Steps = want.Status.Steps[:1]
	got, err = s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("after a whole report without step-001:\n got %+v\nwant %+v", got, &want)
	}

	// A step the execution lacks refuses the whole report; fn's error and
	// another runner's report change nothing either.
	err = s.ReportTaskExecution(ctx, org.ID, runnerID, x.ID, automations.StepsReport{Version: 9,
		Steps: []automations.StepStatus{{ID: "step-002", Phase: automations.ExecutionPhaseRunning}, {ID: "nope", Phase: automations.ExecutionPhaseRunning}}},
		func(cur *automations.TaskExecution) (bool, error) {
			cur.Status.Phase = automations.ExecutionPhaseFailed
			return true, nil
		})
	var unknown *automations.UnknownStepError
	if !errors.As(err, &unknown) || unknown.Index != 1 || unknown.ID != "nope" {
		t.Fatalf("a report of an unknown step: %v, want UnknownStepError for index 1", err)
	}
	refused := errors.New("refused")
	if err := s.ReportTaskExecution(ctx, org.ID, runnerID, x.ID, automations.StepsReport{Version: 9,
		Steps: []automations.StepStatus{{ID: "step-002", Phase: automations.ExecutionPhaseRunning}}},
		func(*automations.TaskExecution) (bool, error) { return false, refused }); err != refused {
		t.Fatalf("a refusing fn: %v, want its error", err)
	}
	for _, other := range []struct{ org, runner string }{{org.ID, uuid.NewString()}, {uuid.NewString(), runnerID}} {
		err := s.ReportTaskExecution(ctx, other.org, other.runner, x.ID, automations.StepsReport{Version: 9},
			func(*automations.TaskExecution) (bool, error) { return true, nil })
		if !apperr.Is(err, apperr.CodeNotFound) {
			t.Fatalf("a report from runner %s of org %s: %v, want not found", other.runner, other.org, err)
		}
	}
	got, err = s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("refused reports changed the execution:\n got %+v\nwant %+v", got, &want)
	}
	// UpdateTaskExecution still sees and keeps the steps.
	up, err := s.UpdateTaskExecution(ctx, org.ID, x.ID, func(cur *automations.TaskExecution) error {
		cur.Spec.DesiredPhase = automations.ExecutionPhaseStopped
		return nil
	})
	must(t, err, "update")
	want.Spec.DesiredPhase = automations.ExecutionPhaseStopped
	if !reflect.DeepEqual(up, &want) {
		t.Fatalf("UpdateTaskExecution after reports:\n got %+v\nwant %+v", up, &want)
	}
}

// testReportTaskExecutionConcurrent: reports of different steps of one
// execution, at once and in any order of versions, each land.
func testReportTaskExecutionConcurrent(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	runnerID := uuid.NewString()
	env := storedEnvironment(t, s, org.ID, runnerID)
	task := newTask(env, "build")
	const n = 16
	x := planned(task, n)
	create(t, s, env, &automations.Changes{CreateTasks: []*automations.Task{task}, CreateExecutions: []*automations.TaskExecution{x}})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The highest version goes first: a version check of the
			// execution as a whole would drop every other report.
			errs <- stepReport(s, x, runnerID, uint64(100+n-i), fmt.Sprintf("step-%03d", i), automations.ExecutionPhaseSucceeded)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent step report")
	}
	got, err := s.FindTaskExecutionByID(ctx, org.ID, x.ID)
	must(t, err, "find")
	if len(got.Status.Steps) != n {
		t.Fatalf("%d steps after %d concurrent reports, want all: %+v", len(got.Status.Steps), n, got.Status.Steps)
	}
	for i, st := range got.Status.Steps {
		if want := fmt.Sprintf("step-%03d", i); st.ID != want || st.Phase != automations.ExecutionPhaseSucceeded || st.Output["v"] != fmt.Sprint(100+n-i) {
			t.Errorf("step %d = %+v, want %s SUCCEEDED from version %d", i, st, want, 100+n-i)
		}
	}
}

// MigrateExecutionSteps fills db, migrated to 00026, with task executions
// as the store wrote them before migration 00027 (their steps' statuses in
// the status document), calls upTo27 and reads them through the store: they
// read the same, in plan order, and a report of one step then updates that
// step alone. q adapts a query's ? placeholders to the database.
func MigrateExecutionSteps(t *testing.T, db *sql.DB, q func(string) string, upTo27 func() error) {
	ctx := context.Background()
	exec := func(what, query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	exec("organization", `INSERT INTO organizations (id, name, created_at) VALUES ('o', 'org', 1)`)
	exec("environment", `INSERT INTO environments (id, org_id, runner_id, runner_kind, name, phase, spec, status,
		creator_id, creator_principal, created_at, updated_at) VALUES ('e', 'o', 'r', 'k', 'env', 'ENVIRONMENT_PHASE_RUNNING',
		'{}', '{}', 'u', 'USER', 1, 1)`)
	env := newEnvironment("o", "r", "env")
	env.ID = "e"
	task := newTask(env, "build")
	running := newExecution(task, automations.ExecutionPhaseRunning)
	running.CompletedAt = nil
	running.Status.Steps = running.Status.Steps[:1] // the second step has not started
	finished := newExecution(task, automations.ExecutionPhaseFailed)
	pending := planned(task, 3)
	pending.Spec.Plan = append(pending.Spec.Plan, automations.Group{Steps: []automations.Step{
		{ID: "a-then", Task: &automations.StepTask{ID: task.ID}}, {ID: "b-same-group", ServiceID: "svc"}}})
	odd := newExecution(task, automations.ExecutionPhaseSucceeded)
	odd.Spec.Plan = nil // a plan of nothing, and a status step none names
	odd.Status.Steps = odd.Status.Steps[1:]
	xs := []*automations.TaskExecution{running, finished, pending, odd}
	for i, x := range xs {
		// As executionDocs wrote them before 00027.
		specDoc, err := json.Marshal(x.Spec)
		must(t, err, "spec")
		status, err := json.Marshal(x.Status)
		must(t, err, "status")
		x.Seq = int64(i + 1)
		exec("execution", `INSERT INTO task_executions (id, org_id, environment_id, task_id, task_reference,
			phase, started_by, spec, status, creator_id, creator_principal, created_at, started_at, completed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			x.ID, "o", "e", x.TaskID, x.TaskReference, string(x.Status.Phase), x.StartedBy, string(specDoc), string(status),
			x.Creator.ID, string(x.Creator.Principal), x.CreatedAt.UnixMicro(), nullTime(x.StartedAt), nullTime(x.CompletedAt))
		x.OrgID, x.EnvironmentID = "o", "e"
	}
	if err := upTo27(); err != nil {
		t.Fatalf("migrate to 00027: %v", err)
	}
	s := sqlstore.New(db, db, sqlstore.Dialect{Name: "migrated", Numbered: q("?") != "?", IsUniqueViolation: func(error) bool { return false }})
	for _, x := range xs {
		got, err := s.FindTaskExecutionByID(ctx, "o", x.ID)
		must(t, err, "find migrated execution")
		if !reflect.DeepEqual(got, x) {
			t.Errorf("execution read after the migration:\n got %+v\nwant %+v", got, x)
		}
	}
	list, err := s.FindTaskExecutions(ctx, automations.ExecutionFilter{OrgID: "o"})
	must(t, err, "list migrated executions")
	if !reflect.DeepEqual(list, xs) {
		t.Errorf("executions listed after the migration:\n got %+v\nwant %+v", list, xs)
	}
	// The rows take reports: the running execution's second step starts,
	// the first stays as migrated.
	second := running.Spec.Plan[1].Steps[0].ID
	err = s.ReportTaskExecution(ctx, "o", "r", running.ID, automations.StepsReport{Version: running.Status.StatusVersion + 1,
		Steps: []automations.StepStatus{{ID: second, Phase: automations.ExecutionPhaseRunning}}},
		func(*automations.TaskExecution) (bool, error) { return false, nil })
	must(t, err, "report on a migrated execution")
	got, err := s.FindTaskExecutionByID(ctx, "o", running.ID)
	must(t, err, "find migrated execution")
	want := append(running.Status.Steps[:1:1], automations.StepStatus{ID: second, Phase: automations.ExecutionPhaseRunning})
	if !reflect.DeepEqual(got.Status.Steps, want) {
		t.Errorf("steps after a report on a migrated execution:\n got %+v\nwant %+v", got.Status.Steps, want)
	}
}

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}
