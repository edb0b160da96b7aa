// Package connectapi serves the Connect API (gitpod.v1 and runyard.v1) with
// connect-go, so JSON, binary protobuf, gRPC and gRPC-Web clients all work on
// the same paths. Handlers only translate: the rules live in the domain
// services.
package connectapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
)

// MaxRequestBytes bounds a request message; larger ones fail with
// resource_exhausted before they are decoded.
const MaxRequestBytes = 4 << 20

// Services are the domain services behind the API.
type Services struct {
	Identity     *identity.Service
	Runners      *runners.Service
	Fleet        *fleet.Fleet
	Environments *environments.Service
	Automations  *automations.Manager
	Secrets      *secrets.Service
	Events       *events.Service
}

// Mount registers every Connect service on mux.
func Mount(mux *http.ServeMux, svc Services, log *slog.Logger) {
	auth := &authInterceptor{
		auth:   svc.Identity,
		public: map[string]bool{gitpodv1connect.IdentityServiceExchangeTokenProcedure: true},
		log:    log,
	}
	opts := []connect.HandlerOption{
		// A panic is a bug: log it loudly and answer internal, never drop the
		// connection.
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.ErrorContext(ctx, "handler panicked", "procedure", spec.Procedure, "panic", p, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
		connect.WithCodec(strictJSON{}),
		// Compressing a 300-byte GetRunner costs more than sending it: the
		// gzip writer's reset was 17% of a GetRunner's CPU.
		connect.WithCompressMinBytes(1024),
		connect.WithInterceptors(auth),
		connect.WithReadMaxBytes(MaxRequestBytes),
	}
	handle := func(path string, h http.Handler) { mux.Handle(path, withQueryPaging(h)) }
	handle(gitpodv1connect.NewRunnerServiceHandler(&runnerHandler{svc: svc.Runners, log: log}, opts...))
	handle(gitpodv1connect.NewIdentityServiceHandler(&identityHandler{svc: svc.Identity, log: log}, opts...))
	handle(runyardv1connect.NewTokenServiceHandler(&tokenHandler{svc: svc.Identity, log: log}, opts...))
	handle(gitpodv1connect.NewEnvironmentServiceHandler(&environmentHandler{svc: svc.Environments, log: log}, opts...))
	handle(gitpodv1connect.NewEnvironmentAutomationServiceHandler(&automationHandler{svc: svc.Automations, log: log}, opts...))
	handle(runyardv1connect.NewAutomationsServiceHandler(&automationsHandler{svc: svc.Automations, log: log}, opts...))
	handle(gitpodv1connect.NewSecretServiceHandler(&secretHandler{svc: svc.Secrets, log: log}, opts...))
	if svc.Events != nil {
		path, h := gitpodv1connect.NewEventServiceHandler(&eventHandler{svc: svc.Events, log: log}, opts...)
		handle(path, jsonlWatch(h, svc.Identity, svc.Events, log))
	}
	mux.Handle(runnerv1connect.NewRunnerControlServiceHandler(&runnerControlHandler{fleet: svc.Fleet, log: log}, opts...))
}
