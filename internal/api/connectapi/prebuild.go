package connectapi

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/prebuilds"
)

// prebuildHandler serves gitpod.v1.PrebuildService over prebuilds.Service.
// runyard has no projects: a prebuild names its repository in contextUrl
// (a runyard field) and its runner by environmentClassId.
// CreatePrebuildLogsToken is not implemented: a prebuild's logs are its
// environment's (status.environmentId).
type prebuildHandler struct {
	svc *prebuilds.Service
	log *slog.Logger
}

var _ gitpodv1connect.PrebuildServiceHandler = prebuildService{}

func (h *prebuildHandler) err(ctx context.Context, procedure string, err error) error {
	return toConnect(ctx, h.log, procedure, err)
}

func (h *prebuildHandler) CreatePrebuild(ctx context.Context, req *connect.Request[gitpodv1.CreatePrebuildRequest]) (*connect.Response[gitpodv1.CreatePrebuildResponse], error) {
	m := req.Msg
	in := prebuilds.CreateInput{ContextURL: m.GetContextUrl(), ClassID: m.GetEnvironmentClassId(), ProjectID: m.GetProjectId()}
	if t := m.GetSpec().GetTimeout(); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return nil, h.err(ctx, req.Spec().Procedure, apperr.Invalid("spec.timeout", "must be a duration such as 30m: %v", err))
		}
		in.Timeout = d
	}
	p, err := h.svc.Create(ctx, in)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CreatePrebuildResponse{Prebuild: prebuildToProto(p)}), nil
}

func (h *prebuildHandler) GetPrebuild(ctx context.Context, req *connect.Request[gitpodv1.GetPrebuildRequest]) (*connect.Response[gitpodv1.GetPrebuildResponse], error) {
	p, err := h.svc.Get(ctx, req.Msg.GetPrebuildId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.GetPrebuildResponse{Prebuild: prebuildToProto(p)}), nil
}

func (h *prebuildHandler) ListPrebuilds(ctx context.Context, req *connect.Request[gitpodv1.ListPrebuildsRequest]) (*connect.Response[gitpodv1.ListPrebuildsResponse], error) {
	m := req.Msg
	page, err := pageOf(ctx, m.GetPagination().GetToken(), m.GetPagination().GetPageSize())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	f := prebuilds.ListFilter{ContextURLs: m.GetFilter().GetContextUrls(), CreatorIDs: m.GetFilter().GetCreatorIds()}
	if f.Phases, err = enumNames[prebuilds.Phase]("filter.phases", m.GetFilter().GetPhases()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	if f.Triggers, err = enumNames[prebuilds.Trigger]("filter.triggeredBy", m.GetFilter().GetTriggeredBy()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	switch {
	case len(m.GetFilter().GetProjectIds()) > 0:
		return nil, h.err(ctx, req.Spec().Procedure, apperr.Invalid("filter.projectIds", "is not supported: runyard has no projects"))
	case len(m.GetFilter().GetExecutorIds()) > 0:
		return nil, h.err(ctx, req.Spec().Procedure, apperr.Invalid("filter.executorIds", "is not supported: a prebuild runs as its creator"))
	}
	items, next, err := h.svc.List(ctx, f, page)
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	out := &gitpodv1.ListPrebuildsResponse{
		Pagination: &gitpodv1.PaginationResponse{NextToken: next},
		Prebuilds:  make([]*gitpodv1.Prebuild, len(items)),
	}
	for i, p := range items {
		out.Prebuilds[i] = prebuildToProto(p)
	}
	return connect.NewResponse(out), nil
}

func (h *prebuildHandler) CancelPrebuild(ctx context.Context, req *connect.Request[gitpodv1.CancelPrebuildRequest]) (*connect.Response[gitpodv1.CancelPrebuildResponse], error) {
	p, err := h.svc.Cancel(ctx, req.Msg.GetPrebuildId())
	if err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.CancelPrebuildResponse{Prebuild: prebuildToProto(p)}), nil
}

func (h *prebuildHandler) DeletePrebuild(ctx context.Context, req *connect.Request[gitpodv1.DeletePrebuildRequest]) (*connect.Response[gitpodv1.DeletePrebuildResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.GetPrebuildId()); err != nil {
		return nil, h.err(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&gitpodv1.DeletePrebuildResponse{}), nil
}

func prebuildToProto(p *prebuilds.Prebuild) *gitpodv1.Prebuild {
	out := &gitpodv1.Prebuild{
		Id: p.ID,
		Metadata: &gitpodv1.PrebuildMetadata{
			CreatedAt: timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
			Creator: subjectToProto(p.Creator), Executor: subjectToProto(p.Creator),
			EnvironmentClassId: p.ClassID, OrganizationId: p.OrgID,
			TriggeredBy: gitpodv1.PrebuildTrigger(gitpodv1.PrebuildTrigger_value[string(p.TriggeredBy)]),
			ContextUrl:  p.ContextURL, RunnerId: p.RunnerID,
		},
		Spec: &gitpodv1.PrebuildSpec{
			DesiredPhase: gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED,
			Timeout:      p.Timeout.String(),
		},
		Status: &gitpodv1.PrebuildStatus{
			Phase:          gitpodv1.PrebuildPhase(gitpodv1.PrebuildPhase_value[string(p.Phase)]),
			EnvironmentId:  p.EnvironmentID,
			FailureMessage: p.FailureMessage,
		},
	}
	if p.Phase == prebuilds.PhaseCancelled {
		out.Spec.DesiredPhase = gitpodv1.PrebuildPhase_PREBUILD_PHASE_CANCELLED
	}
	if p.CompletedAt != nil {
		out.Status.CompletionTime = timestamppb.New(*p.CompletedAt)
	}
	if s := p.Snapshot; s != nil {
		out.Status.Commit, out.Status.SnapshotSizeBytes, out.Status.SnapshotDeleted = s.Commit, s.SizeBytes, s.Deleted
		out.Status.SnapshotCompletionPercentage = 100
	}
	return out
}

// prebuildScheduleHandler serves runyard.v1.PrebuildScheduleService.
type prebuildScheduleHandler struct {
	svc *prebuilds.Service
	log *slog.Logger
}

var _ runyardv1connect.PrebuildScheduleServiceHandler = prebuildScheduleService{}

func (h *prebuildScheduleHandler) CreatePrebuildSchedule(ctx context.Context, req *connect.Request[runyardv1.CreatePrebuildScheduleRequest]) (*connect.Response[runyardv1.CreatePrebuildScheduleResponse], error) {
	m := req.Msg
	sc, err := h.svc.CreateSchedule(ctx, prebuilds.CreateScheduleInput{
		ContextURL: m.GetContextUrl(), ClassID: m.GetEnvironmentClassId(), Interval: m.GetInterval().AsDuration(),
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.CreatePrebuildScheduleResponse{Schedule: scheduleToProto(sc)}), nil
}

func (h *prebuildScheduleHandler) ListPrebuildSchedules(ctx context.Context, req *connect.Request[runyardv1.ListPrebuildSchedulesRequest]) (*connect.Response[runyardv1.ListPrebuildSchedulesResponse], error) {
	items, err := h.svc.ListSchedules(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	out := &runyardv1.ListPrebuildSchedulesResponse{Schedules: make([]*runyardv1.PrebuildSchedule, len(items))}
	for i, sc := range items {
		out.Schedules[i] = scheduleToProto(sc)
	}
	return connect.NewResponse(out), nil
}

func (h *prebuildScheduleHandler) DeletePrebuildSchedule(ctx context.Context, req *connect.Request[runyardv1.DeletePrebuildScheduleRequest]) (*connect.Response[runyardv1.DeletePrebuildScheduleResponse], error) {
	if err := h.svc.DeleteSchedule(ctx, req.Msg.GetScheduleId()); err != nil {
		return nil, toConnect(ctx, h.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&runyardv1.DeletePrebuildScheduleResponse{}), nil
}

func scheduleToProto(sc *prebuilds.Schedule) *runyardv1.PrebuildSchedule {
	return &runyardv1.PrebuildSchedule{
		Id: sc.ID, ContextUrl: sc.ContextURL, EnvironmentClassId: sc.ClassID, Interval: durationpb.New(sc.Interval),
		NextRunAt: timestamppb.New(sc.NextRunAt), CreatedAt: timestamppb.New(sc.CreatedAt), LastPrebuildId: sc.LastPrebuildID,
	}
}
