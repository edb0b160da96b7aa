package console_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/testutil"
	"github.com/runyard/runyard/internal/users"
)

// TestConsole_TeamsBrowser drives the team pages in Chromium: a user in two
// organizations switches between them from the header; an organization's
// admin adds a member and makes an invite shown once; the audit page
// filters by actor; a user creates an API key (shown once) and revokes it
// after a confirmation. Each page passes axe-core.
func TestConsole_TeamsBrowser(t *testing.T) {
	e := newEnv(t, testutil.SQLite)
	st := e.ts.OpenStore(t)
	ctx := context.Background()
	def, err := st.FindOrganizationByName(ctx, identity.DefaultOrganization)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	acme := &identity.Organization{ID: uuid.NewString(), Name: "acme", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateOrganization(ctx, acme); err != nil {
		t.Fatal(err)
	}
	mustUser(t, st, "ada@example.com", def.ID, identity.RoleAdmin)
	if err := st.CreateMembership(ctx, &users.Membership{OrgID: acme.ID, UserID: userID(t, e, "ada@example.com"), Role: identity.RoleMember, CreatedAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	mustUser(t, st, "bob@example.com", acme.ID, identity.RoleMember)

	b := newBrowser(t, e.ts.URL, "ada", nil)
	b.signInPassword("ada@example.com", userPassword)

	// The switcher: ada is admin of default and member of acme.
	b.open("/members")
	b.waitJS("the switcher is shown", `!!document.getElementById("org-switch")`)
	if got := b.text(`#org-switch option:checked`); !strings.HasPrefix(got, "default") {
		t.Errorf("the switcher shows %q, want default", got)
	}
	b.shot("members")
	b.checkAxe("/members")

	// An admin adds a member: bob, of acme, joins default as a member.
	b.do(chromedp.SendKeys(chromedp.ID("add-email"), "bob@example.com"), chromedp.SetValue(chromedp.ID("add-role"), "runners-admin"),
		chromedp.Click(chromedp.CSS(`form[action="/members/add"] button`)))
	b.waitJS("bob is listed", `!!document.querySelector('tr[data-member="bob@example.com"]')`)
	if got := eval[string](b, `document.querySelector('tr[data-member="bob@example.com"] select').value`); got != "runners-admin" {
		t.Errorf("bob's role is %q, want runners-admin", got)
	}
	// Demoting the last admin is refused in words.
	b.do(chromedp.SetValue(chromedp.CSS(`tr[data-member="ada@example.com"] select`), "member"),
		chromedp.Click(chromedp.CSS(`tr[data-member="ada@example.com"] form[action$="/role"] button`)))
	b.waitJS("the refusal is shown", `(document.getElementById("error")||{}).innerText?.includes("last admin")`)
	b.shot("members-last-admin")

	// An invite: shown once, with the command, then listed by id only.
	b.do(chromedp.SetValue(chromedp.ID("inv-role"), "audit-reader"), chromedp.Click(chromedp.CSS(`form[action="/invites/new"] button`)))
	b.waitJS("the invite is shown", `(document.getElementById("invite-token")||{}).innerText?.startsWith("ryd_inv_")`)
	token := b.text("#invite-token")
	if cmd := b.text("#invite-command"); !strings.Contains(cmd, "runyard join "+token) {
		t.Errorf("invite command %q", cmd)
	}
	if loc := eval[string](b, `location.href`); strings.Contains(loc, "ryd_") {
		t.Errorf("the invite's token is in the URL %s", loc)
	}
	link := b.text("#invite-link")
	if want := e.ts.URL + "/signin#invite=" + token; link != want {
		t.Errorf("invite link %q, want %q", link, want)
	}
	b.shot("members-invite")
	b.checkAxe("/members with a new invite")

	b.open("/members")
	if b.exists("#invite-token") || strings.Contains(eval[string](b, `document.body.innerText`), token) {
		t.Error("the invite's token is shown again")
	}
	b.waitJS("the invite is pending", `!!document.querySelector("tr[data-invite]")`)

	// The link: a person without an account signs up with it and is
	// signed in to the organization, as the invite's role.
	cy := newBrowser(t, e.ts.URL, "cy", nil)
	cy.open(strings.TrimPrefix(link, e.ts.URL))
	cy.waitJS("the join form is shown", `!document.getElementById("join").hidden`)
	cy.checkAxe("/signin with an invite")
	cy.do(chromedp.SendKeys(chromedp.ID("join-email"), "cy@example.com"), chromedp.SendKeys(chromedp.ID("join-password"), userPassword),
		chromedp.Click(chromedp.CSS(`form[data-join-new] button`)))
	cy.waitJS("signed in on the overview", `location.pathname === "/" && !!document.querySelector("form[data-signout]")`)
	if !cy.exists(`a[href="/audit"]`) {
		t.Error("the invited audit reader is not offered the audit log")
	}
	// A used link says so.
	dee := newBrowser(t, e.ts.URL, "dee", nil)
	dee.open(strings.TrimPrefix(link, e.ts.URL))
	dee.do(chromedp.SendKeys(chromedp.ID("join-email"), "dee@example.com"), chromedp.SendKeys(chromedp.ID("join-password"), userPassword),
		chromedp.Click(chromedp.CSS(`form[data-join-new] button`)))
	dee.waitJS("the refusal is shown", `(document.querySelector("form[data-join-new] [data-form-error]")||{}).innerText?.includes("used or expired")`)

	// API keys: create (shown once), then revoke after the confirmation.
	b.open("/keys")
	b.shot("keys")
	b.checkAxe("/keys")
	b.do(chromedp.SendKeys(chromedp.ID("key-name"), "browser-key"),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="pods:read"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/keys/new"] button[type=submit]`)))
	b.waitJS("the key is shown", `(document.getElementById("key-secret")||{}).innerText?.startsWith("ryd_ak_")`)
	b.shot("keys-new")
	b.open("/keys")
	b.waitJS("the key is listed", `!!document.querySelector('tr[data-key="browser-key"] form[action$="/revoke"]')`)
	if b.exists("#key-secret") {
		t.Error("the key's secret is shown again")
	}
	b.do(chromedp.Click(chromedp.CSS(`tr[data-key="browser-key"] form[action$="/revoke"] button`)))
	b.do(chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	b.waitJS("the key is gone from the active keys", `location.pathname === "/keys" && !document.querySelector('tr[data-key="browser-key"]')`)
	b.open("/keys?all=1")
	b.waitJS("the key shows revoked", `(document.querySelector('tr[data-key="browser-key"]')||{}).innerText?.includes("revoked")`)

	// The audit log, filtered by actor: ada's entries only (the
	// installation admin's key made one of its own).
	e.createKey(t, "runners:read")
	adaID := userID(t, e, "ada@example.com")
	actors := `[...document.querySelectorAll("tr[data-audit] td:nth-child(2) span.mono")].map(s => s.innerText)`
	b.open("/audit")
	b.checkAxe("/audit")
	if all := eval[[]string](b, actors); !slices.ContainsFunc(all, func(a string) bool { return a != adaID }) {
		t.Fatalf("the unfiltered audit log holds only ada's entries: %v", all)
	}
	b.do(chromedp.SendKeys(chromedp.ID("f-actor"), "ada@example.com"), chromedp.Click(chromedp.CSS(`form[role=search] button`)))
	b.waitJS("the filter applies", `location.search.includes("actor=ada")`)
	rows := eval[[]string](b, actors)
	if len(rows) < 3 {
		t.Fatalf("ada's entries: %v", rows)
	}
	for _, r := range rows {
		if r != adaID {
			t.Errorf("ada's entries hold one of %q", r)
		}
	}
	// Each entry's details open in place.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-audit] summary`)))
	b.waitJS("the details show", `document.querySelector("tr[data-audit] details").open && document.querySelector("tr[data-audit] dl").innerText.includes("127.0.0.1")`)
	b.shot("audit")

	// Switch to acme: the session moves there, where ada is a member.
	b.open("/")
	if os.Getenv("RUNYARD_CONSOLE_SHOTS") != "" {
		// A native select's open list is not in a screenshot: for the
		// picture only, the switcher shows its options as a list box.
		eval[bool](b, `(s => (s.size = s.options.length, true))(document.getElementById("org-switch"))`)
		b.shot("switcher-open")
		eval[bool](b, `(s => (s.size = 0, true))(document.getElementById("org-switch"))`)
	}
	eval[bool](b, `window.__beforeSwitch = true`)
	b.do(chromedp.SetValue(chromedp.ID("org-switch"), acme.ID), chromedp.Click(chromedp.CSS(`form[data-switch] button`)))
	b.waitJS("acme is current", `!window.__beforeSwitch && location.pathname === "/" && document.documentElement.dataset.ready === "true" &&
		(document.querySelector("#org-switch option:checked")||{}).innerText?.startsWith("acme")`)
	b.open("/members")
	if b.exists(`form[action="/members/add"]`) || b.exists(`a[href="/audit"]`) {
		t.Error("as a member of acme ada still sees admin controls")
	}
	if got := eval[int](b, `document.querySelectorAll("tr[data-member]").length`); got != 2 {
		t.Errorf("acme's members: %d, want 2 (ada and bob)", got)
	}
	b.shot("switched")
	b.checkAxe("/members as a member")
}
