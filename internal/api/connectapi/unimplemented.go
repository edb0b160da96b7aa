package connectapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/identity"
)

// APIPackages are the proto packages whose every service Mount serves, under
// / and under PathPrefix.
var APIPackages = []protoreflect.FullName{"gitpod.v1", "runyard.v1"}

// A handler struct (runnerHandler, ...) implements the methods runyard
// serves and nothing else: which methods it has says which procedures are
// implemented. Its service wrapper (runnerService, ...) satisfies the
// generated interface, the generated Unimplemented type filling in the rest
// one level deeper, where a method of the handler always wins; those fillers
// are never called, since the mounter routes an unimplemented procedure to
// its stub first. A handler struct must therefore not embed the generated
// Unimplemented type itself (TestEveryMethod_AnswersConnect would see the
// generated message instead of runyard's).
type (
	runnerService struct {
		*runnerHandler
		runnerFallback
	}
	runnerFallback struct {
		gitpodv1connect.UnimplementedRunnerServiceHandler
	}
	identityService struct {
		*identityHandler
		identityFallback
	}
	identityFallback struct {
		gitpodv1connect.UnimplementedIdentityServiceHandler
	}
	tokenService struct {
		*tokenHandler
		tokenFallback
	}
	tokenFallback struct {
		runyardv1connect.UnimplementedTokenServiceHandler
	}
	environmentService struct {
		*environmentHandler
		environmentFallback
	}
	environmentFallback struct {
		gitpodv1connect.UnimplementedEnvironmentServiceHandler
	}
	automationService struct {
		*automationHandler
		automationFallback
	}
	automationFallback struct {
		gitpodv1connect.UnimplementedEnvironmentAutomationServiceHandler
	}
	automationsService struct {
		*automationsHandler
		automationsFallback
	}
	automationsFallback struct {
		runyardv1connect.UnimplementedAutomationsServiceHandler
	}
	secretService struct {
		*secretHandler
		secretFallback
	}
	secretFallback struct {
		gitpodv1connect.UnimplementedSecretServiceHandler
	}
	eventService struct {
		*eventHandler
		eventFallback
	}
	eventFallback struct {
		gitpodv1connect.UnimplementedEventServiceHandler
	}
	organizationService struct {
		*organizationHandler
		organizationFallback
	}
	organizationFallback struct {
		gitpodv1connect.UnimplementedOrganizationServiceHandler
	}
	userService struct {
		*userHandler
		userFallback
	}
	userFallback struct {
		gitpodv1connect.UnimplementedUserServiceHandler
	}
	userAdminService struct {
		*userAdminHandler
		userAdminFallback
	}
	userAdminFallback struct {
		runyardv1connect.UnimplementedUserAdminServiceHandler
	}
	installationService struct {
		*installationHandler
		installationFallback
	}
	installationFallback struct {
		runyardv1connect.UnimplementedInstallationServiceHandler
	}
	prebuildService struct {
		*prebuildHandler
		prebuildFallback
	}
	prebuildFallback struct {
		gitpodv1connect.UnimplementedPrebuildServiceHandler
	}
	prebuildScheduleService struct {
		*prebuildScheduleHandler
		prebuildScheduleFallback
	}
	prebuildScheduleFallback struct {
		runyardv1connect.UnimplementedPrebuildScheduleServiceHandler
	}
)

// mounter puts services on a mux, each under / and PathPrefix, and answers
// every declared procedure that no handler implements.
type mounter struct {
	mux     *http.ServeMux
	log     *slog.Logger
	opts    []connect.HandlerOption
	mounted map[protoreflect.FullName]bool
}

func newMounter(mux *http.ServeMux, opts []connect.HandlerOption, log *slog.Logger) *mounter {
	return &mounter{mux: mux, opts: opts, log: log, mounted: map[protoreflect.FullName]bool{}}
}

// service returns what mounts the generated handler of one service (its
// path and handler); impl is the handler struct whose methods are the
// implemented procedures.
func (m *mounter) service(impl any) func(path string, typed http.Handler) {
	t := reflect.TypeOf(impl)
	return func(path string, typed http.Handler) {
		m.mount(serviceAt(path), func(method protoreflect.Name) bool {
			_, ok := t.MethodByName(string(method))
			return ok
		}, typed)
	}
}

// handle mounts a handler that serves every method of its service itself
// (one wrapped by hand, say), under / and PathPrefix.
func (m *mounter) handle(path string, h http.Handler) {
	m.mount(serviceAt(path), func(protoreflect.Name) bool { return true }, h)
}

// serviceAt returns the service whose handler path is path
// ("/gitpod.v1.RunnerService/"). A generated handler's service is always
// registered, so a miss is a bug.
func serviceAt(path string) protoreflect.ServiceDescriptor {
	name := protoreflect.FullName(strings.Trim(path, "/"))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		panic(fmt.Sprintf("connectapi: service %s is not in the proto registry: %v", name, err))
	}
	return d.(protoreflect.ServiceDescriptor)
}

// rest mounts every service of APIPackages that no handler serves.
func (m *mounter) rest() {
	for _, sd := range APIServices() {
		if !m.mounted[sd.FullName()] {
			m.mount(sd, func(protoreflect.Name) bool { return false }, nil)
		}
	}
}

// mount serves sd: implemented says which methods typed serves, the others
// get their stub.
func (m *mounter) mount(sd protoreflect.ServiceDescriptor, implemented func(protoreflect.Name) bool, typed http.Handler) {
	m.mounted[sd.FullName()] = true
	stubs := map[string]http.Handler{}
	methods := sd.Methods()
	for i := range methods.Len() {
		md := methods.Get(i)
		if implemented(md.Name()) {
			continue
		}
		stubs[Procedure(md)] = unimplementedHandler(md, m.opts, m.log)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stub, ok := stubs[r.URL.Path]; ok {
			stub.ServeHTTP(w, r)
			return
		}
		if typed == nil {
			http.NotFound(w, r)
			return
		}
		typed.ServeHTTP(w, r)
	})
	path := "/" + string(sd.FullName()) + "/"
	m.mux.Handle(path, withQueryPaging(h))
	m.mux.Handle(PathPrefix+path, http.StripPrefix(PathPrefix, withQueryPaging(h)))
}

// APIServices returns every service declared in APIPackages, in a stable
// order.
func APIServices() []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !slices.Contains(APIPackages, fd.Package()) {
			return true
		}
		for i := range fd.Services().Len() {
			out = append(out, fd.Services().Get(i))
		}
		return true
	})
	slices.SortFunc(out, func(a, b protoreflect.ServiceDescriptor) int {
		return strings.Compare(string(a.FullName()), string(b.FullName()))
	})
	return out
}

// Procedure is the path of md: /gitpod.v1.RunnerService/GetRunner.
func Procedure(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

// UnimplementedMessage is what a method runyard does not implement answers,
// with code unimplemented.
func UnimplementedMessage(md protoreflect.MethodDescriptor) string {
	return fmt.Sprintf("%s/%s is not implemented in runyard", md.Parent().FullName(), md.Name())
}

// unimplementedHandler answers md with unimplemented in every protocol, for
// any request body: its codecs never decode, so a request with fields the
// protos do not declare, or that is not even a message, still learns that
// the method is missing rather than what is wrong with its body. It still
// wants an authenticated caller first, as every implemented method does in
// its domain service.
func unimplementedHandler(md protoreflect.MethodDescriptor, opts []connect.HandlerOption, log *slog.Logger) http.Handler {
	proc := Procedure(md)
	errFn := func(ctx context.Context) error {
		if _, err := identity.RequireAuthenticated(ctx); err != nil {
			return toConnect(ctx, log, proc, err)
		}
		return connect.NewError(connect.CodeUnimplemented, errors.New(UnimplementedMessage(md)))
	}
	opts = append(slices.Clip(opts), connect.WithSchema(md),
		connect.WithCodec(ignoreBody{name: "json"}), connect.WithCodec(ignoreBody{name: "proto", binary: true}))
	type msg = emptypb.Empty
	switch {
	case md.IsStreamingClient() && md.IsStreamingServer():
		return connect.NewBidiStreamHandler(proc, func(ctx context.Context, _ *connect.BidiStream[msg, msg]) error { return errFn(ctx) }, opts...)
	case md.IsStreamingClient():
		return connect.NewClientStreamHandler(proc, func(ctx context.Context, _ *connect.ClientStream[msg]) (*connect.Response[msg], error) {
			return nil, errFn(ctx)
		}, opts...)
	case md.IsStreamingServer():
		return connect.NewServerStreamHandler(proc, func(ctx context.Context, _ *connect.Request[msg], _ *connect.ServerStream[msg]) error {
			return errFn(ctx)
		}, opts...)
	}
	return connect.NewUnaryHandler(proc, func(ctx context.Context, _ *connect.Request[msg]) (*connect.Response[msg], error) {
		return nil, errFn(ctx)
	}, opts...)
}

// ignoreBody is a codec that decodes every body as an empty message.
type ignoreBody struct {
	name   string
	binary bool
}

func (c ignoreBody) Name() string { return c.name }

func (c ignoreBody) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, errNotProto(msg)
	}
	if c.binary {
		return proto.Marshal(m)
	}
	return protojson.Marshal(m)
}

func (ignoreBody) Unmarshal(_ []byte, msg any) error {
	if m, ok := msg.(proto.Message); ok {
		proto.Reset(m)
	}
	return nil
}

func (c ignoreBody) MarshalStable(msg any) ([]byte, error) { return c.Marshal(msg) }

func (c ignoreBody) IsBinary() bool { return c.binary }
