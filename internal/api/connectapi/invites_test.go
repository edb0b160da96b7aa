package connectapi_test

import (
	"testing"

	"connectrpc.com/connect"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

// TestInvites_ListRevoke: an admin lists their organization's pending
// invites (ids, never tokens) and revokes one, whose token then no longer
// works; a member may not list them, another organization's admin finds
// neither the list nor the invite, and a used invite cannot be revoked.
func TestInvites_ListRevoke(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		create := func(role string) *runyardv1.CreateInviteResponse {
			t.Helper()
			res, err := f.admin.Admin.CreateInvite(ctx, connect.NewRequest(&runyardv1.CreateInviteRequest{Role: role}))
			mustOK(t, err, "create invite")
			if res.Msg.GetId() == "" || res.Msg.GetId() == res.Msg.GetInviteId() {
				t.Fatalf("CreateInvite: id %q beside token %q", res.Msg.GetId(), res.Msg.GetInviteId())
			}
			return res.Msg
		}
		revoked, kept := create("runners-admin"), create("member")

		res, err := f.admin.Admin.ListInvites(ctx, connect.NewRequest(&runyardv1.ListInvitesRequest{}))
		mustOK(t, err, "list invites")
		got := res.Msg.GetInvites()
		if len(got) != 2 || got[0].GetId() != revoked.GetId() || got[0].GetRole() != "runners-admin" || got[1].GetId() != kept.GetId() ||
			got[0].GetOrganizationId() != f.defaultID || got[0].GetCreatorId() != f.adminID {
			t.Fatalf("ListInvites = %v", got)
		}

		_, err = f.member.Admin.ListInvites(ctx, connect.NewRequest(&runyardv1.ListInvitesRequest{}))
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = f.otherAdmin.Admin.ListInvites(ctx, connect.NewRequest(&runyardv1.ListInvitesRequest{OrganizationId: f.defaultID}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = f.otherAdmin.Admin.RevokeInvite(ctx, connect.NewRequest(&runyardv1.RevokeInviteRequest{Id: revoked.GetId()}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = f.admin.Admin.RevokeInvite(ctx, connect.NewRequest(&runyardv1.RevokeInviteRequest{Id: "not-a-uuid"}))
		wantCode(t, err, connect.CodeInvalidArgument)

		out, err := f.admin.Admin.RevokeInvite(ctx, connect.NewRequest(&runyardv1.RevokeInviteRequest{Id: revoked.GetId()}))
		mustOK(t, err, "revoke invite")
		if out.Msg.GetInvite().GetId() != revoked.GetId() {
			t.Fatalf("RevokeInvite returned %v", out.Msg.GetInvite())
		}
		_, err = f.admin.Admin.RevokeInvite(ctx, connect.NewRequest(&runyardv1.RevokeInviteRequest{Id: revoked.GetId()}))
		wantCode(t, err, connect.CodeNotFound)
		signUp := func(token, email string) error {
			_, err := f.install.Admin.AcceptInvite(ctx, connect.NewRequest(&runyardv1.AcceptInviteRequest{InviteId: token, Email: email, Password: "invited-password-0123456789"}))
			return err
		}
		wantCode(t, signUp(revoked.GetInviteId(), "revoked@example.com"), connect.CodeNotFound)
		mustOK(t, signUp(kept.GetInviteId(), "kept@example.com"), "sign up with the kept invite")
		_, err = f.admin.Admin.RevokeInvite(ctx, connect.NewRequest(&runyardv1.RevokeInviteRequest{Id: kept.GetId()}))
		wantCode(t, err, connect.CodeFailedPrecondition)

		res, err = f.install.Admin.ListInvites(ctx, connect.NewRequest(&runyardv1.ListInvitesRequest{OrganizationId: f.defaultID}))
		mustOK(t, err, "the installation admin lists invites")
		if len(res.Msg.GetInvites()) != 0 {
			t.Fatalf("pending invites after a revoke and a sign-up: %v", res.Msg.GetInvites())
		}
	})
}
