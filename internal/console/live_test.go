package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/testutil"
	"github.com/runyard/runyard/internal/users"
)

// TestConsole_LivePages: each list shows a change made elsewhere (the API,
// another replica's store) without a reload: pods, agent types, members,
// invites, the user's API keys, the audit log and, for an installation
// admin, the organizations.
func TestConsole_LivePages(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		e.createAgent(t)
		st := e.ts.OpenStore(t)
		ctx := context.Background()
		org, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
		if err != nil {
			t.Fatal(err)
		}
		mustUser(t, st, "ada@example.com", org.ID, identity.RoleAdmin)
		ada := userID(t, e, "ada@example.com")
		if _, err := st.UpdateUser(ctx, ada, func(u *users.User) error { u.InstallationAdmin = true; return nil }); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t, e.ts.URL, "admin", nil)
		b.signInPassword("ada@example.com", userPassword)
		now := time.Now().UTC().Truncate(time.Microsecond)
		restPost := func(path, body string) string {
			res, out := e.request(t, http.MethodPost, path, testutil.AdminToken, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
			if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
				t.Fatalf("POST %s: %d %s", path, res.StatusCode, out)
			}
			return out
		}
		var podKey string
		invite := &users.Invite{ID: uuid.NewString(), Hash: uuid.NewString(), OrgID: org.ID, Role: identity.RoleMember,
			CreatorID: ada, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		key, _ := newUserKey(org.ID, ada, "live-key", now)
		for _, tc := range []struct {
			page, what string
			change     func()
			shown      string // a JavaScript expression, true once the change is on the page
		}{
			{"/pods", "a pod made through the API", func() {
				out := restPost("/api/v1/orgs/default/pods", `{"agent_type_id":"echo-agent","initial_prompt":"live"}`)
				podKey = jsonField(t, out, "pod.key")
			}, `!!document.querySelector('tr[data-pod^="pod-"]')`},
			{"/agents", "an agent type made through the API", func() {
				restPost("/api/v1/orgs/default/agents", `{"id":"live-agent","name":"Live","command":["sh"]}`)
			}, `!!document.querySelector('tr[data-agent="live-agent"]')`},
			{"/members", "a member added elsewhere", func() { mustUser(t, st, "carol@example.com", org.ID, identity.RoleMember) },
				`!!document.querySelector('tr[data-member="carol@example.com"]')`},
			{"/members", "an invite made elsewhere", func() {
				if err := st.CreateInvite(ctx, invite); err != nil {
					t.Fatal(err)
				}
			}, `!!document.querySelector('tr[data-invite="` + invite.ID + `"]')`},
			{"/keys", "the user's key made elsewhere", func() {
				if err := st.CreateToken(ctx, key); err != nil {
					t.Fatal(err)
				}
			}, `!!document.querySelector('tr[data-key="live-key"]')`},
			{"/keys", "the user's key revoked elsewhere", func() {
				if _, err := st.RevokeToken(ctx, org.ID, key.ID, time.Now(), nil); err != nil {
					t.Fatal(err)
				}
			}, `!document.querySelector('tr[data-key="live-key"]')`},
			{"/audit", "an audited call", func() { e.createRunner(t, "live-runner") },
				`document.getElementById("audit-table").innerText.includes("RunnerService/CreateRunner")`},
			{"/orgs", "an organization made elsewhere", func() {
				if err := st.CreateOrganization(ctx, &identity.Organization{ID: uuid.NewString(), Name: "live-org", CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}, `!!document.querySelector('tr[data-org="live-org"]')`},
		} {
			b.open(tc.page)
			b.do(chromedp.WaitVisible(chromedp.CSS("#live-status[data-state=live]")))
			if eval[bool](b, tc.shown) {
				t.Fatalf("%s: %s is shown before it happened", tc.page, tc.what)
			}
			eval[bool](b, `window.__sameDocument = true`)
			tc.change()
			b.waitJS(tc.page+": "+tc.what, tc.shown)
			if !eval[bool](b, `window.__sameDocument === true`) {
				t.Fatalf("%s reloaded to show %s: it should have updated in place", tc.page, tc.what)
			}
		}
		// The pod's own page follows it too: terminated through the API.
		b.open("/pods/" + podKey)
		b.do(chromedp.WaitVisible(chromedp.CSS("#live-status[data-state=live]")))
		eval[bool](b, `window.__sameDocument = true`)
		restPost("/api/v1/orgs/default/pods/"+podKey+"/terminate", `{}`)
		b.waitJS("the pod page shows it terminated", `(document.querySelector('[data-status]')||{}).dataset?.status === "terminated"`)
		if !eval[bool](b, `window.__sameDocument === true`) {
			t.Fatal("the pod page reloaded")
		}
	})
}

// newUserKey is an API key of user userID in orgID, as the store keeps it.
func newUserKey(orgID, userID, name string, at time.Time) (*identity.Token, string) {
	secret := identity.NewSecret(identity.PrefixAPIKey)
	return &identity.Token{
		ID: uuid.NewString(), OrgID: orgID, Name: name, Principal: identity.PrincipalUser, OwnerUserID: userID,
		Scopes:  []identity.Scope{identity.ScopeRunnersRead},
		Creator: identity.Subject{ID: userID, Principal: identity.PrincipalUser},
		Hash:    identity.HashSecret(secret), CreatedAt: at,
	}, secret
}

// jsonField is the string at a dotted path of a JSON document.
func jsonField(t *testing.T, doc, path string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %s in %s", path, k, doc)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is not a string in %s", path, doc)
	}
	return s
}
