package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/users"
)

// testConsoleEvents: the console's kinds reach the events table with the
// change that makes them: pods, agent types, the organization, its
// memberships (for the organization and for the member), invites, users'
// and service accounts' keys (never a runner's) and audit entries; a write
// that changes nothing a page shows records nothing.
func testConsoleEvents(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	userID := uuid.NewString()
	must(t, s.CreateUser(ctx, &users.User{ID: userID, Email: userID + "@example.com", CreatedAt: base, UpdatedAt: base}), "create user")
	_, last, err := s.EventBounds(ctx)
	must(t, err, "bounds")

	key, _ := newToken(org.ID, "console-key")
	runnerKey, _ := newToken(org.ID, "runner-key")
	runnerKey.Principal, runnerKey.RunnerID = identity.PrincipalRunner, uuid.NewString()
	userKey, _ := newToken(org.ID, "user-key")
	userKey.Principal, userKey.OwnerUserID = identity.PrincipalUser, userID
	pod := newPod(org.ID, 1)
	agent := &pods.AgentType{ID: "console-agent", OrgID: org.ID, Name: "Console", Command: []string{"/bin/true"}, CreatedAt: base}
	inv := &users.Invite{ID: uuid.NewString(), Hash: uuid.NewString(), OrgID: org.ID, Role: identity.RoleMember,
		CreatorID: userID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	type ev struct{ kind, id, op, owner string }
	for _, tc := range []struct {
		name  string
		write func() error
		want  []ev
	}{
		{"pod created", func() error { return s.CreatePod(ctx, pod) }, []ev{{events.TypeAgentExecution, pod.Key, events.OpCreate, ""}}},
		{"pod placed", func() error {
			_, err := s.UpdatePod(ctx, org.ID, pod.Key, func(p *pods.Pod) error { p.Status, p.RunnerID = pods.StatusRunning, "r1"; return nil })
			return err
		}, []ev{{events.TypeAgentExecution, pod.Key, events.OpUpdate, ""}}},
		{"pod unchanged", func() error {
			_, err := s.UpdatePod(ctx, org.ID, pod.Key, func(*pods.Pod) error { return nil })
			return err
		}, nil},
		{"agent type created", func() error { return s.CreateAgentType(ctx, agent) }, []ev{{events.TypeAgent, agent.ID, events.OpCreate, ""}}},
		{"agent type deleted", func() error { return s.DeleteAgentType(ctx, org.ID, agent.ID) }, []ev{{events.TypeAgent, agent.ID, events.OpDelete, ""}}},
		{"organization renamed", func() error {
			_, err := s.UpdateOrganization(ctx, org.ID, func(o *identity.Organization) error { o.Name += "-renamed"; return nil })
			return err
		}, []ev{{events.TypeOrganization, org.ID, events.OpUpdate, ""}}},
		{"member added", func() error {
			return s.CreateMembership(ctx, &users.Membership{OrgID: org.ID, UserID: userID, Role: identity.RoleMember, CreatedAt: base})
		}, []ev{{events.TypeOrganization, userID, events.OpCreate, ""}, {events.TypeUser, userID, events.OpCreate, userID}}},
		{"invite created", func() error { return s.CreateInvite(ctx, inv) }, []ev{{events.TypeOrganization, inv.ID, events.OpCreate, ""}}},
		{"invite revoked", func() error { _, err := s.DeleteInvite(ctx, org.ID, inv.ID); return err },
			[]ev{{events.TypeOrganization, inv.ID, events.OpDelete, ""}}},
		{"service account key", func() error { return s.CreateToken(ctx, key) }, []ev{{events.TypeAPIKey, key.ID, events.OpCreate, ""}}},
		{"user's key", func() error { return s.CreateToken(ctx, userKey) }, []ev{{events.TypeAPIKey, userKey.ID, events.OpCreate, userID}}},
		{"user's key revoked", func() error {
			_, err := s.RevokeToken(ctx, org.ID, userKey.ID, base.Add(time.Minute), nil)
			return err
		}, []ev{{events.TypeAPIKey, userKey.ID, events.OpUpdate, userID}}},
		{"runner's key", func() error { return s.CreateToken(ctx, runnerKey) }, nil},
		{"audit entry", func() error {
			return s.AppendAudit(ctx, &audit.Entry{OrgID: org.ID, ActorPrincipal: identity.PrincipalServiceAccount, ActorID: "sa",
				Surface: audit.SurfaceREST, Method: "POST /pods", ClientIP: "127.0.0.1", Outcome: audit.OutcomeOK, CreatedAt: base})
		}, []ev{{events.TypeAuditLog, "", events.OpCreate, ""}}},
		{"member removed", func() error { return s.DeleteMembership(ctx, org.ID, userID) },
			[]ev{{events.TypeOrganization, userID, events.OpDelete, ""}, {events.TypeUser, userID, events.OpDelete, userID}}},
	} {
		must(t, tc.write(), tc.name)
		evs, err := s.ReadEvents(ctx, last, 1000)
		must(t, err, tc.name+": read events")
		var got []ev
		for _, e := range evs {
			last = e.ID
			if e.OrgID != org.ID {
				continue // another test's
			}
			id := e.ResourceID
			if e.ResourceType == events.TypeAuditLog {
				id = "" // the entry's sequence number
			}
			got = append(got, ev{e.ResourceType, id, e.Operation, e.Owner})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: events %v, want %v", tc.name, fmt.Sprint(got), fmt.Sprint(tc.want))
		}
	}
}
