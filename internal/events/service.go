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
	// Console widens the organization scope to what the web console's
	// pages show (consoleKinds): never set for WatchEvents, whose
	// organization scope the vendor documents.
	Console bool
	// Kinds, when set, keeps only these kinds (a console page's own); each
	// must be one the scope has.
	Kinds []string
}

// kindScopes is what a caller needs to see each kind of the organization
// scope.
var kindScopes = map[string]identity.Scope{
	TypeRunner:      identity.ScopeRunnersRead,
	TypeEnvironment: identity.ScopeEnvironmentsRead,
	TypeSecret:      identity.ScopeSecretsRead,
}

// consoleKinds is who sees each kind of the console's organization scope:
// the organization's events of a kind go to a caller with its scope (none:
// any member of the organization), and see, when set, decides which.
var consoleKinds = map[string]struct {
	scope identity.Scope
	see   func(c *identity.Caller, e Event) bool
}{
	TypeRunner:         {scope: identity.ScopeRunnersRead},
	TypeEnvironment:    {scope: identity.ScopeEnvironmentsRead},
	TypeService:        {scope: identity.ScopeEnvironmentsRead},
	TypeTask:           {scope: identity.ScopeEnvironmentsRead},
	TypeTaskExecution:  {scope: identity.ScopeEnvironmentsRead},
	TypeSecret:         {scope: identity.ScopeSecretsRead, see: ownedOrShared},
	TypeAgentExecution: {scope: identity.ScopePodsRead},
	TypeAgent:          {scope: identity.ScopePodsRead},
	// The organization's own changes, its members' and invites'; an
	// installation admin also sees every organization made, renamed or
	// deleted (the organizations page lists them all).
	TypeOrganization: {see: func(c *identity.Caller, e Event) bool {
		return e.OrgID == c.OrgID || (c.InstallationAdmin && e.ResourceID == e.OrgID)
	}},
	// A member's own organizations, whichever organization the event is
	// of (one made or joined elsewhere).
	TypeUser: {see: func(c *identity.Caller, e Event) bool { return c.UserID != "" && e.Owner == c.UserID }},
	// A user's own keys; an admin sees the organization's.
	TypeAPIKey: {see: func(c *identity.Caller, e Event) bool {
		return e.OrgID == c.OrgID && ((c.UserID != "" && e.Owner == c.UserID) || c.Has(identity.ScopeAdmin))
	}},
	TypeAuditLog: {scope: identity.ScopeAuditRead},
}

func ownedOrShared(c *identity.Caller, e Event) bool {
	return e.OrgID == c.OrgID && (e.Owner == "" || e.Owner == c.Subject.ID)
}

// Watch calls fn with every event of the request's scope that the caller
// may see, in order, until ctx ends or fn fails. The environment scope
// needs environments:read; the organization scope needs at least one of
// runners:read, environments:read, secrets:read and shows the kinds the
// caller's scopes cover; req.Console widens it to the console's kinds
// (consoleKinds). Another organization's events are never shown, nor a
// secret or key another user owns. started is called once the checks passed
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
	filter, err := s.filter(ctx, c, req)
	if err != nil {
		return err
	}
	return s.Hub.Watch(ctx, after, filter, started, fn)
}

// filter is what of the feed req shows caller c.
func (s *Service) filter(ctx context.Context, c *identity.Caller, req WatchRequest) (func(Event) bool, error) {
	var filter func(Event) bool
	if req.EnvironmentID != "" {
		if _, err := identity.Require(ctx, identity.ScopeEnvironmentsRead); err != nil {
			return nil, err
		}
		if err := identity.ValidateUUID("environmentId", req.EnvironmentID); err != nil {
			return nil, err
		}
		if err := s.Environment(ctx, req.EnvironmentID); err != nil {
			return nil, err
		}
		org, env := c.OrgID, req.EnvironmentID
		filter = func(e Event) bool { return e.EnvironmentID == env && e.OrgID == org }
	} else if req.Console {
		see := map[string]func(Event) bool{}
		for kind, k := range consoleKinds {
			switch {
			case k.scope != "" && !c.Has(k.scope):
			case k.see != nil:
				fn := k.see
				see[kind] = func(e Event) bool { return fn(c, e) }
			default:
				org := c.OrgID
				see[kind] = func(e Event) bool { return e.OrgID == org }
			}
		}
		filter = func(e Event) bool {
			fn := see[e.ResourceType]
			return fn != nil && fn(e)
		}
	} else {
		kinds := map[string]bool{}
		for kind, scope := range kindScopes {
			if c.Has(scope) {
				kinds[kind] = true
			}
		}
		if len(kinds) == 0 {
			return nil, apperr.PermissionDenied("watching the organization needs one of the scopes %q, %q, %q",
				identity.ScopeRunnersRead, identity.ScopeEnvironmentsRead, identity.ScopeSecretsRead)
		}
		org, subject := c.OrgID, c.Subject.ID
		filter = func(e Event) bool {
			return e.OrgID == org && kinds[e.ResourceType] && (e.Owner == "" || e.Owner == subject)
		}
	}
	if len(req.Kinds) > 0 {
		want := map[string]bool{}
		for _, k := range req.Kinds {
			if _, ok := consoleKinds[k]; !ok {
				return nil, apperr.Invalid("kinds", "%q is not a kind of change this feed carries", k)
			}
			want[k] = true
		}
		all := filter
		filter = func(e Event) bool { return want[e.ResourceType] && all(e) }
	}
	return filter, nil
}
