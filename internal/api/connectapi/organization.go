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
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/users"
)

// organizationHandler serves gitpod.v1.OrganizationService's organization
// methods and runyard.v1.InstallationService.
type organizationHandler struct {
	svc   *orgs.Service
	users *users.Service
	log   *slog.Logger
}

var (
	_ gitpodv1connect.OrganizationServiceHandler  = organizationService{}
	_ runyardv1connect.InstallationServiceHandler = installationService{}
)

func organizationToProto(o *identity.Organization) *gitpodv1.Organization {
	return &gitpodv1.Organization{
		Id:        o.ID,
		Name:      o.Name,
		CreatedAt: timestamppb.New(o.CreatedAt),
		UpdatedAt: timestamppb.New(o.UpdatedAt),
	}
}

// CreateOrganization ignores join_organization and
// invite_accounts_with_matching_domain: runyard has no user accounts to
// join or invite yet, so member stays unset.
func (h *organizationHandler) CreateOrganization(ctx context.Context, req *connect.Request[gitpodv1.CreateOrganizationRequest]) (*connect.Response[gitpodv1.CreateOrganizationResponse], error) {
	org, err := h.svc.Create(ctx, req.Msg.GetName())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateOrganizationResponse{Organization: organizationToProto(org)}), nil
}

func (h *organizationHandler) GetOrganization(ctx context.Context, req *connect.Request[gitpodv1.GetOrganizationRequest]) (*connect.Response[gitpodv1.GetOrganizationResponse], error) {
	org, err := h.svc.Get(ctx, req.Msg.GetOrganizationId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetOrganizationResponse{Organization: organizationToProto(org)}), nil
}

// UpdateOrganization renames; invite_domains has nothing to apply to yet
// and is ignored.
func (h *organizationHandler) UpdateOrganization(ctx context.Context, req *connect.Request[gitpodv1.UpdateOrganizationRequest]) (*connect.Response[gitpodv1.UpdateOrganizationResponse], error) {
	org, err := h.svc.Rename(ctx, req.Msg.GetOrganizationId(), req.Msg.GetName())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateOrganizationResponse{Organization: organizationToProto(org)}), nil
}

func (h *organizationHandler) DeleteOrganization(ctx context.Context, req *connect.Request[gitpodv1.DeleteOrganizationRequest]) (*connect.Response[gitpodv1.DeleteOrganizationResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetOrganizationId()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteOrganizationResponse{}), nil
}

// installationHandler serves runyard.v1.InstallationService.
type installationHandler struct {
	svc *orgs.Service
	log *slog.Logger
}

func (h *installationHandler) ListOrganizations(ctx context.Context, req *connect.Request[runyardv1.ListOrganizationsRequest]) (*connect.Response[runyardv1.ListOrganizationsResponse], error) {
	items, err := h.svc.List(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListOrganizationsResponse{Pagination: &gitpodv1.PaginationResponse{}}
	for _, o := range items {
		out.Organizations = append(out.Organizations, organizationToProto(o))
	}
	return connect.NewResponse(out), nil
}
