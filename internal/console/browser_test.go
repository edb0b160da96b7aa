package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/internal/testutil"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait in the browser: generous, because a loaded
// machine may take long; a passing test never waits for it.
const browserWait = 60 * time.Second

// browser is one headless Chromium tab of a test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	name string
}

// newBrowser starts a headless Chromium for the test (closed when it ends).
// headers are sent with every request of the tab (Authorization before the
// session endpoints existed; none once the test signs in). On failure the
// test's last screen and DOM are saved and their paths printed.
func newBrowser(t *testing.T, base, name string, headers map[string]string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: .ci/run installs the chromium package", chromiumPath)
		}
		t.Skipf("no browser at %s (apt-get install chromium)", chromiumPath)
	}
	root, err := sharedBrowser()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// A browser context of its own: cookies (the session) and storage are
	// the tab's, as in a browser of its own.
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	b := &browser{t: t, ctx: ctx, base: base, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveArtifacts()
		}
		cancel()
	})
	// The first run opens the tab, which lives as long as that run's
	// context: the test's, not a timeout's.
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return fmt.Errorf("enable network: %w", err)
		}
		if len(headers) > 0 {
			h := network.Headers{}
			for k, v := range headers {
				h[k] = v
			}
			if _, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
				return fmt.Errorf("set headers: %w", err)
			}
		}
		return nil
	}), chromedp.EmulateViewport(1280, 900))
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	if os.Getenv("RUNYARD_CONSOLE_DEBUG") != "" {
		b.logEvents()
	}
	return b
}

// logEvents logs the tab's requests other than GETs, its WebSockets'
// frames and closes, console messages and exceptions: what a failing run
// needs to tell a request never sent from one refused.
func (b *browser) logEvents() {
	name := b.name
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s browser %s: %s\n", time.Now().UTC().Format("15:04:05.000"), name, fmt.Sprintf(format, args...))
	}
	post := map[network.RequestID]string{}
	var mu sync.Mutex
	_ = chromedp.Listen(b.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if !strings.Contains(ev.Request.URL, "/assets/") {
				mu.Lock()
				post[ev.RequestID] = ev.Request.Method + " " + ev.Request.URL
				mu.Unlock()
				logf("%s %s", ev.Request.Method, ev.Request.URL)
			}
		case *network.EventResponseReceived:
			mu.Lock()
			what, ok := post[ev.RequestID]
			mu.Unlock()
			if ok {
				logf("%s: %d", what, ev.Response.Status)
			}
		case *network.EventLoadingFailed:
			mu.Lock()
			what := post[ev.RequestID]
			mu.Unlock()
			logf("%s failed: %s", what, ev.ErrorText)
		case *network.EventWebSocketCreated:
			logf("websocket %s: %s", ev.RequestID, ev.URL)
		case *network.EventWebSocketClosed:
			logf("websocket %s closed", ev.RequestID)
		case *network.EventWebSocketFrameReceived:
			if ev.Response.Opcode == 1 {
				logf("websocket %s: %s", ev.RequestID, ev.Response.PayloadData)
			}
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			logf("console.%s %s", ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			if d != nil && d.Exception != nil {
				logf("exception: %s %s", d.Text, d.Exception.Description)
			} else if d != nil {
				logf("exception: %s", d.Text)
			}
		}
	})
}

// shared is the one Chromium of the test binary: starting one per test
// costs seconds of a loaded machine's CPU each; tabs in browser contexts
// of their own are as separate as browsers for the tests.
var shared struct {
	once   sync.Once
	ctx    context.Context
	err    error
	cancel func()
}

func sharedBrowser() (context.Context, error) {
	shared.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath),
			chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("disable-gpu", true),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		shared.ctx, shared.cancel = ctx, func() { cancel(); cancelAlloc() }
		shared.err = chromedp.Do(ctx)
	})
	return shared.ctx, shared.err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	os.Exit(code)
}

// do runs actions, failing the test on an error.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser %s: %v", b.name, err)
	}
}

// open navigates to path and waits for the page's main content.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser %s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

// evalAwait returns the value a JavaScript promise resolves to.
func evalAwait[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser %s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true. It is evaluated
// by the debugger (Runtime.evaluate), which the page's CSP does not
// restrict, so polling needs no eval in the page.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	var last any
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		cancel()
		if err == nil && v == true {
			return
		}
		last = v
		if err != nil {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("browser %s: %s: still not so after %s (%s = %v)", b.name, what, browserWait, expr, last)
}

// untilJS does act, then waits a moment for expr to be true, and again,
// until it is: for what a user would retry (a key typed before the process
// saw the resize).
func (b *browser) untilJS(what string, act func(), expr string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		act()
		for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
			if eval[bool](b, expr) {
				return
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser %s: %s: still not so after %s (%s)", b.name, what, browserWait, expr)
		}
	}
}

// text returns the text of the first element matching a CSS selector, ""
// when none does.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%s)||{}).innerText||""`, jsString(sel)))
}

func (b *browser) exists(sel string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf(`!!document.querySelector(%s)`, jsString(sel)))
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// typeText types into the focused element (the terminal) as a user does:
// text arrives as one input event per call, "\r" as the Enter key. (The
// key events chromedp.SendKeys sends come to xterm.js twice.)
func (b *browser) typeText(s string) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		parts := strings.Split(s, "\r")
		for i, part := range parts {
			if part != "" {
				if _, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: part}); err != nil {
					return err
				}
			}
			if i == len(parts)-1 {
				break
			}
			for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
					Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// viewport sets the tab's size, as a window resize does.
func (b *browser) viewport(w, h int64) {
	b.t.Helper()
	b.do(chromedp.EmulateViewport(w, h))
}

// colorScheme makes the page see prefers-color-scheme: dark or light.
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
}

// shot saves a screenshot when RUNYARD_CONSOLE_SHOTS names a directory
// (a person looks at the pages; the tests do not compare pixels).
func (b *browser) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("RUNYARD_CONSOLE_SHOTS")
	if dir == "" {
		return
	}
	if strings.HasSuffix(b.t.Name(), "/"+string(testutil.Postgres)) {
		name += "-postgres"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatalf("shots dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
}

// saveArtifacts keeps what the browser showed when the test failed: a
// screenshot and the DOM, in a directory that outlives the test.
func (b *browser) saveArtifacts() {
	dir := os.Getenv("RUNYARD_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "runyard-console-artifacts")
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())+"-"+b.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("artifacts: %v", err)
		return
	}
	tctx, tcancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer tcancel()
	if png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "screen.png"), png, 0o644)
	}
	if html, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "dom.html"), []byte(html), 0o644)
	}
	if loc, err := chromedp.Run(tctx, chromedp.Location()); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "url.txt"), []byte(loc+"\n"), 0o644)
	}
	b.t.Logf("browser %s: the failing screen and DOM are in %s", b.name, dir)
}

// axeViolations runs axe-core (internal/console/ts/node_modules, installed
// by npm ci there; a test dependency, never served) on the current page and
// returns its serious and critical violations, one line each.
func (b *browser) axeViolations() []string {
	b.t.Helper()
	src, err := os.ReadFile("ts/node_modules/axe-core/axe.min.js")
	if err != nil {
		if os.Getenv("CI") != "" {
			b.t.Fatalf("axe-core is missing: run npm ci in internal/console/ts (%v)", err)
		}
		b.t.Skipf("no axe-core (npm ci in internal/console/ts): %v", err)
	}
	if !eval[bool](b, `typeof window.axe === "object"`) {
		eval[any](b, string(src)+";true")
	}
	return evalAwait[[]string](b, `axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => v.impact + " " + v.id + ": " + v.help + " (" + v.nodes.map(n => n.target.join(" ")).slice(0, 3).join(", ") + ")"))`)
}

// checkAxe fails the test on an accessibility violation of the current
// page that axe-core calls serious or critical.
func (b *browser) checkAxe(page string) {
	b.t.Helper()
	// The pages' markup does not depend on the database: one audit (the
	// SQLite run's) is enough, and axe-core is the slowest step of a test.
	if strings.HasSuffix(b.t.Name(), "/"+string(testutil.Postgres)) {
		return
	}
	for _, v := range b.axeViolations() {
		b.t.Errorf("accessibility, %s: %s", page, v)
	}
}

// signInKey signs in on the sign-in page with an API key, as a user does:
// the page the test opens sends it there first.
func (b *browser) signInKey(key string) {
	b.t.Helper()
	b.open("/")
	b.waitJS("the sign-in page opens", `location.pathname === "/signin" && !!document.getElementById("key")`)
	b.do(chromedp.SendKeys(chromedp.ID("key"), key), chromedp.Click(chromedp.CSS(`form[action="/auth/key"] button`)))
	b.waitJS("signed in, back on the overview", `location.pathname === "/" && !!document.querySelector("form[data-signout]")`)
}

// signInPassword signs in with an account's email and password.
func (b *browser) signInPassword(email, password string) {
	b.t.Helper()
	b.open("/runners")
	b.waitJS("the sign-in page opens", `location.pathname === "/signin" && !!document.getElementById("email")`)
	b.shot("signin")
	b.do(chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/auth/password"] button`)))
	b.waitJS("signed in, on the page asked for", `location.pathname === "/runners" && !!document.querySelector("form[data-signout]")`)
}

// eachDatabase runs a browser test once per database: SQLite always,
// PostgreSQL where RUNYARD_TEST_POSTGRES_URL is set (testutil skips it
// otherwise). The two run side by side: a browser test mostly waits (for
// pages, runners, the change feed), not computes, so together they take
// little longer than one.
func eachDatabase(t *testing.T, fn func(t *testing.T, backend testutil.Backend)) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			fn(t, backend)
		})
	}
}
