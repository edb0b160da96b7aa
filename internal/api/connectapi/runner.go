package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/runners"
)

// runnerHandler serves gitpod.v1.RunnerService: it translates messages and
// calls runners.Service, which holds every rule.
type runnerHandler struct {
	svc *runners.Service
	log *slog.Logger
}

var _ gitpodv1connect.RunnerServiceHandler = runnerService{}

func (h *runnerHandler) err(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.log, procedure, err)
}

func (h *runnerHandler) CreateRunner(ctx context.Context, req *connect.Request[gitpodv1.CreateRunnerRequest]) (*connect.Response[gitpodv1.CreateRunnerResponse], error) {
	in, err := createInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	r, exchange, err := h.svc.Create(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateRunnerResponse{Runner: runnerToProto(r), ExchangeToken: exchange}), nil
}

func (h *runnerHandler) GetRunner(ctx context.Context, req *connect.Request[gitpodv1.GetRunnerRequest]) (*connect.Response[gitpodv1.GetRunnerResponse], error) {
	r, err := h.svc.Get(ctx, req.Msg.GetRunnerId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetRunnerResponse{Runner: runnerToProto(r)}), nil
}

func (h *runnerHandler) ListRunners(ctx context.Context, req *connect.Request[gitpodv1.ListRunnersRequest]) (*connect.Response[gitpodv1.ListRunnersResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	filter, err := listFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.List(ctx, filter, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListRunnersResponse{
		Pagination: &gitpodv1.PaginationResponse{NextToken: next},
		Runners:    make([]*gitpodv1.Runner, len(items)),
	}
	for i, r := range items {
		out.Runners[i] = runnerToProto(r)
	}
	return connect.NewResponse(out), nil
}

func (h *runnerHandler) UpdateRunner(ctx context.Context, req *connect.Request[gitpodv1.UpdateRunnerRequest]) (*connect.Response[gitpodv1.UpdateRunnerResponse], error) {
	u, err := updateInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	if _, err := h.svc.Update(ctx, req.Msg.GetRunnerId(), u); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateRunnerResponse{}), nil
}

func (h *runnerHandler) DeleteRunner(ctx context.Context, req *connect.Request[gitpodv1.DeleteRunnerRequest]) (*connect.Response[gitpodv1.DeleteRunnerResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetRunnerId(), req.Msg.GetForce()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteRunnerResponse{}), nil
}

func (h *runnerHandler) CreateRunnerToken(ctx context.Context, req *connect.Request[gitpodv1.CreateRunnerTokenRequest]) (*connect.Response[gitpodv1.CreateRunnerTokenResponse], error) {
	exchange, err := h.svc.CreateToken(ctx, req.Msg.GetRunnerId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateRunnerTokenResponse{ExchangeToken: exchange}), nil
}

func (h *runnerHandler) ParseContextURL(ctx context.Context, req *connect.Request[gitpodv1.ParseContextURLRequest]) (*connect.Response[gitpodv1.ParseContextURLResponse], error) {
	c, err := h.svc.ParseContextURL(ctx, req.Msg.GetRunnerId(), req.Msg.GetContextUrl())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	g := &gitpodv1.ParseContextURLResponse_Git{
		Host: c.Host, Owner: c.Owner, Repo: c.Repo, CloneUrl: c.CloneURL, Branch: c.Ref, Commit: c.Commit,
	}
	return connect.NewResponse(&gitpodv1.ParseContextURLResponse{
		OriginalContextUrl: c.URL, Git: g, ProjectIds: []string{},
	}), nil
}
