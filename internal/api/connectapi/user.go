package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/users"
)

// userHandler serves gitpod.v1.UserService's account methods.
type userHandler struct {
	svc *users.Service
	log *slog.Logger
}

// userAdminHandler serves runyard.v1.UserAdminService.
type userAdminHandler struct {
	svc *users.Service
	log *slog.Logger
}

var (
	_ gitpodv1connect.UserServiceHandler       = userService{}
	_ runyardv1connect.UserAdminServiceHandler = userAdminService{}
)

// userToProto renders a user; the password hash is never copied.
// organization_id is the organization the caller sees the user in.
func userToProto(u *users.User, orgID string) *gitpodv1.User {
	status := gitpodv1.UserStatus_USER_STATUS_ACTIVE
	if u.DisabledAt != nil {
		status = gitpodv1.UserStatus_USER_STATUS_SUSPENDED
	}
	return &gitpodv1.User{Id: u.ID, Email: u.Email, Name: u.Name, CreatedAt: timestamppb.New(u.CreatedAt),
		OrganizationId: orgID, Status: status}
}

func callerOrg(ctx context.Context) string {
	if c, ok := identity.FromContext(ctx); ok {
		return c.OrgID
	}
	return ""
}

func memberToProto(m *users.Member) *runyardv1.Member {
	return &runyardv1.Member{User: userToProto(m.User, m.Membership.OrgID), OrganizationId: m.Membership.OrgID,
		Role: string(m.Membership.Role), MemberSince: timestamppb.New(m.Membership.CreatedAt), InstallationAdmin: m.User.InstallationAdmin}
}

// vendorRole maps runyard's roles onto the vendor's two: admin is admin,
// every other role is a member with more or fewer scopes.
func vendorRole(r identity.Role) gitpodv1.OrganizationRole {
	if r == identity.RoleAdmin {
		return gitpodv1.OrganizationRole_ORGANIZATION_ROLE_ADMIN
	}
	return gitpodv1.OrganizationRole_ORGANIZATION_ROLE_MEMBER
}

func vendorMemberToProto(m *users.Member) *gitpodv1.OrganizationMember {
	u := userToProto(m.User, m.Membership.OrgID)
	return &gitpodv1.OrganizationMember{Email: u.Email, FullName: u.Name, LoginProvider: "password",
		MemberSince: timestamppb.New(m.Membership.CreatedAt), Role: vendorRole(m.Membership.Role), Status: u.Status, UserId: u.Id}
}

// GetAuthenticatedUser answers for a user caller; a service account's key
// is not a user (not_found).
func (h *userHandler) GetAuthenticatedUser(ctx context.Context, req *connect.Request[gitpodv1.GetAuthenticatedUserRequest]) (*connect.Response[gitpodv1.GetAuthenticatedUserResponse], error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err == nil && c.UserID == "" {
		err = apperr.NotFound("the caller is not a user: this key belongs to a service account")
	}
	var u *users.User
	if err == nil {
		u, err = h.svc.FindUser(ctx, c.UserID)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetAuthenticatedUserResponse{User: userToProto(u, c.OrgID)}), nil
}

func (h *userHandler) GetUser(ctx context.Context, req *connect.Request[gitpodv1.GetUserRequest]) (*connect.Response[gitpodv1.GetUserResponse], error) {
	u, err := h.svc.FindUser(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetUserResponse{User: userToProto(u, callerOrg(ctx))}), nil
}

// SetSuspended disables (suspended) or enables a user: a disabled user's
// keys are revoked and their sessions end.
func (h *userHandler) SetSuspended(ctx context.Context, req *connect.Request[gitpodv1.SetSuspendedRequest]) (*connect.Response[gitpodv1.SetSuspendedResponse], error) {
	if _, err := h.svc.SetDisabled(ctx, req.Msg.GetUserId(), req.Msg.GetSuspended()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.SetSuspendedResponse{}), nil
}

func (h *userAdminHandler) CreateUser(ctx context.Context, req *connect.Request[runyardv1.CreateUserRequest]) (*connect.Response[runyardv1.CreateUserResponse], error) {
	r := req.Msg
	u, m, err := h.svc.Create(ctx, users.CreateInput{Email: r.GetEmail(), Name: r.GetName(), Password: r.GetPassword(),
		OrgID: r.GetOrganizationId(), Role: r.GetRole(), InstallationAdmin: r.GetInstallationAdmin()})
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.CreateUserResponse{User: userToProto(u, "")}
	if m != nil {
		out.User.OrganizationId = m.OrgID
		out.Member = memberToProto(&users.Member{User: u, Membership: m})
	}
	return connect.NewResponse(out), nil
}

func (h *userAdminHandler) ListUsers(ctx context.Context, req *connect.Request[runyardv1.ListUsersRequest]) (*connect.Response[runyardv1.ListUsersResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.List(ctx, page)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListUsersResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}}
	for _, u := range items {
		out.Users = append(out.Users, userToProto(u, ""))
	}
	return connect.NewResponse(out), nil
}

func (h *userAdminHandler) SetPassword(ctx context.Context, req *connect.Request[runyardv1.SetPasswordRequest]) (*connect.Response[runyardv1.SetPasswordResponse], error) {
	if _, err := h.svc.SetPassword(ctx, req.Msg.GetUserId(), req.Msg.GetPassword()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.SetPasswordResponse{}), nil
}

func (h *userAdminHandler) ChangePassword(ctx context.Context, req *connect.Request[runyardv1.ChangePasswordRequest]) (*connect.Response[runyardv1.ChangePasswordResponse], error) {
	if _, err := h.svc.ChangePassword(ctx, req.Msg.GetCurrentPassword(), req.Msg.GetNewPassword()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.ChangePasswordResponse{}), nil
}

func (h *userAdminHandler) AddMember(ctx context.Context, req *connect.Request[runyardv1.AddMemberRequest]) (*connect.Response[runyardv1.AddMemberResponse], error) {
	m, err := h.svc.AddMember(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId(), req.Msg.GetRole())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.AddMemberResponse{Member: memberToProto(m)}), nil
}

func (h *userAdminHandler) RemoveMember(ctx context.Context, req *connect.Request[runyardv1.RemoveMemberRequest]) (*connect.Response[runyardv1.RemoveMemberResponse], error) {
	if req.Msg.GetUserId() == "" {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, apperr.Invalid("userId", "is required"))
	}
	if err := h.svc.RemoveMember(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.RemoveMemberResponse{}), nil
}

func (h *userAdminHandler) SetMemberRole(ctx context.Context, req *connect.Request[runyardv1.SetMemberRoleRequest]) (*connect.Response[runyardv1.SetMemberRoleResponse], error) {
	m, err := h.svc.SetRole(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId(), req.Msg.GetRole())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.SetMemberRoleResponse{Member: memberToProto(m)}), nil
}

func (h *userAdminHandler) ListOrganizationMembers(ctx context.Context, req *connect.Request[runyardv1.ListOrganizationMembersRequest]) (*connect.Response[runyardv1.ListOrganizationMembersResponse], error) {
	ms, err := h.svc.ListMembers(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListOrganizationMembersResponse{}
	for _, m := range ms {
		out.Members = append(out.Members, memberToProto(m))
	}
	return connect.NewResponse(out), nil
}

func (h *userAdminHandler) CreateInvite(ctx context.Context, req *connect.Request[runyardv1.CreateInviteRequest]) (*connect.Response[runyardv1.CreateInviteResponse], error) {
	ttl := req.Msg.GetTtl().AsDuration()
	inv, token, err := h.svc.CreateInvite(ctx, req.Msg.GetOrganizationId(), req.Msg.GetRole(), ttl)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.CreateInviteResponse{InviteId: token, OrganizationId: inv.OrgID, Role: string(inv.Role),
		ExpiresAt: timestamppb.New(inv.ExpiresAt), Id: inv.ID}), nil
}

func inviteToProto(inv *users.Invite) *runyardv1.Invite {
	return &runyardv1.Invite{Id: inv.ID, OrganizationId: inv.OrgID, Role: string(inv.Role), CreatorId: inv.CreatorID,
		CreatedAt: timestamppb.New(inv.CreatedAt), ExpiresAt: timestamppb.New(inv.ExpiresAt)}
}

func (h *userAdminHandler) ListInvites(ctx context.Context, req *connect.Request[runyardv1.ListInvitesRequest]) (*connect.Response[runyardv1.ListInvitesResponse], error) {
	items, err := h.svc.ListInvites(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListInvitesResponse{}
	for _, inv := range items {
		out.Invites = append(out.Invites, inviteToProto(inv))
	}
	return connect.NewResponse(out), nil
}

func (h *userAdminHandler) RevokeInvite(ctx context.Context, req *connect.Request[runyardv1.RevokeInviteRequest]) (*connect.Response[runyardv1.RevokeInviteResponse], error) {
	inv, err := h.svc.RevokeInvite(ctx, req.Msg.GetOrganizationId(), req.Msg.GetId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.RevokeInviteResponse{Invite: inviteToProto(inv)}), nil
}

func (h *userAdminHandler) AcceptInvite(ctx context.Context, req *connect.Request[runyardv1.AcceptInviteRequest]) (*connect.Response[runyardv1.AcceptInviteResponse], error) {
	r := req.Msg
	m, err := h.svc.SignUp(ctx, r.GetInviteId(), r.GetEmail(), r.GetName(), r.GetPassword())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.AcceptInviteResponse{Member: memberToProto(m)}), nil
}

// The gitpod.v1.OrganizationService methods about members and invites.

func (h *organizationHandler) ListMembers(ctx context.Context, req *connect.Request[gitpodv1.ListMembersRequest]) (*connect.Response[gitpodv1.ListMembersResponse], error) {
	ms, err := h.users.ListMembers(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListMembersResponse{Pagination: &gitpodv1.PaginationResponse{}}
	for _, m := range ms {
		out.Members = append(out.Members, vendorMemberToProto(m))
	}
	return connect.NewResponse(out), nil
}

// SetRole takes the vendor's two roles; runyard's others are set with
// runyard.v1.UserAdminService/SetMemberRole.
func (h *organizationHandler) SetRole(ctx context.Context, req *connect.Request[gitpodv1.SetRoleRequest]) (*connect.Response[gitpodv1.SetRoleResponse], error) {
	var role identity.Role
	switch req.Msg.GetRole() {
	case gitpodv1.OrganizationRole_ORGANIZATION_ROLE_ADMIN:
		role = identity.RoleAdmin
	case gitpodv1.OrganizationRole_ORGANIZATION_ROLE_MEMBER:
		role = identity.RoleMember
	default:
		// The domain refuses it, after the caller's permission: a caller
		// who may not set roles learns nothing about the request.
		role = identity.Role(req.Msg.GetRole().String())
	}
	if _, err := h.users.SetRole(ctx, req.Msg.GetOrganizationId(), req.Msg.GetUserId(), string(role)); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.SetRoleResponse{}), nil
}

// CreateOrganizationInvite creates a one-time invite with the member role
// (runyard.v1.UserAdminService/CreateInvite takes a role and a lifetime).
func (h *organizationHandler) CreateOrganizationInvite(ctx context.Context, req *connect.Request[gitpodv1.CreateOrganizationInviteRequest]) (*connect.Response[gitpodv1.CreateOrganizationInviteResponse], error) {
	_, token, err := h.users.CreateInvite(ctx, req.Msg.GetOrganizationId(), string(identity.RoleMember), 0)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateOrganizationInviteResponse{Invite: &gitpodv1.OrganizationInvite{InviteId: token}}), nil
}

// GetOrganizationInvite cannot show an invite again: runyard's invites are
// one-time tokens stored only as hashes. An admin of the organization
// learns that (failed_precondition) and creates a new one.
func (h *organizationHandler) GetOrganizationInvite(ctx context.Context, req *connect.Request[gitpodv1.GetOrganizationInviteRequest]) (*connect.Response[gitpodv1.GetOrganizationInviteResponse], error) {
	err := h.users.CheckInviteAdmin(ctx, req.Msg.GetOrganizationId())
	if err == nil {
		err = apperr.FailedPrecondition("invites are one-time and stored only as a hash, so none can be shown again: create one with CreateOrganizationInvite")
	}
	return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
}

func (h *organizationHandler) GetOrganizationInviteSummary(ctx context.Context, req *connect.Request[gitpodv1.GetOrganizationInviteSummaryRequest]) (*connect.Response[gitpodv1.GetOrganizationInviteSummaryResponse], error) {
	inv, n, err := h.users.InviteSummary(ctx, req.Msg.GetInviteId())
	var org *identity.Organization
	if err == nil {
		org, err = h.svc.Store.FindOrganizationByID(ctx, inv.OrgID)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetOrganizationInviteSummaryResponse{OrganizationId: org.ID, OrganizationName: org.Name,
		OrganizationMemberCount: int32(n)}), nil
}

// JoinOrganization makes the calling user a member with the invite's
// role; organization_id, when set, must be the invite's.
func (h *organizationHandler) JoinOrganization(ctx context.Context, req *connect.Request[gitpodv1.JoinOrganizationRequest]) (*connect.Response[gitpodv1.JoinOrganizationResponse], error) {
	m, err := h.users.Join(ctx, req.Msg.GetInviteId(), req.Msg.GetOrganizationId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.JoinOrganizationResponse{Member: vendorMemberToProto(m)}), nil
}

// LeaveOrganization removes user_id (the caller when empty) from the
// caller's organization: a user leaves, an admin removes.
func (h *organizationHandler) LeaveOrganization(ctx context.Context, req *connect.Request[gitpodv1.LeaveOrganizationRequest]) (*connect.Response[gitpodv1.LeaveOrganizationResponse], error) {
	if err := h.users.RemoveMember(ctx, "", req.Msg.GetUserId()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.LeaveOrganizationResponse{}), nil
}
