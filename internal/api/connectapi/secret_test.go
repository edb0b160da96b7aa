package connectapi_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/testutil"
)

const (
	pathCreateSecret      = gitpodv1connect.SecretServiceCreateSecretProcedure
	pathListSecrets       = gitpodv1connect.SecretServiceListSecretsProcedure
	pathDeleteSecret      = gitpodv1connect.SecretServiceDeleteSecretProcedure
	pathUpdateSecretValue = gitpodv1connect.SecretServiceUpdateSecretValueProcedure
)

// newSecretClient returns a SecretService client that sends authorization
// over protocol p.
func newSecretClient(tb testing.TB, baseURL string, p protocol, authorization string) gitpodv1connect.SecretServiceClient {
	tb.Helper()
	opts := append([]connect.ClientOption{connect.WithInterceptors(withAuthorization(authorization))}, p.opts...)
	return gitpodv1connect.NewSecretServiceClient(newHTTPClient(tb, p.h2c), baseURL, opts...)
}

func mustCreateSecret(tb testing.TB, c gitpodv1connect.SecretServiceClient, req *gitpodv1.CreateSecretRequest) *gitpodv1.Secret {
	tb.Helper()
	res, err := c.CreateSecret(ctx, connect.NewRequest(req))
	mustOK(tb, err, "create secret "+req.GetName())
	return res.Msg.GetSecret()
}

// listSecrets walks every page of ListSecrets with scope.
func listSecrets(tb testing.TB, c gitpodv1connect.SecretServiceClient, scope *gitpodv1.SecretScope, pageSize int32) []*gitpodv1.Secret {
	tb.Helper()
	var out []*gitpodv1.Secret
	token := ""
	for range 1000 {
		res, err := c.ListSecrets(ctx, connect.NewRequest(&gitpodv1.ListSecretsRequest{
			Filter:     &gitpodv1.ListSecretsRequest_Filter{Scope: scope},
			Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: pageSize},
		}))
		mustOK(tb, err, "list secrets")
		out = append(out, res.Msg.GetSecrets()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return out
		}
	}
	tb.Fatal("list secrets: more than 1000 pages")
	return nil
}

func secretIDs(ss []*gitpodv1.Secret) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.GetId()
	}
	return out
}

// secretValues reads secret values the only way there is: as the control
// plane delivers them, sealed to a runner key, then opened with it. It uses
// the server's own key (its environment variable or data-dir file).
func secretValues(tb testing.TB, st store.Store, dataDir, orgID string, ids ...string) map[string]string {
	tb.Helper()
	key, _, err := secrets.LoadKey(os.Getenv(secrets.KeyEnv), dataDir)
	mustOK(tb, err, "load the server's secrets key")
	rk, err := ecdh.X25519().GenerateKey(rand.Reader)
	mustOK(tb, err, "runner key")
	sealed, err := secrets.NewService(st, key).SealedForRunner(context.Background(), orgID, rk.PublicKey().Bytes(), ids)
	mustOK(tb, err, "seal")
	out := map[string]string{}
	for id, s := range sealed {
		v, err := secrets.Open(s, rk.PublicKey().Bytes(), rk.Bytes())
		mustOK(tb, err, "open "+id)
		out[id] = string(v)
	}
	return out
}

func orgScope(id string) *gitpodv1.SecretScope {
	return &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_OrganizationId{OrganizationId: id}}
}

func TestSecrets_Lifecycle(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			forEachProtocol(t, ts, func(t *testing.T, p protocol, admin *client) {
				c := newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken))
				me := whoami(t, admin)
				orgID := me.GetOrganizationId()
				before := time.Now().Add(-time.Second)
				name := "TOKEN_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "_")

				created := mustCreateSecret(t, c, &gitpodv1.CreateSecretRequest{
					Name: name, Value: "first-value", Mount: &gitpodv1.CreateSecretRequest_EnvironmentVariable{EnvironmentVariable: true},
				})
				if created.GetName() != name || uuid.Validate(created.GetId()) != nil || !created.GetEnvironmentVariable() ||
					created.GetScope().GetOrganizationId() != orgID ||
					created.GetCreator().GetId() != me.GetSubject().GetId() || created.GetCreator().GetPrincipal() != me.GetSubject().GetPrincipal() ||
					created.GetCreatedAt().AsTime().Before(before) || !created.GetUpdatedAt().AsTime().Equal(created.GetCreatedAt().AsTime()) {
					t.Fatalf("created secret: %v", created)
				}
				file := mustCreateSecret(t, c, &gitpodv1.CreateSecretRequest{
					Name: name + " file", Value: "file-value", Mount: &gitpodv1.CreateSecretRequest_FilePath{FilePath: "/home/me/.token"},
					Scope: &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_UserId{UserId: me.GetSubject().GetId()}},
				})
				if file.GetFilePath() != "/home/me/.token" || file.GetScope().GetUserId() != me.GetSubject().GetId() {
					t.Fatalf("file secret: %v", file)
				}

				t.Run("List", func(t *testing.T) {
					all := listSecrets(t, c, nil, 0)
					i := slices.IndexFunc(all, func(s *gitpodv1.Secret) bool { return s.GetId() == created.GetId() })
					if i < 0 || !slices.Contains(secretIDs(all), file.GetId()) {
						t.Fatalf("list lacks the new secrets: %v", secretIDs(all))
					}
					diffProto(t, "listed secret", all[i], created)
					org := listSecrets(t, c, orgScope(orgID), 0)
					if slices.Contains(secretIDs(org), file.GetId()) || !slices.Contains(secretIDs(org), created.GetId()) {
						t.Fatalf("organization scope lists %v", secretIDs(org))
					}
				})
				t.Run("ErrDuplicateName", func(t *testing.T) {
					_, err := c.CreateSecret(ctx, connect.NewRequest(&gitpodv1.CreateSecretRequest{Name: name, Value: "v", Scope: orgScope(orgID)}))
					wantCode(t, err, connect.CodeAlreadyExists, name)
				})
				t.Run("UpdateValue", func(t *testing.T) {
					_, err := c.UpdateSecretValue(ctx, connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: created.GetId(), Value: "second-value"}))
					mustOK(t, err, "update value")
					got := secretValues(t, st, ts.DataDir, orgID, created.GetId(), file.GetId())
					if got[created.GetId()] != "second-value" || got[file.GetId()] != "file-value" {
						t.Fatalf("values after update: %v", got)
					}
					all := listSecrets(t, c, orgScope(orgID), 0)
					i := slices.IndexFunc(all, func(s *gitpodv1.Secret) bool { return s.GetId() == created.GetId() })
					if !all[i].GetUpdatedAt().AsTime().After(created.GetUpdatedAt().AsTime()) {
						t.Fatalf("updatedAt did not move: %v", all[i])
					}
				})
				t.Run("Delete", func(t *testing.T) {
					for _, id := range []string{created.GetId(), file.GetId()} {
						_, err := c.DeleteSecret(ctx, connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: id}))
						mustOK(t, err, "delete")
						_, err = c.DeleteSecret(ctx, connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: id}))
						wantCode(t, err, connect.CodeNotFound, id)
						_, err = c.UpdateSecretValue(ctx, connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: id, Value: "v"}))
						wantCode(t, err, connect.CodeNotFound, id)
					}
					if all := secretIDs(listSecrets(t, c, nil, 0)); slices.Contains(all, created.GetId()) || slices.Contains(all, file.GetId()) {
						t.Fatalf("deleted secrets are listed: %v", all)
					}
				})
			})
		})
	}
}

func TestSecrets_ListPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		c := newSecretClient(t, ts.URL, protocols[0], bearer(testutil.AdminToken))
		var want []string
		for i := range 7 {
			want = append(want, mustCreateSecret(t, c, &gitpodv1.CreateSecretRequest{Name: fmt.Sprintf("page-%d", i), Value: "v"}).GetId())
		}
		for _, size := range []int32{1, 2, 3, 7, 100} {
			if got := secretIDs(listSecrets(t, c, nil, size)); !slices.Equal(got, want) {
				t.Fatalf("page size %d: got %v, want %v", size, got, want)
			}
		}
		// The SDKs' auto-pager sends the page in the query string.
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		var page struct {
			Secrets    []struct{ ID string }
			Pagination struct{ NextToken string }
		}
		raw.post(t, pathListSecrets+"?pageSize=2", `{}`).wantOK(t, &page)
		if len(page.Secrets) != 2 || page.Secrets[0].ID != want[0] || page.Pagination.NextToken == "" {
			t.Fatalf("first page by query: %+v", page)
		}
		next := page.Pagination.NextToken
		page.Secrets, page.Pagination.NextToken = nil, ""
		raw.post(t, pathListSecrets+"?pageSize=5&token="+next, `{}`).wantOK(t, &page)
		if len(page.Secrets) != 5 || page.Secrets[0].ID != want[2] || page.Pagination.NextToken != "" {
			t.Fatalf("second page by query: %+v", page)
		}
	})
}

func TestSecrets_RequestErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		raw := newRawJSON(t, ts, bearer(testutil.AdminToken))
		id := uuid.NewString()
		tests := []struct {
			name   string
			path   string
			body   string
			status int
			code   string
			field  string
		}{
			{"ErrNoName", pathCreateSecret, `{"value":"v"}`, 400, "invalid_argument", "name"},
			{"ErrNameNotAVariable", pathCreateSecret, `{"name":"NPM-TOKEN","value":"v","environmentVariable":true}`, 400, "invalid_argument", "name"},
			{"ErrNameReserved", pathCreateSecret, `{"name":"RUNYARD_OUTPUT","value":"v","environmentVariable":true}`, 400, "invalid_argument", "name"},
			{"ErrNoValue", pathCreateSecret, `{"name":"x"}`, 400, "invalid_argument", "value"},
			{"ErrFilePathRelative", pathCreateSecret, `{"name":"x","value":"v","filePath":"etc/x"}`, 400, "invalid_argument", "filePath"},
			{"ErrBothMounts", pathCreateSecret, `{"name":"x","value":"v","filePath":"/x","environmentVariable":true}`, 400, "invalid_argument", ""},
			{"ErrScopeEmpty", pathCreateSecret, `{"name":"x","value":"v","scope":{}}`, 400, "invalid_argument", "scope"},
			{"ErrScopeProject", pathCreateSecret, `{"name":"x","value":"v","scope":{"projectId":"` + id + `"}}`, 400, "invalid_argument", "scope.projectId"},
			{"ErrScopeUserNotUUID", pathCreateSecret, `{"name":"x","value":"v","scope":{"userId":"bob"}}`, 400, "invalid_argument", "scope.userId"},
			{"ErrScopeServiceAccountEmpty", pathCreateSecret, `{"name":"x","value":"v","scope":{"serviceAccountId":""}}`, 400, "invalid_argument", "scope.serviceAccountId"},
			{"ErrScopeOtherOrganization", pathCreateSecret, `{"name":"x","value":"v","scope":{"organizationId":"` + id + `"}}`, 404, "not_found", id},
			{"ErrUnknownField", pathCreateSecret, `{"name":"x","value":"v","mountPath":"/x"}`, 400, "invalid_argument", "mountPath"},
			{"ErrValueNotString", pathCreateSecret, `{"name":"x","value":42}`, 400, "invalid_argument", "value"},
			{"ErrListScopeEmpty", pathListSecrets, `{"filter":{"scope":{}}}`, 400, "invalid_argument", "filter.scope"},
			{"ErrListScopeUser", pathListSecrets, `{"filter":{"scope":{"userId":"u"}}}`, 400, "invalid_argument", "filter.scope.userId"},
			{"ErrListScopeOtherOrganization", pathListSecrets, `{"filter":{"scope":{"organizationId":"` + id + `"}}}`, 404, "not_found", id},
			{"ErrListPageSize", pathListSecrets, `{"pagination":{"pageSize":-1}}`, 400, "invalid_argument", "pagination.pageSize"},
			{"ErrListToken", pathListSecrets, `{"pagination":{"token":"bogus"}}`, 400, "invalid_argument", "pagination.token"},
			{"ErrListQueryPageSize", pathListSecrets + "?pageSize=x", `{}`, 400, "invalid_argument", "pageSize"},
			{"ErrDeleteNoID", pathDeleteSecret, `{}`, 400, "invalid_argument", "secretId"},
			{"ErrDeleteNotUUID", pathDeleteSecret, `{"secretId":"s"}`, 400, "invalid_argument", "secretId"},
			{"ErrDeleteMissing", pathDeleteSecret, `{"secretId":"` + id + `"}`, 404, "not_found", id},
			{"ErrUpdateNotUUID", pathUpdateSecretValue, `{"secretId":"s","value":"v"}`, 400, "invalid_argument", "secretId"},
			{"ErrUpdateNoValue", pathUpdateSecretValue, `{"secretId":"` + id + `"}`, 404, "not_found", id},
			{"ErrUpdateUnknownField", pathUpdateSecretValue, `{"secretId":"` + id + `","name":"x"}`, 400, "invalid_argument", "name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw.post(t, tt.path, tt.body).wantError(t, tt.status, tt.code, tt.field)
			})
		}
		t.Run("ErrUpdateValueEmpty", func(t *testing.T) {
			c := newSecretClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			s := mustCreateSecret(t, c, &gitpodv1.CreateSecretRequest{Name: "EMPTY", Value: "v", Mount: &gitpodv1.CreateSecretRequest_EnvironmentVariable{EnvironmentVariable: true}})
			raw.post(t, pathUpdateSecretValue, `{"secretId":"`+s.GetId()+`"}`).wantError(t, 400, "invalid_argument", "value")
			raw.post(t, pathUpdateSecretValue, `{"secretId":"`+s.GetId()+`","value":"a\u0000b"}`).wantError(t, 400, "invalid_argument", "value")
		})
	})
}

// TestSecrets_ValueNeverLeaves sends a value through every method, good
// requests and bad, and checks that no response body and no line the server
// logs (at debug level) holds it, nor does the SQLite database on disk.
func TestSecrets_ValueNeverLeaves(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			var logs lockedBuffer
			ts := startLoggingServer(t, backend, &logs)
			st := ts.store
			const plain = "pl41ntext-VALUE-that-must-not-leave"
			raw := newRawJSON(t, ts.TestServer, bearer(testutil.AdminToken))
			var bodies [][]byte
			post := func(path, body string) rawResponse {
				r := raw.post(t, path, body)
				bodies = append(bodies, r.Body)
				return r
			}

			var created struct{ Secret struct{ ID string } }
			post(pathCreateSecret, `{"name":"LEAK_CHECK","value":"`+plain+`","environmentVariable":true}`).wantOK(t, &created)
			id := created.Secret.ID
			post(pathCreateSecret, `{"name":"LEAK_CHECK","value":"`+plain+`","environmentVariable":true}`).wantError(t, 409, "already_exists")
			post(pathCreateSecret, `{"name":"bad-name","value":"`+plain+`","environmentVariable":true}`).wantError(t, 400, "invalid_argument", "name")
			post(pathCreateSecret, `{"name":"X","value":"`+plain+`","bogus":1}`).wantError(t, 400, "invalid_argument")
			post(pathCreateSecret, `{"name":"X","value":"`+plain+`\u0000","environmentVariable":true}`).wantError(t, 400, "invalid_argument", "value")
			post(pathCreateSecret, `{"name":"X","value":"`+plain+`","scope":{"projectId":"p"}}`).wantError(t, 400, "invalid_argument", "scope.projectId")
			post(pathListSecrets, `{}`).wantOK(t, nil)
			post(pathUpdateSecretValue, `{"secretId":"`+id+`","value":"`+plain+`2"}`).wantOK(t, nil)
			post(pathUpdateSecretValue, `{"secretId":"`+uuid.NewString()+`","value":"`+plain+`"}`).wantError(t, 404, "not_found")
			post(pathListSecrets, `{}`).wantOK(t, nil)
			if got := secretValues(t, st, ts.DataDir, whoamiOrg(t, ts), id)[id]; got != plain+"2" {
				t.Fatalf("stored value = %q, want the update", got)
			}
			// Binary protobuf and gRPC responses, too.
			for _, p := range protocols {
				res, err := newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken)).ListSecrets(ctx, connect.NewRequest(&gitpodv1.ListSecretsRequest{}))
				mustOK(t, err, "list over "+p.name)
				if s := res.Msg.String(); strings.Contains(s, "pl41ntext") {
					t.Fatalf("%s list response holds the value: %s", p.name, s)
				}
			}
			for i, b := range bodies {
				if bytes.Contains(b, []byte("pl41ntext")) {
					t.Fatalf("response %d holds the value: %s", i, b)
				}
			}

			stored, err := st.FindSecretByID(ctx, whoamiOrg(t, ts), id)
			mustOK(t, err, "read the stored row")
			if bytes.Contains(stored.Value.Data, []byte("pl41ntext")) || len(stored.Value.Nonce) != 12 || stored.Value.KeyID == "" {
				t.Fatalf("stored value: %+v", stored.Value)
			}
			if backend == testutil.SQLite {
				// The database files themselves, WAL included.
				files, _ := filepath.Glob(filepath.Join(ts.DataDir, "runyard.db*"))
				if len(files) == 0 {
					t.Fatal("no database files found")
				}
				sawName := false
				for _, f := range files {
					b, err := os.ReadFile(f)
					mustOK(t, err, "read "+f)
					if bytes.Contains(b, []byte("pl41ntext")) {
						t.Fatalf("%s holds the plaintext", f)
					}
					sawName = sawName || bytes.Contains(b, []byte("LEAK_CHECK"))
				}
				// The secret's name is there in clear: the files scanned
				// are the ones that hold the row.
				if !sawName {
					t.Fatalf("no database file among %v holds the secret's row", files)
				}
			}

			// Stop the server so every log line is written, then read them.
			ts.stop(t)
			if logs.Len() == 0 {
				t.Fatal("the server logged nothing: the check would prove nothing")
			}
			if strings.Contains(logs.String(), "pl41ntext") {
				t.Fatalf("the server logged the value:\n%s", logs.String())
			}
		})
	}
}

func TestSecrets_Scopes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		adminSecrets := newSecretClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
		_, readKey := mustCreateKey(t, admin, "secrets-read", "secrets:read")
		_, writeKey := mustCreateKey(t, admin, "secrets-write", "secrets:write")
		_, bothKey := mustCreateKey(t, admin, "secrets-rw", "secrets:read", "secrets:write")
		_, otherKey := mustCreateKey(t, admin, "runners-rw", "runners:read", "runners:write", "environments:read", "environments:write")
		_, x := mustCreateRunner(t, admin, &gitpodv1.CreateRunnerRequest{Name: name("secrets-runner"), Provider: provLinux})
		runnerToken := mustExchange(t, admin, x)

		type want struct{ create, list, update, del connect.Code }
		ok := connect.Code(0)
		denied := connect.CodePermissionDenied
		unauth := connect.CodeUnauthenticated
		for _, tt := range []struct {
			name string
			auth string
			want want
		}{
			{"Admin", bearer(testutil.AdminToken), want{ok, ok, ok, ok}},
			{"ReadWrite", bearer(bothKey), want{ok, ok, ok, ok}},
			{"ReadOnly", bearer(readKey), want{denied, ok, denied, denied}},
			{"WriteOnly", bearer(writeKey), want{ok, denied, ok, ok}},
			{"OtherScopes", bearer(otherKey), want{denied, denied, denied, denied}},
			{"RunnerToken", bearer(runnerToken), want{denied, denied, denied, denied}},
			{"NoToken", "", want{unauth, unauth, unauth, unauth}},
			{"UnknownToken", bearer("ryd_ak_nope"), want{unauth, unauth, unauth, unauth}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				for _, p := range protocols {
					c := newSecretClient(t, ts.URL, p, tt.auth)
					check := func(what string, err error, code connect.Code) {
						t.Helper()
						if code == ok {
							mustOK(t, err, p.name+" "+what)
							return
						}
						wantCode(t, err, code)
					}
					_, err := c.CreateSecret(ctx, connect.NewRequest(&gitpodv1.CreateSecretRequest{Name: name("scoped"), Value: "v"}))
					check("create", err, tt.want.create)
					_, err = c.ListSecrets(ctx, connect.NewRequest(&gitpodv1.ListSecretsRequest{}))
					check("list", err, tt.want.list)
					target := mustCreateSecret(t, adminSecrets, &gitpodv1.CreateSecretRequest{Name: name("target"), Value: "v"})
					_, err = c.UpdateSecretValue(ctx, connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: target.GetId(), Value: "new"}))
					check("update", err, tt.want.update)
					_, err = c.DeleteSecret(ctx, connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: target.GetId()}))
					check("delete", err, tt.want.del)
				}
			})
		}
	})
}

// TestSecrets_Organizations checks that another organization's secrets are
// not_found for every method, and unchanged afterwards.
func TestSecrets_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend)
			other := &identity.Organization{ID: uuid.NewString(), Name: "other", CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
			mustOK(t, st.CreateOrganization(context.Background(), other), "store organization")
			_, otherSecret := mustCreateTokenInStore(t, st, other.ID, nil, identity.ScopeAdmin)
			admin := newClient(t, ts.URL, protocols[1], bearer(testutil.AdminToken))
			orgID := whoami(t, admin).GetOrganizationId()

			forEachProtocol(t, ts, func(t *testing.T, p protocol, _ *client) {
				us := newSecretClient(t, ts.URL, p, bearer(testutil.AdminToken))
				them := newSecretClient(t, ts.URL, p, bearer(otherSecret))
				shared := "SHARED_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "_")
				ours := mustCreateSecret(t, us, &gitpodv1.CreateSecretRequest{Name: shared, Value: "ours"})
				// Names are unique per scope, so per organization too.
				theirs := mustCreateSecret(t, them, &gitpodv1.CreateSecretRequest{Name: shared, Value: "theirs"})
				if theirs.GetScope().GetOrganizationId() != other.ID {
					t.Fatalf("their secret's scope: %v", theirs.GetScope())
				}

				_, err := them.UpdateSecretValue(ctx, connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: ours.GetId(), Value: "hijacked"}))
				wantCode(t, err, connect.CodeNotFound)
				_, err = them.DeleteSecret(ctx, connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: ours.GetId()}))
				wantCode(t, err, connect.CodeNotFound)
				_, err = them.ListSecrets(ctx, connect.NewRequest(&gitpodv1.ListSecretsRequest{Filter: &gitpodv1.ListSecretsRequest_Filter{Scope: orgScope(orgID)}}))
				wantCode(t, err, connect.CodeNotFound)
				_, err = them.CreateSecret(ctx, connect.NewRequest(&gitpodv1.CreateSecretRequest{Name: "PLANTED", Value: "v", Scope: orgScope(orgID)}))
				wantCode(t, err, connect.CodeNotFound)
				if got := secretIDs(listSecrets(t, them, nil, 100)); slices.Contains(got, ours.GetId()) || !slices.Contains(got, theirs.GetId()) {
					t.Fatalf("they list %v", got)
				}
				if got := secretIDs(listSecrets(t, us, nil, 100)); slices.Contains(got, theirs.GetId()) || !slices.Contains(got, ours.GetId()) {
					t.Fatalf("we list %v", got)
				}
				if got := secretValues(t, st, ts.DataDir, orgID, ours.GetId(), theirs.GetId()); len(got) != 1 || got[ours.GetId()] != "ours" {
					t.Fatalf("our organization's values after their attempts: %v", got)
				}
				if got := secretValues(t, st, ts.DataDir, other.ID, theirs.GetId())[theirs.GetId()]; got != "theirs" {
					t.Fatalf("their value = %q", got)
				}
			})
		})
	}
}

func whoamiOrg(tb testing.TB, ts *loggingServer) string {
	tb.Helper()
	return whoami(tb, newClient(tb, ts.URL, protocols[1], bearer(testutil.AdminToken))).GetOrganizationId()
}

// lockedBuffer collects a server's log lines while requests run.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// loggingServer is a control plane like testutil's, whose log (at debug
// level) goes to a buffer the test reads, with a second handle on its
// database.
type loggingServer struct {
	*testutil.TestServer
	store store.Store
	stop  func(t *testing.T)
}

func startLoggingServer(t *testing.T, backend testutil.Backend, logs *lockedBuffer) *loggingServer {
	t.Helper()
	cfg := server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         t.TempDir(),
		BootstrapToken:  testutil.AdminToken,
		ShutdownTimeout: 5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if backend == testutil.Postgres {
		cfg.DatabaseURL = testutil.PostgresURL(t)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(sctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	var once sync.Once
	stop := func(t *testing.T) {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("server shutdown: %v", err)
			}
		})
	}
	t.Cleanup(func() { stop(t) })
	ts := &loggingServer{TestServer: &testutil.TestServer{URL: s.URL(), DataDir: cfg.DataDir, Server: s}, stop: stop}
	if cfg.DatabaseURL != "" {
		ts.store, err = postgres.Open(context.Background(), cfg.DatabaseURL)
	} else {
		ts.store, err = sqlite.Open(context.Background(), filepath.Join(cfg.DataDir, "runyard.db"))
	}
	if err != nil {
		t.Fatalf("open the server's store: %v", err)
	}
	t.Cleanup(func() { ts.store.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(ts.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return ts
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
