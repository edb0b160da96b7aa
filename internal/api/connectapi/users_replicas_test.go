package connectapi_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/testutil"
)

// TestUsers_KeyChangesReachEveryReplica: a user's key is cached on every
// replica that authenticated it, and a change to its owner made through one
// replica (disabled, removed from the organization, demoted) stops it on
// that replica at once and on the other (PostgreSQL) as soon as the change
// notice arrives. The cache trusts a key for a minute while a replica hears
// the notices and the poll gives up sooner, so the test fails if a replica
// ignored them.
func TestUsers_KeyChangesReachEveryReplica(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change is made by the organization's admin through the first
		// replica.
		change func(t *testing.T, f *usersFixture)
		// refused is the answer to the key's runner creation afterwards.
		refused connect.Code
	}{
		{name: "Disabled", refused: connect.CodeUnauthenticated, change: func(t *testing.T, f *usersFixture) {
			_, err := f.admin.Users.SetSuspended(ctx, connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: f.memberID, Suspended: true}))
			mustOK(t, err, "disable the member")
		}},
		{name: "Removed", refused: connect.CodeUnauthenticated, change: func(t *testing.T, f *usersFixture) {
			_, err := f.admin.Admin.RemoveMember(ctx, connect.NewRequest(&runyardv1.RemoveMemberRequest{OrganizationId: f.defaultID, UserId: f.memberID}))
			mustOK(t, err, "remove the member")
		}},
		{name: "Demoted", refused: connect.CodePermissionDenied, change: func(t *testing.T, f *usersFixture) {
			_, err := f.admin.Admin.SetMemberRole(ctx, connect.NewRequest(&runyardv1.SetMemberRoleRequest{UserId: f.memberID, Role: "member"}))
			mustOK(t, err, "demote the member")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
				replicas := []*testutil.TestServer{f.ts}
				if f.ts.DatabaseURL() != "" {
					replicas = append(replicas, testutil.StartServerWith(t, testutil.Postgres, testutil.Options{DatabaseURL: f.ts.DatabaseURL()}))
				}
				_, err := f.admin.Admin.SetMemberRole(ctx, connect.NewRequest(&runyardv1.SetMemberRoleRequest{UserId: f.memberID, Role: "runners-admin"}))
				mustOK(t, err, "make the member runners-admin")
				key := mintUserKey(t, f.st, f.defaultID, f.memberID, identity.ScopeRunnersRead, identity.ScopeRunnersWrite)
				var clients []*client
				for i, r := range replicas {
					waitNoticesLive(t, i, r)
					c := newClient(t, r.URL, protocols[0], bearer(key))
					mustCreateLinuxRunner(t, c) // caches the key with its owner's role
					clients = append(clients, c)
				}
				tc.change(t, f)
				create := func(c *client) error {
					_, err := c.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: name("late"),
						Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
					return err
				}
				// The replica that made the change: at once.
				wantCode(t, create(clients[0]), tc.refused)
				for i, c := range clients[1:] {
					// The others: within a bounded wait for the notice,
					// well short of the cache's minute.
					deadline := time.Now().Add(20 * time.Second)
					for {
						err := create(c)
						if connect.CodeOf(err) == tc.refused {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("replica %d still answers %v to the changed key", i+1, err)
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
			})
		})
	}
}

// TestOrganizations_DeletedKeysStopOnEveryReplica: the keys of a deleted
// organization, cached on every replica, stop on all of them (the
// deletion's notice), not when their cache entries expire a minute later.
func TestOrganizations_DeletedKeysStopOnEveryReplica(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		replicas := []*testutil.TestServer{f.ts}
		if f.ts.DatabaseURL() != "" {
			replicas = append(replicas, testutil.StartServerWith(t, testutil.Postgres, testutil.Options{DatabaseURL: f.ts.DatabaseURL()}))
		}
		org, err := f.install.create(name("doomed"))
		mustOK(t, err, "create organization")
		secret := identity.NewSecret(identity.PrefixAPIKey)
		id := uuid.NewString()
		mustOK(t, f.st.CreateToken(ctx, &identity.Token{ID: id, OrgID: org.GetId(), Name: "ci", Principal: identity.PrincipalServiceAccount,
			Scopes: []identity.Scope{identity.ScopeRunnersRead}, Creator: identity.Subject{ID: id, Principal: identity.PrincipalServiceAccount},
			Hash: identity.HashSecret(secret), CreatedAt: time.Now()}), "create the organization's key")
		var clients []*client
		for i, r := range replicas {
			waitNoticesLive(t, i, r)
			c := newClient(t, r.URL, protocols[0], bearer(secret))
			whoami(t, c) // caches the key
			clients = append(clients, c)
		}
		_, err = f.install.Orgs.DeleteOrganization(ctx, connect.NewRequest(&gitpodv1.DeleteOrganizationRequest{OrganizationId: org.GetId()}))
		mustOK(t, err, "delete the organization")
		for i, c := range clients {
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, err := c.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
				if connect.CodeOf(err) == connect.CodeUnauthenticated {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %d still answers %v to the deleted organization's key", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
}

// waitNoticesLive waits until replica i listens for the change notices:
// only then does it trust a cached key for the full minute.
func waitNoticesLive(t *testing.T, i int, r *testutil.TestServer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !r.Server.ReplicaNoticesLive() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %d does not listen for change notices", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
