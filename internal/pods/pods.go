// Package pods holds agent pods: one AI-agent session (claude-code, codex,
// ...) in a PTY on a runner. The control plane's part lives here: agent
// types (agents.go), creating pods and placing them on runners
// (placement.go, service.go), listing and terminating them. Running them is
// the runner's part.
//
// A pod's life as the control plane sees it:
//
//	create ─┬─ no runner fits ──▶ pending, no runner, Reason says why
//	        │                          │ PlacePending: one fits
//	        └─ a runner fits ──▶ pending on a runner (holds a place)
//	                                   │ the runner starts it
//	                                   ▼
//	                                running ──▶ terminated | failed
//
// Terminate ends an unplaced pending pod at once; a placed pod gets
// DesiredStatus terminated and keeps its status until its runner confirms.
// A pod whose runner is unreachable keeps its status too, with a reason
// saying so, and fails only after --lost-after (unreachable.go).
package pods

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/internal/identity"
)

// Status is a pod's lifecycle state, with the REST API's names.
type Status string

const (
	StatusPending    Status = "pending"
	StatusRunning    Status = "running"
	StatusTerminated Status = "terminated"
	StatusFailed     Status = "failed"
)

var Statuses = []Status{StatusPending, StatusRunning, StatusTerminated, StatusFailed}

// Pod is one agent session.
type Pod struct {
	Seq   int64
	Key   string
	OrgID string
	// RunnerID is the UUID of the runner the pod is placed on; empty while
	// pending.
	RunnerID      string
	Status        Status
	AgentTypeID   string
	InitialPrompt string
	Labels        []string
	Workdir       string
	// Env is what the creator added to the pod's environment.
	Env map[string]string
	// Spec is what the runner runs, resolved at creation (AgentType.Resolve).
	Spec RunSpec
	// DesiredStatus is StatusRunning, or StatusTerminated once a user asked
	// the pod to end: its runner is to stop it and confirm.
	DesiredStatus Status
	// RunnerSeq is the numeric REST id of the pod's runner, read from the
	// runner; zero without a runner or when the runner is gone.
	RunnerSeq int64
	// Reason says why a pod is pending or failed.
	Reason     string
	ExitCode   *int
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Active reports whether the pod holds a place on its runner.
func (p *Pod) Active() bool {
	return p.Status == StatusRunning || (p.Status == StatusPending && p.RunnerID != "")
}

// Filter selects pods for Store.FindPods.
type Filter struct {
	OrgID    string
	RunnerID string
	// RunnerSeq selects the pods of the runner with that numeric id.
	RunnerSeq int64
	Status    Status
	Offset    int
	Limit     int
}

// Store is the storage pods need.
type Store interface {
	// ClaimRunnerPods binds the active pods placed on the runner that no
	// stream was handed yet to the stream of epoch and returns the epoch
	// each active pod of the runner is bound to, by key. It fails with
	// CodeAborted, binding nothing, when epoch is not the runner's current
	// one.
	ClaimRunnerPods(ctx context.Context, orgID, runnerID string, epoch int64) (map[string]int64, error)
	// CreatePod stores p and assigns p.Seq. It fails with CodeConflict on a
	// duplicate key.
	CreatePod(ctx context.Context, p *Pod) error
	// FindPods returns the pods matching f, newest first, and how many match
	// in all.
	FindPods(ctx context.Context, f Filter) ([]*Pod, int, error)
	// CountActivePods returns the number of active pods per runner ID in an
	// organization.
	CountActivePods(ctx context.Context, orgID string) (map[string]int, error)

	// CreatePlacedPod stores p after running place on p and the candidate
	// runners that f selects, each with its count of active pods, in the
	// same transaction: placements of one organization are serialized, so
	// every count place sees is exact and stays so until the commit. An
	// error from place changes nothing. It fails with CodeConflict on a
	// duplicate key.
	CreatePlacedPod(ctx context.Context, p *Pod, f CandidateFilter, place PlaceFunc) error
	// PlacePendingPods runs place on every pending pod of f.OrgID without a
	// runner, oldest first, with the candidates as CreatePlacedPod has them,
	// in one transaction, and stores the pods place gave a runner. It
	// returns those.
	PlacePendingPods(ctx context.Context, f CandidateFilter, place PlaceFunc) ([]*Pod, error)
	// FindOrgsWithPendingPods returns the organizations that have pending
	// pods without a runner.
	FindOrgsWithPendingPods(ctx context.Context) ([]string, error)
	// FindPodByKey fails with CodeNotFound, also for another organization's
	// pod.
	FindPodByKey(ctx context.Context, orgID, key string) (*Pod, error)
	// UpdatePod loads a pod, applies fn and stores the result in one
	// transaction; an error from fn changes nothing. It fails with
	// CodeNotFound.
	UpdatePod(ctx context.Context, orgID, key string, fn func(*Pod) error) (*Pod, error)

	// CreateAgentType stores a custom agent type. It fails with
	// CodeConflict when the organization has one with that ID.
	CreateAgentType(ctx context.Context, a *AgentType) error
	// FindAgentType fails with CodeNotFound.
	FindAgentType(ctx context.Context, orgID, id string) (*AgentType, error)
	// FindAgentTypes returns an organization's custom agent types by ID.
	FindAgentTypes(ctx context.Context, orgID string) ([]*AgentType, error)
	// UpdateAgentType loads a custom agent type, applies fn and stores the
	// result in one transaction; an error from fn changes nothing. It fails
	// with CodeNotFound.
	UpdateAgentType(ctx context.Context, orgID, id string, fn func(*AgentType) error) (*AgentType, error)
	// DeleteAgentType removes a custom agent type. It fails with
	// CodeNotFound.
	DeleteAgentType(ctx context.Context, orgID, id string) error
}

// Limits of a page of pods, as the REST API has them.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Service creates, places, lists and terminates pods and manages agent
// types.
type Service struct {
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RunnerTimeout is how long a runner may stay silent and still count as
	// online: the fleet's timeout. Zero means DefaultRunnerTimeout.
	RunnerTimeout time.Duration
	// Changed, when set, is called after a pod on runnerID was placed or
	// asked to terminate, so that the runner can be told.
	Changed func(orgID, runnerID string)
	// AgentTypesChanged, when set, is called after an organization's agent
	// types changed, so its runners can say which they run.
	AgentTypesChanged func(orgID string)
	// Terminals, when set, opens pod terminals on runners (the fleet).
	Terminals TerminalOpener

	// placements counts the pods this process placed (Placements).
	placements atomic.Int64
}

// Placements is the number of pods this process placed on a runner since
// it started: at creation and by PlacePending, on either database (the
// store's placement paths, batched on PostgreSQL or not, all return
// through Create and PlacePending). A pod stored pending counts when
// PlacePending places it.
func (s *Service) Placements() int64 { return s.placements.Load() }

// ListOnRunner returns a page of the pods on a runner and how many there are
// in all. It needs ScopeRunnersRead, as the REST API's /runners/:id/pods
// does; status may be empty.
func (s *Service) ListOnRunner(ctx context.Context, runnerID string, status Status, limit, offset int) ([]*Pod, int, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, 0, err
	}
	if err := validatePage(status, limit, offset); err != nil {
		return nil, 0, err
	}
	items, total, err := s.Store.FindPods(ctx, Filter{OrgID: c.OrgID, RunnerID: runnerID, Status: status, Offset: offset, Limit: limit})
	if err != nil {
		return nil, 0, fmt.Errorf("list pods of runner %q: %w", runnerID, err)
	}
	if err := s.markUnreachable(ctx, c.OrgID, items...); err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

// ActiveCounts returns the number of active pods per runner of the caller's
// organization. It needs ScopeRunnersRead.
func (s *Service) ActiveCounts(ctx context.Context) (map[string]int, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, err
	}
	counts, err := s.Store.CountActivePods(ctx, c.OrgID)
	if err != nil {
		return nil, fmt.Errorf("count pods: %w", err)
	}
	return counts, nil
}
