package connectapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/automations"
)

// automationHandler serves gitpod.v1.EnvironmentAutomationService: it
// translates messages and calls automations.Manager, which holds every rule
// (UpdateService with a status included: the manager hands it to
// ReportService, which accepts only the environment's runner).
type automationHandler struct {
	svc *automations.Manager
	log *slog.Logger
}

var _ gitpodv1connect.EnvironmentAutomationServiceHandler = automationService{}

func (h *automationHandler) err(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.log, procedure, err)
}

func (h *automationHandler) UpsertAutomationsFile(ctx context.Context, req *connect.Request[gitpodv1.UpsertAutomationsFileRequest]) (*connect.Response[gitpodv1.UpsertAutomationsFileResponse], error) {
	res, err := h.svc.UpsertFile(ctx, req.Msg.GetEnvironmentId(), fileFromProto(req.Msg.GetAutomationsFile()))
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpsertAutomationsFileResponse{
		UpdatedServiceIds: res.ServiceIDs,
		UpdatedTaskIds:    res.TaskIDs,
	}), nil
}

func (h *automationHandler) CreateService(ctx context.Context, req *connect.Request[gitpodv1.CreateServiceRequest]) (*connect.Response[gitpodv1.CreateServiceResponse], error) {
	in, err := serviceInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	svc, err := h.svc.CreateService(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateServiceResponse{Service: serviceToProto(svc)}), nil
}

func (h *automationHandler) GetService(ctx context.Context, req *connect.Request[gitpodv1.GetServiceRequest]) (*connect.Response[gitpodv1.GetServiceResponse], error) {
	svc, err := h.svc.GetService(ctx, req.Msg.GetId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetServiceResponse{Service: serviceToProto(svc)}), nil
}

func (h *automationHandler) ListServices(ctx context.Context, req *connect.Request[gitpodv1.ListServicesRequest]) (*connect.Response[gitpodv1.ListServicesResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	filter, err := serviceListFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.ListServices(ctx, filter, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListServicesResponse{
		Pagination: &gitpodv1.PaginationResponse{NextToken: next},
		Services:   make([]*gitpodv1.Service, len(items)),
	}
	for i, s := range items {
		out.Services[i] = serviceToProto(s)
	}
	return connect.NewResponse(out), nil
}

func (h *automationHandler) UpdateService(ctx context.Context, req *connect.Request[gitpodv1.UpdateServiceRequest]) (*connect.Response[gitpodv1.UpdateServiceResponse], error) {
	u, err := serviceUpdate(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	if _, err := h.svc.UpdateService(ctx, req.Msg.GetId(), u); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateServiceResponse{}), nil
}

func (h *automationHandler) StartService(ctx context.Context, req *connect.Request[gitpodv1.StartServiceRequest]) (*connect.Response[gitpodv1.StartServiceResponse], error) {
	if err := h.svc.StartService(ctx, req.Msg.GetId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StartServiceResponse{}), nil
}

func (h *automationHandler) StopService(ctx context.Context, req *connect.Request[gitpodv1.StopServiceRequest]) (*connect.Response[gitpodv1.StopServiceResponse], error) {
	if err := h.svc.StopService(ctx, req.Msg.GetId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StopServiceResponse{}), nil
}

func (h *automationHandler) DeleteService(ctx context.Context, req *connect.Request[gitpodv1.DeleteServiceRequest]) (*connect.Response[gitpodv1.DeleteServiceResponse], error) {
	if err := h.svc.DeleteService(ctx, req.Msg.GetId(), req.Msg.GetForce()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteServiceResponse{}), nil
}

func (h *automationHandler) CreateTask(ctx context.Context, req *connect.Request[gitpodv1.CreateTaskRequest]) (*connect.Response[gitpodv1.CreateTaskResponse], error) {
	in, err := taskInput(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	t, err := h.svc.CreateTask(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreateTaskResponse{Task: taskToProto(t)}), nil
}

func (h *automationHandler) GetTask(ctx context.Context, req *connect.Request[gitpodv1.GetTaskRequest]) (*connect.Response[gitpodv1.GetTaskResponse], error) {
	t, err := h.svc.GetTask(ctx, req.Msg.GetId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetTaskResponse{Task: taskToProto(t)}), nil
}

func (h *automationHandler) ListTasks(ctx context.Context, req *connect.Request[gitpodv1.ListTasksRequest]) (*connect.Response[gitpodv1.ListTasksResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.ListTasks(ctx, taskListFilter(req.Msg.GetFilter()), page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListTasksResponse{
		Pagination: &gitpodv1.PaginationResponse{NextToken: next},
		Tasks:      make([]*gitpodv1.Task, len(items)),
	}
	for i, t := range items {
		out.Tasks[i] = taskToProto(t)
	}
	return connect.NewResponse(out), nil
}

func (h *automationHandler) UpdateTask(ctx context.Context, req *connect.Request[gitpodv1.UpdateTaskRequest]) (*connect.Response[gitpodv1.UpdateTaskResponse], error) {
	u, err := taskUpdate(req.Msg)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	if _, err := h.svc.UpdateTask(ctx, req.Msg.GetId(), u); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.UpdateTaskResponse{}), nil
}

func (h *automationHandler) DeleteTask(ctx context.Context, req *connect.Request[gitpodv1.DeleteTaskRequest]) (*connect.Response[gitpodv1.DeleteTaskResponse], error) {
	if err := h.svc.DeleteTask(ctx, req.Msg.GetId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeleteTaskResponse{}), nil
}

func (h *automationHandler) StartTask(ctx context.Context, req *connect.Request[gitpodv1.StartTaskRequest]) (*connect.Response[gitpodv1.StartTaskResponse], error) {
	x, err := h.svc.StartTask(ctx, req.Msg.GetId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StartTaskResponse{TaskExecution: executionToProto(x)}), nil
}

func (h *automationHandler) GetTaskExecution(ctx context.Context, req *connect.Request[gitpodv1.GetTaskExecutionRequest]) (*connect.Response[gitpodv1.GetTaskExecutionResponse], error) {
	x, err := h.svc.GetTaskExecution(ctx, req.Msg.GetId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetTaskExecutionResponse{TaskExecution: executionToProto(x)}), nil
}

func (h *automationHandler) ListTaskExecutions(ctx context.Context, req *connect.Request[gitpodv1.ListTaskExecutionsRequest]) (*connect.Response[gitpodv1.ListTaskExecutionsResponse], error) {
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	filter, err := executionListFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	items, next, err := h.svc.ListTaskExecutions(ctx, filter, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListTaskExecutionsResponse{
		Pagination:     &gitpodv1.PaginationResponse{NextToken: next},
		TaskExecutions: make([]*gitpodv1.TaskExecution, len(items)),
	}
	for i, x := range items {
		out.TaskExecutions[i] = executionToProto(x)
	}
	return connect.NewResponse(out), nil
}

func (h *automationHandler) StopTaskExecution(ctx context.Context, req *connect.Request[gitpodv1.StopTaskExecutionRequest]) (*connect.Response[gitpodv1.StopTaskExecutionResponse], error) {
	if err := h.svc.StopTaskExecution(ctx, req.Msg.GetId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.StopTaskExecutionResponse{}), nil
}
