// Package automations holds an environment's services, tasks and task
// executions (seed 003's EnvironmentAutomationService): what they are, which
// changes are valid, the service every API surface calls, and what a runner
// reads and reports. The automations file's own rules (strict parsing,
// validation, the dependency planner) are in the spec subpackage; running
// anything is the runner's part.
//
// Every object has a spec, what users want (with a desired phase), and a
// status, what the runner reports. Users and this package write specs only;
// every phase in a status comes from the environment's runner (ReportService,
// ReportExecution, or UpdateService's status with a runner token), because
// nothing here executes and nothing here pretends to. A service's life:
//
//	created (phase UNSPECIFIED, desired STOPPED or RUNNING)
//	   │ StartService: desired RUNNING, a new spec.session
//	   ▼
//	runner: STARTING ─ready─▶ RUNNING ─start exits 0─▶ STOPPED
//	                             │  └─start fails──────▶ FAILED
//	                             │ StopService: desired STOPPED
//	                             ▼
//	                          STOPPING ─▶ STOPPED | FAILED (stop failed)
//
// An exited service is not restarted until its session changes, which only
// StartService does. DeleteService of a service that may run sets desired
// DELETED; the runner stops it, and its report of STOPPED, FAILED or DELETED
// removes it. A task execution is PENDING until its runner reports it; the
// runner takes it through RUNNING to SUCCEEDED, FAILED or STOPPED (after
// StopTaskExecution set desired STOPPED), and a finished execution never
// changes again.
//
// Decisions where the seed is silent:
//
//   - References are unique per environment across services and tasks (the
//     spec package's rule: a task's dependsOn may name either). A service
//     being deleted keeps its reference until it is gone.
//   - A task may depend on tasks and services of its own environment;
//     DeleteTask and DeleteService refuse (failed_precondition) while another
//     task depends on the one to delete.
//   - Every service and task records its Source. Automations files (the
//     repository's, applied at the environment's creation and on ReloadFile;
//     UpsertAutomationsFile) manage the items that came from files: an apply
//     creates and updates what it lists and removes what it lacks. Items
//     created with CreateService or CreateTask are never changed or removed
//     by a file (a file naming one is refused). A runner restart or an
//     environment stop and start never applies the repository's file.
//   - A file apply changes a running service's spec too. The running
//     process keeps its commands until the service's next session (the
//     runner restarts only on a session change). updatedServiceIds and
//     updatedTaskIds list what the file created or changed, in reference
//     order; unchanged items are left out.
//   - Start triggers fire once per start of the environment; a new start
//     also restarts every service still desired RUNNING, since the
//     environment's stop ended its process.
//   - A status's version comes from the runner's ordered reports alone.
//   - A new service's desired phase is STOPPED unless the request asks for
//     RUNNING; starting a service that is running (or about to) changes
//     nothing.
//   - StartTask needs the environment to be desired RUNNING. The services
//     its plan awaits are started with it (desired RUNNING), since a runner
//     converging on its desired state would otherwise stop them again.
//   - A task execution's startedBy is the trigger that started it, as the
//     seed describes the field: "manual" for StartTask, the trigger's name
//     for RunTrigger; metadata.creator is the caller. Its desired phase is
//     RUNNING until StopTaskExecution makes it STOPPED.
//   - Repeated fields of the update requests (env, dependsOn) replace the
//     stored list when non-empty and keep it when empty, since protobuf
//     cannot tell an empty list from an absent one.
package automations

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/secrets"
)

// ServicePhase is a service's phase, with the gitpod.v1 names.
type ServicePhase string

const (
	ServicePhaseUnspecified ServicePhase = "SERVICE_PHASE_UNSPECIFIED"
	ServicePhaseStarting    ServicePhase = "SERVICE_PHASE_STARTING"
	ServicePhaseRunning     ServicePhase = "SERVICE_PHASE_RUNNING"
	ServicePhaseStopping    ServicePhase = "SERVICE_PHASE_STOPPING"
	ServicePhaseStopped     ServicePhase = "SERVICE_PHASE_STOPPED"
	ServicePhaseFailed      ServicePhase = "SERVICE_PHASE_FAILED"
	ServicePhaseDeleted     ServicePhase = "SERVICE_PHASE_DELETED"
)

// ServicePhases lists the phases a runner may report.
var ServicePhases = []ServicePhase{
	ServicePhaseStarting, ServicePhaseRunning, ServicePhaseStopping,
	ServicePhaseStopped, ServicePhaseFailed, ServicePhaseDeleted,
}

// ServiceRole is a service's purpose, with the gitpod.v1 names.
type ServiceRole string

const (
	RoleUnspecified   ServiceRole = "SERVICE_ROLE_UNSPECIFIED"
	RoleDefault       ServiceRole = "SERVICE_ROLE_DEFAULT"
	RoleEditor        ServiceRole = "SERVICE_ROLE_EDITOR"
	RoleAIAgent       ServiceRole = "SERVICE_ROLE_AI_AGENT"
	RoleSecurityAgent ServiceRole = "SERVICE_ROLE_SECURITY_AGENT"
)

var Roles = []ServiceRole{RoleUnspecified, RoleDefault, RoleEditor, RoleAIAgent, RoleSecurityAgent}

// RoleOf maps an automations file's role to the API's.
func RoleOf(r spec.Role) ServiceRole {
	switch r {
	case spec.RoleDefault:
		return RoleDefault
	case spec.RoleEditor:
		return RoleEditor
	case spec.RoleAIAgent:
		return RoleAIAgent
	}
	return RoleUnspecified
}

// ExecutionPhase is a task execution's (or step's) phase, with the gitpod.v1
// names.
type ExecutionPhase string

const (
	ExecutionPhaseUnspecified ExecutionPhase = "TASK_EXECUTION_PHASE_UNSPECIFIED"
	ExecutionPhasePending     ExecutionPhase = "TASK_EXECUTION_PHASE_PENDING"
	ExecutionPhaseRunning     ExecutionPhase = "TASK_EXECUTION_PHASE_RUNNING"
	ExecutionPhaseSucceeded   ExecutionPhase = "TASK_EXECUTION_PHASE_SUCCEEDED"
	ExecutionPhaseFailed      ExecutionPhase = "TASK_EXECUTION_PHASE_FAILED"
	ExecutionPhaseStopped     ExecutionPhase = "TASK_EXECUTION_PHASE_STOPPED"
)

var ExecutionPhases = []ExecutionPhase{
	ExecutionPhasePending, ExecutionPhaseRunning, ExecutionPhaseSucceeded,
	ExecutionPhaseFailed, ExecutionPhaseStopped,
}

// Finished reports whether p is final: SUCCEEDED, FAILED or STOPPED.
func (p ExecutionPhase) Finished() bool {
	return p == ExecutionPhaseSucceeded || p == ExecutionPhaseFailed || p == ExecutionPhaseStopped
}

// Source is where a service or task came from. It decides what an apply of
// an automations file may change: a file apply (the repository's file, or
// UpsertAutomationsFile) reconciles the file-managed items (SourceFile and
// SourceUpsert) and never changes or removes an API-created one.
type Source string

const (
	// SourceFile is the repository's automations file, applied when the
	// environment is created and when a user reloads it.
	SourceFile Source = "file"
	// SourceUpsert is UpsertAutomationsFile (`runyard automations update`).
	SourceUpsert Source = "upsert"
	// SourceAPI is CreateService or CreateTask.
	SourceAPI Source = "api"
)

// FileManaged reports whether a file apply manages items of source s.
func (s Source) FileManaged() bool { return s == SourceFile || s == SourceUpsert }

// EnvVar is one environment variable of a service or task: a literal value,
// or the value of the secret SecretID.
type EnvVar struct {
	Name     string `json:"name"`
	Value    string `json:"value,omitempty"`
	SecretID string `json:"secretId,omitempty"`
}

// Service is a long-running process of an environment.
type Service struct {
	ID            string
	Seq           int64
	OrgID         string
	EnvironmentID string
	Reference     string
	Name          string
	Description   string
	Role          ServiceRole
	TriggeredBy   []spec.Trigger
	// Source is where the service came from; it never changes but when a
	// file apply takes over a file-managed item of the other file source.
	Source    Source
	Creator   identity.Subject
	CreatedAt time.Time
	UpdatedAt time.Time
	Spec      ServiceSpec
	Status    ServiceStatus
}

type ServiceSpec struct {
	// SpecVersion grows with every change of the spec.
	SpecVersion  uint64        `json:"specVersion"`
	DesiredPhase ServicePhase  `json:"desiredPhase"`
	Commands     spec.Commands `json:"commands"`
	// Session changes to (re)start the service; only StartService changes
	// it.
	Session string      `json:"session"`
	RunsOn  spec.RunsOn `json:"runsOn,omitzero"`
	Env     []EnvVar    `json:"env,omitempty"`
}

// ServiceStatus is what the runner reports about a service.
type ServiceStatus struct {
	// StatusVersion orders reports; zero means the runner never reported.
	StatusVersion  uint64            `json:"statusVersion,omitempty"`
	Phase          ServicePhase      `json:"phase"`
	FailureMessage string            `json:"failureMessage,omitempty"`
	LogURL         string            `json:"logUrl,omitempty"`
	Session        string            `json:"session,omitempty"`
	Output         map[string]string `json:"output,omitempty"`
}

// startPending reports whether a start was asked for that the runner has not
// yet taken up: desired RUNNING in a session the status does not show.
func (s *Service) startPending() bool {
	return s.Spec.DesiredPhase == ServicePhaseRunning && s.Status.Session != s.Spec.Session
}

// Stopped reports whether nothing of the service runs or is about to: its
// runner reports no process (never ran, STOPPED, FAILED or DELETED) and no
// start is pending. Only a stopped service's spec may change.
func (s *Service) Stopped() bool {
	switch s.Status.Phase {
	case ServicePhaseUnspecified, ServicePhaseStopped, ServicePhaseFailed, ServicePhaseDeleted:
		return !s.startPending()
	}
	return false
}

// Deleting reports whether the service waits for its runner to stop it
// before it is removed.
func (s *Service) Deleting() bool { return s.Spec.DesiredPhase == ServicePhaseDeleted }

// Task is a command of an environment that runs to completion, after the
// tasks and services it depends on.
type Task struct {
	ID            string
	Seq           int64
	OrgID         string
	EnvironmentID string
	Reference     string
	Name          string
	Description   string
	TriggeredBy   []spec.Trigger
	// Source is where the task came from, as a service's.
	Source    Source
	Creator   identity.Subject
	CreatedAt time.Time
	UpdatedAt time.Time
	Spec      TaskSpec
	// DependsOn holds IDs of tasks and services of the same environment.
	DependsOn []string
}

type TaskSpec struct {
	Command string      `json:"command"`
	RunsOn  spec.RunsOn `json:"runsOn,omitzero"`
	Env     []EnvVar    `json:"env,omitempty"`
}

// TaskExecution is one run of a task with its dependencies.
type TaskExecution struct {
	ID            string
	Seq           int64
	OrgID         string
	EnvironmentID string
	TaskID        string
	// TaskReference is the task's reference when the execution was
	// created, kept for the taskReferences filter after the task is gone.
	TaskReference string
	Creator       identity.Subject
	StartedBy     string
	CreatedAt     time.Time
	StartedAt     *time.Time
	CompletedAt   *time.Time
	Spec          ExecutionSpec
	Status        ExecutionStatus
}

type ExecutionSpec struct {
	DesiredPhase ExecutionPhase `json:"desiredPhase"`
	// Plan holds groups that run one after another; the steps of a group
	// run at once.
	Plan []Group `json:"plan"`
}

type Group struct {
	Steps []Step `json:"steps"`
}

// Step runs a task (Task set) or starts a service and awaits it RUNNING
// (ServiceID set).
type Step struct {
	ID string `json:"id"`
	// DependsOn holds the IDs of the steps this one waits for.
	DependsOn []string  `json:"dependsOn,omitempty"`
	Label     string    `json:"label,omitempty"`
	Task      *StepTask `json:"task,omitempty"`
	ServiceID string    `json:"serviceId,omitempty"`
}

// StepTask is a task as it was when the execution was created: later
// changes to the task do not change a run that has begun.
type StepTask struct {
	ID   string   `json:"id"`
	Spec TaskSpec `json:"spec"`
}

// Steps returns every step of the plan in order.
func (x *TaskExecution) Steps() []Step {
	var out []Step
	for _, g := range x.Spec.Plan {
		out = append(out, g.Steps...)
	}
	return out
}

// ExecutionStatus is what the runner reports about an execution.
type ExecutionStatus struct {
	// StatusVersion orders reports; zero means the runner never reported.
	StatusVersion  uint64         `json:"statusVersion,omitempty"`
	Phase          ExecutionPhase `json:"phase"`
	FailureMessage string         `json:"failureMessage,omitempty"`
	LogURL         string         `json:"logUrl,omitempty"`
	// Steps holds the steps that started; a missing one has not.
	Steps []StepStatus `json:"steps,omitempty"`
}

type StepStatus struct {
	ID             string            `json:"id"`
	Phase          ExecutionPhase    `json:"phase"`
	FailureMessage string            `json:"failureMessage,omitempty"`
	Output         map[string]string `json:"output,omitempty"`
}

// Set is an environment's services and tasks as EditAutomations loads them.
type Set struct {
	Services []*Service
	Tasks    []*Task
}

func (s *Set) service(id string) *Service {
	for _, x := range s.Services {
		if x.ID == id {
			return x
		}
	}
	return nil
}

func (s *Set) task(id string) *Task {
	for _, x := range s.Tasks {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// Changes is what one EditAutomations call writes.
type Changes struct {
	CreateServices   []*Service
	UpdateServices   []*Service
	DeleteServices   []string
	CreateTasks      []*Task
	UpdateTasks      []*Task
	DeleteTasks      []string
	CreateExecutions []*TaskExecution
	// EnvironmentFile, when set, replaces the environment's
	// spec.automationsFile: the control plane's record of which file
	// applies and which start's triggers are done.
	EnvironmentFile *environments.AutomationsFile
}

func (c *Changes) empty() bool {
	return len(c.CreateServices)+len(c.UpdateServices)+len(c.DeleteServices)+len(c.CreateTasks)+
		len(c.UpdateTasks)+len(c.DeleteTasks)+len(c.CreateExecutions) == 0
}

// ServiceFilter selects services for Store.FindServices.
type ServiceFilter struct {
	OrgID          string
	EnvironmentIDs []string
	References     []string
	IDs            []string
	Roles          []ServiceRole
	// RunnerID selects the services of the environments on a runner.
	RunnerID string
	// After and Limit select a page by Seq; Limit zero means no limit.
	After int64
	Limit int
}

// TaskFilter selects tasks for Store.FindTasks.
type TaskFilter struct {
	OrgID          string
	EnvironmentIDs []string
	References     []string
	IDs            []string
	After          int64
	Limit          int
}

// ExecutionFilter selects task executions for Store.FindTaskExecutions.
type ExecutionFilter struct {
	OrgID          string
	EnvironmentIDs []string
	TaskIDs        []string
	TaskReferences []string
	Phases         []ExecutionPhase
	RunnerID       string
	After          int64
	Limit          int
}

// Store is the storage automations need. FindEnvironmentByID is
// environments.Store's.
type Store interface {
	FindEnvironmentByID(ctx context.Context, orgID, id string) (*environments.Environment, error)
	// FindSecretByID is secrets.Store's: an env var's secretRef must name
	// a secret of the organization.
	FindSecretByID(ctx context.Context, orgID, id string) (*secrets.Secret, error)

	// EditAutomations locks environment envID, loads its services and tasks
	// (locked too) and calls fn with them; what fn returns is written in
	// the same transaction, so every check fn makes holds at the commit. An
	// error from fn changes nothing. It fails with CodeNotFound for a
	// missing environment and CodeConflict for a duplicate reference.
	EditAutomations(ctx context.Context, orgID, envID string, fn func(*environments.Environment, *Set) (*Changes, error)) error

	// FindServiceByID fails with CodeNotFound, also for another
	// organization's service.
	FindServiceByID(ctx context.Context, orgID, id string) (*Service, error)
	// FindServices returns the services matching f by ascending Seq.
	FindServices(ctx context.Context, f ServiceFilter) ([]*Service, error)
	// UpdateService loads a service, applies fn and stores the result in
	// one transaction; an error from fn changes nothing. It fails with
	// CodeNotFound.
	UpdateService(ctx context.Context, orgID, id string, fn func(*Service) error) (*Service, error)

	// FindTaskByID fails with CodeNotFound.
	FindTaskByID(ctx context.Context, orgID, id string) (*Task, error)
	// FindTasks returns the tasks matching f by ascending Seq.
	FindTasks(ctx context.Context, f TaskFilter) ([]*Task, error)

	// FindTaskExecutionByID fails with CodeNotFound.
	FindTaskExecutionByID(ctx context.Context, orgID, id string) (*TaskExecution, error)
	// FindTaskExecutions returns the executions matching f by ascending
	// Seq.
	FindTaskExecutions(ctx context.Context, f ExecutionFilter) ([]*TaskExecution, error)
	// UpdateTaskExecution loads an execution, applies fn and stores the
	// result in one transaction; an error from fn changes nothing. It fails
	// with CodeNotFound.
	UpdateTaskExecution(ctx context.Context, orgID, id string, fn func(*TaskExecution) error) (*TaskExecution, error)
	// ReportTaskExecution applies a runner's report to execution id in one
	// transaction, touching only what the report names: fn gets the
	// execution without its plan and steps (Spec.Plan and Status.Steps are
	// nil) and says whether to store what it made of it; an error from fn
	// changes nothing. Each of r.Steps is then written unless the step holds
	// a report of r.Version or later; with r.Replace, every step r.Steps
	// lacks becomes not started under the same rule. An execution of an
	// environment not on runnerID is not found (CodeNotFound); a step the
	// execution does not have fails with *UnknownStepError.
	ReportTaskExecution(ctx context.Context, orgID, runnerID, id string, r StepsReport, fn func(*TaskExecution) (bool, error)) error
}

// StepsReport is what a runner's report says of an execution's steps.
type StepsReport struct {
	// Version orders the report against the ones each step holds; at
	// most math.MaxInt64.
	Version uint64
	Steps   []StepStatus
	// Replace says Steps lists every step that started, as a runner's
	// whole status does; without it Steps holds only the steps that
	// changed.
	Replace bool
}

// UnknownStepError is ReportTaskExecution's error for a reported step the
// execution does not have: Steps[Index] of the report.
type UnknownStepError struct {
	Index int
	ID    string
}

func (e *UnknownStepError) Error() string {
	return fmt.Sprintf("step %d (%q) is no step of the task execution", e.Index, e.ID)
}

func oneOf[T comparable](v T, set []T) bool { return slices.Contains(set, v) }
