package connectapi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// methodClass groups methods by the permission they need.
type methodClass int

const (
	runnersRead  methodClass = iota // runners:read
	runnersWrite                    // runners:write
	anyCaller                       // any authenticated caller
	tokensAdmin                     // admin
)

// authzEnv is what the method calls of the authorization table work on; the
// admin prepares a fresh object for each call that consumes one.
type authzEnv struct {
	admin *client
	// target is a runner of the admin's organization.
	target string
}

func (e *authzEnv) freshRunner(t *testing.T) string {
	t.Helper()
	return mustCreateLinuxRunner(t, e.admin).GetRunnerId()
}

// authzMethods is every method of RunnerService, IdentityService's
// GetAuthenticatedIdentity and GetIDToken and TokenService, each called with
// a valid request.
var authzMethods = []struct {
	name  string
	class methodClass
	call  func(t *testing.T, c *client, e *authzEnv) error
}{
	{"CreateRunner", runnersWrite, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: name("authz"), Provider: provLinux}))
		return err
	}},
	{"GetRunner", runnersRead, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: e.target}))
		return err
	}},
	{"ListRunners", runnersRead, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{}))
		return err
	}},
	{"UpdateRunner", runnersWrite, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: e.target,
			Spec: &gitpodv1.UpdateRunnerRequest_Spec{Configuration: &gitpodv1.UpdateRunnerRequest_Configuration{AutoUpdate: ptr(true)}}}))
		return err
	}},
	{"DeleteRunner", runnersWrite, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: e.freshRunner(t)}))
		return err
	}},
	{"CreateRunnerToken", runnersWrite, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: e.target}))
		return err
	}},
	{"ParseContextURL", runnersRead, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Runners.ParseContextURL(ctx, connect.NewRequest(&gitpodv1.ParseContextURLRequest{RunnerId: e.target, ContextUrl: "https://github.com/org/repo"}))
		return err
	}},
	{"GetAuthenticatedIdentity", anyCaller, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
		return err
	}},
	{"GetIDToken", anyCaller, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Identity.GetIDToken(ctx, connect.NewRequest(&gitpodv1.GetIDTokenRequest{Audience: []string{"https://authz.example"}}))
		return err
	}},
	{"CreateToken", tokensAdmin, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: name("authz-key"), Scopes: []string{"admin"}}))
		return err
	}},
	{"ListTokens", tokensAdmin, func(t *testing.T, c *client, e *authzEnv) error {
		_, err := c.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{}))
		return err
	}},
	{"RevokeToken", tokensAdmin, func(t *testing.T, c *client, e *authzEnv) error {
		key, _ := mustCreateKey(t, e.admin, name("victim"), "runners:read")
		_, err := c.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: key.GetTokenId()}))
		return err
	}},
}

// allowed builds the expected codes of a principal: OK for the classes
// given, permission_denied for the others.
func allowed(classes ...methodClass) map[methodClass]connect.Code {
	m := map[methodClass]connect.Code{}
	for _, c := range []methodClass{runnersRead, runnersWrite, anyCaller, tokensAdmin} {
		if !slices.Contains(classes, c) {
			m[c] = connect.CodePermissionDenied
		}
	}
	return m
}

var unauthenticated = map[methodClass]connect.Code{
	runnersRead: connect.CodeUnauthenticated, runnersWrite: connect.CodeUnauthenticated,
	anyCaller: connect.CodeUnauthenticated, tokensAdmin: connect.CodeUnauthenticated,
}

// mustCreateTokenInStore stores an API key directly, for what the API refuses
// to create (an expired key, a key of another organization).
func mustCreateTokenInStore(t *testing.T, st store.Store, orgID string, expires *time.Time, scopes ...identity.Scope) (*identity.Token, string) {
	t.Helper()
	secret := identity.NewSecret(identity.PrefixAPIKey)
	id := uuid.NewString()
	tk := &identity.Token{
		ID: id, OrgID: orgID, Name: "stored-" + id[:8], Principal: identity.PrincipalServiceAccount, Scopes: scopes,
		Creator: identity.Subject{ID: id, Principal: identity.PrincipalServiceAccount}, Hash: identity.HashSecret(secret),
		CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: expires,
	}
	mustOK(t, st.CreateToken(context.Background(), tk), "store token")
	return tk, secret
}

func TestAuthz_Methods(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			e := &authzEnv{admin: admin, target: mustCreateLinuxRunner(t, admin).GetRunnerId()}
			orgID := whoami(t, admin).GetOrganizationId()

			_, readKey := mustCreateKey(t, admin, "read", "runners:read")
			_, writeKey := mustCreateKey(t, admin, "write", "runners:write")
			_, runnersKey := mustCreateKey(t, admin, "runners", "runners:read", "runners:write")
			_, otherKey := mustCreateKey(t, admin, "other", "environments:read", "environments:write", "secrets:read")
			revoked, revokedKey := mustCreateKey(t, admin, "revoked", "admin")
			_, err := admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: revoked.GetTokenId()}))
			mustOK(t, err, "revoke")
			_, expiredKey := mustCreateTokenInStore(t, st, orgID, ptr(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)), identity.ScopeAdmin)
			_, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("authz-runner"), Provider: provLinux})
			runnerToken := mustExchange(t, admin, x)

			principals := []struct {
				name          string
				authorization string
				want          map[methodClass]connect.Code
			}{
				{"NoToken", "", unauthenticated},
				{"BasicScheme", "Basic x", unauthenticated},
				{"BasicAdmin", "Basic " + testutil.AdminToken, unauthenticated},
				{"BearerAlone", "Bearer", unauthenticated},
				{"TokenWithoutScheme", testutil.AdminToken, unauthenticated},
				{"UnknownToken", bearer("ryd_ak_not-a-key"), unauthenticated},
				{"RevokedKey", bearer(revokedKey), unauthenticated},
				{"ExpiredKey", bearer(expiredKey), unauthenticated},
				{"ExchangeTokenAsBearer", bearer(x), unauthenticated},
				{"ReadKey", bearer(readKey), allowed(runnersRead, anyCaller)},
				{"WriteKey", bearer(writeKey), allowed(runnersWrite, anyCaller)},
				{"RunnersKey", bearer(runnersKey), allowed(runnersRead, runnersWrite, anyCaller)},
				{"OtherScopesKey", bearer(otherKey), allowed(anyCaller)},
				{"RunnerToken", bearer(runnerToken), allowed(anyCaller)},
				{"Admin", bearer(testutil.AdminToken), allowed(runnersRead, runnersWrite, anyCaller, tokensAdmin)},
				{"AdminLowercaseScheme", "bearer " + testutil.AdminToken, allowed(runnersRead, runnersWrite, anyCaller, tokensAdmin)},
				{"AdminUserKeyScheme", "UserKey " + testutil.AdminToken, allowed(runnersRead, runnersWrite, anyCaller, tokensAdmin)},
			}
			for _, p := range protocols {
				t.Run(p.name, func(t *testing.T) {
					for _, pr := range principals {
						c := newClient(t, ts.URL, p, pr.authorization)
						t.Run(pr.name, func(t *testing.T) {
							for _, m := range authzMethods {
								t.Run(m.name, func(t *testing.T) {
									err := m.call(t, c, e)
									want, denied := pr.want[m.class]
									if !denied {
										mustOK(t, err, m.name)
										return
									}
									wantCode(t, err, want)
								})
							}
						})
					}
				})
			}

			t.Run("ExchangeTokenNeedsNoCaller", func(t *testing.T) {
				_, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("authz-runner"), Provider: provLinux})
				mustExchange(t, newClient(t, ts.URL, protocols[0], ""), x)
			})
		})
	}
}

// TestAuthz_Organizations checks that organizations isolate runners and
// tokens. The API cannot create a second organization yet, so the test stores
// one, with an admin key, in the database the server uses.
func TestAuthz_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			other := &identity.Organization{ID: uuid.NewString(), Name: "other", CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
			mustOK(t, st.CreateOrganization(context.Background(), other), "store organization")
			_, otherSecret := mustCreateTokenInStore(t, st, other.ID, nil, identity.ScopeAdmin)

			forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
				them := newClient(t, ts.URL, p, bearer(otherSecret))
				if got := whoami(t, them).GetOrganizationId(); got != other.ID {
					t.Fatalf("other key's organization = %q, want %q", got, other.ID)
				}
				me := whoami(t, admin)

				// Runner names are unique per organization only.
				shared := name("shared")
				ours, _ := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: shared, Provider: provLinux})
				theirs, theirX := mustCreateRunner(t, them, &gitpodv1.CreateRunnerRequest{Name: shared, Provider: provGCP})

				for _, side := range []struct {
					name          string
					caller        *client
					foreign, own  *gitpodv1.Runner
					foreignCreate string
				}{
					{"TheyCannotSeeOurs", them, ours, theirs, me.GetSubject().GetId()},
					{"WeCannotSeeTheirs", admin, theirs, ours, theirs.GetCreator().GetId()},
				} {
					t.Run(side.name, func(t *testing.T) {
						c, id := side.caller, side.foreign.GetRunnerId()
						_, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
						wantCode(t, err, connect.CodeNotFound)
						_, err = c.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: id, Name: ptr(name("hijack")),
							Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: ptr(phaseInactive)}}))
						wantCode(t, err, connect.CodeNotFound)
						_, err = c.Runners.CreateRunnerToken(ctx, connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: id}))
						wantCode(t, err, connect.CodeNotFound)
						for _, force := range []bool{false, true} {
							_, err = c.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: id, Force: force}))
							wantCode(t, err, connect.CodeNotFound)
						}
						all := ids(listAll(t, c, nil, 100))
						if slices.Contains(all, id) {
							t.Fatal("another organization's runner is listed")
						}
						if !slices.Contains(all, side.own.GetRunnerId()) {
							t.Fatal("own runner not listed")
						}
						if got := listAll(t, c, &gitpodv1.ListRunnersRequest_Filter{CreatorIds: []string{side.foreignCreate}}, 100); len(got) != 0 {
							t.Fatalf("filtering by another organization's creator listed %v", ids(got))
						}
					})
				}
				t.Run("UntouchedAfterward", func(t *testing.T) {
					for _, c := range []struct {
						caller *client
						want   *gitpodv1.Runner
					}{{admin, ours}, {them, theirs}} {
						res, err := c.caller.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: c.want.GetRunnerId()}))
						mustOK(t, err, "get own runner")
						diffProto(t, "runner after the other organization's attempts", res.Msg.GetRunner(), c.want)
					}
				})
				t.Run("RunnerTokenBelongsToItsOrganization", func(t *testing.T) {
					id := whoami(t, newClient(t, ts.URL, p, bearer(mustExchange(t, admin, theirX))))
					if id.GetOrganizationId() != other.ID || id.GetSubject().GetId() != theirs.GetRunnerId() {
						t.Fatalf("their runner's identity = %v, want runner %s in %s", id, theirs.GetRunnerId(), other.ID)
					}
				})
				t.Run("Tokens", func(t *testing.T) {
					ourKey, ourSecret := mustCreateKey(t, admin, "ours-"+p.name, "runners:read")
					res, err := them.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{IncludeRevoked: true, Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
					mustOK(t, err, "list their tokens")
					for _, tk := range res.Msg.GetTokens() {
						if tk.GetTokenId() == ourKey.GetTokenId() || tk.GetTokenId() == me.GetSubject().GetId() {
							t.Fatalf("our token %s listed to another organization", tk.GetTokenId())
						}
					}
					_, err = them.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: ourKey.GetTokenId()}))
					wantCode(t, err, connect.CodeNotFound)
					whoami(t, newClient(t, ts.URL, p, bearer(ourSecret)))
				})
			})
		})
	}
}
