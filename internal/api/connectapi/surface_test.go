package connectapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/runyard/runyard/internal/api/connectapi"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/testutil"
)

// lenientJSON lets the surface tests read any method's answer into an empty
// message: they look at the code and the message, not at the fields.
type lenientJSON struct{}

func (lenientJSON) Name() string { return "json" }
func (lenientJSON) Marshal(msg any) ([]byte, error) {
	return protojson.Marshal(msg.(proto.Message))
}
func (lenientJSON) Unmarshal(b []byte, msg any) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, msg.(proto.Message))
}

// surfaceProtocols are the four protocols every method must answer in.
var surfaceProtocols = []protocol{
	{name: "ConnectJSON", opts: []connect.ClientOption{connect.WithProtoJSON(), connect.WithCodec(lenientJSON{})}},
	{name: "ConnectProto"},
	{name: "GRPC", opts: []connect.ClientOption{connect.WithGRPC()}, h2c: true},
	{name: "GRPCWeb", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

// apiMethods lists every method of every service in the gitpod.v1 and
// runyard.v1 protos, whoever declared it.
func apiMethods(tb testing.TB) []protoreflect.MethodDescriptor {
	tb.Helper()
	var out []protoreflect.MethodDescriptor
	for _, sd := range connectapi.APIServices() {
		for i := range sd.Methods().Len() {
			out = append(out, sd.Methods().Get(i))
		}
	}
	if len(out) < 150 {
		tb.Fatalf("only %d methods in the registry: are the generated packages linked in?", len(out))
	}
	return out
}

// callEmpty calls md at url with an empty request and returns the error the
// call ends with (nil when it succeeded). A server stream counts as answered
// once it delivers a message or stays open.
func callEmpty(ctx context.Context, hc *http.Client, url string, md protoreflect.MethodDescriptor, opts []connect.ClientOption) error {
	type msg = emptypb.Empty
	opts = append([]connect.ClientOption{connect.WithSchema(md)}, opts...)
	c := connect.NewClient[msg, msg](hc, url, opts...)
	switch {
	case md.IsStreamingClient() && md.IsStreamingServer():
		s := c.CallBidiStream(ctx)
		_ = s.Send(&msg{})
		_ = s.CloseRequest()
		_, err := s.Receive()
		_ = s.CloseResponse()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	case md.IsStreamingClient():
		s := c.CallClientStream(ctx)
		_, err := s.CloseAndReceive()
		return err
	case md.IsStreamingServer():
		s, err := c.CallServerStream(ctx, connect.NewRequest(&msg{}))
		if err != nil {
			return err
		}
		defer s.Close()
		if s.Receive() {
			return nil
		}
		return s.Err()
	}
	_, err := c.CallUnary(ctx, connect.NewRequest(&msg{}))
	return err
}

// TestEveryMethod_AnswersConnect calls every declared method on every
// protocol, under / and /api/: each is either implemented or answers
// unimplemented naming itself, never a plain 404 (which connect clients also
// read as unimplemented, hence the check of the message).
func TestEveryMethod_AnswersConnect(t *testing.T) {
	ts := testutil.StartServer(t, testutil.SQLite)
	methods := apiMethods(t)
	implemented := map[string]bool{}
	for _, p := range surfaceProtocols {
		hc := newHTTPClient(t, p.h2c)
		for _, prefix := range []string{"", connectapi.PathPrefix} {
			t.Run(p.name+prefix, func(t *testing.T) {
				for _, md := range methods {
					proc := connectapi.Procedure(md)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(bearer(testutil.AdminToken)))}, p.opts...)
					err := callEmpty(ctx, hc, ts.URL+prefix+proc, md, opts)
					cancel()
					isImpl := true
					var ce *connect.Error
					switch {
					case err == nil:
					case errors.As(err, &ce) && ce.Code() == connect.CodeUnimplemented:
						if got, want := ce.Message(), connectapi.UnimplementedMessage(md); got != want {
							t.Errorf("%s: unimplemented with message %q, want %q (a plain 404?)", proc, got, want)
						}
						isImpl = false
					case errors.Is(err, context.DeadlineExceeded) && md.IsStreamingServer():
						// A stream that stays open is an implemented one.
					case errors.As(err, &ce) && ce.Code() != connect.CodeUnknown:
						// An implemented method refusing an empty request.
					default:
						t.Errorf("%s: not a Connect answer: %v", proc, err)
					}
					if was, seen := implemented[proc]; seen && was != isImpl {
						t.Errorf("%s: implemented=%v here, %v on another protocol or path", proc, isImpl, was)
					}
					implemented[proc] = isImpl
				}
			})
		}
	}
	var impl, unimpl int
	for _, ok := range implemented {
		if ok {
			impl++
		} else {
			unimpl++
		}
	}
	t.Logf("%d methods declared: %d implemented, %d unimplemented", len(methods), impl, unimpl)
}

// unimplementedMethods returns the declared methods that answer
// unimplemented.
func unimplementedMethods(t *testing.T, ts *testutil.TestServer) []protoreflect.MethodDescriptor {
	t.Helper()
	hc := newHTTPClient(t, false)
	var out []protoreflect.MethodDescriptor
	for _, md := range apiMethods(t) {
		opts := []connect.ClientOption{connect.WithInterceptors(withAuthorization(bearer(testutil.AdminToken)))}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := callEmpty(ctx, hc, ts.URL+connectapi.Procedure(md), md, opts)
		cancel()
		if connect.CodeOf(err) == connect.CodeUnimplemented {
			out = append(out, md)
		}
	}
	if len(out) == 0 {
		t.Fatal("no unimplemented method left to test with")
	}
	return out
}

// TestUnimplemented_AuthFirst: an unimplemented method still wants a valid
// token, on every protocol and both paths.
func TestUnimplemented_AuthFirst(t *testing.T) {
	ts := testutil.StartServer(t, testutil.SQLite)
	methods := unimplementedMethods(t, ts)
	for _, p := range surfaceProtocols {
		hc := newHTTPClient(t, p.h2c)
		for _, prefix := range []string{"", connectapi.PathPrefix} {
			for _, auth := range []string{"", bearer("ryd_ak_not_a_real_token_000000000000")} {
				for _, md := range methods {
					opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(auth))}, p.opts...)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := callEmpty(ctx, hc, ts.URL+prefix+connectapi.Procedure(md), md, opts)
					cancel()
					if got := connect.CodeOf(err); got != connect.CodeUnauthenticated {
						t.Errorf("%s %s%s auth=%q: code %v (%v), want unauthenticated", p.name, prefix, connectapi.Procedure(md), auth, got, err)
					}
				}
			}
		}
	}
}

// TestUnimplemented_AnyBody: whatever a request to an unimplemented method
// holds (documented fields, fields nobody declared, bytes that are no
// message at all), the answer is unimplemented, not invalid_argument.
func TestUnimplemented_AnyBody(t *testing.T) {
	ts := testutil.StartServer(t, testutil.SQLite)
	methods := unimplementedMethods(t, ts)
	bodies := []struct{ name, contentType, body string }{
		{"JSONUndeclaredField", "application/json", `{"organizationId":"0195c4b8-1ae4-7fd4-a8f8-2e5bd5d5a0c1","surelyNotAField":1}`},
		{"JSONNotAnObject", "application/json", `[1,2,3`},
		{"ProtoGarbage", "application/proto", "\xff\xff\xff\xff\x0f\x01"},
	}
	for _, b := range bodies {
		for _, prefix := range []string{"", connectapi.PathPrefix} {
			for _, md := range methods {
				if md.IsStreamingServer() || md.IsStreamingClient() {
					continue // unary Connect bodies only
				}
				req, err := http.NewRequest(http.MethodPost, ts.URL+prefix+connectapi.Procedure(md), strings.NewReader(b.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", b.contentType)
				req.Header.Set("Authorization", bearer(testutil.AdminToken))
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var got struct{ Code, Message string }
				if err := json.Unmarshal(body, &got); err != nil || got.Code != "unimplemented" || got.Message != connectapi.UnimplementedMessage(md) {
					t.Errorf("%s %s%s: HTTP %d %s, want code unimplemented naming the method", b.name, prefix, connectapi.Procedure(md), res.StatusCode, bytes.TrimSpace(body))
				}
			}
		}
	}
}

// TestList_EmptyPageKeepsItsList calls every implemented List method on an
// organization that has nothing in it but one user (whose key calls the
// lists of what only users own): each answer carries its lists ([]) and
// its pagination, as the vendor's SDKs require of a page.
func TestList_EmptyPageKeepsItsList(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) { testEmptyLists(t, backend) })
	}
}

// userLists are the List methods of what only a user owns: they are
// called with a user's key, every other with the bootstrap key.
var userLists = map[string]bool{"/runyard.v1.SSHKeyService/ListSSHKeys": true}

func testEmptyLists(t *testing.T, backend testutil.Backend) {
	ts, st := startServerWithStore(t, backend)
	install := newUserClient(t, ts.URL, testutil.AdminToken)
	orgID := whoami(t, install.client).GetOrganizationId()
	userKey := mintUserKey(t, st, orgID, install.createUser(t, "lists@example.com", orgID, "admin"), identity.ScopeAdmin)
	var lists int
	for _, md := range apiMethods(t) {
		if !strings.HasPrefix(string(md.Name()), "List") || md.IsStreamingClient() || md.IsStreamingServer() {
			continue
		}
		proc := connectapi.Procedure(md)
		token := testutil.AdminToken
		if userLists[proc] {
			token = userKey
		}
		res := postJSONAs(t, ts.URL+proc, token, `{}`)
		if res.code == "unimplemented" {
			continue
		}
		lists++
		if res.status != http.StatusOK {
			t.Errorf("%s: HTTP %d %s", proc, res.status, res.body)
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(res.body, &obj); err != nil {
			t.Fatalf("%s: %v in %s", proc, err, res.body)
		}
		fields := md.Output().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			v, ok := obj[fd.JSONName()]
			switch {
			case fd.IsList():
				if _, isArr := v.([]any); !ok || !isArr {
					t.Errorf("%s: %q is %v, want a list (%s)", proc, fd.JSONName(), v, res.body)
				}
			case fd.IsMap():
				if _, isObj := v.(map[string]any); !ok || !isObj {
					t.Errorf("%s: %q is %v, want an object (%s)", proc, fd.JSONName(), v, res.body)
				}
			case fd.Name() == "pagination":
				if _, isObj := v.(map[string]any); !ok || !isObj {
					t.Errorf("%s: pagination is %v, want an object (%s)", proc, v, res.body)
				}
			}
		}
	}
	if lists < 8 {
		t.Errorf("only %d implemented List methods found", lists)
	}
}

type jsonAnswer struct {
	status int
	code   string
	body   []byte
}

// postJSON sends a Connect JSON request as the admin.
func postJSON(tb testing.TB, url, body string) jsonAnswer {
	tb.Helper()
	return postJSONAs(tb, url, testutil.AdminToken, body)
}

// postJSONAs is postJSON with token's key.
func postJSONAs(tb testing.TB, url, token, body string) jsonAnswer {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", bearer(token))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var e struct{ Code string }
	if res.StatusCode != http.StatusOK {
		_ = json.Unmarshal(b, &e)
	}
	return jsonAnswer{status: res.StatusCode, code: e.Code, body: b}
}

// streamingMethods declares a service with one method of each streaming kind.
func streamingMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	empty := ".google.protobuf.Empty"
	method := func(name string, client, server bool) *descriptorpb.MethodDescriptorProto {
		return &descriptorpb.MethodDescriptorProto{Name: proto.String(name), InputType: &empty, OutputType: &empty,
			ClientStreaming: proto.Bool(client), ServerStreaming: proto.Bool(server)}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("runyardtest/v1/stream.proto"), Package: proto.String("runyardtest.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("StreamService"), Method: []*descriptorpb.MethodDescriptorProto{
			method("Watch", false, true), method("Upload", true, false), method("Chat", true, true),
		}}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	var out []protoreflect.MethodDescriptor
	for i := range fd.Services().Get(0).Methods().Len() {
		out = append(out, fd.Services().Get(0).Methods().Get(i))
	}
	return out
}

// TestUnimplemented_Streams: a streaming method without a handler answers
// unimplemented (or unauthenticated) as a proper stream error in every
// protocol, never a plain 404 that a streaming client chokes on (the Go SDK's
// event stream panicked in Close).
func TestUnimplemented_Streams(t *testing.T) {
	asCaller := connect.WithInterceptors(callerFromHeader{})
	mux := http.NewServeMux()
	methods := streamingMethods(t)
	for _, md := range methods {
		mux.Handle(connectapi.Procedure(md), connectapi.UnimplementedHandler(md, []connect.HandlerOption{asCaller}, slog.Default()))
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, p := range surfaceProtocols {
		hc, h2c := newHTTPClient(t, p.h2c), newHTTPClient(t, true)
		for _, md := range methods {
			hc := hc
			if md.IsStreamingClient() && md.IsStreamingServer() {
				hc = h2c // bidi streams need HTTP/2 in every protocol
			}
			for _, auth := range []string{bearer("anything"), ""} {
				opts := append([]connect.ClientOption{connect.WithInterceptors(withStreamAuthorization(auth))}, p.opts...)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := callEmpty(ctx, hc, srv.URL+connectapi.Procedure(md), md, opts)
				cancel()
				want, wantMsg := connect.CodeUnimplemented, connectapi.UnimplementedMessage(md)
				if auth == "" {
					want, wantMsg = connect.CodeUnauthenticated, ""
				}
				var ce *connect.Error
				if !errors.As(err, &ce) || ce.Code() != want || (wantMsg != "" && ce.Message() != wantMsg) {
					t.Errorf("%s %s auth=%q: %v, want %v %q", p.name, connectapi.Procedure(md), auth, err, want, wantMsg)
				}
			}
		}
	}
}

// callerFromHeader stands for the authentication interceptor: any
// Authorization header makes a caller.
type callerFromHeader struct{}

func (callerFromHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (callerFromHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (callerFromHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if conn.RequestHeader().Get("Authorization") != "" {
			ctx = identity.NewContext(ctx, &identity.Caller{})
		}
		return next(ctx, conn)
	}
}

// withStreamAuthorization sets Authorization on streaming calls too.
func withStreamAuthorization(v string) connect.Interceptor { return streamAuth(v) }

type streamAuth string

func (a streamAuth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if a != "" {
			req.Header().Set("Authorization", string(a))
		}
		return next(ctx, req)
	}
}
func (a streamAuth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if a != "" {
			conn.RequestHeader().Set("Authorization", string(a))
		}
		return conn
	}
}
func (streamAuth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestSecrets_GetSecretValueUnimplemented: secret values never come out of
// the API; the vendor's GetSecretValue is declared and answers unimplemented.
func TestSecrets_GetSecretValueUnimplemented(t *testing.T) {
	ts := testutil.StartServer(t, testutil.SQLite)
	for _, prefix := range []string{"", connectapi.PathPrefix} {
		res := postJSON(t, ts.URL+prefix+"/gitpod.v1.SecretService/GetSecretValue", `{"secretId":"0195c4b8-1ae4-7fd4-a8f8-2e5bd5d5a0c1"}`)
		if res.code != "unimplemented" || !strings.Contains(string(res.body), "gitpod.v1.SecretService/GetSecretValue is not implemented in runyard") {
			t.Errorf("GetSecretValue under %q: HTTP %d %s", prefix, res.status, res.body)
		}
	}
}
