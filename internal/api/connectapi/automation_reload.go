package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/automations"
)

// automationsHandler serves runyard.v1.AutomationsService, what runyard adds
// to seed 003's EnvironmentAutomationService.
type automationsHandler struct {
	svc *automations.Manager
	log *slog.Logger
}

var _ runyardv1connect.AutomationsServiceHandler = automationsService{}

func (h *automationsHandler) ReloadAutomationsFile(ctx context.Context, req *connect.Request[runyardv1.ReloadAutomationsFileRequest]) (*connect.Response[runyardv1.ReloadAutomationsFileResponse], error) {
	n, err := h.svc.ReloadFile(ctx, req.Msg.GetEnvironmentId())
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.ReloadAutomationsFileResponse{Request: n}), nil
}
