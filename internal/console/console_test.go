package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
	"github.com/runyard/runyard/internal/users"
)

// echoAgent is a custom agent type whose command is a small script: it
// echoes each line, answers "size" with the terminal's size, and waits.
const echoAgent = `{"id":"echo-agent","name":"Echo","command":["sh","-c",` +
	`"echo \"prompt: $RUNYARD_INITIAL_PROMPT\"; while read line; do case \"$line\" in size) stty size;; *) echo \"got: $line\";; esac; done"]}`

// env is a control plane for one test, with an admin's API clients.
type env struct {
	ts      *testutil.TestServer
	runners gitpodv1connect.RunnerServiceClient
	tokens  runyardv1connect.TokenServiceClient
}

func newEnv(t *testing.T, backend testutil.Backend) *env {
	t.Helper()
	opts := testutil.Options{}
	if os.Getenv("RUNYARD_CONSOLE_DEBUG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ts := testutil.StartServerWith(t, backend, opts)
	return &env{
		ts:      ts,
		runners: gitpodv1connect.NewRunnerServiceClient(http.DefaultClient, ts.URL),
		tokens:  runyardv1connect.NewTokenServiceClient(http.DefaultClient, ts.URL),
	}
}

func admin[T any](msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+testutil.AdminToken)
	return req
}

func (e *env) createRunner(t *testing.T, name string) (id, exchange string) {
	t.Helper()
	res, err := e.runners.CreateRunner(context.Background(), admin(&gitpodv1.CreateRunnerRequest{
		Name: name, Provider: gitpodv1.RunnerProvider_RUNNER_PROVIDER_LINUX_HOST}))
	if err != nil {
		t.Fatalf("create runner %s: %v", name, err)
	}
	return res.Msg.GetRunner().GetRunnerId(), res.Msg.GetExchangeToken()
}

func (e *env) createKey(t *testing.T, scopes ...string) string {
	t.Helper()
	res, err := e.tokens.CreateToken(context.Background(), admin(&runyardv1.CreateTokenRequest{Name: "console-" + strings.Join(scopes, "-"), Scopes: scopes}))
	if err != nil {
		t.Fatalf("create key %v: %v", scopes, err)
	}
	return res.Msg.GetSecret()
}

// userPassword is the password of the accounts tests make.
const userPassword = "correct horse battery staple"

// mustUser creates a user with a password and a role in orgID through the
// store (no API creates users yet).
func mustUser(t *testing.T, st store.Store, email, orgID string, role identity.Role) {
	t.Helper()
	h, err := users.HashPassword(userPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &users.User{ID: uuid.NewString(), Email: email, PasswordHash: h, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	if err := st.CreateMembership(context.Background(), &users.Membership{OrgID: orgID, UserID: u.ID, Role: role, CreatedAt: now}); err != nil {
		t.Fatalf("create membership: %v", err)
	}
}

// request sends a request to the console with a bearer key (none if empty).
func (e *env) request(t *testing.T, method, path, key string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (e *env) createAgent(t *testing.T) {
	t.Helper()
	res, body := e.request(t, http.MethodPost, "/api/v1/orgs/default/agents", testutil.AdminToken, strings.NewReader(echoAgent),
		map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create agent type: %d %s", res.StatusCode, body)
	}
}

var (
	inlineScript = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`)
	handlerAttr  = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	styleAttr    = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	styleElement = regexp.MustCompile(`(?i)<style[\s>]`)
)

// checkHeaders fails unless a console response carries the security
// headers, with a CSP that allows nothing inline.
func checkHeaders(t *testing.T, what string, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: Content-Security-Policy %q allows %q", what, csp, bad)
		}
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q", what, got)
	}
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy = %q", what, got)
	}
}

// checkNoInline fails when an HTML page has an inline script, an event
// handler attribute or inline style: the CSP would block them, so they
// would be bugs as well as holes.
func checkNoInline(t *testing.T, what, body string) {
	t.Helper()
	for _, tag := range inlineScript.FindAllString(body, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("%s: inline script %s", what, tag)
		}
	}
	for name, re := range map[string]*regexp.Regexp{"event handler attribute": handlerAttr, "style attribute": styleAttr, "style element": styleElement} {
		if m := re.FindString(body); m != "" {
			t.Errorf("%s: %s in %s", what, name, m)
		}
	}
}

// TestConsole_SecurityHeaders checks every console page, asset, error and
// redirect for the CSP and the other headers, and every page for inline
// code.
func TestConsole_SecurityHeaders(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			e.createAgent(t)
			runnerID, _ := e.createRunner(t, "headers-runner")
			res, body := e.request(t, http.MethodPost, "/api/v1/orgs/default/pods", testutil.AdminToken,
				strings.NewReader(`{"agent_type_id":"echo-agent","initial_prompt":"hi"}`), map[string]string{"Content-Type": "application/json"})
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("create pod: %d %s", res.StatusCode, body)
			}
			key := regexp.MustCompile(`"key":"([^"]+)"`).FindStringSubmatch(body)
			if key == nil {
				t.Fatalf("no pod_key in %s", body)
			}
			_, page := e.request(t, http.MethodGet, "/", testutil.AdminToken, nil, nil)
			asset := regexp.MustCompile(`/console/assets/app-[A-Z0-9]+\.js`).FindString(page)
			if asset == "" {
				t.Fatalf("the overview links no app script:\n%s", page)
			}
			for _, tc := range []struct {
				path   string
				key    string
				status int
			}{
				{"/", testutil.AdminToken, 200},
				{"/", "", http.StatusSeeOther},
				{"/signin", "", 200},
				{"/runners", testutil.AdminToken, 200},
				{"/runners?phase=RUNNER_PHASE_CREATED&name=head", testutil.AdminToken, 200},
				{"/runners?phase=NOPE", testutil.AdminToken, http.StatusBadRequest},
				{"/runners/" + runnerID, testutil.AdminToken, 200},
				{"/runners/00000000-0000-4000-8000-000000000000", testutil.AdminToken, http.StatusNotFound},
				{"/pods", testutil.AdminToken, 200},
				{"/pods/new", testutil.AdminToken, 200},
				{"/pods/" + key[1], testutil.AdminToken, 200},
				{"/environments", testutil.AdminToken, 200},
				{"/environments/new", testutil.AdminToken, 200},
				{asset, "", 200},
				{"/console/assets/manifest.json", "", http.StatusNotFound},
			} {
				res, body := e.request(t, http.MethodGet, tc.path, tc.key, nil, nil)
				what := "GET " + tc.path
				if res.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d: %.300s", what, res.StatusCode, tc.status, body)
				}
				checkHeaders(t, what, res)
				if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
					checkNoInline(t, what, body)
				}
			}
			// A post from another site is refused before anything runs.
			res, body = e.request(t, http.MethodPost, "/pods/"+key[1]+"/terminate", testutil.AdminToken, strings.NewReader(""),
				map[string]string{"Origin": "http://evil.example"})
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
				t.Errorf("cross-site post: %d %.300s", res.StatusCode, body)
			}
			checkHeaders(t, "cross-site POST", res)
			// A read-only key's write is refused by the domain, in words.
			reader := e.createKey(t, "pods:read", "runners:read")
			res, body = e.request(t, http.MethodPost, "/pods/"+key[1]+"/terminate", reader, strings.NewReader(""), nil)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "pods:write") {
				t.Errorf("read-only terminate: %d %.300s", res.StatusCode, body)
			}
			// Bad input gets the form again, the error in words naming the
			// field, and what the user typed.
			res, body = e.request(t, http.MethodPost, "/pods/new", testutil.AdminToken, strings.NewReader("agent_type_id=echo-agent&labels=gpu&initial_prompt="), nil)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "initial_prompt") || !strings.Contains(body, "Correct the field") || !strings.Contains(body, `value="gpu"`) {
				t.Errorf("pod form with no prompt: %d %.2000s", res.StatusCode, body)
			}
			// The console's writes are in the audit log, refused ones too.
			logs, err := gitpodv1connect.NewEventServiceClient(http.DefaultClient, e.ts.URL).ListAuditLogs(context.Background(),
				admin(&gitpodv1.ListAuditLogsRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
			if err != nil {
				t.Fatalf("list audit logs: %v", err)
			}
			var outcomes []string
			for _, en := range logs.Msg.GetEntries() {
				if en.GetSurface() == "console" {
					outcomes = append(outcomes, en.GetAction()+" "+en.GetOutcome())
				}
			}
			if want := []string{"POST /pods/{key}/terminate permission_denied", "POST /pods/new invalid_argument"}; strings.Join(outcomes, ",") != strings.Join(want, ",") {
				t.Errorf("console entries of the audit log = %q, want %q", outcomes, want)
			}
			res, body = e.request(t, http.MethodGet, "/pods/"+key[1], reader, nil, nil)
			if res.StatusCode != http.StatusOK || strings.Contains(body, "/terminate") {
				t.Errorf("a read-only key's pod page offers terminate: %d", res.StatusCode)
			}
		})
	}
}

// TestConsole_Browser drives the console in Chromium against a real
// control plane and runner daemon: a runner goes ACTIVE on screen without
// a reload; a pod created in the form runs a script agent whose terminal
// echoes what is typed, follows the window's size and comes back after a
// reload with the same session; terminate asks first; a read-only key sees
// no write controls and its forged write is refused.
func TestConsole_Browser(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		e.createAgent(t)
		st := e.ts.OpenStore(t)
		org, err := st.FindOrganizationByName(context.Background(), identity.DefaultOrganization)
		if err != nil {
			t.Fatal(err)
		}
		mustUser(t, st, "ada@example.com", org.ID, identity.RoleAdmin)
		b := newBrowser(t, e.ts.URL, "admin", nil)

		// A wrong password is refused in words; the right one signs in.
		b.open("/signin")
		b.do(chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"), chromedp.SendKeys(chromedp.ID("password"), "wrong password"),
			chromedp.Click(chromedp.CSS(`form[action="/auth/password"] button`)))
		b.waitJS("the refusal is shown", `!!document.querySelector("form[action='/auth/password'] [data-form-error]")`)
		if got := b.text("form[action='/auth/password'] [data-form-error]"); !strings.Contains(got, "try again") {
			t.Errorf("wrong password: the page says %q", got)
		}
		b.shot("signin-refused")
		b.signInPassword("ada@example.com", userPassword)

		// Runners: one appears and goes ACTIVE while the page is open.
		b.open("/runners")
		b.do(chromedp.WaitVisible(chromedp.CSS("#live-status[data-state=live]")))
		eval[bool](b, `window.__sameDocument = true`)
		_, exchange := e.createRunner(t, "web-runner")
		b.waitJS("the new runner is listed", `!!document.querySelector('tr[data-runner="web-runner"]')`)
		rcfg := runner.Config{Server: e.ts.URL, ExchangeToken: exchange, Name: "web-host", MaxPods: 4, StopGrace: 5 * time.Second}
		if os.Getenv("RUNYARD_CONSOLE_DEBUG") != "" {
			rcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		testutil.StartRunner(t, rcfg)
		b.waitJS("the runner shows active", `(document.querySelector('tr[data-runner="web-runner"] [data-phase]')||{}).innerText === "active"`)
		if !eval[bool](b, `window.__sameDocument === true`) {
			t.Fatal("the runners page reloaded: the runner should have gone active in place")
		}
		b.shot("runners")
		b.checkAxe("/runners")

		// Overview counts it.
		b.open("/")
		if got := b.text(`[data-count="runners-active"]`); got != "1" {
			t.Errorf("overview: active runners = %q, want 1", got)
		}
		b.shot("overview")
		b.checkAxe("/")
		b.colorScheme("dark")
		b.shot("overview-dark")
		b.colorScheme("light")
		// Each number links to its list.
		b.do(chromedp.Click(chromedp.CSS(`[data-count="runners-active"]`)))
		b.waitJS("the active runners' list opens", `location.search.includes("phase=RUNNER_PHASE_ACTIVE") && !!document.querySelector('tr[data-runner="web-runner"]')`)

		// The runner's actions: drain and resume, a new exchange token shown
		// once with its commands (never in the URL).
		b.do(chromedp.Click(chromedp.CSS(`tr[data-runner="web-runner"] a`)))
		b.waitJS("the runner page opens", `location.pathname.startsWith("/runners/") && !!document.getElementById("runner-actions")`)
		runnerPath := eval[string](b, `location.pathname`)
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/drain"] button`)))
		b.do(chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
		b.waitJS("the runner shows draining", `!!document.querySelector('form[action$="/resume"]') && document.getElementById("runner-status").innerText.includes("draining")`)
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/resume"] button`)))
		b.waitJS("the runner takes work again", `!!document.querySelector('form[action$="/drain"]') && !document.getElementById("runner-status").innerText.includes("draining")`)
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/token"] button`)))
		b.do(chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
		b.waitJS("the token is shown", `!!document.getElementById("token-command")`)
		cmd := b.text("#token-command")
		if want := "runyard runner --server " + e.ts.URL + " --exchange-token ryd_ex_"; !strings.HasPrefix(cmd, want) {
			t.Errorf("token command = %q, want it to start with %q", cmd, want)
		}
		if loc := eval[string](b, `location.href`); loc != e.ts.URL+runnerPath || strings.Contains(loc, "ryd_") {
			t.Errorf("after making a token the page is at %s", loc)
		}
		b.shot("runner-token")
		b.open(runnerPath)
		if b.exists("#token-value") {
			t.Error("the exchange token is shown again after a reload")
		}
		b.shot("runner")
		b.checkAxe("/runners/{id}")
		b.open("/pods")
		b.checkAxe("/pods")
		b.open("/environments")
		b.checkAxe("/environments")
		b.open("/signin")
		b.checkAxe("/signin")
		// The audit finds what it should: an unlabelled field is serious.
		eval[bool](b, `document.querySelector("main").appendChild(document.createElement("input")) && true`)
		if v := b.axeViolations(); len(v) == 0 {
			t.Error("axe-core found no violation on a page with an unlabelled input: is it running?")
		}

		// A pod from the form.
		b.open("/pods/new")
		b.do(
			chromedp.SetValue(chromedp.ID("agent"), "echo-agent"),
			chromedp.SendKeys(chromedp.ID("prompt"), "say hello"),
		)
		b.shot("pod-new")
		b.checkAxe("/pods/new")
		b.do(chromedp.Click(chromedp.CSS(`form[action="/pods/new"] button[type=submit]`)))
		b.waitJS("the pod page opens", `location.pathname.startsWith("/pods/") && location.pathname !== "/pods/new"`)
		key := strings.TrimPrefix(eval[string](b, `location.pathname`), "/pods/")
		// The page follows the pod until it runs; the terminal comes with the
		// page of a running pod.
		b.waitJS("the pod runs", `(document.querySelector('[data-status]')||{}).dataset?.status === "running"`)
		b.open("/pods/" + key)
		b.waitJS("the terminal attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		b.waitJS("the prompt shows", `document.querySelector(".xterm-rows").innerText.includes("prompt: say hello")`)
		b.typeText("hello-console\r")
		b.waitJS("the agent echoes the line", `document.querySelector(".xterm-rows").innerText.includes("got: hello-console")`)

		// Resize follows the window: the pty's size (stty size) is the terminal's.
		before := eval[string](b, `document.getElementById("terminal").dataset.cols`)
		b.viewport(900, 700)
		b.waitJS("the terminal refits", `document.getElementById("terminal").dataset.cols !== `+jsString(before))
		cols := eval[string](b, `document.getElementById("terminal").dataset.cols`)
		rows := eval[string](b, `document.getElementById("terminal").dataset.rows`)
		// The resize reaches the pty over the socket, after the refit: ask
		// again until stty sees it (bounded by browserWait).
		b.untilJS("stty reports the new size", func() { b.typeText("size\r") },
			`document.querySelector(".xterm-rows").innerText.includes(`+jsString(rows+" "+cols)+`)`)
		b.shot("pod-terminal")
		b.checkAxe("/pods/{key} with its terminal")

		// A reload attaches to the same session: its scrollback is back.
		b.do(chromedp.Reload())
		b.waitJS("the terminal re-attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		b.waitJS("the scrollback is back", `document.querySelector(".xterm-rows").innerText.includes("got: hello-console")`)
		b.typeText("after-reload\r")
		b.waitJS("the same session answers", `document.querySelector(".xterm-rows").innerText.includes("got: after-reload")`)

		// A read-only key: no write controls, a read-only terminal, and a
		// forged write refused.
		reader := e.createKey(t, "pods:read", "runners:read", "environments:read")
		ro := newBrowser(t, e.ts.URL, "reader", nil)
		ro.signInKey(reader)
		ro.open("/pods/" + key)
		ro.waitJS("the watcher attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		ro.waitJS("the watcher sees the session", `document.querySelector(".xterm-rows").innerText.includes("got: after-reload")`)
		for _, sel := range []string{`form[action$="/terminate"]`, `a[href="/pods/new"]`} {
			if ro.exists(sel) {
				t.Errorf("a read-only key sees %s", sel)
			}
		}
		ro.shot("pod-readonly")
		ro.open("/runners")
		ro.do(chromedp.Click(chromedp.CSS(`tr[data-runner="web-runner"] a`)))
		ro.waitJS("the runner page opens", `location.pathname.startsWith("/runners/")`)
		if ro.exists(`#runner-actions`) {
			t.Error("a read-only key sees the runner's actions")
		}
		// Forged writes: without the session's CSRF token, with a wrong one,
		// and with the right one but a read-only session: all refused.
		for what, headers := range map[string]string{
			"without a CSRF token":   `{}`,
			"with a wrong token":     `{"X-CSRF-Token": "forged"}`,
			"by a read-only session": `{"X-CSRF-Token": csrf}`,
		} {
			forged := evalAwait[float64](ro, `fetch("/auth/session").then(r => r.json()).then(s => { const csrf = s.csrfToken;
			return fetch("/pods/`+key+`/terminate", {method: "POST", headers: `+headers+`, body: "x=1"}) }).then(r => r.status)`)
			if forged != http.StatusForbidden {
				t.Errorf("forged terminate %s: status %v, want 403", what, forged)
			}
		}
		// The admin's session without the token changes nothing either.
		forged := evalAwait[float64](b, `fetch("`+runnerPath+`/drain", {method: "POST", body: "x=1"}).then(r => r.status)`)
		if forged != http.StatusForbidden {
			t.Errorf("the admin's drain without a CSRF token: status %v, want 403", forged)
		}

		// Terminate asks first; cancel keeps the pod, confirm ends it.
		b.open("/pods/" + key)
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/terminate"] button`)))
		b.do(chromedp.WaitVisible(chromedp.ID("confirm")))
		b.shot("pod-terminate-confirm")
		b.do(chromedp.Click(chromedp.ID("confirm-cancel")))
		if got := b.text("[data-status]"); !strings.Contains(got, "running") {
			t.Errorf("after cancel the pod is %q", got)
		}
		// Asked again at once, before the dialog's close event of the
		// Cancel fired (a quick user, a loaded machine): that late event
		// must not answer the new question.
		if !eval[bool](b, `(() => { const f = document.querySelector('form[action$="/terminate"]');
			f.requestSubmit(); document.getElementById("confirm-cancel").click(); f.requestSubmit();
			return document.getElementById("confirm").open })()`) {
			t.Fatal("Terminate right after Cancel shows no confirmation")
		}
		b.do(chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
		b.waitJS("the pod ends", `["terminated","failed"].includes((document.querySelector('[data-status]')||{}).dataset?.status)`)

		// Phone width: the layout still fits.
		b.viewport(390, 800)
		b.open("/runners")
		if w := eval[float64](b, `document.documentElement.scrollWidth`); w > 400 {
			t.Errorf("at phone width the runners page is %v px wide", w)
		}
		b.shot("runners-phone")
		b.checkAxe("/runners at phone width")
		if got := b.text(`tr[data-runner="web-runner"]`); strings.Contains(got, "draining") {
			t.Errorf("a forged drain drained the runner: %q", got)
		}

		// Sign out: back to the sign-in page, and the session is gone.
		b.viewport(1280, 900)
		b.do(chromedp.Click(chromedp.CSS("form[data-signout] button")))
		b.waitJS("signed out", `location.pathname === "/signin"`)
		b.open("/runners")
		b.waitJS("a page asks to sign in again", `location.pathname === "/signin"`)
	})
}
