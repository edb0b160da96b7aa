package connectapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/testutil"
)

// fuzzRunnerID stands for a runner that exists on the fuzzed server. It is a
// UUID, so the real id that replaces it has the same length and binary inputs
// keep their length prefixes.
const fuzzRunnerID = "00000000-0000-4000-8000-00000000beef"

// fuzzExchangeToken stands for an unused exchange token of the fuzzed
// server's runner, with the length of a real one (ryd_ex_ and 43 characters).
// The first input that redeems it succeeds; later ones find it used.
const fuzzExchangeToken = "ryd_ex_FUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZ"

// fuzzTarget is a server under fuzzing with a runner whose id replaces
// fuzzRunnerID in the inputs, and that runner's exchange token, which
// replaces fuzzExchangeToken.
type fuzzTarget struct {
	backend  testutil.Backend
	url      string
	runnerID string
	exchange string
	admin    *client
	hc       *http.Client
}

var fuzzProcedures = []struct {
	path string
	msg  func() proto.Message
}{
	{pathCreateRunner, func() proto.Message { return new(gitpodv1.CreateRunnerRequest) }},
	{pathUpdateRunner, func() proto.Message { return new(gitpodv1.UpdateRunnerRequest) }},
	{pathListRunners, func() proto.Message { return new(gitpodv1.ListRunnersRequest) }},
	{pathGetRunner, func() proto.Message { return new(gitpodv1.GetRunnerRequest) }},
	{gitpodv1connect.RunnerServiceCreateRunnerTokenProcedure, func() proto.Message { return new(gitpodv1.CreateRunnerTokenRequest) }},
	{gitpodv1connect.IdentityServiceExchangeTokenProcedure, func() proto.Message { return new(gitpodv1.ExchangeTokenRequest) }},
	// DeleteRunner goes last: it may remove the target's runner, which the
	// fuzz function then replaces for the next input.
	{gitpodv1connect.RunnerServiceDeleteRunnerProcedure, func() proto.Message { return new(gitpodv1.DeleteRunnerRequest) }},
}

var fuzzEncodings = []struct {
	contentType string
	unmarshal   func([]byte, proto.Message) error
}{
	{"application/json", func(b []byte, m proto.Message) error {
		// The server's codec reads an empty body as an empty message.
		if len(b) == 0 {
			return nil
		}
		return protojson.Unmarshal(b, m)
	}},
	{"application/proto", proto.Unmarshal},
}

// fuzzSeeds are valid and invalid requests of every fuzzed method, in JSON.
// Each is also added in binary form where it is a valid message.
var fuzzSeeds = []string{
	``,
	`{}`,
	`null`,
	`[]`,
	`{"name":"fuzz-seed","provider":"RUNNER_PROVIDER_LINUX_HOST"}`,
	`{"name":"fuzz-kind","kind":"RUNNER_KIND_REMOTE"}`,
	`{"name":"fuzz-managed","provider":"RUNNER_PROVIDER_MANAGED","runnerManagerId":"` + fuzzRunnerID + `"}`,
	`{"name":"Production Runner","provider":"RUNNER_PROVIDER_AWS_EC2","spec":{"desiredPhase":"RUNNER_PHASE_ACTIVE","configuration":{"region":"us-west","releaseChannel":"RUNNER_RELEASE_CHANNEL_STABLE","autoUpdate":true}}}`,
	`{"name":"fuzz-full","provider":"RUNNER_PROVIDER_GCP","spec":{"desiredPhase":"RUNNER_PHASE_INACTIVE","variant":"RUNNER_VARIANT_ENTERPRISE","configuration":{"region":"eu","releaseChannel":"RUNNER_RELEASE_CHANNEL_LATEST","autoUpdate":true,"logLevel":"LOG_LEVEL_DEBUG","metrics":{"enabled":true,"url":"https://m.example.com","username":"u","password":"p","managedMetricsEnabled":true,"includeVerboseMetrics":true},"devcontainerImageCacheEnabled":true,"updateWindow":{"startHour":23},"continuousProfiling":true,"encryptedHoneycombApiKey":"U3RhaW5sZXNzIHJvY2tz"}}}`,
	`{"name":"abc","bogus":1}`,
	`{"name":"abcd","provider":99}`,
	`{"name":"abcd","provider":"RUNNER_PROVIDER_NOPE"}`,
	`{"name":"ab","provider":2}`,
	`{"name":"abcd","kind":1,"provider":2}`,
	`{"name":"abcd","provider":2,"spec":{"configuration":{"updateWindow":{"startHour":24,"endHour":-1}}}}`,
	`{"name":"abcd","provider":2,"spec":{"configuration":{"updateWindow":{"startHour":2147483647}}}}`,
	`{"name":"abcd","provider":2,"spec":{"configuration":{"metrics":{"url":"http://[::1"}}}}`,
	`{"name":"a\u0000b\u202ec","provider":2}`,
	`{"name":"fuzz-nul","provider":2,"spec":{"configuration":{"metrics":{"username":"\u0000","password":"a\u0000"}}}}`,
	`{"runnerId":"` + fuzzRunnerID + `","name":"fuzz-renamed","spec":{}}`,
	`{"runnerId":"` + fuzzRunnerID + `","spec":{"desiredPhase":"RUNNER_PHASE_INACTIVE","configuration":{"autoUpdate":false,"logLevel":"LOG_LEVEL_WARN","region":"us","updateWindow":{"startHour":5},"metrics":{"password":"x","url":"http://m"}}}}`,
	`{"runnerId":"` + fuzzRunnerID + `","spec":{"desiredPhase":99}}`,
	`{"runnerId":"not-a-uuid","spec":{}}`,
	`{"pagination":{"pageSize":2}}`,
	`{"pagination":{"pageSize":-1}}`,
	`{"pagination":{"pageSize":500,"token":"djE6MQ"}}`,
	`{"pagination":{"token":"garbage"}}`,
	`{"filter":{"creatorIds":["` + fuzzRunnerID + `"],"kinds":["RUNNER_KIND_LOCAL"],"providers":[2,99]}}`,
	`{"filter":{"kinds":[1,2,3]}}`,
	`{"runnerId":123}`,
	`{"name":"` + strings.Repeat("é", 200) + `"}`,
	`{"runnerId":"` + fuzzRunnerID + `"}`,
	`{"runnerId":"` + fuzzRunnerID + `","force":true}`,
	`{"runnerId":"` + fuzzRunnerID + `","force":false}`,
	`{"runnerId":"` + fuzzRunnerID + `","force":"yes"}`,
	`{"runnerId":"00000000-0000-4000-8000-000000000000","force":true}`,
	`{"runnerId":""}`,
	`{"runnerId":"` + strings.ToUpper(fuzzRunnerID) + `"}`,
	`{"runnerId":"{` + fuzzRunnerID + `}"}`,
	`{"runnerId":"a\u0000b"}`,
	`{"force":true}`,
	`{"exchangeToken":"` + fuzzExchangeToken + `"}`,
	`{"exchangeToken":"ryd_ex_unknown"}`,
	`{"exchangeToken":""}`,
	`{"exchangeToken":"` + testutil.AdminToken + `"}`,
	`{"exchangeToken":"ryd_ex_\u0000"}`,
	`{"exchangeToken":["` + fuzzExchangeToken + `"]}`,
	`{"exchangeToken":"` + strings.Repeat("x", 5000) + `"}`,
}

func startFuzzTargets(f *testing.F) []*fuzzTarget {
	var targets []*fuzzTarget
	for _, b := range testutil.Backends() {
		if b == testutil.Postgres && !postgresConfigured() {
			continue
		}
		ts := testutil.StartServer(f, b)
		admin := newClient(f, ts.URL, protocols[1], bearer(testutil.AdminToken))
		tg := &fuzzTarget{backend: b, url: ts.URL, admin: admin, hc: newHTTPClient(f, false)}
		tg.newRunner(f)
		targets = append(targets, tg)
	}
	return targets
}

// newRunner gives the target a fresh runner and its exchange token.
func (tg *fuzzTarget) newRunner(tb testing.TB) {
	tb.Helper()
	r, exchange := mustCreateRunner(tb, tg.admin, &gitpodv1.CreateRunnerRequest{
		Name: name("fuzz-target"), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST,
	})
	if len(exchange) != len(fuzzExchangeToken) {
		tb.Fatalf("exchange token %q has %d characters, want %d like fuzzExchangeToken", exchange, len(exchange), len(fuzzExchangeToken))
	}
	tg.runnerID, tg.exchange = r.GetRunnerId(), exchange
}

// keepRunner replaces the target's runner when an input deleted it (it is
// then not found, or found in phase DELETED).
func (tg *fuzzTarget) keepRunner(tb testing.TB) {
	tb.Helper()
	res, err := tg.admin.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: tg.runnerID}))
	switch {
	case err == nil && res.Msg.GetRunner().GetStatus().GetPhase() == gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED:
		tg.newRunner(tb)
	case err == nil:
	case connect.CodeOf(err) == connect.CodeNotFound:
		tg.newRunner(tb)
	default:
		tb.Fatalf("%s: get the fuzzed runner: %v", tg.backend, err)
	}
}

// FuzzRequestDecoding sends arbitrary bytes as JSON and as binary protobuf to
// CreateRunner, UpdateRunner, ListRunners, GetRunner, CreateRunnerToken,
// ExchangeToken and DeleteRunner. Whatever the bytes, the server must answer
// with a client error or success: never a 5xx, an internal error or a
// dropped connection (a panic).
func FuzzRequestDecoding(f *testing.F) {
	targets := startFuzzTargets(f)
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
		for _, p := range fuzzProcedures {
			m := p.msg()
			if protojson.Unmarshal([]byte(s), m) == nil {
				if b, err := proto.Marshal(m); err == nil && len(b) > 0 {
					f.Add(b)
				}
			}
		}
	}
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // a length beyond the input
	f.Add([]byte{0x18, 0x63})                         // provider 99
	f.Add([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var bugs []string
		for _, tg := range targets {
			in := bytes.ReplaceAll(data, []byte(fuzzRunnerID), []byte(tg.runnerID))
			in = bytes.ReplaceAll(in, []byte(fuzzExchangeToken), []byte(tg.exchange))
			for _, p := range fuzzProcedures {
				for _, enc := range fuzzEncodings {
					problem := tg.check(p.path, enc.contentType, in)
					if problem == "" {
						continue
					}
					// Known bugs (see the report) are skipped, not hidden: any
					// other failure of the same input still fails the test.
					msg := p.msg()
					decoded := enc.unmarshal(in, msg) == nil
					if bug := knownBug(tg.backend, msg, decoded); bug != "" {
						if !slices.Contains(bugs, bug) {
							bugs = append(bugs, bug)
						}
						continue
					}
					t.Fatalf("%s %s %s %q: %s", tg.backend, p.path, enc.contentType, in, problem)
				}
			}
			tg.keepRunner(t)
		}
		if len(bugs) > 0 {
			t.Fatalf("regression: %s", strings.Join(bugs, "; "))
		}
	})
}

// check sends one request and describes what is wrong with the answer, or
// returns "".
func (tg *fuzzTarget) check(path, contentType string, body []byte) string {
	req, err := http.NewRequest(http.MethodPost, tg.url+path, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", bearer(testutil.AdminToken))
	res, err := tg.hc.Do(req)
	if err != nil {
		return fmt.Sprintf("no response (did the handler panic?): %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Sprintf("read response: %v", err)
	}
	if res.StatusCode >= 500 {
		return fmt.Sprintf("HTTP %d: %s", res.StatusCode, b)
	}
	if res.StatusCode != http.StatusOK {
		var e connectError
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Sprintf("HTTP %d with a body that is no Connect error: %q", res.StatusCode, b)
		}
		var code connect.Code
		if code.UnmarshalText([]byte(e.Code)) != nil || code == connect.CodeInternal || code == connect.CodeUnknown {
			return fmt.Sprintf("HTTP %d, code %q: %s", res.StatusCode, e.Code, e.Message)
		}
	}
	return ""
}

// knownBug names the bug a failing request hits, if it is one the report
// describes.
func knownBug(backend testutil.Backend, msg proto.Message, decoded bool) string {
	if !decoded {
		return ""
	}
	if u, ok := msg.(*gitpodv1.UpdateRunnerRequest); ok && u.Spec == nil {
		return "UpdateRunner without spec panics (nil spec in updateInput, runner_convert.go)"
	}
	if backend == testutil.Postgres && hasNUL(msg.ProtoReflect()) {
		return "a NUL byte in a stored text field is an internal error on PostgreSQL"
	}
	return ""
}

// hasNUL reports whether any string field of m, at any depth, holds a NUL.
func hasNUL(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = valueHasNUL(fd, l.Get(i))
			}
		case fd.IsMap():
			// The fuzzed messages have no maps.
		default:
			found = valueHasNUL(fd, v)
		}
		return !found
	})
	return found
}

func valueHasNUL(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return strings.ContainsRune(v.String(), 0)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return hasNUL(v.Message())
	}
	return false
}
