// Package environments holds environments: a workspace on one runner with
// content (a git clone, or nothing) and automations. The control plane's part
// lives here: what an environment is, which specs are valid, the service every
// API surface calls, and what a runner reads and reports. Running an
// environment (cloning, starting its automations) is the runner's part.
//
// An environment's phase as the control plane sees it:
//
//	Create ──▶ CREATING (no runner report yet)
//	              │ the runner reports; from then on status.phase is only
//	              ▼ ever what the runner says
//	          STARTING ─▶ RUNNING ─▶ STOPPING ─▶ STOPPED ─▶ STARTING ...
//	                                                   DELETING ─▶ DELETED (removed)
//
// Users change only spec.desiredPhase (RUNNING, STOPPED, DELETED); the runner
// converges on it and reports every phase in between. An environment its
// runner never reported on is removed at once when deleted, since nothing on
// a runner has to be cleaned up; a DELETED report from the runner removes it
// otherwise.
package environments

import (
	"context"
	"slices"
	"time"

	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
)

// Phase is an environment's lifecycle phase, with the gitpod.v1 names.
type Phase string

const (
	PhaseUnspecified Phase = "ENVIRONMENT_PHASE_UNSPECIFIED"
	PhaseCreating    Phase = "ENVIRONMENT_PHASE_CREATING"
	PhaseStarting    Phase = "ENVIRONMENT_PHASE_STARTING"
	PhaseRunning     Phase = "ENVIRONMENT_PHASE_RUNNING"
	PhaseUpdating    Phase = "ENVIRONMENT_PHASE_UPDATING"
	PhaseStopping    Phase = "ENVIRONMENT_PHASE_STOPPING"
	PhaseStopped     Phase = "ENVIRONMENT_PHASE_STOPPED"
	PhaseDeleting    Phase = "ENVIRONMENT_PHASE_DELETING"
	PhaseDeleted     Phase = "ENVIRONMENT_PHASE_DELETED"
)

// Phases lists every phase but UNSPECIFIED: what a filter or a runner report
// may name.
var Phases = []Phase{
	PhaseCreating, PhaseStarting, PhaseRunning, PhaseUpdating, PhaseStopping,
	PhaseStopped, PhaseDeleting, PhaseDeleted,
}

// CloneTargetMode says what a git initializer checks out, with the gitpod.v1
// names.
type CloneTargetMode string

const (
	CloneTargetUnspecified  CloneTargetMode = "CLONE_TARGET_MODE_UNSPECIFIED"
	CloneTargetRemoteHead   CloneTargetMode = "CLONE_TARGET_MODE_REMOTE_HEAD"
	CloneTargetRemoteCommit CloneTargetMode = "CLONE_TARGET_MODE_REMOTE_COMMIT"
	CloneTargetRemoteBranch CloneTargetMode = "CLONE_TARGET_MODE_REMOTE_BRANCH"
	CloneTargetLocalBranch  CloneTargetMode = "CLONE_TARGET_MODE_LOCAL_BRANCH"
	CloneTargetRemoteTag    CloneTargetMode = "CLONE_TARGET_MODE_REMOTE_TAG"
)

var CloneTargetModes = []CloneTargetMode{
	CloneTargetRemoteHead, CloneTargetRemoteCommit, CloneTargetRemoteBranch,
	CloneTargetLocalBranch, CloneTargetRemoteTag,
}

// DefaultAutomationsFilePath is where the runner looks for the automations
// file when the spec names none. (The runner also reads
// .gitpod/automations.yaml, then .ona/automations.yaml, when this one is
// absent, as the vendor's files live there; docs/automations.md.)
const DefaultAutomationsFilePath = ".runyard/automations.yaml"

// Environment is one environment on one runner.
type Environment struct {
	ID string
	// Seq is the list order.
	Seq   int64
	OrgID string
	// RunnerID is the runner the class in Spec.Machine.Class belongs to; it
	// never changes.
	RunnerID string
	// RunnerKind is the kind of that runner, kept for the runnerKinds filter.
	RunnerKind runners.Kind
	Name       string
	Creator    identity.Subject
	// ContextURL is metadata.originalContextUrl: the first git remote.
	ContextURL    string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastStartedAt *time.Time
	Spec          Spec
	Status        Status
	// Activity is the last activity recorded on the environment
	// (MarkActive); nil when none was.
	Activity *Activity
}

// Spec is what users want of an environment; its runner converges on it.
type Spec struct {
	// SpecVersion grows with every change of the spec, so a runner can tell
	// a newer spec from an older one it already applied.
	SpecVersion     uint64          `json:"specVersion"`
	DesiredPhase    Phase           `json:"desiredPhase"`
	Machine         Machine         `json:"machine"`
	Content         Content         `json:"content"`
	AutomationsFile AutomationsFile `json:"automationsFile"`
	// Ports are recorded and reported (status.environmentUrls.ports);
	// serving them is the environment-access work's.
	Ports []Port `json:"ports,omitempty"`
	// SSHPublicKeys are recorded for SSH access to the environment.
	SSHPublicKeys []SSHPublicKey `json:"sshPublicKeys,omitempty"`
	// Timeout is spec.timeout (activity.go).
	Timeout Timeout `json:"timeout,omitzero"`
	// Admission is who may access the environment and its ports.
	Admission Admission `json:"admission,omitempty"`

	// TimedOut is the control plane's bookkeeping, status.machine.timeout:
	// why the inactivity sweep stopped the environment. A start clears it.
	TimedOut string `json:"timedOut,omitempty"`
	// PrebuildID makes the environment a prebuild's (internal/prebuilds):
	// set by the prebuilds service only, never by a request.
	PrebuildID string `json:"prebuildId,omitempty"`
}

// Admission says who may access an environment or a port, with the
// gitpod.v1 names.
type Admission string

const (
	AdmissionUnspecified Admission = "ADMISSION_LEVEL_UNSPECIFIED"
	AdmissionOwnerOnly   Admission = "ADMISSION_LEVEL_OWNER_ONLY"
	AdmissionEveryone    Admission = "ADMISSION_LEVEL_EVERYONE"
)

var Admissions = []Admission{AdmissionOwnerOnly, AdmissionEveryone}

// Port is a port of the environment that ought to be exposed.
type Port struct {
	Port      int32     `json:"port"`
	Name      string    `json:"name,omitempty"`
	Admission Admission `json:"admission,omitempty"`
}

// SSHPublicKey is a key that may log in to the environment.
type SSHPublicKey struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Timeout is spec.timeout.
type Timeout struct {
	// Disconnected is how long the environment may go without activity
	// before it is stopped; zero never stops it.
	Disconnected time.Duration `json:"disconnected,omitempty"`
}

type Machine struct {
	Session string `json:"session,omitempty"`
	// Class is the ID of the environment class, which decides the runner.
	Class string `json:"class"`
}

type Content struct {
	Session string `json:"session,omitempty"`
	// Initializers are cloned one by one; none means an empty workspace.
	Initializers []Initializer `json:"initializers,omitempty"`
	GitUsername  string        `json:"gitUsername,omitempty"`
	GitEmail     string        `json:"gitEmail,omitempty"`
}

// Initializer is one initializer spec. A context URL is parsed at creation
// (internal/contexturl) into the git initializer it names, which is what is
// stored and what the runner clones.
type Initializer struct {
	Git *Git `json:"git,omitempty"`
	// ContextURL is the URL a request gave instead of Git.
	ContextURL *string `json:"-"`
}

// Git clones a repository with the git binary.
type Git struct {
	RemoteURI         string          `json:"remoteUri"`
	UpstreamRemoteURI string          `json:"upstreamRemoteUri,omitempty"`
	TargetMode        CloneTargetMode `json:"targetMode"`
	CloneTarget       string          `json:"cloneTarget,omitempty"`
	// CheckoutLocation is relative to the environment's workspace.
	CheckoutLocation string `json:"checkoutLocation"`
}

type AutomationsFile struct {
	Session string `json:"session,omitempty"`
	// Path is relative to the root of the first checkout.
	Path string `json:"automationsFilePath"`
	// TriggerFilter restricts which triggers run; empty means all.
	TriggerFilter []spec.Trigger `json:"triggerFilter,omitempty"`

	// The rest is the control plane's bookkeeping, in no API. The
	// repository's automations file is applied once per request:
	// FileRequested counts the requests (one at creation, one more per
	// reload), FileApplied is the last request a runner's hand-over
	// fulfilled. A runner restart or an environment stop and start hands
	// the file over again and changes nothing.
	FileRequested uint64 `json:"fileRequested,omitempty"`
	FileApplied   uint64 `json:"fileApplied,omitempty"`
	// TriggeredStart is the start (lastStartedAt, or createdAt) whose
	// start triggers fired: a runner that hands the same start over again
	// after a daemon restart fires nothing.
	TriggeredStart *time.Time `json:"triggeredStart,omitempty"`
}

// FilePending reports whether the repository's automations file waits to
// be applied.
func (a *AutomationsFile) FilePending() bool { return a.FileApplied < a.FileRequested }

// Status is what the runner reports about an environment. The control plane
// writes only the phase CREATING at creation; everything else comes from
// ReportStatus.
type Status struct {
	// StatusVersion orders reports: one not newer than the stored one is
	// ignored. Zero means the runner never reported.
	StatusVersion uint64 `json:"statusVersion,omitempty"`
	// Phase is stored in its own column, which lists filter on.
	Phase           Phase                  `json:"-"`
	FailureMessage  []string               `json:"failureMessage,omitempty"`
	WarningMessage  []string               `json:"warningMessage,omitempty"`
	RunnerACK       *RunnerACK             `json:"runnerAck,omitempty"`
	Machine         *MachineStatus         `json:"machine,omitempty"`
	Content         *ContentStatus         `json:"content,omitempty"`
	AutomationsFile *AutomationsFileStatus `json:"automationsFile,omitempty"`
}

// The status parts' enums are kept as their gitpod.v1 names.
type (
	AckStatusCode string
	MachinePhase  string
	ContentPhase  string
	Presence      string
)

var (
	AckStatusCodes = []AckStatusCode{"STATUS_CODE_UNSPECIFIED", "STATUS_CODE_OK", "STATUS_CODE_INVALID_RESOURCE", "STATUS_CODE_FAILED_PRECONDITION"}
	MachinePhases  = []MachinePhase{"PHASE_UNSPECIFIED", "PHASE_CREATING", "PHASE_STARTING", "PHASE_RUNNING", "PHASE_STOPPING", "PHASE_STOPPED", "PHASE_DELETING", "PHASE_DELETED"}
	ContentPhases  = []ContentPhase{"CONTENT_PHASE_UNSPECIFIED", "CONTENT_PHASE_CREATING", "CONTENT_PHASE_INITIALIZING", "CONTENT_PHASE_READY", "CONTENT_PHASE_UPDATING", "CONTENT_PHASE_FAILED", "CONTENT_PHASE_UNAVAILABLE"}
	Presences      = []Presence{"PRESENCE_UNSPECIFIED", "PRESENCE_ABSENT", "PRESENCE_DISCOVERED", "PRESENCE_SPECIFIED"}
)

// RunnerACK is the runner's acknowledgement of a spec version.
type RunnerACK struct {
	SpecVersion uint64        `json:"specVersion,omitempty"`
	StatusCode  AckStatusCode `json:"statusCode,omitempty"`
	Message     string        `json:"message,omitempty"`
}

type MachineStatus struct {
	Session        string       `json:"session,omitempty"`
	Phase          MachinePhase `json:"phase,omitempty"`
	FailureMessage string       `json:"failureMessage,omitempty"`
	WarningMessage string       `json:"warningMessage,omitempty"`
}

type ContentStatus struct {
	Session string       `json:"session,omitempty"`
	Phase   ContentPhase `json:"phase,omitempty"`
	// Location is where the content is on the runner host.
	Location       string `json:"contentLocationInMachine,omitempty"`
	FailureMessage string `json:"failureMessage,omitempty"`
	WarningMessage string `json:"warningMessage,omitempty"`
	// PrebuildID is the prebuild whose snapshot the runner restored the
	// content from; empty for a clone.
	PrebuildID string `json:"prebuildId,omitempty"`
}

type AutomationsFileStatus struct {
	Session        string       `json:"session,omitempty"`
	Path           string       `json:"automationsFilePath,omitempty"`
	Phase          ContentPhase `json:"phase,omitempty"`
	FailureMessage string       `json:"failureMessage,omitempty"`
	Presence       Presence     `json:"automationsFilePresence,omitempty"`
	WarningMessage string       `json:"warningMessage,omitempty"`
}

// PickedUp reports whether the environment's runner ever reported on it.
// One that did not has nothing on any runner to clean up.
func (e *Environment) PickedUp() bool { return e.Status.StatusVersion != 0 }

// Deleting reports whether a user asked to delete the environment.
func (e *Environment) Deleting() bool { return e.Spec.DesiredPhase == PhaseDeleted }

// Filter selects environments for Store.FindEnvironments.
type Filter struct {
	OrgID       string
	RunnerIDs   []string
	Phases      []Phase
	CreatorIDs  []string
	RunnerKinds []runners.Kind
	// Before and Limit select a page, newest first: only environments with
	// a Seq below Before (zero: no bound). Limit zero means no limit.
	Before int64
	Limit  int
}

// Store is the storage environments need. FindRunnerByID and FindRunners are
// runners.Store's: an environment class is derived from its runner.
type Store interface {
	// CreateEnvironment stores e and assigns e.Seq.
	CreateEnvironment(ctx context.Context, e *Environment) error
	// FindEnvironmentByID fails with CodeNotFound, also for another
	// organization's environment.
	FindEnvironmentByID(ctx context.Context, orgID, id string) (*Environment, error)
	// FindEnvironments returns the environments matching f by descending
	// Seq.
	FindEnvironments(ctx context.Context, f Filter) ([]*Environment, error)
	// UpdateEnvironment loads an environment, applies fn and stores the
	// result in one transaction; an error from fn changes nothing. It fails
	// with CodeNotFound.
	UpdateEnvironment(ctx context.Context, orgID, id string, fn func(*Environment) error) (*Environment, error)
	// DeleteEnvironment removes an environment with its services, tasks and
	// task executions, in one transaction, if keep (which may be nil) does
	// not refuse the environment as loaded in that transaction. It fails
	// with CodeNotFound, or with keep's error.
	DeleteEnvironment(ctx context.Context, orgID, id string, keep func(*Environment) error) error
	// DeleteRunnerEnvironments removes every environment of a runner with
	// their automations and returns how many it removed.
	DeleteRunnerEnvironments(ctx context.Context, orgID, runnerID string) (int, error)

	// FindEnvironmentsToStop returns up to limit environments, of every
	// organization, whose StopAfter is before now.
	FindEnvironmentsToStop(ctx context.Context, now time.Time, limit int) ([]EnvironmentRef, error)
	// EnvironmentBusy reports whether an environment has an unfinished
	// task execution.
	EnvironmentBusy(ctx context.Context, orgID, id string) (bool, error)

	FindRunnerByID(ctx context.Context, orgID, id string) (*runners.Runner, error)
	FindRunners(ctx context.Context, f runners.Filter) ([]*runners.Runner, error)
}

// EnvironmentRef names one environment.
type EnvironmentRef struct{ OrgID, ID string }

func oneOf[T comparable](v T, set []T) bool { return slices.Contains(set, v) }
