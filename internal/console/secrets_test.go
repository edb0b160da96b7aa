package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/internal/testutil"
)

const secretValue = "s3cr3t-v4lue-never-shown"

func form(kv ...string) *strings.Reader {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return strings.NewReader(v.Encode())
}

// TestConsole_SecretsAndAgents posts the secrets and agents pages' forms on
// both databases: a secret is created, its value replaced and it is
// deleted, and no page (not even a refused form) shows its value; an agent
// type is created and deleted, its variables shown by name only; what a
// key may see and press follows its scopes.
func TestConsole_SecretsAndAgents(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			post := func(path, key string, body *strings.Reader, want int) string {
				t.Helper()
				res, b := e.request(t, http.MethodPost, path, key, body, nil)
				if res.StatusCode != want {
					t.Fatalf("POST %s: %d, want %d\n%.2000s", path, res.StatusCode, want, b)
				}
				if strings.Contains(b, secretValue) {
					t.Fatalf("POST %s answers with the secret's value", path)
				}
				return b
			}
			get := func(path, key string, want int) string {
				t.Helper()
				res, b := e.request(t, http.MethodGet, path, key, nil, nil)
				if res.StatusCode != want {
					t.Fatalf("GET %s: %d, want %d\n%.2000s", path, res.StatusCode, want, b)
				}
				if strings.Contains(b, secretValue) {
					t.Fatalf("GET %s shows the secret's value", path)
				}
				return b
			}
			post("/secrets/new", testutil.AdminToken, form("name", "NPM_TOKEN", "value", secretValue, "mount", "env"), http.StatusSeeOther)
			post("/secrets/new", testutil.AdminToken, form("name", "npmrc", "value", secretValue, "mount", "file", "file_path", "/home/u/.npmrc"), http.StatusSeeOther)
			// Refused: the form comes back with the name, not the value.
			b := post("/secrets/new", testutil.AdminToken, form("name", "NPM_TOKEN", "value", secretValue, "mount", "env"), http.StatusConflict)
			if !strings.Contains(b, `value="NPM_TOKEN"`) || !strings.Contains(b, "already exists") {
				t.Errorf("a duplicate secret's form:\n%.2000s", b)
			}
			b = post("/secrets/new", testutil.AdminToken, form("name", "bad name", "value", secretValue, "mount", "env"), http.StatusBadRequest)
			if !strings.Contains(b, "Correct the field") {
				t.Errorf("a bad name's form:\n%.2000s", b)
			}
			page := get("/secrets", testutil.AdminToken, http.StatusOK)
			for _, want := range []string{`data-secret="NPM_TOKEN"`, "environment variable", `data-secret="npmrc"`, "/home/u/.npmrc", `action="/secrets/new"`} {
				if !strings.Contains(page, want) {
					t.Errorf("the secrets page lacks %s", want)
				}
			}
			id := regexp.MustCompile(`action="/secrets/([0-9a-f-]{36})/value"`).FindStringSubmatch(page)
			if id == nil {
				t.Fatalf("no update form on the secrets page")
			}
			post("/secrets/"+id[1]+"/value", testutil.AdminToken, form("value", secretValue+"-2"), http.StatusSeeOther)

			reader := e.createKey(t, "secrets:read", "pods:read")
			page = get("/secrets", reader, http.StatusOK)
			if strings.Contains(page, "<form data-post") || !strings.Contains(page, `data-secret="NPM_TOKEN"`) {
				t.Errorf("a read-only key's secrets page offers forms or lacks the secret")
			}
			post("/secrets/"+id[1]+"/delete", reader, form(), http.StatusForbidden)
			runnersOnly := e.createKey(t, "runners:read")
			if b := get("/secrets", runnersOnly, http.StatusForbidden); !strings.Contains(b, "secrets:read") {
				t.Errorf("a key without secrets:read: %.1000s", b)
			}
			if b := get("/runners", runnersOnly, http.StatusOK); strings.Contains(b, `href="/secrets"`) || strings.Contains(b, `href="/agents"`) {
				t.Errorf("a key without secrets:read or pods:read is offered their pages")
			}
			post("/secrets/"+id[1]+"/delete", testutil.AdminToken, form(), http.StatusSeeOther)
			if page = get("/secrets", testutil.AdminToken, http.StatusOK); strings.Contains(page, id[1]) {
				t.Errorf("the deleted secret is still listed")
			}

			// Agents.
			page = get("/agents", testutil.AdminToken, http.StatusOK)
			if !strings.Contains(page, `data-agent="claude-code"`) || !strings.Contains(page, "No agent type of its own yet") {
				t.Errorf("the agents page lacks the built-in types:\n%.3000s", page)
			}
			b = post("/agents/new", testutil.AdminToken, form("id", "Bad ID", "command", "sh"), http.StatusBadRequest)
			if !strings.Contains(b, `value="Bad ID"`) {
				t.Errorf("a bad agent type's form does not keep what was typed")
			}
			post("/agents/new", testutil.AdminToken, form("id", "my-agent", "name", "Mine", "command", "sh\r\n-c\r\necho {{prompt}}\r\n", "env", "MY_TOKEN=hunter2\r\n"), http.StatusSeeOther)
			page = get("/agents", testutil.AdminToken, http.StatusOK)
			if !strings.Contains(page, `data-agent="my-agent"`) || !strings.Contains(page, "sh -c echo {{prompt}}") || !strings.Contains(page, "MY_TOKEN") || strings.Contains(page, "hunter2") {
				t.Errorf("the agents page after a create:\n%.4000s", page)
			}
			if b := get("/agents", reader, http.StatusOK); strings.Contains(b, "<form data-post") {
				t.Errorf("a read-only key's agents page offers forms")
			}
			post("/agents/my-agent/delete", reader, form(), http.StatusForbidden)
			post("/agents/my-agent/delete", testutil.AdminToken, form(), http.StatusSeeOther)
			if page = get("/agents", testutil.AdminToken, http.StatusOK); strings.Contains(page, `data-agent="my-agent"`) {
				t.Errorf("the deleted agent type is still listed")
			}
		})
	}
}

// TestConsole_SecretsPage creates, updates and deletes a secret in the
// browser: the value field is a password field, the new secret is listed
// without a reload of the form's page, delete asks first.
func TestConsole_SecretsPage(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		b := newBrowser(t, e.ts.URL, "admin", nil)
		b.signInKey(testutil.AdminToken)
		b.do(chromedp.Click(chromedp.CSS(`nav.main a[href="/secrets"]`)))
		b.waitJS("the secrets page opens", `location.pathname === "/secrets" && !!document.getElementById("secret-name")`)
		if typ := eval[string](b, `document.getElementById("secret-value").type`); typ != "password" {
			t.Errorf("the value field is of type %q", typ)
		}
		b.do(chromedp.SendKeys(chromedp.ID("secret-name"), "API_TOKEN"), chromedp.SendKeys(chromedp.ID("secret-value"), secretValue),
			chromedp.Click(chromedp.CSS(`form[action="/secrets/new"] button[type=submit]`)))
		b.waitJS("the secret is listed", `!!document.querySelector('tr[data-secret="API_TOKEN"]')`)
		if eval[bool](b, `document.documentElement.outerHTML.includes(`+jsString(secretValue)+`)`) {
			t.Error("the page holds the secret's value")
		}
		b.shot("secrets")
		b.checkAxe("/secrets")
		b.do(chromedp.SendKeys(chromedp.CSS(`tr[data-secret="API_TOKEN"] input[name=value]`), "another"),
			chromedp.Click(chromedp.CSS(`tr[data-secret="API_TOKEN"] form[action$="/value"] button`)))
		b.waitJS("back on the list", `location.pathname === "/secrets" && !!document.querySelector('tr[data-secret="API_TOKEN"]') && document.querySelector('tr[data-secret="API_TOKEN"] input[name=value]').value === ""`)
		b.do(chromedp.Click(chromedp.CSS(`tr[data-secret="API_TOKEN"] form[action$="/delete"] button`)))
		b.do(chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
		b.waitJS("the secret is gone", `!document.querySelector('tr[data-secret="API_TOKEN"]') && !!document.getElementById("secret-name")`)

		b.do(chromedp.Click(chromedp.CSS(`nav.main a[href="/agents"]`)))
		b.waitJS("the agents page opens", `location.pathname === "/agents" && !!document.querySelector('tr[data-agent="claude-code"]')`)
		// A type of the organization's own, with its Edit form opened: the
		// form's fields (one fieldset of checkboxes) are audited too.
		b.do(chromedp.SendKeys(chromedp.ID("agent-id"), "my-agent"), chromedp.SendKeys(chromedp.ID("agent-name"), "Mine"),
			chromedp.SendKeys(chromedp.ID("agent-command"), "sh\n-c\necho {{prompt}}"), chromedp.SendKeys(chromedp.ID("agent-env"), "API_KEY=x\nMODE=y"),
			chromedp.Click(chromedp.CSS(`form[action="/agents/new"] button[type=submit]`)))
		b.waitJS("the type is listed", `!!document.querySelector('tr[data-agent="my-agent"] details.agent-edit')`)
		b.do(chromedp.Click(chromedp.CSS(`tr[data-agent="my-agent"] details.agent-edit summary`)))
		b.waitJS("its edit form is open", `document.querySelector('tr[data-agent="my-agent"] details.agent-edit').open`)
		b.shot("agents")
		b.checkAxe("/agents with a type's edit form open")

		// The organizations page, the installation admin's, with a second
		// organization (its row has the delete button).
		b.open("/orgs")
		b.do(chromedp.SendKeys(chromedp.ID("org-name"), "acme"), chromedp.Click(chromedp.CSS(`form[action="/orgs/new"] button[type=submit]`)))
		b.waitJS("acme is listed", `location.pathname === "/orgs" && !!document.querySelector('tr[data-org="acme"] form[action$="/delete"]')`)
		b.shot("orgs")
		b.checkAxe("/orgs")
	})
}
