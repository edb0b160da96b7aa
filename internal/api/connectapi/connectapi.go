// Package connectapi serves the Connect API (gitpod.v1 and runyard.v1) with
// connect-go, so JSON, binary protobuf, gRPC and gRPC-Web clients all work on
// the same paths. Handlers only translate: the rules live in the domain
// services.
//
// Every method declared in proto/gitpod/v1 and proto/runyard/v1 is served,
// also under the prefix /api (the vendor SDKs' default base URL ends in /api):
// a method runyard does not implement answers unimplemented, naming it, in
// the client's protocol (see unimplemented.go).
package connectapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/prebuilds"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/runnerstream"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/sshkeys"
	"github.com/runyard/runyard/internal/users"
)

// MaxRequestBytes bounds a request message; larger ones fail with
// resource_exhausted before they are decoded.
const MaxRequestBytes = 4 << 20

// PathPrefix is the prefix under which every gitpod.v1 and runyard.v1
// procedure is served too: /api/gitpod.v1.RunnerService/GetRunner is
// /gitpod.v1.RunnerService/GetRunner. The runner protocol (runyard.runner.v1)
// is served only without it.
const PathPrefix = "/api"

// Services are the domain services behind the API.
type Services struct {
	Identity *identity.Service
	Runners  *runners.Service
	Fleet    *fleet.Fleet
	// RunnerStreamConnections lets runners hold their streams on
	// connections of their own (runnerstream, server.Config.RunnerStreams);
	// without it they use the Connect stream.
	RunnerStreamConnections bool
	Environments            *environments.Service
	Automations             *automations.Manager
	Secrets                 *secrets.Service
	Events                  *events.Service
	Orgs                    *orgs.Service
	// Users serves users, members and invites (with Orgs).
	Users *users.Service
	// Audit records mutating calls and answers ListAuditLogs; nil records
	// nothing.
	Audit *audit.Service
	// PortURL is the preview URL of an environment's port
	// (status.environmentUrls.ports[].url), "" when previews are off; nil
	// is always "".
	PortURL func(envID string, port int32) string
	// SSHKeys serves users' own SSH keys; nil answers unimplemented.
	SSHKeys *sshkeys.Service
	// Prebuilds serves PrebuildService; nil leaves it unimplemented.
	Prebuilds *prebuilds.Service
}

// Mount registers every Connect service on mux.
func Mount(mux *http.ServeMux, svc Services, log *slog.Logger) {
	auth := &authInterceptor{
		auth: svc.Identity,
		// An invite is the credential of AcceptInvite, as an exchange
		// token is of ExchangeToken.
		public: map[string]bool{gitpodv1connect.IdentityServiceExchangeTokenProcedure: true,
			runyardv1connect.UserAdminServiceAcceptInviteProcedure: true},
		log: log,
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
		// The audit interceptor is outermost: a call refused by auth is
		// recorded too.
		connect.WithInterceptors(&auditInterceptor{svc: svc.Audit, log: log}, auth),
		connect.WithReadMaxBytes(MaxRequestBytes),
	}
	runner := &runnerHandler{svc: svc.Runners, log: log}
	ident := &identityHandler{svc: svc.Identity, log: log}
	token := &tokenHandler{svc: svc.Identity, log: log}
	env := &environmentHandler{svc: svc.Environments, log: log, portURL: svc.PortURL}
	auto := &automationHandler{svc: svc.Automations, log: log}
	autos := &automationsHandler{svc: svc.Automations, log: log}
	secret := &secretHandler{svc: svc.Secrets, log: log}
	m := newMounter(mux, opts, log)
	runnerPath, runnerTyped := gitpodv1connect.NewRunnerServiceHandler(runnerService{runnerHandler: runner}, slices.Concat(opts, []connect.HandlerOption{fastGzip()})...)
	m.service(runner)(runnerPath, &fastReads{svc: svc.Runners, auth: svc.Identity, next: runnerTyped})
	m.service(ident)(gitpodv1connect.NewIdentityServiceHandler(identityService{identityHandler: ident}, opts...))
	m.service(token)(runyardv1connect.NewTokenServiceHandler(tokenService{tokenHandler: token}, opts...))
	m.service(env)(gitpodv1connect.NewEnvironmentServiceHandler(environmentService{environmentHandler: env}, opts...))
	m.service(auto)(gitpodv1connect.NewEnvironmentAutomationServiceHandler(automationService{automationHandler: auto}, opts...))
	m.service(autos)(runyardv1connect.NewAutomationsServiceHandler(automationsService{automationsHandler: autos}, opts...))
	m.service(secret)(gitpodv1connect.NewSecretServiceHandler(secretService{secretHandler: secret}, opts...))
	if svc.Events != nil {
		ev := &eventHandler{svc: svc.Events, audit: svc.Audit, log: log}
		path, h := gitpodv1connect.NewEventServiceHandler(eventService{eventHandler: ev}, slices.Concat(opts, eventCodecs())...)
		m.service(ev)(path, jsonlWatch(h, svc.Identity, svc.Events, log))
	}
	if svc.Orgs != nil {
		org := &organizationHandler{svc: svc.Orgs, users: svc.Users, log: log}
		inst := &installationHandler{svc: svc.Orgs, log: log}
		m.service(org)(gitpodv1connect.NewOrganizationServiceHandler(organizationService{organizationHandler: org}, opts...))
		m.service(inst)(runyardv1connect.NewInstallationServiceHandler(installationService{installationHandler: inst}, opts...))
		usr := &userHandler{svc: svc.Users, log: log}
		adm := &userAdminHandler{svc: svc.Users, log: log}
		m.service(usr)(gitpodv1connect.NewUserServiceHandler(userService{userHandler: usr}, opts...))
		m.service(adm)(runyardv1connect.NewUserAdminServiceHandler(userAdminService{userAdminHandler: adm}, opts...))
	}
	if svc.SSHKeys != nil {
		keys := &sshKeyHandler{svc: svc.SSHKeys, log: log}
		m.service(keys)(runyardv1connect.NewSSHKeyServiceHandler(keys, opts...))
	}
	if svc.Prebuilds != nil {
		pb := &prebuildHandler{svc: svc.Prebuilds, log: log}
		m.service(pb)(gitpodv1connect.NewPrebuildServiceHandler(prebuildService{prebuildHandler: pb}, opts...))
		ps := &prebuildScheduleHandler{svc: svc.Prebuilds, log: log}
		m.service(ps)(runyardv1connect.NewPrebuildScheduleServiceHandler(prebuildScheduleService{prebuildScheduleHandler: ps}, opts...))
	}
	m.rest()
	// The runner protocol is ours alone: no SDK looks for it under /api.
	path, h := runnerv1connect.NewRunnerControlServiceHandler(&runnerControlHandler{fleet: svc.Fleet, log: log},
		slices.Concat(opts, []connect.HandlerOption{connect.WithCodec(fleet.TerminalCodec{})})...)
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case rawconn.SessionPath:
			serveRaw(w, r, svc, log, rawconn.ProtocolSession, (*fleet.Fleet).ServeSessionRaw)
			return
		case rawconn.LogPath:
			serveRaw(w, r, svc, log, rawconn.ProtocolLog, (*fleet.Fleet).ServeLogRaw)
			return
		case runnerstream.Path:
			serveRunnerStream(w, r, svc, log)
			return
		}
		if r.URL.Path == runnerv1connect.RunnerControlServiceTerminalProcedure {
			r.Body = readAhead(r.Body)
		}
		if r.URL.Path == runnerv1connect.RunnerControlServiceConnectProcedure {
			// The fleet receives on the handler's goroutine and ends a
			// stream from its side by closing the request body, which
			// ends a blocked read (connectStream.CloseReceive).
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestBodyKey{}, r.Body)))
			return
		}
		if r.URL.Path != runnerv1connect.RunnerControlServiceSessionProcedure {
			h.ServeHTTP(w, r)
			return
		}
		gw := &gatherWriter{ResponseWriter: w}
		defer gw.writeOut()
		h.ServeHTTP(gw, r)
	}))
}

// readAhead reads a request's body in large reads. Connect reads a message
// of a stream in several reads while its buffer grows, and HTTP/2 answers
// every read of 4 KiB or more with WINDOW_UPDATE frames, each a write to
// the connection and a wake-up of the runner: a followed log's 256 KiB
// Terminal messages cost about eight of each. One read takes whatever the
// stream has buffered (up to readAheadSize); a read as large as the buffer
// goes straight through, with no copy. Each Terminal stream (a followed
// log, an open pod terminal) holds a buffer of this size.
func readAhead(body io.ReadCloser) io.ReadCloser {
	return readAheadBody{Reader: bufio.NewReaderSize(body, readAheadSize), Closer: body}
}

// readAheadSize is a read's most: a log's message (fleet.TerminalCodec's
// chunks) with its prefix fits.
const readAheadSize = 256<<10 + 64

type readAheadBody struct {
	*bufio.Reader
	io.Closer
}

// serveRaw serves a runner's connection of its own (rawconn) for a TCP
// session (ProtocolSession) or a log (ProtocolLog): an HTTP/1.1 connection
// the fleet pairs with the client waiting for it (serve, the fleet's
// ServeSessionRaw or ServeLogRaw).
func serveRaw(w http.ResponseWriter, r *http.Request, svc Services, log *slog.Logger, protocol string,
	serve func(f *fleet.Fleet, ctx context.Context, id string, accept func() (net.Conn, error)) error) {
	ctx, err := apiauth.Authenticate(r.Context(), svc.Identity, r.Header)
	if err == nil && !rawconn.Requested(r, protocol) {
		err = apperr.Invalid("Upgrade", "this endpoint needs Upgrade: %s", protocol)
	}
	if err == nil && svc.Fleet == nil {
		err = &apperr.Error{Code: apperr.CodeUnavailable, Message: "no runner protocol on this control plane"}
	}
	if err == nil {
		err = serve(svc.Fleet, ctx, r.Header.Get(rawconn.SessionIDHeader), func() (net.Conn, error) {
			return rawconn.Accept(w, protocol)
		})
	}
	if err != nil {
		jsonerr.Write(w, r, log, err)
	}
}

// serveRunnerStream serves a runner's stream on a connection of its own
// (runnerstream): the fleet serves it as it serves the Connect stream, and
// its end carries the error the Connect handler would answer.
func serveRunnerStream(w http.ResponseWriter, r *http.Request, svc Services, log *slog.Logger) {
	ctx, err := apiauth.Authenticate(r.Context(), svc.Identity, r.Header)
	if err == nil {
		_, err = identity.RequireRunner(ctx)
	}
	if err == nil && !rawconn.Requested(r, runnerstream.Protocol) {
		err = apperr.Invalid("Upgrade", "this endpoint needs Upgrade: %s", runnerstream.Protocol)
	}
	if err == nil && svc.Fleet == nil {
		err = &apperr.Error{Code: apperr.CodeUnavailable, Message: "no runner protocol on this control plane"}
	}
	if err == nil && !svc.RunnerStreamConnections {
		// A runner remembers the 404 and keeps to the Connect stream.
		err = apperr.NotFound("this control plane keeps runners' streams on HTTP/2 (--runner-streams): use RunnerControlService/Connect")
	}
	if err != nil {
		jsonerr.Write(w, r, log, err)
		return
	}
	conn, err := rawconn.Accept(w, runnerstream.Protocol)
	if err != nil {
		log.Warn("accept a runner's stream connection", "err", err)
		return
	}
	s := runnerstream.NewServer(conn)
	// The stream outlives this handler, on a goroutine of its own: the
	// handler's return lets go of net/http's connection and its buffers,
	// and the new goroutine's stack stays as small as a blocked read
	// needs. The stream ends with its connection, not with the request.
	ctx = context.WithoutCancel(ctx)
	svc.Fleet.ServeDetached(ctx, s, func(err error) { s.End(toConnect(ctx, log, runnerstream.Path, err)) })
}

// gatherWriter holds what is written to it until Flush, then writes it at
// once. Connect writes each message of a stream as its 5-byte prefix and
// then its payload, and flushes after it; through HTTP/2's 4 KiB write
// buffer that was two DATA frames and two hand-overs to the connection's
// writer per message. A Session stream carries a session's bytes (a port
// forward's, in chunks of up to 256 KiB) this way: one write per message
// costs a copy of the payload and saves a hand-over, a frame and the
// runner's wake-up for it.
type gatherWriter struct {
	http.ResponseWriter
	buf []byte
}

// maxGather bounds what a gatherWriter holds: a larger write goes
// through as it is, after what was held.
const maxGather = 1<<20 + 64

func (w *gatherWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > maxGather {
		if err := w.writeOut(); err != nil {
			return 0, err
		}
		return w.ResponseWriter.Write(p)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *gatherWriter) writeOut() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *gatherWriter) Flush() {
	if w.writeOut() == nil {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *gatherWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
