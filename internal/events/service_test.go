package events

import (
	"context"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// TestService_Filter: who sees which event, for WatchEvents and for the
// console's feed, and a page's kinds narrowing it.
func TestService_Filter(t *testing.T) {
	user := func(id string, scopes ...identity.Scope) *identity.Caller {
		return &identity.Caller{OrgID: "o1", UserID: id, Subject: identity.Subject{ID: id, Principal: identity.PrincipalUser}, Scopes: scopes}
	}
	sa := func(scopes ...identity.Scope) *identity.Caller {
		return &identity.Caller{OrgID: "o1", Subject: identity.Subject{ID: "sa", Principal: identity.PrincipalServiceAccount}, Scopes: scopes}
	}
	ev := func(kind, org, owner string) Event { return Event{ResourceType: kind, OrgID: org, Owner: owner} }
	reader := user("u1", identity.ScopeRunnersRead, identity.ScopePodsRead)
	for _, tc := range []struct {
		name    string
		caller  *identity.Caller
		req     WatchRequest
		ev      Event
		visible bool
	}{
		{"WatchEvents: a runner", reader, WatchRequest{}, ev(TypeRunner, "o1", ""), true},
		{"WatchEvents: never a pod", reader, WatchRequest{}, ev(TypeAgentExecution, "o1", ""), false},
		{"WatchEvents: never an organization change", reader, WatchRequest{}, ev(TypeOrganization, "o1", ""), false},
		{"console: a pod with pods:read", reader, WatchRequest{Console: true}, ev(TypeAgentExecution, "o1", ""), true},
		{"console: another organization's pod", reader, WatchRequest{Console: true}, ev(TypeAgentExecution, "o2", ""), false},
		{"console: a pod without pods:read", user("u1", identity.ScopeRunnersRead), WatchRequest{Console: true}, ev(TypeAgentExecution, "o1", ""), false},
		{"console: an agent type", reader, WatchRequest{Console: true}, ev(TypeAgent, "o1", ""), true},
		{"console: the organization, any member", user("u1"), WatchRequest{Console: true}, ev(TypeOrganization, "o1", ""), true},
		{"console: another organization", user("u1"), WatchRequest{Console: true}, ev(TypeOrganization, "o2", ""), false},
		{"console: another organization made, for an installation admin", &identity.Caller{OrgID: "o1", UserID: "u1", InstallationAdmin: true,
			Subject: identity.Subject{ID: "u1", Principal: identity.PrincipalUser}}, WatchRequest{Console: true}, Event{ResourceType: TypeOrganization, OrgID: "o2", ResourceID: "o2"}, true},
		{"console: not its members, even for an installation admin", &identity.Caller{OrgID: "o1", UserID: "u1", InstallationAdmin: true,
			Subject: identity.Subject{ID: "u1", Principal: identity.PrincipalUser}}, WatchRequest{Console: true}, Event{ResourceType: TypeOrganization, OrgID: "o2", ResourceID: "u2"}, false},
		{"console: my membership elsewhere", user("u1"), WatchRequest{Console: true}, ev(TypeUser, "o2", "u1"), true},
		{"console: another's membership", user("u1"), WatchRequest{Console: true}, ev(TypeUser, "o1", "u2"), false},
		{"console: a service account has no memberships", sa(identity.ScopeAdmin), WatchRequest{Console: true}, ev(TypeUser, "o1", ""), false},
		{"console: my key", user("u1"), WatchRequest{Console: true}, ev(TypeAPIKey, "o1", "u1"), true},
		{"console: another user's key", user("u1"), WatchRequest{Console: true}, ev(TypeAPIKey, "o1", "u2"), false},
		{"console: an admin sees every key", sa(identity.ScopeAdmin), WatchRequest{Console: true}, ev(TypeAPIKey, "o1", "u2"), true},
		{"console: not another organization's keys", sa(identity.ScopeAdmin), WatchRequest{Console: true}, ev(TypeAPIKey, "o2", ""), false},
		{"console: audit with audit:read", user("u1", identity.ScopeAuditRead), WatchRequest{Console: true}, ev(TypeAuditLog, "o1", ""), true},
		{"console: audit without", reader, WatchRequest{Console: true}, ev(TypeAuditLog, "o1", ""), false},
		{"console: another user's secret", user("u1", identity.ScopeSecretsRead), WatchRequest{Console: true}, ev(TypeSecret, "o1", "u2"), false},
		{"console: my secret", user("u1", identity.ScopeSecretsRead), WatchRequest{Console: true}, ev(TypeSecret, "o1", "u1"), true},
		{"console: a page's kinds keep it", reader, WatchRequest{Console: true, Kinds: []string{TypeAgentExecution}}, ev(TypeAgentExecution, "o1", ""), true},
		{"console: a page's kinds drop the rest", reader, WatchRequest{Console: true, Kinds: []string{TypeAgentExecution}}, ev(TypeRunner, "o1", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{}
			filter, err := s.filter(context.Background(), tc.caller, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := filter(tc.ev); got != tc.visible {
				t.Errorf("visible = %v, want %v", got, tc.visible)
			}
		})
	}
	if _, err := (&Service{}).filter(context.Background(), reader, WatchRequest{Console: true, Kinds: []string{"RESOURCE_TYPE_PODS"}}); !apperr.Is(err, apperr.CodeInvalid) ||
		apperr.As(err).Field != "kinds" {
		t.Errorf("an unknown kind: %v, want invalid_argument naming kinds", err)
	}
}
