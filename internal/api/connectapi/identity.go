package connectapi

import (
	"context"
	"encoding/base64"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// identityHandler serves gitpod.v1.IdentityService.
type identityHandler struct {
	svc *identity.Service
	log *slog.Logger
}

var _ gitpodv1connect.IdentityServiceHandler = identityService{}

func (h *identityHandler) GetAuthenticatedIdentity(ctx context.Context, req *connect.Request[gitpodv1.GetAuthenticatedIdentityRequest]) (*connect.Response[gitpodv1.GetAuthenticatedIdentityResponse], error) {
	c, err := identity.RequireAuthenticated(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetAuthenticatedIdentityResponse{
		OrganizationId: c.OrgID,
		Subject:        subjectToProto(c.Subject),
	}), nil
}

func (h *identityHandler) ExchangeToken(ctx context.Context, req *connect.Request[gitpodv1.ExchangeTokenRequest]) (*connect.Response[gitpodv1.ExchangeTokenResponse], error) {
	// The daemon's public key rides in a header: gitpod.v1's request has no
	// field for it. It binds the redemption to the daemon's key pair, so
	// that only that daemon may retry it (identity.ExchangeRetryWindow).
	var key []byte
	if v := req.Header().Get(identity.PublicKeyHeader); v != "" {
		var err error
		if key, err = base64.StdEncoding.DecodeString(v); err != nil {
			return nil, toConnect(ctx, h.log, req.Spec().Procedure, apperr.Invalid(identity.PublicKeyHeader, "must be base64"))
		}
	}
	access, err := h.svc.ExchangeWithKey(ctx, req.Msg.GetExchangeToken(), key)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.ExchangeTokenResponse{AccessToken: access}), nil
}

// tokenHandler serves runyard.v1.TokenService.
type tokenHandler struct {
	svc *identity.Service
	log *slog.Logger
}

var _ runyardv1connect.TokenServiceHandler = tokenService{}

func tokenToProto(t *identity.Token) *runyardv1.Token {
	out := &runyardv1.Token{
		TokenId:     t.ID,
		Name:        t.Name,
		Principal:   gitpodv1.Principal(gitpodv1.Principal_value[string(t.Principal)]),
		RunnerId:    t.RunnerID,
		Creator:     subjectToProto(t.Creator),
		CreatedAt:   timestamppb.New(t.CreatedAt),
		OwnerUserId: t.OwnerUserID,
	}
	for _, s := range t.Scopes {
		out.Scopes = append(out.Scopes, string(s))
	}
	if t.ExpiresAt != nil {
		out.ExpiresAt = timestamppb.New(*t.ExpiresAt)
	}
	if t.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*t.RevokedAt)
	}
	return out
}

func (h *tokenHandler) CreateToken(ctx context.Context, req *connect.Request[runyardv1.CreateTokenRequest]) (*connect.Response[runyardv1.CreateTokenResponse], error) {
	in := identity.CreateAPIKeyInput{Name: req.Msg.GetName(), Scopes: req.Msg.GetScopes(), OrgID: req.Msg.GetOrganizationId()}
	if ts := req.Msg.GetExpiresAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, toConnect(ctx, h.log, req.Spec().Procedure, apperr.Invalid("expiresAt", "is not a valid timestamp"))
		}
		t := ts.AsTime()
		in.ExpiresAt = &t
	}
	t, secret, err := h.svc.CreateAPIKey(ctx, in)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.CreateTokenResponse{Token: tokenToProto(t), Secret: secret}), nil
}

func (h *tokenHandler) ListTokens(ctx context.Context, req *connect.Request[runyardv1.ListTokensRequest]) (*connect.Response[runyardv1.ListTokensResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	list := h.svc.ListTokens
	if req.Msg.GetOwn() {
		list = h.svc.ListOwnTokens
	}
	items, next, err := list(ctx, req.Msg.GetIncludeRevoked(), page)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListTokensResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}}
	for _, t := range items {
		out.Tokens = append(out.Tokens, tokenToProto(t))
	}
	return connect.NewResponse(out), nil
}

func (h *tokenHandler) RevokeToken(ctx context.Context, req *connect.Request[runyardv1.RevokeTokenRequest]) (*connect.Response[runyardv1.RevokeTokenResponse], error) {
	revoke := h.svc.RevokeToken
	if req.Msg.GetOwn() {
		revoke = h.svc.RevokeOwnToken
	}
	if _, err := revoke(ctx, req.Msg.GetTokenId(), req.Msg.GetForce()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.RevokeTokenResponse{}), nil
}

func (h *tokenHandler) GetAuthenticatedToken(ctx context.Context, req *connect.Request[runyardv1.GetAuthenticatedTokenRequest]) (*connect.Response[runyardv1.GetAuthenticatedTokenResponse], error) {
	t, c, err := h.svc.AuthenticatedToken(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.GetAuthenticatedTokenResponse{Token: tokenToProto(t), EffectiveScopes: []string{}}
	for _, s := range c.Scopes {
		out.EffectiveScopes = append(out.EffectiveScopes, string(s))
	}
	return connect.NewResponse(out), nil
}

func (h *identityHandler) GetIDToken(ctx context.Context, req *connect.Request[gitpodv1.GetIDTokenRequest]) (*connect.Response[gitpodv1.GetIDTokenResponse], error) {
	// Every version is the same token here: runyard has one claim set.
	if _, err := enumName("version", req.Msg.GetVersion()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	tok, err := h.svc.IDToken(ctx, identity.IDTokenInput{Audience: req.Msg.GetAudience()})
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetIDTokenResponse{Token: tok}), nil
}
