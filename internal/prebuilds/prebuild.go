// Package prebuilds is prebuilds and their snapshots: a prebuild of a
// repository (a context URL: repository, branch or commit) creates an
// environment on the runner of an environment class, which runs what the
// prebuild and beforeSnapshot triggers start and archives its workspace on
// the runner (internal/runner/envs/prebuild.go); the prebuild records the
// snapshot and deletes its environment. A new environment of the same
// repository and commit on that runner starts from the newest snapshot
// instead of a clone. Each repository and branch keeps its Keep newest
// snapshots; the runner deletes the archives of older ones (the desired
// state names the snapshots to keep).
//
//	PENDING ─▶ STARTING ─▶ RUNNING ─▶ COMPLETED (snapshot recorded) ─▶ environment deleted
//	                             └──▶ FAILED (a prebuild task failed, no snapshot)
//	CancelPrebuild: CANCELLED, environment deleted
package prebuilds

import (
	"context"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// Phase is a prebuild's phase, with its gitpod.v1 name.
type Phase string

const (
	PhasePending   Phase = "PREBUILD_PHASE_PENDING"
	PhaseStarting  Phase = "PREBUILD_PHASE_STARTING"
	PhaseRunning   Phase = "PREBUILD_PHASE_RUNNING"
	PhaseCompleted Phase = "PREBUILD_PHASE_COMPLETED"
	PhaseFailed    Phase = "PREBUILD_PHASE_FAILED"
	PhaseCancelled Phase = "PREBUILD_PHASE_CANCELLED"
)

// Phases lists every phase a prebuild takes.
var Phases = []Phase{PhasePending, PhaseStarting, PhaseRunning, PhaseCompleted, PhaseFailed, PhaseCancelled}

// Final reports whether a prebuild in phase p is over.
func (p Phase) Final() bool {
	return p == PhaseCompleted || p == PhaseFailed || p == PhaseCancelled
}

// Trigger says what created a prebuild, with its gitpod.v1 name.
type Trigger string

const (
	TriggerManual    Trigger = "PREBUILD_TRIGGER_MANUAL"
	TriggerScheduled Trigger = "PREBUILD_TRIGGER_SCHEDULED"
)

// Prebuild is one prebuild.
type Prebuild struct {
	ID    string
	Seq   int64
	OrgID string
	// RunnerID runs it and keeps its snapshot; ClassID is the environment
	// class it was created with.
	RunnerID string
	ClassID  string
	// ContextURL is the repository as the request named it.
	ContextURL    string
	EnvironmentID string
	Phase         Phase
	Creator       identity.Subject
	TriggeredBy   Trigger
	// Timeout bounds the prebuild: one still running after it fails.
	Timeout        time.Duration
	FailureMessage string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    *time.Time
	// Snapshot is set once the runner made it.
	Snapshot *Snapshot
}

// Snapshot is a prebuild's workspace archived on its runner.
type Snapshot struct {
	// Repository is the first git initializer's remote and Branch its
	// clone target (empty: the remote's HEAD); retention counts per both.
	Repository string    `json:"repository"`
	Branch     string    `json:"branch,omitempty"`
	Commit     string    `json:"commit"`
	SizeBytes  int64     `json:"sizeBytes"`
	CreatedAt  time.Time `json:"createdAt"`
	// Deleted says retention deleted the archive.
	Deleted bool `json:"deleted,omitempty"`
}

// Kept reports whether p's runner keeps an archive for it: a prebuild
// under way (its archive may be being written) or a completed one whose
// snapshot retention has not deleted.
func (p *Prebuild) Kept() bool {
	if !p.Phase.Final() {
		return true
	}
	return p.Phase == PhaseCompleted && p.Snapshot != nil && !p.Snapshot.Deleted
}

// Filter selects prebuilds for Store.FindPrebuilds.
type Filter struct {
	OrgID       string
	RunnerIDs   []string
	Phases      []Phase
	ContextURLs []string
	CreatorIDs  []string
	Triggers    []Trigger
	// Before and Limit select a page, newest first (Seq below Before;
	// zero: no bound). Limit zero means no limit.
	Before int64
	Limit  int
}

// Store is the storage prebuilds need.
type Store interface {
	// CreatePrebuild stores p and assigns p.Seq.
	CreatePrebuild(ctx context.Context, p *Prebuild) error
	// FindPrebuildByID fails with CodeNotFound, also for another
	// organization's prebuild.
	FindPrebuildByID(ctx context.Context, orgID, id string) (*Prebuild, error)
	// FindPrebuildByEnvironment returns the prebuild whose environment is
	// envID; CodeNotFound when there is none.
	FindPrebuildByEnvironment(ctx context.Context, orgID, envID string) (*Prebuild, error)
	// FindPrebuilds returns the prebuilds matching f by descending Seq.
	FindPrebuilds(ctx context.Context, f Filter) ([]*Prebuild, error)
	// UpdatePrebuild loads a prebuild, applies fn and stores the result in
	// one transaction; an error from fn changes nothing. CodeNotFound.
	UpdatePrebuild(ctx context.Context, orgID, id string, fn func(*Prebuild) error) (*Prebuild, error)
	// DeletePrebuild removes a prebuild. CodeNotFound.
	DeletePrebuild(ctx context.Context, orgID, id string) error
	// FindKeptSnapshots returns the prebuilds of every organization whose
	// runner runnerID keeps an archive (Prebuild.Kept).
	FindKeptSnapshots(ctx context.Context, runnerID string) ([]*Prebuild, error)
}
