package connectapi

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
)

// auditInterceptor records every mutating unary call of gitpod.v1 and
// runyard.v1 in the audit log: it puts a draft into the call's context (the
// store writes it with the change), and after the call writes the entry of
// a call that committed nothing (a refusal, a failure). It runs outside the
// auth interceptor, so that an unauthenticated call is recorded too.
type auditInterceptor struct {
	svc *audit.Service
	log *slog.Logger
}

func (a *auditInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		method := strings.TrimPrefix(req.Spec().Procedure, "/")
		if a.svc == nil || !audited(method) {
			return next(ctx, req)
		}
		objType := auditObjectType(method)
		ip, ok := clientip.FromContext(ctx)
		if !ok {
			ip = hostOf(req.Peer().Addr)
		}
		ctx, d := audit.Begin(ctx, audit.SurfaceConnect, method, objType, ip, req.Header().Get("User-Agent"))
		if m, ok := req.Any().(interface{ ProtoReflect() protoreflect.Message }); ok {
			if id := requestObjectID(m.ProtoReflect(), objType); id != "" {
				audit.SetObject(ctx, objType, id)
			}
		}
		res, err := next(ctx, req)
		outcome := audit.OutcomeOK
		if err != nil {
			outcome = connect.CodeOf(err).String()
		}
		if ferr := a.svc.Finish(ctx, d, outcome); ferr != nil {
			a.log.ErrorContext(ctx, "audit log", "err", ferr)
		}
		return res, err
	}
}

func (a *auditInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler passes streams through: the only streams are
// WatchEvents (a read) and the runner protocol, whose reports are the
// runner's, not calls a person makes.
func (a *auditInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// readPrefixes start the names of methods that change nothing.
var readPrefixes = []string{"Get", "List", "Watch", "Check", "Parse", "Search", "Validate", "Resolve"}

// audited reports whether a procedure ("pkg.Service/Method") changes
// something. MarkEnvironmentActive is the console's activity heartbeat,
// ReportErrors a client's crash report and ReportRunnerMetrics a runner's
// periodic metrics (an audit row per runner and push cost the control
// plane more than the report itself, bench/runnermetrics): none changes an
// object a person would look for in the audit log.
func audited(method string) bool {
	_, name, _ := strings.Cut(method, "/")
	for _, p := range readPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return name != "MarkEnvironmentActive" && name != "ReportErrors" && name != "ReportRunnerMetrics"
}

// auditObjectType is the type of object a procedure acts on.
func auditObjectType(method string) string {
	svc, name, _ := strings.Cut(method, "/")
	switch svc {
	case "gitpod.v1.RunnerService", "gitpod.v1.IdentityService":
		return gitpodv1.ResourceType_RESOURCE_TYPE_RUNNER.String()
	case "gitpod.v1.EnvironmentService", "runyard.v1.AutomationsService":
		return gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT.String()
	case "gitpod.v1.SecretService":
		return gitpodv1.ResourceType_RESOURCE_TYPE_SECRET.String()
	case "runyard.v1.TokenService":
		return audit.TypeAPIKey
	case "gitpod.v1.EnvironmentAutomationService":
		switch {
		case strings.Contains(name, "TaskExecution"):
			return gitpodv1.ResourceType_RESOURCE_TYPE_TASK_EXECUTION.String()
		case strings.Contains(name, "Task"):
			return gitpodv1.ResourceType_RESOURCE_TYPE_TASK.String()
		case strings.Contains(name, "Service"):
			return gitpodv1.ResourceType_RESOURCE_TYPE_SERVICE.String()
		}
		return gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT.String()
	}
	return ""
}

// objectIDFields are the request fields that name an object of a type,
// besides "id".
var objectIDFields = map[string]protoreflect.Name{
	gitpodv1.ResourceType_RESOURCE_TYPE_RUNNER.String():         "runner_id",
	gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT.String():    "environment_id",
	gitpodv1.ResourceType_RESOURCE_TYPE_SECRET.String():         "secret_id",
	gitpodv1.ResourceType_RESOURCE_TYPE_SERVICE.String():        "service_id",
	gitpodv1.ResourceType_RESOURCE_TYPE_TASK.String():           "task_id",
	gitpodv1.ResourceType_RESOURCE_TYPE_TASK_EXECUTION.String(): "task_execution_id",
	audit.TypeAPIKey: "token_id",
}

// requestObjectID is the id of the object of objType a request names: its
// top-level "id" or the type's own id field. Only these ids are read from a
// request, never another field (a secret's value, say).
func requestObjectID(m protoreflect.Message, objType string) string {
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"id", objectIDFields[objType]} {
		if name == "" {
			continue
		}
		if f := fields.ByName(name); f != nil && f.Kind() == protoreflect.StringKind && !f.IsList() {
			if v := m.Get(f).String(); v != "" {
				return v
			}
		}
	}
	return ""
}

// hostOf is the address without its port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// noteCaller tells ctx's draft who is calling, for an entry written after
// the call (whose context the auth interceptor's is not).
func noteCaller(ctx context.Context) {
	if d, ok := audit.FromContext(ctx); ok {
		if c, ok := identity.FromContext(ctx); ok {
			d.SetCaller(c)
		}
	}
}

// ListAuditLogs is the vendor's EventService.ListAuditLogs (audit:read).
func (h *eventHandler) ListAuditLogs(ctx context.Context, req *connect.Request[gitpodv1.ListAuditLogsRequest]) (*connect.Response[gitpodv1.ListAuditLogsResponse], error) {
	const proc = "gitpod.v1.EventService/ListAuditLogs"
	if h.audit == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, nil)
	}
	page, err := pageOf(ctx, req.Msg.GetPagination().GetToken(), req.Msg.GetPagination().GetPageSize())
	if err != nil {
		return nil, toConnect(ctx, h.log, proc, err)
	}
	f := req.Msg.GetFilter()
	lr := audit.ListRequest{Page: page, Filter: audit.Filter{ActorIDs: f.GetActorIds(), ObjectIDs: f.GetSubjectIds()}}
	for _, p := range f.GetActorPrincipals() {
		lr.ActorPrincipals = append(lr.ActorPrincipals, identity.Principal(p.String()))
	}
	for _, t := range f.GetSubjectTypes() {
		lr.ObjectTypes = append(lr.ObjectTypes, t.String())
	}
	lr.Methods = f.GetMethods()
	if f.GetSince() != nil {
		t := f.GetSince().AsTime()
		lr.Since = &t
	}
	if f.GetUntil() != nil {
		t := f.GetUntil().AsTime()
		lr.Until = &t
	}
	entries, next, err := h.audit.List(ctx, lr)
	if err != nil {
		return nil, toConnect(ctx, h.log, proc, err)
	}
	out := &gitpodv1.ListAuditLogsResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}, Entries: make([]*gitpodv1.AuditLogEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, auditEntryToProto(e))
	}
	return connect.NewResponse(out), nil
}

func auditEntryToProto(e *audit.Entry) *gitpodv1.AuditLogEntry {
	return &gitpodv1.AuditLogEntry{
		Id:             strconv.FormatInt(e.Seq, 10),
		ActorId:        e.ActorID,
		ActorPrincipal: gitpodv1.Principal(gitpodv1.Principal_value[string(e.ActorPrincipal)]),
		SubjectId:      e.ObjectID,
		SubjectType:    gitpodv1.ResourceType(gitpodv1.ResourceType_value[e.ObjectType]),
		Action:         e.Method,
		CreatedAt:      timestamppb.New(e.CreatedAt),
		Outcome:        e.Outcome,
		KeyId:          e.KeyID,
		UserId:         e.UserID,
		ClientIp:       e.ClientIP,
		UserAgent:      e.UserAgent,
		Surface:        e.Surface,
		SubjectKind:    e.ObjectType,
	}
}
