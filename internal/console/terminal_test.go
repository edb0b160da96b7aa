package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// lessAgent shows a 500-line file in less, a full-screen program on the
// alternate screen; once less quits it echoes each line it reads.
var lessAgent = func() string {
	b, _ := json.Marshal(map[string]any{"id": "less-agent", "name": "Less", "command": []string{"sh", "-c",
		`f=$(mktemp); seq -f 'row %g' 1 500 > "$f"; less "$f"; echo less-ended; while read line; do echo "got: $line"; done`}})
	return string(b)
}()

// screen is the text of xterm.js's active buffer's visible lines.
const screen = `(() => { const t = document.getElementById("terminal").terminal, b = t.buffer.active, out = [];
	for (let i = 0; i < t.rows; i++) out.push(b.getLine(b.viewportY + i)?.translateToString(true) ?? "");
	return out })()`

// key sends one key press with modifiers (Ctrl=2, Shift=8) as the
// keyboard does, with the editing commands the browser runs for it.
func (b *browser) key(k, code string, vk, modifiers int64, commands ...string) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			p := input.DispatchKeyEventParams{Type: typ, Key: k, Code: code, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk, Modifiers: modifiers}
			if typ == input.DispatchKeyEventTypeRawKeyDown {
				p.Commands = commands
			}
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	}))
}

// allowClipboard lets the page read and write the clipboard, as a user
// who allowed it would.
func (b *browser) allowClipboard() {
	b.t.Helper()
	c := chromedp.FromContext(b.ctx)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := cdp.Call(b.ctx, c.Browser, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    cdpbrowser.PermissionSettingGranted, Origin: b.base, BrowserContextID: c.BrowserContextID,
		}); err != nil {
			b.t.Fatalf("allow %s: %v", name, err)
		}
	}
}

// clipboardMu serializes the use of the shared browser's clipboard.
var clipboardMu sync.Mutex

// TestConsole_TerminalFullScreenAndClipboard runs less, a full-screen
// program, in a pod's terminal: the page shows its screen on xterm.js's
// alternate buffer, page by page as keys are pressed; text selected with
// xterm.js's selection API is copied with Ctrl+Shift+C; text pasted with
// Ctrl+Shift+V reaches the process.
func TestConsole_TerminalFullScreenAndClipboard(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		res, body := e.request(t, http.MethodPost, "/api/v1/orgs/default/agents", testutil.AdminToken, strings.NewReader(lessAgent),
			map[string]string{"Content-Type": "application/json"})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create agent type: %d %s", res.StatusCode, body)
		}
		_, exchange := e.createRunner(t, "tui-runner")
		testutil.StartRunner(t, runner.Config{Server: e.ts.URL, ExchangeToken: exchange, Name: "tui-host", MaxPods: 2, StopGrace: 5 * time.Second})
		res, body = e.request(t, http.MethodPost, "/api/v1/orgs/default/pods", testutil.AdminToken,
			strings.NewReader(`{"agent_type_id":"less-agent","initial_prompt":"-"}`), map[string]string{"Content-Type": "application/json"})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create pod: %d %s", res.StatusCode, body)
		}
		key := regexp.MustCompile(`"key":"([^"]+)"`).FindStringSubmatch(body)[1]

		b := newBrowser(t, e.ts.URL, "admin", nil)
		b.signInKey(testutil.AdminToken)
		b.allowClipboard()
		b.open("/pods/" + key)
		for deadline := time.Now().Add(browserWait); !b.exists("#terminal"); time.Sleep(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the pod's page has no terminal %s after its creation", browserWait)
			}
			b.open("/pods/" + key)
		}
		b.waitJS("the terminal attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		// less fills the screen but its last line, on the alternate buffer,
		// at the terminal's size (sent on attach).
		b.waitJS("less shows its first page", `document.getElementById("terminal").terminal.buffer.active.type === "alternate" && (() => {
			const s = `+screen+`; return s[0] === "row 1" && s[s.length - 2] === "row " + (s.length - 1) })()`)
		rows := eval[int](b, `document.getElementById("terminal").terminal.rows`)
		b.shot("terminal-less")
		// Space: the next page, whole.
		b.typeText(" ")
		b.waitJS("less shows the next page", fmt.Sprintf(`(() => { const s = %s; return s[0] === "row %d" && s[s.length - 2] === "row %d" })()`, screen, rows, 2*rows-2))

		// The clipboard is the whole browser's, and the databases' runs
		// share one browser: one run at a time copies and pastes (the
		// other's paste once landed between this copy and its check).
		clipboardMu.Lock()
		defer clipboardMu.Unlock()
		// Copy: the selection (xterm.js's API, as a mouse drag makes it).
		eval[bool](b, `document.getElementById("terminal").terminal.selectLines(1, 1) || true`)
		if got := eval[string](b, `document.getElementById("terminal").terminal.getSelection()`); strings.TrimSpace(got) != fmt.Sprintf("row %d", rows+1) {
			t.Fatalf("the selection is %q", got)
		}
		b.do(chromedp.Focus(chromedp.CSS("#terminal textarea")))
		b.key("C", "KeyC", 67, 2|8)
		b.waitJS("the selection is copied", `!!document.getElementById("terminal").dataset.copied`)
		if got := evalAwait[string](b, `navigator.clipboard.readText()`); strings.TrimSpace(got) != fmt.Sprintf("row %d", rows+1) {
			t.Errorf("the clipboard holds %q, want row %d", got, rows+1)
		}
		// Ctrl+Shift+C copied rather than typed: less is still on that page.
		if s := eval[[]string](b, screen); s[0] != fmt.Sprintf("row %d", rows) {
			t.Errorf("after the copy the screen starts with %q", s[0])
		}

		// Quit less; the shell reads lines: paste one.
		b.typeText("q")
		b.waitJS("less quits, back on the normal buffer", `document.getElementById("terminal").terminal.buffer.active.type === "normal" && `+screen+`.some(l => l === "less-ended")`)
		// The clipboard must hold the new line before the paste.
		b.do(chromedp.Focus(chromedp.CSS("#terminal textarea")))
		for deadline := time.Now().Add(browserWait); ; {
			evalAwait[any](b, `navigator.clipboard.writeText("pasted-line\n")`)
			if evalAwait[string](b, `navigator.clipboard.readText()`) == "pasted-line\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the clipboard does not keep the line to paste")
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.do(chromedp.Focus(chromedp.CSS("#terminal textarea")))
		b.key("V", "KeyV", 86, 2|8, "paste")
		b.waitJS("the pasted line reaches the process", screen+`.some(l => l === "got: pasted-line")`)
		if n := eval[int](b, screen+`.filter(l => l === "got: pasted-line").length`); n != 1 {
			t.Errorf("the pasted line arrived %d times", n)
		}
		b.shot("terminal-pasted")
	})
}

// cutProxy is a TCP proxy on loopback between the browser and the control
// plane that can drop the network: cut closes every connection through it
// and refuses new ones (accepted and closed at once, as a dead route
// looks to the page) until restore.
type cutProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   map[net.Conn]bool
	down    bool
	refused int
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.refused++
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut drops every connection and refuses new ones.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *cutProxy) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// TestConsole_TerminalReattachAfterDrop drops the network under a pod's
// terminal page (not a reload): every connection between the browser and
// the control plane is closed and new ones are refused for a while. The
// page says it is reconnecting, keeps trying, and once the network is
// back attaches to the same pod session by itself: the scrollback is
// there, the same process answers a new line, and the page was never
// reloaded.
func TestConsole_TerminalReattachAfterDrop(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		e.createAgent(t)
		_, exchange := e.createRunner(t, "drop-runner")
		testutil.StartRunner(t, runner.Config{Server: e.ts.URL, ExchangeToken: exchange, Name: "drop-host", MaxPods: 2, StopGrace: 5 * time.Second})
		res, body := e.request(t, http.MethodPost, "/api/v1/orgs/default/pods", testutil.AdminToken,
			strings.NewReader(`{"agent_type_id":"echo-agent","initial_prompt":"say hello"}`), map[string]string{"Content-Type": "application/json"})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create pod: %d %s", res.StatusCode, body)
		}
		key := regexp.MustCompile(`"key":"([^"]+)"`).FindStringSubmatch(body)[1]

		// The browser reaches the control plane only through the proxy.
		p := newCutProxy(t, strings.TrimPrefix(e.ts.URL, "http://"))
		b := newBrowser(t, p.url(), "admin", nil)
		b.signInKey(testutil.AdminToken)
		b.open("/pods/" + key)
		for deadline := time.Now().Add(browserWait); !b.exists("#terminal"); time.Sleep(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the pod's page has no terminal %s after its creation", browserWait)
			}
			b.open("/pods/" + key)
		}
		b.waitJS("the terminal attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		b.waitJS("the prompt shows", `document.querySelector(".xterm-rows").innerText.includes("prompt: say hello")`)
		b.do(chromedp.Focus(chromedp.CSS("#terminal textarea")))
		b.typeText("before-drop\r")
		b.waitJS("the agent echoes the line", `document.querySelector(".xterm-rows").innerText.includes("got: before-drop")`)
		// A mark in the page's window: a reload would lose it.
		eval[bool](b, `window.__beforeDrop = true`)

		p.cut()
		b.waitJS("the page sees the drop", `(document.getElementById("terminal-status")||{}).dataset?.state === "connecting"`)
		// It keeps trying while the network is down (with backoff).
		for deadline := time.Now().Add(browserWait); p.refusals() < 2; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the page tried to reconnect %d times in %s", p.refusals(), browserWait)
			}
		}
		b.shot("terminal-dropped")
		p.restore()

		b.waitJS("the terminal re-attaches", `(document.getElementById("terminal-status")||{}).dataset?.state === "live"`)
		if !eval[bool](b, `window.__beforeDrop === true`) {
			t.Fatal("the page was reloaded")
		}
		b.waitJS("the scrollback is back", `document.querySelector(".xterm-rows").innerText.includes("got: before-drop")`)
		b.do(chromedp.Focus(chromedp.CSS("#terminal textarea")))
		b.typeText("after-drop\r")
		b.waitJS("the same session answers", `document.querySelector(".xterm-rows").innerText.includes("got: after-drop")`)
		// The same process: it printed its prompt once, when it started.
		if n := eval[int](b, `document.querySelector(".xterm-rows").innerText.split("prompt: say hello").length - 1`); n != 1 {
			t.Errorf("the prompt shows %d times: a new session?", n)
		}
		// The page's live updates came back too.
		b.waitJS("the page is live again", `(document.getElementById("live-status")||{}).dataset?.state === "live"`)
	})
}
