package runners

import (
	"context"
	"fmt"

	"github.com/runyard/runyard/internal/apperr"
)

// FindFunc reads a runner, as Store.FindRunnerByID does.
type FindFunc func(ctx context.Context, orgID, id string) (*Runner, error)

// Reachability tells the objects of one organization on their runners
// whether their runner is unreachable, reading each runner once. The domain
// services of environments, automations and pods use it when they return
// objects, so what they show follows the runner's phase without a write:
// marked while it is INACTIVE, as before when it is back.
type Reachability struct {
	find  FindFunc
	orgID string
	seen  map[string]string
}

// NewReachability returns a Reachability for the runners of orgID.
func NewReachability(orgID string, find FindFunc) *Reachability {
	return &Reachability{find: find, orgID: orgID, seen: map[string]string{}}
}

// Message is the UnreachableMessage of runner id; empty when the runner is
// reachable, deleted or id is empty.
func (r *Reachability) Message(ctx context.Context, id string) (string, error) {
	if id == "" || r == nil || r.find == nil {
		return "", nil
	}
	if msg, ok := r.seen[id]; ok {
		return msg, nil
	}
	rn, err := r.find(ctx, r.orgID, id)
	if apperr.Is(err, apperr.CodeNotFound) {
		rn, err = nil, nil
	}
	if err != nil {
		return "", fmt.Errorf("runner %q: %w", id, err)
	}
	msg := rn.UnreachableMessage()
	r.seen[id] = msg
	return msg, nil
}
