// Package pods holds agent pods: one AI-agent session (claude-code, codex,
// ...) in a PTY on a runner. This first part is the pod record and how runners'
// pods are listed and counted; creating and scheduling pods builds on it.
package pods

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/runyard/runyard/internal/apperr"
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
	Status   Status
	Offset   int
	Limit    int
}

// Store is the storage pods need.
type Store interface {
	// CreatePod stores p and assigns p.Seq. It fails with CodeConflict on a
	// duplicate key.
	CreatePod(ctx context.Context, p *Pod) error
	// FindPods returns the pods matching f, newest first, and how many match
	// in all.
	FindPods(ctx context.Context, f Filter) ([]*Pod, int, error)
	// CountActivePods returns the number of active pods per runner ID in an
	// organization.
	CountActivePods(ctx context.Context, orgID string) (map[string]int, error)
}

// Limits of a page of pods, as the REST API has them.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Service lists pods.
type Service struct {
	Store Store
}

// ListOnRunner returns a page of the pods on a runner and how many there are
// in all. It needs ScopeRunnersRead, as the REST API's /runners/:id/pods
// does; status may be empty.
func (s *Service) ListOnRunner(ctx context.Context, runnerID string, status Status, limit, offset int) ([]*Pod, int, error) {
	c, err := identity.Require(ctx, identity.ScopeRunnersRead)
	if err != nil {
		return nil, 0, err
	}
	if status != "" && !slices.Contains(Statuses, status) {
		return nil, 0, apperr.Invalid("status", "must be one of pending, running, terminated, failed; got %q", status)
	}
	if limit < 1 || limit > MaxLimit {
		return nil, 0, apperr.Invalid("limit", "must be 1 to %d, got %d", MaxLimit, limit)
	}
	if offset < 0 {
		return nil, 0, apperr.Invalid("offset", "must not be negative, got %d", offset)
	}
	items, total, err := s.Store.FindPods(ctx, Filter{OrgID: c.OrgID, RunnerID: runnerID, Status: status, Offset: offset, Limit: limit})
	if err != nil {
		return nil, 0, fmt.Errorf("list pods of runner %q: %w", runnerID, err)
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
