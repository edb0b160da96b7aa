package connectapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// userClient is a client with the user and organization services.
type userClient struct {
	*orgClient
	Users gitpodv1connect.UserServiceClient
	Admin runyardv1connect.UserAdminServiceClient
}

func newUserClient(tb testing.TB, baseURL, secret string) *userClient {
	tb.Helper()
	p := protocols[0]
	hc := newHTTPClient(tb, p.h2c)
	auth := ""
	if secret != "" {
		auth = bearer(secret)
	}
	opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(auth))}, p.opts...)
	return &userClient{
		orgClient: newOrgClient(tb, baseURL, p, secret),
		Users:     gitpodv1connect.NewUserServiceClient(hc, baseURL, opts...),
		Admin:     runyardv1connect.NewUserAdminServiceClient(hc, baseURL, opts...),
	}
}

const testPassword = "correct horse battery staple"

func (c *userClient) createUser(tb testing.TB, email, orgID, role string) string {
	tb.Helper()
	res, err := c.Admin.CreateUser(ctx, connect.NewRequest(&runyardv1.CreateUserRequest{Email: email, Password: testPassword,
		OrganizationId: orgID, Role: role}))
	mustOK(tb, err, "create user "+email)
	return res.Msg.GetUser().GetId()
}

// mintUserKey stores an API key userID owns in orgID, as a user's session
// would create it (sign-in is another part's), and returns its secret.
func mintUserKey(tb testing.TB, st store.Store, orgID, userID string, scopes ...identity.Scope) string {
	tb.Helper()
	secret := identity.NewSecret(identity.PrefixAPIKey)
	err := st.CreateToken(context.Background(), &identity.Token{ID: uuid.NewString(), OrgID: orgID, Name: "key of " + userID,
		Principal: identity.PrincipalUser, Scopes: scopes, OwnerUserID: userID,
		Creator: identity.Subject{ID: userID, Principal: identity.PrincipalUser}, Hash: identity.HashSecret(secret), CreatedAt: time.Now()})
	mustOK(tb, err, "mint user key")
	return secret
}

// usersFixture: the default organization with an admin user and a member,
// a second organization with its own admin user, and each user's key
// (with every scope their role grants).
type usersFixture struct {
	ts                        *testutil.TestServer
	st                        store.Store
	defaultID, otherID        string
	adminID, memberID, bID    string
	install, admin, member    *userClient
	otherAdmin                *userClient
	adminKey, memberKey, bKey string
}

func newUsersFixture(t *testing.T, backend testutil.Backend) *usersFixture {
	t.Helper()
	ts, st := startServerWithStore(t, backend)
	f := &usersFixture{ts: ts, st: st, install: newUserClient(t, ts.URL, testutil.AdminToken)}
	f.defaultID = whoami(t, f.install.client).GetOrganizationId()
	other, err := f.install.create(name("other"))
	mustOK(t, err, "create organization")
	f.otherID = other.GetId()
	f.adminID = f.install.createUser(t, "admin@example.com", f.defaultID, "admin")
	f.memberID = f.install.createUser(t, "member@example.com", f.defaultID, "member")
	f.bID = f.install.createUser(t, "b@example.com", f.otherID, "admin")
	f.adminKey = mintUserKey(t, st, f.defaultID, f.adminID, identity.ScopeAdmin)
	f.memberKey = mintUserKey(t, st, f.defaultID, f.memberID, identity.RoleMember.Scopes()...)
	f.bKey = mintUserKey(t, st, f.otherID, f.bID, identity.ScopeAdmin)
	f.admin, f.member, f.otherAdmin = newUserClient(t, ts.URL, f.adminKey), newUserClient(t, ts.URL, f.memberKey), newUserClient(t, ts.URL, f.bKey)
	return f
}

func forEachUsersFixture(t *testing.T, fn func(t *testing.T, f *usersFixture)) {
	for _, b := range testutil.Backends() {
		t.Run(string(b), func(t *testing.T) { fn(t, newUsersFixture(t, b)) })
	}
}

// TestUsers_Permissions is the permission table of the user and member
// methods: the installation admin (bootstrap key), an organization's admin
// user, a member, and the admin of another organization; another
// organization's members and users are not_found.
func TestUsers_Permissions(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		callers := map[string]*userClient{"install": f.install, "admin": f.admin, "member": f.member, "other": f.otherAdmin}
		ok := connect.Code(0)
		for _, tc := range []struct {
			name string
			call func(c *userClient) error
			want map[string]connect.Code
		}{
			{"ListUsers", func(c *userClient) error {
				_, err := c.Admin.ListUsers(ctx, connect.NewRequest(&runyardv1.ListUsersRequest{}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": connect.CodePermissionDenied, "other": ok}},
			{"ListMembers", func(c *userClient) error {
				_, err := c.Orgs.ListMembers(ctx, connect.NewRequest(&gitpodv1.ListMembersRequest{OrganizationId: f.defaultID}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": ok, "other": connect.CodeNotFound}},
			{"GetUser", func(c *userClient) error {
				_, err := c.Users.GetUser(ctx, connect.NewRequest(&gitpodv1.GetUserRequest{UserId: f.memberID}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": ok, "other": connect.CodeNotFound}},
			{"CreateUser", func(c *userClient) error {
				_, err := c.Admin.CreateUser(ctx, connect.NewRequest(&runyardv1.CreateUserRequest{Email: name("u") + "@example.com",
					Password: testPassword, OrganizationId: f.defaultID, Role: "member"}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": connect.CodePermissionDenied, "other": connect.CodeNotFound}},
			{"CreateInvite", func(c *userClient) error {
				_, err := c.Admin.CreateInvite(ctx, connect.NewRequest(&runyardv1.CreateInviteRequest{OrganizationId: f.defaultID}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": connect.CodePermissionDenied, "other": connect.CodeNotFound}},
			{"SetPassword", func(c *userClient) error {
				_, err := c.Admin.SetPassword(ctx, connect.NewRequest(&runyardv1.SetPasswordRequest{UserId: "member@example.com", Password: testPassword + "!"}))
				return err
			}, map[string]connect.Code{"install": ok, "admin": ok, "member": connect.CodePermissionDenied, "other": connect.CodeNotFound}},
			{"GetAuthenticatedUser", func(c *userClient) error {
				_, err := c.Users.GetAuthenticatedUser(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedUserRequest{}))
				return err
			}, map[string]connect.Code{"install": connect.CodeNotFound, "admin": ok, "member": ok, "other": ok}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for who, c := range callers {
					err := tc.call(c)
					if got := connect.CodeOf(err); err == nil && tc.want[who] != ok || err != nil && got != tc.want[who] {
						t.Errorf("%s: got %v, want %v", who, err, tc.want[who])
					}
				}
			})
		}
		// An organization's admin lists only its members.
		res, err := f.otherAdmin.Admin.ListUsers(ctx, connect.NewRequest(&runyardv1.ListUsersRequest{}))
		mustOK(t, err, "list users of the other organization")
		if us := res.Msg.GetUsers(); len(us) != 1 || us[0].GetId() != f.bID {
			t.Fatalf("other organization's admin lists %v", us)
		}
		// A user caller is PRINCIPAL_USER with the user's id.
		who := whoami(t, f.member.client)
		if who.GetSubject().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER || who.GetSubject().GetId() != f.memberID {
			t.Fatalf("member's identity %v", who)
		}
		// Validation names the field.
		_, err = f.install.Admin.CreateUser(ctx, connect.NewRequest(&runyardv1.CreateUserRequest{Email: "not-an-email", Password: testPassword}))
		wantCode(t, err, connect.CodeInvalidArgument, "email")
		_, err = f.install.Admin.CreateUser(ctx, connect.NewRequest(&runyardv1.CreateUserRequest{Email: "short@example.com", Password: "short"}))
		wantCode(t, err, connect.CodeInvalidArgument, "password")
		_, err = f.install.Admin.CreateUser(ctx, connect.NewRequest(&runyardv1.CreateUserRequest{Email: "member@example.com", Password: testPassword}))
		wantCode(t, err, connect.CodeAlreadyExists)
	})
}

// TestUsers_LastAdmin: the last admin of an organization cannot be
// demoted or removed; once another member is admin, they can.
func TestUsers_LastAdmin(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		setRole := func(c *userClient, userID, role string) error {
			_, err := c.Admin.SetMemberRole(ctx, connect.NewRequest(&runyardv1.SetMemberRoleRequest{OrganizationId: f.defaultID, UserId: userID, Role: role}))
			return err
		}
		remove := func(c *userClient, userID string) error {
			_, err := c.Admin.RemoveMember(ctx, connect.NewRequest(&runyardv1.RemoveMemberRequest{OrganizationId: f.defaultID, UserId: userID}))
			return err
		}
		wantCode(t, setRole(f.admin, f.adminID, "member"), connect.CodeFailedPrecondition, "last admin")
		wantCode(t, remove(f.install, f.adminID), connect.CodeFailedPrecondition, "last admin")
		_, err := f.admin.Orgs.LeaveOrganization(ctx, connect.NewRequest(&gitpodv1.LeaveOrganizationRequest{}))
		wantCode(t, err, connect.CodeFailedPrecondition, "last admin")
		_, err = f.admin.Users.SetSuspended(ctx, connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: f.adminID, Suspended: true}))
		wantCode(t, err, connect.CodeFailedPrecondition)
		wantCode(t, setRole(f.admin, f.memberID, "boss"), connect.CodeInvalidArgument, "role")
		wantCode(t, setRole(f.member, f.memberID, "admin"), connect.CodePermissionDenied)

		_, err = f.admin.Orgs.SetRole(ctx, connect.NewRequest(&gitpodv1.SetRoleRequest{OrganizationId: f.defaultID, UserId: f.memberID,
			Role: gitpodv1.OrganizationRole_ORGANIZATION_ROLE_ADMIN}))
		mustOK(t, err, "promote the member")
		// The member's key carries a member's scopes: promoted, they need
		// a key with the admin scope.
		wantCode(t, setRole(f.member, f.adminID, "member"), connect.CodePermissionDenied, "admin")
		promoted := newUserClient(t, f.ts.URL, mintUserKey(t, f.st, f.defaultID, f.memberID, identity.ScopeAdmin))
		mustOK(t, setRole(promoted, f.adminID, "member"), "demote the first admin")
		mustOK(t, remove(promoted, f.adminID), "remove the first admin")
		res, err := f.install.Orgs.ListMembers(ctx, connect.NewRequest(&gitpodv1.ListMembersRequest{OrganizationId: f.defaultID}))
		mustOK(t, err, "list members")
		if ms := res.Msg.GetMembers(); len(ms) != 1 || ms[0].GetUserId() != f.memberID || ms[0].GetRole() != gitpodv1.OrganizationRole_ORGANIZATION_ROLE_ADMIN {
			t.Fatalf("members %v", ms)
		}
		// The removed admin's key stops working at once.
		_, err = f.admin.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated)
	})
}

// TestUsers_DisableRevokesKeys: disabling a user revokes their keys at
// once (the next call is unauthenticated); enabling them does not bring
// the keys back.
func TestUsers_DisableRevokesKeys(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		whoami(t, f.member.client)
		_, err := f.admin.Users.SetSuspended(ctx, connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: "member@example.com", Suspended: true}))
		mustOK(t, err, "disable")
		_, err = f.member.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated)
		res, err := f.admin.Users.GetUser(ctx, connect.NewRequest(&gitpodv1.GetUserRequest{UserId: f.memberID}))
		mustOK(t, err, "get user")
		if res.Msg.GetUser().GetStatus() != gitpodv1.UserStatus_USER_STATUS_SUSPENDED {
			t.Fatalf("status %v", res.Msg.GetUser().GetStatus())
		}
		_, err = f.admin.Users.SetSuspended(ctx, connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: f.memberID}))
		mustOK(t, err, "enable")
		_, err = f.member.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated, "revoked")
		// The other organization's admin cannot touch the member.
		_, err = f.otherAdmin.Users.SetSuspended(ctx, connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: f.memberID, Suspended: true}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

// TestUsers_KeyScopesCappedByRole: a user's new key may not carry a scope
// their role lacks, it is theirs (PRINCIPAL_USER, created by them, and so
// is what it creates), and it loses a scope as soon as the owner's role
// does.
func TestUsers_KeyScopesCappedByRole(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		_, err := f.member.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "too much", Scopes: []string{"runners:write"}}))
		wantCode(t, err, connect.CodePermissionDenied, "runners:write")
		_, err = f.admin.Admin.SetMemberRole(ctx, connect.NewRequest(&runyardv1.SetMemberRoleRequest{UserId: f.memberID, Role: "runners-admin"}))
		mustOK(t, err, "make the member runners-admin")
		res, err := f.member.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "runners", Scopes: []string{"runners:read", "runners:write"}}))
		mustOK(t, err, "create key")
		key := res.Msg.GetToken()
		if key.GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER || key.GetCreator().GetId() != f.memberID {
			t.Fatalf("key %v", key)
		}
		kc := newClient(t, f.ts.URL, protocols[0], bearer(res.Msg.GetSecret()))
		r := mustCreateLinuxRunner(t, kc)
		if r.GetCreator().GetId() != f.memberID || r.GetCreator().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER {
			t.Fatalf("runner's creator %v", r.GetCreator())
		}
		_, err = f.admin.Admin.SetMemberRole(ctx, connect.NewRequest(&runyardv1.SetMemberRoleRequest{UserId: f.memberID, Role: "member"}))
		mustOK(t, err, "downgrade")
		_, err = kc.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: name("late"),
			Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
		wantCode(t, err, connect.CodePermissionDenied, "runners:write")
		_, err = kc.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
		mustOK(t, err, "read with the scope the role keeps")
	})
}

// TestUsers_Invites: an invite is single use; a person signs up with it
// (no credential but the invite) and gets its role; an existing user joins
// with it; an unknown invite is not_found; passwords appear in no audit
// entry.
func TestUsers_Invites(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		res, err := f.admin.Admin.CreateInvite(ctx, connect.NewRequest(&runyardv1.CreateInviteRequest{Role: "runners-admin", Ttl: durationpb.New(time.Hour)}))
		mustOK(t, err, "create invite")
		token := res.Msg.GetInviteId()
		if !strings.HasPrefix(token, "ryd_inv_") || res.Msg.GetRole() != "runners-admin" {
			t.Fatalf("invite %v", res.Msg)
		}
		sum, err := f.otherAdmin.Orgs.GetOrganizationInviteSummary(ctx, connect.NewRequest(&gitpodv1.GetOrganizationInviteSummaryRequest{InviteId: token}))
		mustOK(t, err, "summary")
		if sum.Msg.GetOrganizationId() != f.defaultID || sum.Msg.GetOrganizationMemberCount() != 2 {
			t.Fatalf("summary %v", sum.Msg)
		}
		anon := newUserClient(t, f.ts.URL, "")
		const pw = "new member's password 123"
		acc, err := anon.Admin.AcceptInvite(ctx, connect.NewRequest(&runyardv1.AcceptInviteRequest{InviteId: token, Email: "New@Example.com", Password: pw}))
		mustOK(t, err, "accept")
		if m := acc.Msg.GetMember(); m.GetRole() != "runners-admin" || m.GetUser().GetEmail() != "new@example.com" || m.GetOrganizationId() != f.defaultID {
			t.Fatalf("member %v", m)
		}
		_, err = anon.Admin.AcceptInvite(ctx, connect.NewRequest(&runyardv1.AcceptInviteRequest{InviteId: token, Email: "again@example.com", Password: pw}))
		wantCode(t, err, connect.CodeNotFound, "used")
		_, err = f.otherAdmin.Orgs.JoinOrganization(ctx, connect.NewRequest(&gitpodv1.JoinOrganizationRequest{InviteId: token}))
		wantCode(t, err, connect.CodeNotFound)

		// The other organization's admin user joins the default one.
		inv, err := f.admin.Orgs.CreateOrganizationInvite(ctx, connect.NewRequest(&gitpodv1.CreateOrganizationInviteRequest{OrganizationId: f.defaultID}))
		mustOK(t, err, "vendor invite")
		j, err := f.otherAdmin.Orgs.JoinOrganization(ctx, connect.NewRequest(&gitpodv1.JoinOrganizationRequest{InviteId: inv.Msg.GetInvite().GetInviteId()}))
		mustOK(t, err, "join")
		if j.Msg.GetMember().GetUserId() != f.bID || j.Msg.GetMember().GetRole() != gitpodv1.OrganizationRole_ORGANIZATION_ROLE_MEMBER {
			t.Fatalf("joined %v", j.Msg.GetMember())
		}
		// A service account cannot join.
		inv, err = f.install.Orgs.CreateOrganizationInvite(ctx, connect.NewRequest(&gitpodv1.CreateOrganizationInviteRequest{OrganizationId: f.defaultID}))
		mustOK(t, err, "invite by the installation admin")
		_, err = f.install.Orgs.JoinOrganization(ctx, connect.NewRequest(&gitpodv1.JoinOrganizationRequest{InviteId: inv.Msg.GetInvite().GetInviteId()}))
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = anon.Admin.AcceptInvite(ctx, connect.NewRequest(&runyardv1.AcceptInviteRequest{InviteId: "ryd_inv_unknown", Email: "x@example.com", Password: pw}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = f.install.Orgs.GetOrganizationInvite(ctx, connect.NewRequest(&gitpodv1.GetOrganizationInviteRequest{OrganizationId: f.defaultID}))
		wantCode(t, err, connect.CodeFailedPrecondition, "one-time")

		_, err = f.admin.Admin.SetPassword(ctx, connect.NewRequest(&runyardv1.SetPasswordRequest{UserId: "new@example.com", Password: pw + "2"}))
		mustOK(t, err, "reset a password")
		_, err = f.admin.Admin.SetPassword(ctx, connect.NewRequest(&runyardv1.SetPasswordRequest{UserId: "new@example.com", Password: "short"}))
		wantCode(t, err, connect.CodeInvalidArgument, "password")

		// No password or invite token in any audit entry.
		var entries []*audit.Entry
		for _, org := range []string{"", f.defaultID, f.otherID} {
			es, err := f.st.FindAudit(ctx, audit.Filter{OrgID: org})
			mustOK(t, err, "audit entries")
			entries = append(entries, es...)
		}
		recorded := map[string]bool{}
		for _, e := range entries {
			recorded[e.Method] = true
			row := strings.Join([]string{e.Method, e.ObjectType, e.ObjectID, e.ActorID, e.KeyID, e.UserID, e.Outcome, e.UserAgent}, " ")
			for _, secret := range []string{pw, pw + "2", testPassword, token, "$argon2id"} {
				if strings.Contains(row, secret) {
					t.Fatalf("audit entry %+v contains a secret", e)
				}
			}
		}
		for _, m := range []string{"runyard.v1.UserAdminService/CreateUser", "runyard.v1.UserAdminService/CreateInvite",
			"runyard.v1.UserAdminService/AcceptInvite", "gitpod.v1.OrganizationService/JoinOrganization",
			"runyard.v1.UserAdminService/SetPassword"} {
			if !recorded[m] {
				t.Errorf("no audit entry for %s (have %v)", m, recorded)
			}
		}
	})
}
