package connectapi_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// orgClient is a client with the organization services.
type orgClient struct {
	*client
	Orgs    gitpodv1connect.OrganizationServiceClient
	Install runyardv1connect.InstallationServiceClient
}

func newOrgClient(tb testing.TB, baseURL string, p protocol, secret string) *orgClient {
	tb.Helper()
	hc := newHTTPClient(tb, p.h2c)
	opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(bearer(secret)))}, p.opts...)
	return &orgClient{
		client:  newClient(tb, baseURL, p, bearer(secret)),
		Orgs:    gitpodv1connect.NewOrganizationServiceClient(hc, baseURL, opts...),
		Install: runyardv1connect.NewInstallationServiceClient(hc, baseURL, opts...),
	}
}

func (c *orgClient) create(name string) (*gitpodv1.Organization, error) {
	res, err := c.Orgs.CreateOrganization(ctx, connect.NewRequest(&gitpodv1.CreateOrganizationRequest{Name: name}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrganization(), nil
}

func (c *orgClient) get(id string) (*gitpodv1.Organization, error) {
	res, err := c.Orgs.GetOrganization(ctx, connect.NewRequest(&gitpodv1.GetOrganizationRequest{OrganizationId: id}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrganization(), nil
}

func (c *orgClient) rename(id, name string) (*gitpodv1.Organization, error) {
	res, err := c.Orgs.UpdateOrganization(ctx, connect.NewRequest(&gitpodv1.UpdateOrganizationRequest{OrganizationId: id, Name: name}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrganization(), nil
}

func (c *orgClient) del(id string) error {
	_, err := c.Orgs.DeleteOrganization(ctx, connect.NewRequest(&gitpodv1.DeleteOrganizationRequest{OrganizationId: id}))
	return err
}

func (c *orgClient) list() ([]*gitpodv1.Organization, error) {
	res, err := c.Install.ListOrganizations(ctx, connect.NewRequest(&runyardv1.ListOrganizationsRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrganizations(), nil
}

// TestOrganizations: the installation admin (the bootstrap key) creates,
// lists, renames and deletes organizations and gives a new one its first
// admin key; an organization's admin sees and renames only its own; to
// everyone else another organization is not_found; deleting one that still
// has runners is refused with the count, and deleting it ends its keys.
func TestOrganizations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		install := newOrgClient(t, ts.URL, p, testutil.AdminToken)
		defaultID := whoami(t, install.client).GetOrganizationId()
		_, plainAdmin := mustCreateKey(t, install.client, "plain-admin", "admin")
		other := newOrgClient(t, ts.URL, p, plainAdmin)

		acme, err := install.create("  Acme Corp ")
		mustOK(t, err, "create")
		if acme.GetName() != "Acme Corp" || acme.GetId() == "" || !acme.GetCreatedAt().AsTime().Equal(acme.GetUpdatedAt().AsTime()) {
			t.Fatalf("created %v", acme)
		}
		t.Run("BadInput", func(t *testing.T) {
			for _, tc := range []struct {
				name, org string
				code      connect.Code
				field     string
			}{
				{"EmptyName", "", connect.CodeInvalidArgument, "name"},
				{"SlashInName", "a/b", connect.CodeInvalidArgument, "name"},
				{"TakenName", "Acme Corp", connect.CodeAlreadyExists, "Acme Corp"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := install.create(tc.org)
					wantCode(t, err, tc.code, tc.field)
				})
			}
			_, err := install.get("not-a-uuid")
			wantCode(t, err, connect.CodeInvalidArgument, "organizationId")
			_, err = install.rename(acme.GetId(), "\x01")
			wantCode(t, err, connect.CodeInvalidArgument, "name")
		})

		list, err := install.list()
		mustOK(t, err, "list")
		if len(list) != 2 || list[0].GetId() != acme.GetId() || list[1].GetId() != defaultID {
			t.Fatalf("list = %v, want Acme Corp then default", list)
		}

		// The installation admin gives the new organization its first key.
		res, err := install.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{
			Name: "acme-admin", Scopes: []string{"admin"}, OrganizationId: acme.GetId(),
		}))
		mustOK(t, err, "create acme's key")
		acmeAdmin := newOrgClient(t, ts.URL, p, res.Msg.GetSecret())
		if got := whoami(t, acmeAdmin.client).GetOrganizationId(); got != acme.GetId() {
			t.Fatalf("acme's key is in organization %s, want %s", got, acme.GetId())
		}

		t.Run("Authorization", func(t *testing.T) {
			cases := []struct {
				name string
				call func() error
				code connect.Code // 0: succeeds
			}{
				{"OrgAdminGetsOwn", func() error { _, err := acmeAdmin.get(acme.GetId()); return err }, 0},
				{"OrgAdminGetsOther", func() error { _, err := acmeAdmin.get(defaultID); return err }, connect.CodeNotFound},
				{"OrgAdminRenamesOther", func() error { _, err := acmeAdmin.rename(defaultID, "x"); return err }, connect.CodeNotFound},
				{"OrgAdminDeletesOther", func() error { return acmeAdmin.del(defaultID) }, connect.CodeNotFound},
				{"OrgAdminDeletesOwn", func() error { return acmeAdmin.del(acme.GetId()) }, connect.CodePermissionDenied},
				{"OrgAdminCreates", func() error { _, err := acmeAdmin.create("mine"); return err }, connect.CodePermissionDenied},
				{"OrgAdminLists", func() error { _, err := acmeAdmin.list(); return err }, connect.CodePermissionDenied},
				{"PlainAdminGetsOther", func() error { _, err := other.get(acme.GetId()); return err }, connect.CodeNotFound},
				{"PlainAdminKeyInOther", func() error {
					_, err := other.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{
						Name: "x", Scopes: []string{"admin"}, OrganizationId: acme.GetId(),
					}))
					return err
				}, connect.CodeNotFound},
				{"InstallAdminGetsAny", func() error { _, err := install.get(acme.GetId()); return err }, 0},
				{"InstallAdminDeletesOwn", func() error { return install.del(defaultID) }, connect.CodeFailedPrecondition},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					if tc.code == 0 {
						mustOK(t, err, tc.name)
						return
					}
					wantCode(t, err, tc.code)
				})
			}
		})

		renamed, err := acmeAdmin.rename(acme.GetId(), "Acme Inc")
		mustOK(t, err, "rename own")
		if renamed.GetName() != "Acme Inc" || !renamed.GetUpdatedAt().AsTime().After(acme.GetUpdatedAt().AsTime()) {
			t.Fatalf("renamed %v", renamed)
		}
		_, err = install.rename(acme.GetId(), "default")
		wantCode(t, err, connect.CodeAlreadyExists, "default")

		runner := mustCreateLinuxRunner(t, acmeAdmin.client)
		wantCode(t, install.del(acme.GetId()), connect.CodeFailedPrecondition, "1 runner", "0 environments")
		_, err = acmeAdmin.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: runner.GetRunnerId(), Force: true}))
		mustOK(t, err, "delete runner")
		mustOK(t, install.del(acme.GetId()), "delete acme")

		_, err = install.get(acme.GetId())
		wantCode(t, err, connect.CodeNotFound)
		_, err = acmeAdmin.Identity.GetAuthenticatedIdentity(context.Background(), connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated)
		list, err = install.list()
		mustOK(t, err, "list after delete")
		if len(list) != 1 || list[0].GetId() != defaultID {
			t.Fatalf("list after delete = %v", list)
		}
	})
}
