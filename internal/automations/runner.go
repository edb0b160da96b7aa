package automations

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// This file holds what a runner daemon does with the automations of the
// environments on it: read what it should run, report what became of each
// service and execution, and apply the automations file it found in an
// environment's workspace when the environment starts. Every phase in a
// status is written here and nowhere else.

// Desired is what a runner converges on: the services of its environments
// and their unfinished task executions.
type Desired struct {
	Services   []*Service
	Executions []*TaskExecution
}

// Desired returns the services and unfinished executions of the calling
// runner's environments, oldest first. It fails with CodePermissionDenied
// for any caller but a runner.
func (s *Manager) Desired(ctx context.Context) (*Desired, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	return s.DesiredFor(ctx, c.OrgID, c.RunnerID)
}

// DesiredFor is Desired for runner runnerID of orgID; the control plane
// calls it when it builds a runner's desired state and checks no caller.
func (s *Manager) DesiredFor(ctx context.Context, orgID, runnerID string) (*Desired, error) {
	svcs, err := s.Store.FindServices(ctx, ServiceFilter{OrgID: orgID, RunnerID: runnerID})
	if err != nil {
		return nil, fmt.Errorf("services of runner %q: %w", runnerID, err)
	}
	xs, err := s.Store.FindTaskExecutions(ctx, ExecutionFilter{
		OrgID: orgID, RunnerID: runnerID,
		Phases: []ExecutionPhase{ExecutionPhasePending, ExecutionPhaseRunning},
	})
	if err != nil {
		return nil, fmt.Errorf("task executions of runner %q: %w", runnerID, err)
	}
	return &Desired{Services: svcs, Executions: xs}, nil
}

// ServiceReport is a runner's report on one service. StatusVersion orders
// reports: one not above the stored version changes nothing, unless it
// reflects a newer run (see newerRun). Zero means unordered (UpdateService
// with a runner token): applied on arrival, and the stored version is kept.
type ServiceReport struct {
	ID            string
	StatusVersion uint64
	StatusUpdate
}

// ReportService records the calling runner's report on a service of one of
// its environments and returns the service as stored. A report that a
// service being deleted stopped (STOPPED, FAILED or DELETED) removes it; the
// returned service then carries that last status. It fails with
// CodePermissionDenied for any caller but a runner, CodeInvalid for a bad
// report and CodeNotFound for a service not on the calling runner.
func (s *Manager) ReportService(ctx context.Context, r ServiceReport) (*Service, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("id", r.ID); err != nil {
		return nil, err
	}
	if err := validateStatusUpdate(&r.StatusUpdate); err != nil {
		return nil, err
	}
	ordered := r.StatusVersion != 0
	if err := validateOutput("status.output", r.Output); err != nil {
		if !ordered {
			return nil, err
		}
		// A runner's ordered report is never refused for its outputs:
		// its phase must land, or the service would be stuck in the last
		// one. The outputs are dropped.
		r.Output = nil
	}
	cur, err := s.Store.FindServiceByID(ctx, c.OrgID, r.ID)
	if err != nil {
		return nil, serviceNotFound(r.ID, err)
	}
	if err := s.onRunner(ctx, c, cur.EnvironmentID, "service", r.ID); err != nil {
		return nil, err
	}
	svc, err := s.Store.UpdateService(ctx, c.OrgID, r.ID, func(svc *Service) error {
		if r.StatusVersion != 0 && r.StatusVersion <= svc.Status.StatusVersion && !newerRun(svc, r.Session) {
			return errStale
		}
		st := svc.Status
		u := r.StatusUpdate
		if u.Phase != nil {
			st.Phase = *u.Phase
		}
		if u.FailureMessage != nil {
			st.FailureMessage = *u.FailureMessage
		}
		if u.LogURL != nil {
			st.LogURL = *u.LogURL
		}
		if u.Session != nil {
			if *u.Session != st.Session {
				// Outputs belong to a run: a new session starts without
				// the last run's.
				st.Output = nil
			}
			st.Session = *u.Session
		}
		out, err := mergeOutput("status.output", st.Output, u.Output)
		switch {
		case err == nil:
			st.Output = out
		case !ordered:
			return err
		}
		// Versions come from one source, the runner's ordered reports: an
		// unordered update (UpdateService with the runner's token) leaves
		// the version alone, so it can never make the runner's next
		// report look stale.
		if r.StatusVersion != 0 {
			st.StatusVersion = r.StatusVersion
		}
		svc.Status = st
		svc.UpdatedAt = s.now()
		return nil
	})
	if errors.Is(err, errStale) {
		return s.Store.FindServiceByID(ctx, c.OrgID, r.ID)
	}
	if err != nil {
		return nil, serviceNotFound(r.ID, err)
	}
	if svc.Deleting() && svc.Stopped() {
		err := s.Store.EditAutomations(ctx, c.OrgID, svc.EnvironmentID, func(_ *environments.Environment, set *Set) (*Changes, error) {
			if x := set.service(svc.ID); x == nil || !x.Deleting() || !x.Stopped() {
				return nil, errKeep
			}
			return &Changes{DeleteServices: []string{svc.ID}}, nil
		})
		if err != nil && !errors.Is(err, errKeep) && !apperr.Is(err, apperr.CodeNotFound) {
			return nil, fmt.Errorf("remove deleted service %q: %w", svc.ID, err)
		}
	}
	return svc, nil
}

// newerRun reports whether a report of session reflects a newer run of svc
// than its stored status: the session the spec asks for, which the stored
// status does not show yet. Such a report is never dropped, whatever its
// version (a runner whose clock went back, a version store lost with its
// state directory): the stored status is of a run that is over.
func newerRun(svc *Service, session *string) bool {
	return session != nil && *session != "" && *session == svc.Spec.Session && svc.Status.Session != svc.Spec.Session
}

// ExecutionReport is a runner's report on one task execution, ordered by
// StatusVersion: its phase and the statuses of its steps, all of them that
// started, or with Partial only those that changed since the runner's
// previous report.
type ExecutionReport struct {
	ID            string
	StatusVersion uint64
	Phase         ExecutionPhase
	// FailureMessage says why the execution failed or stopped.
	FailureMessage string
	LogURL         string
	Steps          []StepStatus
	// Partial says Steps holds only the steps that changed; the others
	// stay as stored.
	Partial bool
}

// ReportExecution records the calling runner's report on an execution. It
// writes the execution's phase and the steps the report names, not the
// whole status, so that an execution of n steps costs O(n) in all.
//
// A finished execution never changes again. A report not newer than the
// stored status leaves the execution's phase, messages and times alone,
// and each step takes a report's status only when that report is newer
// than the one the step holds: reports that each name other steps never
// undo each other, in whichever order they land. The first report of
// RUNNING (or of a finished phase) sets startedAt, a finished phase sets
// completedAt. It fails with CodePermissionDenied for any caller but a
// runner, CodeInvalid for a bad report (then nothing changes) and
// CodeNotFound for an execution not on the calling runner.
func (s *Manager) ReportExecution(ctx context.Context, r ExecutionReport) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	if err := identity.ValidateUUID("id", r.ID); err != nil {
		return err
	}
	if r.StatusVersion == 0 {
		return apperr.Invalid("status.statusVersion", "must be above zero")
	}
	if r.StatusVersion > math.MaxInt64 {
		return apperr.Invalid("status.statusVersion", "must be at most %d", int64(math.MaxInt64))
	}
	if !oneOf(r.Phase, ExecutionPhases) {
		return apperr.Invalid("status.phase", "unknown value %q", r.Phase)
	}
	if err := validateText("status.failureMessage", r.FailureMessage, maxDescription, true); err != nil {
		return err
	}
	steps, err := checkSteps(r.Steps)
	if err != nil {
		return err
	}
	report := StepsReport{Version: r.StatusVersion, Steps: steps, Replace: !r.Partial}
	err = s.Store.ReportTaskExecution(ctx, c.OrgID, c.RunnerID, r.ID, report, func(x *TaskExecution) (bool, error) {
		if x.Status.Phase.Finished() {
			return false, errStale
		}
		if r.StatusVersion <= x.Status.StatusVersion {
			return false, nil // its steps may still be newer than theirs
		}
		now := s.now()
		if x.StartedAt == nil && r.Phase != ExecutionPhasePending {
			x.StartedAt = &now
		}
		if r.Phase.Finished() {
			x.CompletedAt = &now
		}
		x.Status = ExecutionStatus{StatusVersion: r.StatusVersion, Phase: r.Phase, FailureMessage: r.FailureMessage, LogURL: r.LogURL}
		return true, nil
	})
	var unknown *UnknownStepError
	switch {
	case err == nil, errors.Is(err, errStale):
		return nil
	case errors.As(err, &unknown):
		return apperr.Invalid(fmt.Sprintf("status.steps[%d].id", unknown.Index), "%q is no step of task execution %q", unknown.ID, r.ID)
	}
	return executionNotFound(r.ID, err)
}

// checkSteps validates a report's step statuses: every step named once, a
// known phase, bounded outputs. Whether the execution has them is the
// store's check (UnknownStepError).
func checkSteps(steps []StepStatus) ([]StepStatus, error) {
	seen := make(map[string]bool, len(steps))
	out := make([]StepStatus, 0, len(steps))
	for i, st := range steps {
		field := fmt.Sprintf("status.steps[%d]", i)
		if seen[st.ID] {
			return nil, apperr.Invalid(field+".id", "step %q is reported twice", st.ID)
		}
		seen[st.ID] = true
		if !oneOf(st.Phase, ExecutionPhases) {
			return nil, apperr.Invalid(field+".phase", "unknown value %q", st.Phase)
		}
		if err := validateText(field+".failureMessage", st.FailureMessage, maxDescription, true); err != nil {
			return nil, err
		}
		if err := validateOutput(field+".output", st.Output); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// StartResult is what ApplyStart did.
type StartResult struct {
	// File lists what the automations file created or changed; nil when
	// the file was not applied (none in the workspace, or applied before).
	File *UpsertResult
	// Started lists the services this start started.
	Started []string
	// Executions are the task executions the triggers created.
	Executions []*TaskExecution
}

// ApplyStart is what the calling runner does once its environment envID
// started, and after a user asked to reload the repository's file. file is
// the repository's automations file found in the workspace (nil when there
// is none); request is the environment's file request the runner read it
// for (zero: the latest).
//
// The file is applied (as source SourceFile, see applyFile) only when that
// request is not applied yet: at the environment's first start after its
// creation, and after ReloadFile. A runner restart or an environment stop
// and start hands the file over again and changes nothing, so what users
// made through the API or UpsertAutomationsFile stays as they left it.
//
// The start's triggers (postEnvironmentStart, postDevcontainerStart, as
// restricted by the environment's automationsFile.triggerFilter) fire once
// per start of the environment (its lastStartedAt): they start the services
// and create executions of the tasks they name. The same start handed over
// again (a runner daemon restart, a reconnect) fires nothing, so a service
// a user stopped stays stopped and no task runs twice. A start after an
// earlier one also restarts, in a new session, every service whose desired
// phase is still RUNNING: stopping the environment stopped its processes,
// and a service a user started comes back with the environment instead of
// sitting at desired RUNNING, phase STOPPED.
//
// An invalid file is refused like UpsertAutomationsFile's and changes
// nothing.
func (s *Manager) ApplyStart(ctx context.Context, envID string, file *spec.File, triggers []spec.Trigger, request uint64) (*StartResult, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", envID); err != nil {
		return nil, err
	}
	for i, t := range triggers {
		if !t.Valid() {
			return nil, apperr.Invalid(fmt.Sprintf("triggers[%d]", i), "unknown trigger %q", t)
		}
	}
	if file != nil {
		if err := validateFile(file); err != nil {
			return nil, err
		}
		file.SetDefaults()
	}
	env, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, envID)
	if err != nil {
		return nil, envNotFound(envID, err)
	}
	if env.RunnerID != c.RunnerID {
		return nil, apperr.NotFound("environment %q not found", envID)
	}
	// Tasks that already ran for this start, by trigger.
	since := env.CreatedAt
	if env.LastStartedAt != nil {
		since = *env.LastStartedAt
	}
	ran := map[string]bool{}
	prior, err := s.Store.FindTaskExecutions(ctx, ExecutionFilter{OrgID: c.OrgID, EnvironmentIDs: []string{envID}})
	if err != nil {
		return nil, fmt.Errorf("task executions of environment %q: %w", envID, err)
	}
	for _, x := range prior {
		if !x.CreatedAt.Before(since) {
			ran[x.StartedBy+"\x00"+x.TaskID] = true
		}
	}
	res := &StartResult{}
	err = s.edit(ctx, c.OrgID, envID, func(env *environments.Environment, set *Set) (*Changes, error) {
		if env.RunnerID != c.RunnerID {
			return nil, apperr.NotFound("environment %q not found", envID)
		}
		*res = StartResult{}
		ch := &Changes{}
		af := env.Spec.AutomationsFile
		target := af.FileRequested
		if request != 0 && request < target {
			// Read before the latest reload: apply it, and the runner
			// hands the file over again for the latest.
			target = request
		}
		if af.FileApplied < target {
			if file != nil {
				res.File = &UpsertResult{}
				applied, err := s.applyFile(c, env, set, file, SourceFile, res.File)
				if err != nil {
					return nil, err
				}
				ch = applied
				// applyFile changed set's items in place; the new ones are
				// in ch only.
				set = &Set{
					Services: mergeNew(set.Services, ch.CreateServices, ch.DeleteServices),
					Tasks:    mergeNew(set.Tasks, ch.CreateTasks, ch.DeleteTasks),
				}
			}
			// A workspace without the file fulfils the request too: the
			// automations stay as they are.
			af.FileApplied = target
			ch.EnvironmentFile = &af
		}
		if env.Spec.DesiredPhase != environments.PhaseRunning || len(triggers) == 0 {
			return ch, nil
		}
		// beforeSnapshot fires within a start, after the prebuild's
		// tasks: it is not the start's, and each of its tasks still runs
		// once per start (ran).
		snapshot := !slices.ContainsFunc(triggers, func(t spec.Trigger) bool { return t != spec.TriggerBeforeSnapshot })
		if !snapshot && af.TriggeredStart != nil && af.TriggeredStart.Equal(since) {
			return ch, nil // this start's triggers fired already
		}
		// A start after one whose triggers fired is a new start of a
		// stopped environment: nothing of it runs. (Without a recorded
		// start this is the first one, or the first since an upgrade of
		// the control plane, where services may still run.)
		restartDesired := !snapshot && af.TriggeredStart != nil
		if !snapshot {
			startedAt := since
			af.TriggeredStart = &startedAt
			ch.EnvironmentFile = &af
		}
		now := s.now()
		changed := func(svc *Service) {
			res.Started = append(res.Started, svc.ID)
			if !slices.Contains(ch.CreateServices, svc) && !slices.Contains(ch.UpdateServices, svc) {
				ch.UpdateServices = append(ch.UpdateServices, svc)
			}
		}
		for _, svc := range set.Services {
			if restartDesired && svc.Spec.DesiredPhase == ServicePhaseRunning {
				restart(svc, now)
				changed(svc)
			}
		}
		for _, trig := range triggers {
			if len(env.Spec.AutomationsFile.TriggerFilter) > 0 && !slices.Contains(env.Spec.AutomationsFile.TriggerFilter, trig) {
				continue
			}
			for _, svc := range set.Services {
				if !slices.Contains(svc.TriggeredBy, trig) || svc.Deleting() {
					continue
				}
				if start(svc, now) {
					changed(svc)
				}
			}
			for _, t := range set.Tasks {
				if !slices.Contains(t.TriggeredBy, trig) || ran[string(trig)+"\x00"+t.ID] {
					continue
				}
				ran[string(trig)+"\x00"+t.ID] = true
				x, err := s.newExecution(c, set, t, string(trig), ch)
				if err != nil {
					return nil, fmt.Errorf("plan task %q for trigger %s: %w", t.Reference, trig, err)
				}
				res.Executions = append(res.Executions, x)
			}
		}
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// restart gives a service that should run a new session, so the runner
// starts it again although its last run in the old session ended.
func restart(svc *Service, now time.Time) {
	svc.Spec.Session = newSession()
	svc.Spec.SpecVersion++
	svc.UpdatedAt = now
}

// mergeNew returns cur without the IDs in gone, followed by added.
func mergeNew[T interface{ id() string }](cur, added []T, gone []string) []T {
	out := make([]T, 0, len(cur)+len(added))
	for _, x := range cur {
		if !slices.Contains(gone, x.id()) {
			out = append(out, x)
		}
	}
	return append(out, added...)
}

func (s *Service) id() string { return s.ID }
func (t *Task) id() string    { return t.ID }

// onRunner checks that environment envID is on the calling runner; an object
// of another runner's environment is not found, as another organization's
// would be.
func (s *Manager) onRunner(ctx context.Context, c *identity.Caller, envID, kind, id string) error {
	env, err := s.Store.FindEnvironmentByID(ctx, c.OrgID, envID)
	if err != nil || env.RunnerID != c.RunnerID {
		return apperr.NotFound("%s %q not found", kind, id)
	}
	return nil
}

// validateStatusUpdate checks a runner's service status update but its
// outputs, which ReportService checks.
func validateStatusUpdate(u *StatusUpdate) error {
	if u.Phase != nil && !oneOf(*u.Phase, ServicePhases) {
		return apperr.Invalid("status.phase", "unknown value %q", *u.Phase)
	}
	if u.FailureMessage != nil {
		if err := validateText("status.failureMessage", *u.FailureMessage, maxDescription, true); err != nil {
			return err
		}
	}
	if u.LogURL != nil {
		if err := validateText("status.logUrl", *u.LogURL, 2048, false); err != nil {
			return err
		}
	}
	if u.Session != nil {
		if err := validateText("status.session", *u.Session, 128, false); err != nil {
			return err
		}
	}
	return nil
}

var (
	// errStale aborts an update with an out-of-date status report.
	errStale = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "status report is older than the stored status"}
	// errKeep aborts the removal of a service that no longer qualifies.
	errKeep = &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: "the service is not ready to be removed"}
)

// ReloadFile asks the runner of environment envID to read the repository's
// automations file from the workspace again and hand it over; ApplyStart
// then applies it as at the environment's creation. It returns at once with
// the number of the request: a running environment's runner hands the file
// over within moments, a stopped environment's at its next start. It needs
// ScopeEnvironmentsWrite and fails with CodeInvalid, CodeNotFound and
// CodeFailedPrecondition (the environment is being deleted).
func (s *Manager) ReloadFile(ctx context.Context, envID string) (uint64, error) {
	c, err := requireWrite(ctx)
	if err != nil {
		return 0, err
	}
	if err := identity.ValidateUUID("environmentId", envID); err != nil {
		return 0, err
	}
	var request uint64
	var runnerID string
	err = s.edit(ctx, c.OrgID, envID, func(env *environments.Environment, _ *Set) (*Changes, error) {
		af := env.Spec.AutomationsFile
		af.FileRequested++
		request, runnerID = af.FileRequested, env.RunnerID
		return &Changes{EnvironmentFile: &af}, nil
	})
	if err != nil {
		return 0, err
	}
	s.changed(c.OrgID, runnerID)
	return request, nil
}
