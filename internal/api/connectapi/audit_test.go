package connectapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/testutil"
)

// wantEntry is what one audit entry must say.
type wantEntry struct {
	method, outcome, objectID, keyID string
}

// TestAuditLog_ScriptedSession makes a session of changes, reads and
// refusals through the real API (Connect and REST) and asserts the audit
// log holds exactly the expected entries, in order, and no secret.
func TestAuditLog_ScriptedSession(t *testing.T) {
	// The Kubiya create below makes a manifest URL, which needs a public
	// URL a cluster could reach.
	forEachBackendWith(t, testutil.Options{PublicURL: "https://runyard.example.com"}, func(t *testing.T, ts *testutil.TestServer) {
		p := protocols[0]
		admin := newClient(t, ts.URL, p, bearer(testutil.AdminToken))
		adminKey := whoamiKey(t, admin)
		var want []wantEntry

		writerKey, writerSecret := mustCreateKey(t, admin, "writer", "runners:read", "runners:write", "secrets:write")
		want = append(want, wantEntry{"runyard.v1.TokenService/CreateToken", "ok", writerKey.GetTokenId(), adminKey})
		readerKey, readerSecret := mustCreateKey(t, admin, "reader", "runners:read")
		want = append(want, wantEntry{"runyard.v1.TokenService/CreateToken", "ok", readerKey.GetTokenId(), adminKey})

		writer := newClient(t, ts.URL, p, bearer(writerSecret))
		reader := newClient(t, ts.URL, p, bearer(readerSecret))
		r, exchange := mustCreateRunner(t, writer, &gitpodv1.CreateRunnerRequest{Name: name("audited"), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
		want = append(want, wantEntry{"gitpod.v1.RunnerService/CreateRunner", "ok", r.GetRunnerId(), writerKey.GetTokenId()})

		// Reads are not recorded.
		_, err := writer.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
		mustOK(t, err, "get runner")
		listAll(t, writer, nil, 10)

		_, err = writer.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: r.GetRunnerId(), Name: ptr(name("renamed"))}))
		mustOK(t, err, "update runner")
		want = append(want, wantEntry{"gitpod.v1.RunnerService/UpdateRunner", "ok", r.GetRunnerId(), writerKey.GetTokenId()})

		// Refused and failed calls are recorded with their code.
		_, err = reader.Runners.CreateRunner(ctx, connect.NewRequest(&gitpodv1.CreateRunnerRequest{Name: name("refused"), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
		wantCode(t, err, connect.CodePermissionDenied)
		want = append(want, wantEntry{"gitpod.v1.RunnerService/CreateRunner", "permission_denied", "", readerKey.GetTokenId()})
		missing := uuid.NewString()
		_, err = writer.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: missing}))
		wantCode(t, err, connect.CodeNotFound)
		want = append(want, wantEntry{"gitpod.v1.RunnerService/DeleteRunner", "not_found", missing, writerKey.GetTokenId()})

		secrets := newSecretClient(t, ts.URL, p, bearer(writerSecret))
		const secretValue = "audit-secret-value-7f3a9c"
		s := mustCreateSecret(t, secrets, &gitpodv1.CreateSecretRequest{
			Name: "AUDITED", Value: secretValue, Mount: &gitpodv1.CreateSecretRequest_EnvironmentVariable{EnvironmentVariable: true},
		})
		want = append(want, wantEntry{"gitpod.v1.SecretService/CreateSecret", "ok", s.GetId(), writerKey.GetTokenId()})

		access := mustExchange(t, newClient(t, ts.URL, p, ""), exchange)
		// The runner is the actor, with the access token it got as its key.
		want = append(want, wantEntry{"gitpod.v1.IdentityService/ExchangeToken", "ok", r.GetRunnerId(), "*"})

		// The REST API: a change and a refusal.
		rest := func(path, body, secret string) int {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/orgs/default"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", path, err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if got := rest("/agents", `{"id":"audit-agent","name":"Audit","command":["sh","-c","true"]}`, testutil.AdminToken); got != http.StatusCreated {
			t.Fatalf("POST /agents: %d", got)
		}
		want = append(want, wantEntry{"POST /api/v1/orgs/{org}/agents", "ok", "audit-agent", adminKey})
		if got := rest("/agents", `{"id":"audit-agent2","name":"Audit","command":["true"]}`, readerSecret); got != http.StatusForbidden {
			t.Fatalf("POST /agents as reader: %d", got)
		}
		want = append(want, wantEntry{"POST /api/v1/orgs/{org}/agents", "permission_denied", "", readerKey.GetTokenId()})

		// The Kubiya endpoints: the entry names the runner created, not
		// the name in the path.
		kreq, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v3/runners/"+name("kubiya"), nil)
		kreq.Header.Set("Authorization", "Bearer "+writerSecret)
		kres, err := http.DefaultClient.Do(kreq)
		if err != nil {
			t.Fatal(err)
		}
		kres.Body.Close()
		if kres.StatusCode != http.StatusOK {
			t.Fatalf("kubiya create runner: %d", kres.StatusCode)
		}
		want = append(want, wantEntry{"POST /api/v3/runners/{name}", "ok", "*", writerKey.GetTokenId()})

		_, err = admin.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: readerKey.GetTokenId()}))
		mustOK(t, err, "revoke key")
		want = append(want, wantEntry{"runyard.v1.TokenService/RevokeToken", "ok", readerKey.GetTokenId(), adminKey})

		// A key without audit:read may not read the log (and that read is
		// not recorded either).
		events := gitpodv1connect.NewEventServiceClient(newHTTPClient(t, false), ts.URL, connect.WithInterceptors(withAuthorization(bearer(writerSecret))), connect.WithProtoJSON())
		_, err = events.ListAuditLogs(ctx, connect.NewRequest(&gitpodv1.ListAuditLogsRequest{}))
		wantCode(t, err, connect.CodePermissionDenied, "audit:read")

		adminEvents := gitpodv1connect.NewEventServiceClient(newHTTPClient(t, false), ts.URL, connect.WithInterceptors(withAuthorization(bearer(testutil.AdminToken))), connect.WithProtoJSON())
		got := listAudit(t, adminEvents, nil, 3)
		if len(got) != len(want) {
			t.Fatalf("audit log has %d entries, want %d:\n%s", len(got), len(want), dumpAudit(got))
		}
		for i, w := range want {
			e := got[i]
			if e.GetAction() != w.method || e.GetOutcome() != w.outcome || (e.GetSubjectId() != w.objectID && (w.objectID != "*" || uuid.Validate(e.GetSubjectId()) != nil)) || (e.GetKeyId() != w.keyID && (w.keyID != "*" || e.GetKeyId() == "")) {
				t.Errorf("entry %d: %s %s object=%q key=%q, want %s %s object=%q key=%q", i,
					e.GetAction(), e.GetOutcome(), e.GetSubjectId(), e.GetKeyId(), w.method, w.outcome, w.objectID, w.keyID)
			}
			if e.GetClientIp() != "127.0.0.1" || e.GetUserAgent() == "" || e.GetCreatedAt() == nil {
				t.Errorf("entry %d: ip %q, user agent %q, at %v", i, e.GetClientIp(), e.GetUserAgent(), e.GetCreatedAt())
			}
		}
		if e := got[7]; e.GetActorPrincipal() != gitpodv1.Principal_PRINCIPAL_RUNNER || e.GetActorId() != r.GetRunnerId() {
			t.Errorf("exchange entry actor: %v %q, want the runner", e.GetActorPrincipal(), e.GetActorId())
		}
		if e := got[0]; e.GetActorPrincipal() != gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT || e.GetSubjectType() != gitpodv1.ResourceType_RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN {
			t.Errorf("first entry: %v %v", e.GetActorPrincipal(), e.GetSubjectType())
		}

		// No secret appears anywhere in the rows.
		st := ts.OpenStore(t)
		rows, err := st.FindAudit(ctx, audit.Filter{OrgID: orgOf(t, admin)})
		if err != nil {
			t.Fatal(err)
		}
		dump := fmt.Sprintf("%+v", rows)
		for _, secret := range []string{testutil.AdminToken, writerSecret, readerSecret, exchange, access, secretValue} {
			if strings.Contains(dump, secret) {
				t.Errorf("an audit row holds a secret (%.8s...)", secret)
			}
		}

		// Filters.
		byMethod := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{Methods: []string{"gitpod.v1.RunnerService/CreateRunner"}}, 0)
		if len(byMethod) != 2 {
			t.Errorf("method filter: %d entries, want 2", len(byMethod))
		}
		byActor := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{ActorIds: []string{writerKey.GetTokenId()}}, 0)
		byKeyActor := 0
		for _, e := range got {
			if e.GetActorId() == writerKey.GetTokenId() {
				byKeyActor++
			}
		}
		if len(byActor) != byKeyActor {
			t.Errorf("actor filter: %d entries, want %d", len(byActor), byKeyActor)
		}
		bySubject := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{SubjectIds: []string{r.GetRunnerId()}}, 0)
		if len(bySubject) != 3 {
			t.Errorf("subject filter: %d entries, want 3 (create, update, exchange)", len(bySubject))
		}
		byPrincipal := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{ActorPrincipals: []gitpodv1.Principal{gitpodv1.Principal_PRINCIPAL_RUNNER}}, 0)
		if len(byPrincipal) != 1 {
			t.Errorf("principal filter: %d entries, want 1", len(byPrincipal))
		}
		future := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{Since: timestamppb.New(time.Now().Add(time.Hour))}, 0)
		if len(future) != 0 {
			t.Errorf("since filter: %d entries from the future", len(future))
		}
		past := listAudit(t, adminEvents, &gitpodv1.ListAuditLogsRequest_Filter{Until: timestamppb.New(got[0].GetCreatedAt().AsTime())}, 0)
		if len(past) != 0 {
			t.Errorf("until filter: %d entries before the first", len(past))
		}
	})
}

func orgOf(t *testing.T, c *client) string {
	t.Helper()
	res, err := c.Identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
	mustOK(t, err, "whoami")
	return res.Msg.GetOrganizationId()
}

// whoamiKey is the id of the admin key: the only key of a new server.
func whoamiKey(t *testing.T, c *client) string {
	t.Helper()
	res, err := c.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{}))
	mustOK(t, err, "list keys")
	if keys := res.Msg.GetTokens(); len(keys) == 1 {
		return keys[0].GetTokenId()
	}
	t.Fatalf("want only the admin key, got %v", res.Msg.GetTokens())
	return ""
}

func listAudit(t *testing.T, c gitpodv1connect.EventServiceClient, f *gitpodv1.ListAuditLogsRequest_Filter, pageSize int32) []*gitpodv1.AuditLogEntry {
	t.Helper()
	var out []*gitpodv1.AuditLogEntry
	token := ""
	for range 100 {
		res, err := c.ListAuditLogs(ctx, connect.NewRequest(&gitpodv1.ListAuditLogsRequest{
			Filter: f, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: pageSize},
		}))
		mustOK(t, err, "list audit logs")
		if pageSize > 0 && len(res.Msg.GetEntries()) > int(pageSize) {
			t.Fatalf("page of %d entries, page size %d", len(res.Msg.GetEntries()), pageSize)
		}
		out = append(out, res.Msg.GetEntries()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return out
		}
	}
	t.Fatal("ListAuditLogs: more than 100 pages")
	return nil
}

func dumpAudit(es []*gitpodv1.AuditLogEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s %s object=%s key=%s\n", e.GetAction(), e.GetOutcome(), e.GetSubjectId(), e.GetKeyId())
	}
	return b.String()
}

// TestAuditLog_ClientIP: X-Forwarded-For names the client only when the
// peer is a proxy given in --trusted-proxies; otherwise a client could write
// any address into the audit log. Both the Connect and the REST adapter.
func TestAuditLog_ClientIP(t *testing.T) {
	const forwarded = "198.51.100.7"
	for _, tc := range []struct {
		name    string
		trusted string
		want    string
	}{
		{"no proxy trusted", "", "127.0.0.1"},
		{"loopback proxy trusted", "127.0.0.0/8", forwarded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := testutil.StartServerWith(t, testutil.SQLite, testutil.Options{TrustedProxies: tc.trusted})
			forward := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
					req.Header().Set("X-Forwarded-For", "6.6.6.6, "+forwarded)
					return next(ctx, req)
				}
			})
			tokens := runyardv1connect.NewTokenServiceClient(newHTTPClient(t, false), ts.URL,
				connect.WithInterceptors(withAuthorization(bearer(testutil.AdminToken)), forward))
			_, err := tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "forwarded", Scopes: []string{"runners:read"}}))
			mustOK(t, err, "create key")

			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/orgs/default/agents", strings.NewReader(`{"id":"ip-agent","name":"IP","command":["true"]}`))
			req.Header.Set("Authorization", bearer(testutil.AdminToken))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", forwarded)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("POST /agents: %d", res.StatusCode)
			}

			events := gitpodv1connect.NewEventServiceClient(newHTTPClient(t, false), ts.URL, connect.WithInterceptors(withAuthorization(bearer(testutil.AdminToken))))
			got := listAudit(t, events, nil, 0)
			if len(got) != 2 {
				t.Fatalf("want 2 entries, got:\n%s", dumpAudit(got))
			}
			for _, e := range got {
				if e.GetClientIp() != tc.want {
					t.Errorf("%s: client IP %q, want %q", e.GetAction(), e.GetClientIp(), tc.want)
				}
			}
		})
	}
}
