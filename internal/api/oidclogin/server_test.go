package oidclogin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// TestServer_SignIn runs single sign-on through a whole control plane
// (`runyard server --oidc-*`) on both databases: the first sign-in
// provisions the user and the session cookie it sets works for the Connect
// API as PRINCIPAL_USER; the second sign-in is the same user; a refused one
// creates nothing. The server's log never shows the client secret.
func TestServer_SignIn(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			op := testutil.StartOP(t, []testutil.OPClient{{ID: "runyard", Secret: clientSecret}}, opUsers)
			logs := &lockedBuffer{}
			ts := testutil.StartServerWith(t, backend, testutil.Options{
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
				SSO: sso.Config{Issuer: op.Issuer, ClientID: "runyard", ClientSecret: clientSecret,
					DefaultRole: identity.RoleMember, AllowedDomains: []string{"example.com"}},
			})
			op.AddRedirectURI("runyard", ts.URL+sso.CallbackPath)
			st := ts.OpenStore(t)

			var firstID string
			for i := range 2 {
				b := newBrowserOf(t, ts.URL)
				resp, body := b.signInAt(t, op, userNamed("ann"), "/console")
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
					t.Fatalf("sign-in %d: %d %s %s", i, resp.StatusCode, resp.Header.Get("Location"), body)
				}
				u, err := st.FindUserByEmail(ctx, "ann@example.com")
				testutil.MustNoErr(t, err, "the provisioned user")
				if i == 0 {
					firstID = u.ID
				} else if u.ID != firstID {
					t.Fatalf("second sign-in is user %s, want %s", u.ID, firstID)
				}
				// The session works for the Connect API, as the user.
				sessResp, sessBody := b.get(t, ts.URL+"/auth/session")
				var sess struct {
					CSRFToken string `json:"csrfToken"`
					Principal string `json:"principal"`
					UserID    string `json:"userId"`
				}
				if sessResp.StatusCode != http.StatusOK || json.Unmarshal([]byte(sessBody), &sess) != nil || sess.UserID != u.ID {
					t.Fatalf("GET /auth/session: %d %s", sessResp.StatusCode, sessBody)
				}
				client := gitpodv1connect.NewIdentityServiceClient(b.c, ts.URL)
				req := connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{})
				req.Header().Set(sessions.CSRFHeader, sess.CSRFToken)
				res, err := client.GetAuthenticatedIdentity(context.Background(), req)
				testutil.MustNoErr(t, err, "GetAuthenticatedIdentity with the session")
				if got := res.Msg.GetSubject(); got.GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER || got.GetId() != u.ID {
					t.Fatalf("identity %v, want PRINCIPAL_USER %s", got, u.ID)
				}
			}
			// A refused sign-in creates nothing.
			before := countUsers(t, st)
			b := newBrowserOf(t, ts.URL)
			resp, body := b.signInAt(t, op, userNamed("eve"), "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "may not sign in") {
				t.Fatalf("eve's sign-in: %d %s", resp.StatusCode, body)
			}
			if got := countUsers(t, st); got != before {
				t.Errorf("%d users after a refused sign-in, want %d", got, before)
			}
			// Two sign-ins and a failed one, each recorded once, written by
			// the server itself.
			es, err := st.FindAudit(ctx, audit.Filter{OrgID: identityDefaultOrg(t, st), Methods: []string{oidclogin.MethodCallback}})
			testutil.MustNoErr(t, err, "audit")
			var outcomes []string
			for _, e := range es {
				outcomes = append(outcomes, e.Outcome)
			}
			if len(es) != 3 || es[0].Outcome != audit.OutcomeOK || es[1].Outcome != audit.OutcomeOK || !strings.Contains(es[2].Outcome, "failed sign-in: email domain") ||
				es[0].ActorID != firstID || es[0].ActorPrincipal != identity.PrincipalUser {
				t.Errorf("audit entries of the sign-ins: %q %+v", outcomes, es)
			}
			if strings.Contains(logs.String(), clientSecret) {
				t.Errorf("the server's log shows the client secret")
			}
		})
	}
}

func identityDefaultOrg(t *testing.T, st store.Store) string {
	t.Helper()
	org, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
	testutil.MustNoErr(t, err, "default organization")
	return org.ID
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
