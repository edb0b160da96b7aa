package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/secrets"
)

// secretHandler serves gitpod.v1.SecretService: it translates messages and
// calls secrets.Service, which holds every rule. Values only go in: no
// response message has a field that could carry one (protocheck checks the
// protos), and secretToProto copies none.
type secretHandler struct {
	svc *secrets.Service
	log *slog.Logger
}

var _ gitpodv1connect.SecretServiceHandler = secretService{}

func (h *secretHandler) err(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.log, procedure, err)
}

func (h *secretHandler) CreateSecret(ctx context.Context, req *connect.Request[gitpodv1.CreateSecretRequest]) (*connect.Response[gitpodv1.CreateSecretResponse], error) {
	m := req.Msg
	in := secrets.CreateInput{
		Name:                           m.GetName(),
		Value:                          secrets.Value(m.GetValue()),
		EnvironmentVariable:            m.GetEnvironmentVariable(),
		FilePath:                       m.GetFilePath(),
		Scope:                          scopeFromProto(m.GetScope()),
		ContainerRegistryBasicAuthHost: m.GetContainerRegistryBasicAuthHost(),
		ProjectID:                      m.GetProjectId(), // deprecated: refused when set

	}
	s, err := h.svc.Create(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateSecretResponse{Secret: secretToProto(s)}), nil
}

func (h *secretHandler) ListSecrets(ctx context.Context, req *connect.Request[gitpodv1.ListSecretsRequest]) (*connect.Response[gitpodv1.ListSecretsResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.List(ctx, scopeFromProto(req.Msg.GetFilter().GetScope()), page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListSecretsResponse{
		Pagination: &gitpodv1.PaginationResponse{NextToken: next},
		Secrets:    make([]*gitpodv1.Secret, len(items)),
	}
	for i, s := range items {
		out.Secrets[i] = secretToProto(s)
	}
	return connect.NewResponse(out), nil
}

func (h *secretHandler) DeleteSecret(ctx context.Context, req *connect.Request[gitpodv1.DeleteSecretRequest]) (*connect.Response[gitpodv1.DeleteSecretResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetSecretId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteSecretResponse{}), nil
}

func (h *secretHandler) UpdateSecretValue(ctx context.Context, req *connect.Request[gitpodv1.UpdateSecretValueRequest]) (*connect.Response[gitpodv1.UpdateSecretValueResponse], error) {
	if err := h.svc.UpdateValue(ctx, req.Msg.GetSecretId(), secrets.Value(req.Msg.GetValue())); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateSecretValueResponse{}), nil
}

// scopeFromProto maps the scope oneof; nil stays nil (the service's
// default), and a scope with no member set becomes the zero Scope, which the
// service refuses naming the field.
func scopeFromProto(sc *gitpodv1.SecretScope) *secrets.Scope {
	if sc == nil {
		return nil
	}
	switch v := sc.GetScope().(type) {
	case *gitpodv1.SecretScope_OrganizationId:
		return &secrets.Scope{Kind: secrets.ScopeOrganization, ID: v.OrganizationId}
	case *gitpodv1.SecretScope_UserId:
		return &secrets.Scope{Kind: secrets.ScopeUser, ID: v.UserId}
	case *gitpodv1.SecretScope_ServiceAccountId:
		return &secrets.Scope{Kind: secrets.ScopeServiceAccount, ID: v.ServiceAccountId}
	case *gitpodv1.SecretScope_ProjectId:
		return &secrets.Scope{Kind: secrets.ScopeProject, ID: v.ProjectId}
	}
	return &secrets.Scope{}
}

func scopeToProto(sc secrets.Scope) *gitpodv1.SecretScope {
	out := &gitpodv1.SecretScope{}
	switch sc.Kind {
	case secrets.ScopeOrganization:
		out.Scope = &gitpodv1.SecretScope_OrganizationId{OrganizationId: sc.ID}
	case secrets.ScopeUser:
		out.Scope = &gitpodv1.SecretScope_UserId{UserId: sc.ID}
	case secrets.ScopeServiceAccount:
		out.Scope = &gitpodv1.SecretScope_ServiceAccountId{ServiceAccountId: sc.ID}
	}
	return out
}

// secretToProto renders a secret's metadata. The encrypted value stays
// behind: not even the ciphertext leaves the control plane.
func secretToProto(s *secrets.Secret) *gitpodv1.Secret {
	out := &gitpodv1.Secret{
		Id:        s.ID,
		Name:      s.Name,
		CreatedAt: timestamppb.New(s.CreatedAt),
		UpdatedAt: timestamppb.New(s.UpdatedAt),
		Creator:   subjectToProto(s.Creator),
		Scope:     scopeToProto(s.Scope),
	}
	if s.FilePath != "" {
		out.Mount = &gitpodv1.Secret_FilePath{FilePath: s.FilePath}
	} else if s.ContainerRegistryBasicAuthHost != "" {
		out.Mount = &gitpodv1.Secret_ContainerRegistryBasicAuthHost{ContainerRegistryBasicAuthHost: s.ContainerRegistryBasicAuthHost}
	} else {
		// Always set, so that clients read environmentVariable: false
		// rather than guess from an absent mount.
		out.Mount = &gitpodv1.Secret_EnvironmentVariable{EnvironmentVariable: s.EnvironmentVariable}
	}
	return out
}
