package events

import (
	"context"
	"strconv"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Service holds the rules of watching: scopes, organizations, positions.
type Service struct {
	Hub *Hub
	// Environment fails (not_found) unless the caller may read environment
	// id: environments.Service.Get.
	Environment func(ctx context.Context, id string) error
}

// WatchRequest is gitpod.v1 WatchEventsRequest.
type WatchRequest struct {
	// EnvironmentID selects the environment scope: the environment, its
	// services, tasks and task executions. Empty selects the organization
	// scope: runners, environments and secrets (no services, tasks or
	// executions), as the vendor documents.
	EnvironmentID string
	// Cursor is the ID of the last event seen ("" for from now).
	Cursor string
}

// kindScopes is what a caller needs to see each kind of the organization
// scope.
var kindScopes = map[string]identity.Scope{
	TypeRunner:      identity.ScopeRunnersRead,
	TypeEnvironment: identity.ScopeEnvironmentsRead,
	TypeSecret:      identity.ScopeSecretsRead,
}

// Watch calls fn with every event of the request's scope that the caller
// may see, in order, until ctx ends or fn fails. The environment scope
// needs environments:read; the organization scope needs at least one of
// runners:read, environments:read, secrets:read and shows the kinds the
// caller's scopes cover. Another organization's events are never shown, nor
// a secret another user owns. started is called once the checks passed
// and the watch is established (Hub.Watch).
func (s *Service) Watch(ctx context.Context, req WatchRequest, started func(), fn func(e Event, more bool) error) error {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return err
	}
	after := FromNow
	if req.Cursor != "" {
		v, err := strconv.ParseInt(req.Cursor, 10, 64)
		if err != nil || v < 0 {
			return apperr.Invalid("cursor", "%q is not a position this server gave (the cursor of an event)", req.Cursor)
		}
		after = v
	}
	var filter func(Event) bool
	if req.EnvironmentID != "" {
		if _, err := identity.Require(ctx, identity.ScopeEnvironmentsRead); err != nil {
			return err
		}
		if err := identity.ValidateUUID("environmentId", req.EnvironmentID); err != nil {
			return err
		}
		if err := s.Environment(ctx, req.EnvironmentID); err != nil {
			return err
		}
		org, env := c.OrgID, req.EnvironmentID
		filter = func(e Event) bool { return e.EnvironmentID == env && e.OrgID == org }
	} else {
		kinds := map[string]bool{}
		for kind, scope := range kindScopes {
			if c.Has(scope) {
				kinds[kind] = true
			}
		}
		if len(kinds) == 0 {
			return apperr.PermissionDenied("watching the organization needs one of the scopes %q, %q, %q",
				identity.ScopeRunnersRead, identity.ScopeEnvironmentsRead, identity.ScopeSecretsRead)
		}
		org, subject := c.OrgID, c.Subject.ID
		filter = func(e Event) bool {
			return e.OrgID == org && kinds[e.ResourceType] && (e.Owner == "" || e.Owner == subject)
		}
	}
	return s.Hub.Watch(ctx, after, filter, started, fn)
}
