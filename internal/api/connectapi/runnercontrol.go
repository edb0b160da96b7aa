package connectapi

import (
	"context"
	"errors"
	"io"
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
	body, _ := ctx.Value(requestBodyKey{}).(io.Closer)
	if body == nil {
		// Mount puts it there; without it the fleet could not end the
		// stream from its side.
		return toConnect(ctx, h.log, stream.Spec().Procedure, errors.New("runner stream served without its request body"))
	}
	return toConnect(ctx, h.log, stream.Spec().Procedure, h.fleet.Serve(ctx, connectStream{stream, body}))
}

// requestBodyKey is the context key of a Connect stream's request body.
type requestBodyKey struct{}

// connectStream is a runner's Connect stream as the fleet serves it.
type connectStream struct {
	*connect.BidiStream[runnerv1.ConnectRequest, runnerv1.ConnectResponse]
	body io.Closer
}

// CloseReceive closes the request body: a Receive blocked on it returns
// an error (HTTP/2 request bodies may be closed while being read).
func (s connectStream) CloseReceive() { _ = s.body.Close() }

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
