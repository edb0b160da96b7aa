package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/fleet"
)

// runnerControlHandler serves the runner protocol; the fleet does the work.
type runnerControlHandler struct {
	fleet *fleet.Fleet
	log   *slog.Logger
}

var _ runnerv1connect.RunnerControlServiceHandler = (*runnerControlHandler)(nil)

func (h *runnerControlHandler) Connect(ctx context.Context, stream *connect.BidiStream[runnerv1.ConnectRequest, runnerv1.ConnectResponse]) error {
	return toConnect(ctx, h.log, stream.Spec().Procedure, h.fleet.Serve(ctx, stream))
}

func (h *runnerControlHandler) Terminal(ctx context.Context, stream *connect.BidiStream[runnerv1.TerminalRequest, runnerv1.TerminalResponse]) error {
	return toConnect(ctx, h.log, stream.Spec().Procedure, h.fleet.ServeTerminal(ctx, stream))
}

func (h *runnerControlHandler) Session(ctx context.Context, stream *connect.BidiStream[runnerv1.SessionRequest, runnerv1.SessionResponse]) error {
	return toConnect(ctx, h.log, stream.Spec().Procedure, h.fleet.ServeSession(ctx, stream))
}

func (h *runnerControlHandler) StartAutomations(ctx context.Context, req *connect.Request[runnerv1.StartAutomationsRequest]) (*connect.Response[runnerv1.StartAutomationsResponse], error) {
	res, err := h.fleet.StartAutomations(ctx, req.Msg)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(res), nil
}

func (h *runnerControlHandler) ReportRunnerMetrics(ctx context.Context, req *connect.Request[runnerv1.ReportRunnerMetricsRequest]) (*connect.Response[runnerv1.ReportRunnerMetricsResponse], error) {
	if err := h.fleet.ReportRunnerMetrics(ctx, req.Msg.GetMetricFamilies()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runnerv1.ReportRunnerMetricsResponse{}), nil
}
