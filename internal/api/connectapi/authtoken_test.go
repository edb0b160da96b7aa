package connectapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

// TestTokens_GetAuthenticatedToken: any API key reads its own record, a
// service account's without the admin scope too (it may not list the
// organization's keys), and a user's with its owner and the scopes it
// holds now; a revoked key is unauthenticated; a runner access token and a
// user's browser session are failed_precondition: they are not API keys.
func TestTokens_GetAuthenticatedToken(t *testing.T) {
	forEachUsersFixture(t, func(t *testing.T, f *usersFixture) {
		get := func(c *client) (*runyardv1.GetAuthenticatedTokenResponse, error) {
			res, err := c.Tokens.GetAuthenticatedToken(ctx, connect.NewRequest(&runyardv1.GetAuthenticatedTokenRequest{}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
		created, err := f.install.Tokens.CreateToken(ctx, connect.NewRequest(&runyardv1.CreateTokenRequest{Name: "ci-reader",
			Scopes: []string{"runners:read"}, ExpiresAt: timestamppb.New(exp)}))
		mustOK(t, err, "create a runners:read key")
		for i, p := range protocols {
			reader := newClient(t, f.ts.URL, p, bearer(created.Msg.GetSecret()))
			if i == 0 {
				_, err := reader.Tokens.ListTokens(ctx, connect.NewRequest(&runyardv1.ListTokensRequest{}))
				wantCode(t, err, connect.CodePermissionDenied)
			}
			got, err := get(reader)
			mustOK(t, err, p.name+": the key's own record")
			tok := got.GetToken()
			if tok.GetTokenId() != created.Msg.GetToken().GetTokenId() || tok.GetName() != "ci-reader" ||
				!slices.Equal(tok.GetScopes(), []string{"runners:read"}) || !slices.Equal(got.GetEffectiveScopes(), []string{"runners:read"}) ||
				!tok.GetExpiresAt().AsTime().Equal(exp) || tok.GetCreatedAt() == nil || tok.GetRevokedAt() != nil ||
				tok.GetPrincipal() != gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT || tok.GetOwnerUserId() != "" {
				t.Fatalf("%s: record %v", p.name, got)
			}
		}

		// A user's key: its owner, and what the owner's role lets it hold.
		got, err := get(f.member.client)
		mustOK(t, err, "a member's key")
		if tok := got.GetToken(); tok.GetOwnerUserId() != f.memberID || tok.GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER ||
			tok.GetExpiresAt() != nil || len(got.GetEffectiveScopes()) == 0 || slices.Contains(got.GetEffectiveScopes(), "admin") {
			t.Fatalf("member's key: %v", got)
		}
		// The bootstrap admin key.
		got, err = get(f.install.client)
		mustOK(t, err, "the installation admin's key")
		if !slices.Equal(got.GetToken().GetScopes(), []string{"admin"}) {
			t.Fatalf("admin key: %v", got)
		}

		// A runner access token.
		_, exchange := mustCreateRunner(t, f.install.client, &gitpodv1.CreateRunnerRequest{Name: name("self"), Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST})
		runner := newClient(t, f.ts.URL, protocols[0], bearer(mustExchange(t, f.install.client, exchange)))
		_, err = get(runner)
		wantCode(t, err, connect.CodeFailedPrecondition, "runner access token", "not an API key")

		// A user's browser session.
		if code, msg := sessionCall(t, f.ts.URL, "member@example.com", "/runyard.v1.TokenService/GetAuthenticatedToken"); code != "failed_precondition" ||
			!strings.Contains(msg, "not an API key") {
			t.Fatalf("a session: %s %q, want failed_precondition", code, msg)
		}

		// Revoked: refused as every call of the key.
		_, err = f.install.Tokens.RevokeToken(ctx, connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: created.Msg.GetToken().GetTokenId()}))
		mustOK(t, err, "revoke the key")
		_, err = get(newClient(t, f.ts.URL, protocols[0], bearer(created.Msg.GetSecret())))
		wantCode(t, err, connect.CodeUnauthenticated)
		_, err = get(newClient(t, f.ts.URL, protocols[0], ""))
		wantCode(t, err, connect.CodeUnauthenticated)
	})
}

// sessionCall signs in as email with the test password and makes a Connect
// call with the session's cookie and CSRF token; it returns the answer's
// code ("" for success) and message.
func sessionCall(t *testing.T, baseURL, email, procedure string) (code, message string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": testPassword})
	res, err := http.Post(baseURL+"/auth/password", "application/json", strings.NewReader(string(body)))
	mustOK(t, err, "sign in")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var signedIn struct {
		CSRFToken string `json:"csrfToken"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &signedIn) != nil {
		t.Fatalf("sign in as %s: %s: %s", email, res.Status, b)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+procedure, strings.NewReader("{}"))
	mustOK(t, err, "request")
	for _, c := range res.Cookies() {
		req.AddCookie(c)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", signedIn.CSRFToken)
	out, err := http.DefaultClient.Do(req)
	mustOK(t, err, "call "+procedure)
	defer out.Body.Close()
	var answer struct{ Code, Message string }
	b, _ = io.ReadAll(out.Body)
	if out.StatusCode != http.StatusOK && json.Unmarshal(b, &answer) != nil {
		t.Fatalf("%s: %s: %s", procedure, out.Status, b)
	}
	return answer.Code, answer.Message
}
