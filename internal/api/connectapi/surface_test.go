package connectapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/runyard/runyard/internal/api/connectapi"
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
