package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
)

// environmentHandler serves gitpod.v1.EnvironmentService: it translates
// messages and calls environments.Service, which holds every rule.
type environmentHandler struct {
	svc *environments.Service
	log *slog.Logger
	// portURL is Services.PortURL.
	portURL func(envID string, port int32) string
}

var _ gitpodv1connect.EnvironmentServiceHandler = environmentService{}

func (h *environmentHandler) err(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.log, procedure, err)
}

func (h *environmentHandler) CreateEnvironment(ctx context.Context, req *connect.Request[gitpodv1.CreateEnvironmentRequest]) (*connect.Response[gitpodv1.CreateEnvironmentResponse], error) {
	in, err := environmentInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	e, err := h.svc.Create(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateEnvironmentResponse{Environment: environmentToProto(e, h.portURL)}), nil
}

func (h *environmentHandler) GetEnvironment(ctx context.Context, req *connect.Request[gitpodv1.GetEnvironmentRequest]) (*connect.Response[gitpodv1.GetEnvironmentResponse], error) {
	e, err := h.svc.Get(ctx, req.Msg.GetEnvironmentId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetEnvironmentResponse{Environment: environmentToProto(e, h.portURL)}), nil
}

func (h *environmentHandler) ListEnvironments(ctx context.Context, req *connect.Request[gitpodv1.ListEnvironmentsRequest]) (*connect.Response[gitpodv1.ListEnvironmentsResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	filter, err := environmentListFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.List(ctx, filter, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListEnvironmentsResponse{
		Pagination:   &gitpodv1.PaginationResponse{NextToken: next},
		Environments: make([]*gitpodv1.Environment, len(items)),
	}
	for i, e := range items {
		out.Environments[i] = environmentToProto(e, h.portURL)
	}
	return connect.NewResponse(out), nil
}

func (h *environmentHandler) ListEnvironmentClasses(ctx context.Context, req *connect.Request[gitpodv1.ListEnvironmentClassesRequest]) (*connect.Response[gitpodv1.ListEnvironmentClassesResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	filter, err := classFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.ListClasses(ctx, filter, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListEnvironmentClassesResponse{
		Pagination:         &gitpodv1.PaginationResponse{NextToken: next},
		EnvironmentClasses: make([]*gitpodv1.EnvironmentClass, len(items)),
	}
	for i, c := range items {
		out.EnvironmentClasses[i] = classToProto(c)
	}
	return connect.NewResponse(out), nil
}

func (h *environmentHandler) StartEnvironment(ctx context.Context, req *connect.Request[gitpodv1.StartEnvironmentRequest]) (*connect.Response[gitpodv1.StartEnvironmentResponse], error) {
	if err := h.svc.Start(ctx, req.Msg.GetEnvironmentId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StartEnvironmentResponse{}), nil
}

func (h *environmentHandler) StopEnvironment(ctx context.Context, req *connect.Request[gitpodv1.StopEnvironmentRequest]) (*connect.Response[gitpodv1.StopEnvironmentResponse], error) {
	if err := h.svc.Stop(ctx, req.Msg.GetEnvironmentId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StopEnvironmentResponse{}), nil
}

func (h *environmentHandler) DeleteEnvironment(ctx context.Context, req *connect.Request[gitpodv1.DeleteEnvironmentRequest]) (*connect.Response[gitpodv1.DeleteEnvironmentResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetEnvironmentId(), req.Msg.GetForce()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteEnvironmentResponse{}), nil
}

func (h *environmentHandler) MarkEnvironmentActive(ctx context.Context, req *connect.Request[gitpodv1.MarkEnvironmentActiveRequest]) (*connect.Response[gitpodv1.MarkEnvironmentActiveResponse], error) {
	sig := req.Msg.GetActivitySignal()
	in := environments.MarkActiveInput{EnvironmentID: req.Msg.GetEnvironmentId(), Source: sig.GetSource()}
	if ts := sig.GetTimestamp(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, h.err(ctx, req.Spec().Procedure, apperr.Invalid("activitySignal.timestamp", "must be a valid time: %v", err))
		}
		in.At = ts.AsTime()
	}
	if err := h.svc.MarkActive(ctx, in); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.MarkEnvironmentActiveResponse{}), nil
}
