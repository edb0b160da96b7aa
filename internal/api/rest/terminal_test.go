package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// echoAgent greets with its prompt, answers every line it reads with
// "got: LINE", prints its terminal size on "size", and exits 3 on "quit".
const echoAgent = `{"id":"echo-agent","name":"Echo","command":["sh","-c",` +
	`"echo \"prompt: $RUNYARD_INITIAL_PROMPT\"; while read line; do case \"$line\" in size) stty size;; quit) exit 3;; *) echo \"got: $line\";; esac; done"]}`

// term is a test client of the terminal WebSocket: it collects the output
// and the events the server sends.
type term struct {
	t      *testing.T
	c      *websocket.Conn
	out    chan string // output chunks
	events chan map[string]any
	done   chan struct{}
	status websocket.StatusCode // the close status once done
	reason string
}

func dialTerminal(t *testing.T, base, auth, key, query string) *term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/pods/" + key + "/terminal" + query
	c, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {auth}}})
	if err != nil {
		body := ""
		if res != nil {
			b, _ := io.ReadAll(res.Body)
			body = fmt.Sprintf(" (%d %s)", res.StatusCode, b)
		}
		t.Fatalf("dial %s: %v%s", u, err, body)
	}
	tm := &term{t: t, c: c, out: make(chan string, 1024), events: make(chan map[string]any, 16), done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				tm.status, tm.reason = websocket.CloseStatus(err), err.Error()
				return
			}
			if typ == websocket.MessageBinary {
				tm.out <- string(b)
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Errorf("event %q is not JSON: %v", b, err)
				continue
			}
			tm.events <- ev
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return tm
}

// expect reads output until it contains want; it returns all it read.
func (tm *term) expect(want string) string {
	tm.t.Helper()
	var got strings.Builder
	deadline := time.After(waitFor)
	for !strings.Contains(got.String(), want) {
		select {
		case s := <-tm.out:
			got.WriteString(s)
		case <-tm.done:
			// Drain what arrived before the close.
			for {
				select {
				case s := <-tm.out:
					got.WriteString(s)
					continue
				default:
				}
				break
			}
			if strings.Contains(got.String(), want) {
				return got.String()
			}
			tm.t.Fatalf("terminal closed (%s) before %q arrived; got %q", tm.reason, want, got.String())
		case <-deadline:
			tm.t.Fatalf("no %q from the terminal after %s; got %q", want, waitFor, got.String())
		}
	}
	return got.String()
}

func (tm *term) event(typ string) map[string]any {
	tm.t.Helper()
	select {
	case ev := <-tm.events:
		if ev["type"] != typ {
			tm.t.Fatalf("event %v, want type %s", ev, typ)
		}
		return ev
	case <-time.After(waitFor):
		tm.t.Fatalf("no %s event after %s", typ, waitFor)
	}
	return nil
}

func (tm *term) send(typ websocket.MessageType, s string) {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := tm.c.Write(ctx, typ, []byte(s)); err != nil {
		tm.t.Fatalf("write to the terminal: %v", err)
	}
}

func TestPods_Terminal(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, _ := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			a.post(t, "/agents", echoAgent).wantStatus(t, http.StatusCreated, nil)
			_, reader := adm.createKey(t, "pods:read")
			ro := newAPI(ts, "default", bearer(reader))

			// A pending pod has no terminal yet.
			pending := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "wait"})
			a.get(t, "/pods/"+pending.Key+"/output").wantError(t, http.StatusPreconditionFailed, "failed_precondition", pending.Key, "pending")

			n := name("term")
			_, x := adm.createRunner(t, n)
			state := t.TempDir()
			stopRunner := testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: x, StateDir: state, Name: "term-host", MaxPods: 4, StopGrace: 5 * time.Second})
			p := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "hello agent"})
			eventually(t, "the pod runs", func() string {
				if got := a.pod(t, p.Key); got.Status != "running" {
					return got.Status
				}
				return ""
			})

			// Attach: status, then the scrollback with the prompt; input is
			// answered; a resize reaches the terminal.
			tm := dialTerminal(t, a.base, a.auth, p.Key, "")
			if ev := tm.event("status"); ev["status"] != "running" {
				t.Fatalf("status event %v, want running", ev)
			}
			tm.expect("prompt: hello agent")
			tm.send(websocket.MessageBinary, "first\n")
			tm.expect("got: first")
			tm.send(websocket.MessageText, `{"type":"resize","cols":101,"rows":33}`)
			tm.send(websocket.MessageText, `{"type":"input","data":"size\n"}`)
			tm.expect("33 101")
			// Bad messages get an error event naming what is wrong and
			// change nothing.
			for _, tc := range []struct{ msg, mention string }{
				{`{"type":"resize","cols":0,"rows":10}`, "cols"},
				{`{"type":"dance"}`, "type"},
				{`not json`, "message"},
			} {
				tm.send(websocket.MessageText, tc.msg)
				if ev := tm.event("error"); !strings.Contains(fmt.Sprint(ev["error"]), tc.mention) {
					t.Errorf("error event for %s = %v, want it to name %s", tc.msg, ev, tc.mention)
				}
			}
			// Detach: the pod runs on.
			tm.c.Close(websocket.StatusNormalClosure, "detach")
			if got := a.pod(t, p.Key); got.Status != "running" {
				t.Fatalf("after detaching the pod is %s", got.Status)
			}

			// Re-attach: the scrollback holds the earlier session and the
			// agent still answers.
			tm2 := dialTerminal(t, a.base, a.auth, p.Key, "")
			tm2.event("status")
			tm2.expect("got: first")
			tm2.send(websocket.MessageBinary, "second\n")
			tm2.expect("got: second")

			// A read-only watcher sees the output and cannot type; a
			// pods:read key may watch but not attach.
			dialErr(t, ro.base, ro.auth, p.Key, "", http.StatusForbidden)
			watch := dialTerminal(t, ro.base, ro.auth, p.Key, "?readonly=1")
			watch.event("status")
			watch.expect("got: second")
			watch.send(websocket.MessageBinary, "sneaky\n")
			if ev := watch.event("error"); !strings.Contains(fmt.Sprint(ev["error"]), "read-only") {
				t.Errorf("error event %v, want read-only", ev)
			}
			// Nor can it resize the pod's terminal: the size stays the one
			// the attached client set.
			watch.send(websocket.MessageText, `{"type":"resize","cols":50,"rows":20}`)
			if ev := watch.event("error"); !strings.Contains(fmt.Sprint(ev["error"]), "resize: this terminal is read-only") {
				t.Errorf("error event for a read-only resize %v, want read-only", ev)
			}
			tm2.send(websocket.MessageBinary, "size\n")
			tm2.expect("33 101") // "20 50" if the watcher had resized it

			// GET /output is the scrollback as text; follow=1 streams on.
			res := ro.get(t, "/pods/"+p.Key+"/output")
			if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "got: second") || strings.Contains(string(res.Body), "got: sneaky") {
				t.Fatalf("output: %d %q", res.Status, res.Body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("output Content-Type = %q", ct)
			}
			follow := openFollow(t, ro.base, ro.auth, p.Key)

			// The agent exits 3: every attachment gets the exit event and a
			// normal close; the follower's response ends.
			tm2.send(websocket.MessageBinary, "quit\n")
			for _, x := range []*term{tm2, watch} {
				ev := x.event("exit")
				if ev["status"] != "failed" || ev["exit_code"] != float64(3) {
					t.Errorf("exit event %v, want failed with exit code 3", ev)
				}
				<-x.done
				if x.status != websocket.StatusNormalClosure {
					t.Errorf("close status %v (%s), want normal", x.status, x.reason)
				}
			}
			if got := follow.rest(t); !strings.Contains(got, "quit") {
				t.Errorf("followed output %q, want it to go on to the quit", got)
			}

			// The ended pod's output stays readable, also after its runner
			// restarted; attaching to it sends status and scrollback, then
			// exit.
			eventually(t, "the pod is failed", func() string {
				if got := a.pod(t, p.Key); got.Status != "failed" {
					return got.Status
				}
				return ""
			})
			stopRunner()
			dialErr(t, a.base, a.auth, p.Key, "", http.StatusServiceUnavailable)
			a.get(t, "/pods/"+p.Key+"/output").wantError(t, http.StatusServiceUnavailable, "unavailable", "not connected")
			testutil.StartRunner(t, runner.Config{Server: ts.URL, StateDir: state, Name: "term-host", MaxPods: 4})
			eventually(t, "the restarted runner serves the ended pod's output", func() string {
				res := a.get(t, "/pods/"+p.Key+"/output")
				if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "got: second") {
					return fmt.Sprintf("%d %q", res.Status, res.Body)
				}
				return ""
			})
			ended := dialTerminal(t, a.base, a.auth, p.Key, "")
			if ev := ended.event("status"); ev["status"] != "failed" {
				t.Errorf("status event of the ended pod %v, want failed", ev)
			}
			ended.expect("got: second")
			if ev := ended.event("exit"); ev["exit_code"] != float64(3) {
				t.Errorf("exit event of the ended pod %v, want exit code 3", ev)
			}
		})
	}
}

func TestPods_TerminalErrors(t *testing.T) {
	ts, _ := startServerWithStore(t, testutil.SQLite, 0)
	a := newAPI(ts, "default", bearer(testutil.AdminToken))
	a.get(t, "/pods/pod-000000000000/output").wantError(t, http.StatusNotFound, "not_found", "pod-000000000000")
	a.get(t, "/pods/pod-000000000000/output?follow=maybe").wantError(t, http.StatusBadRequest, "invalid_argument", "follow")
	// Without an Upgrade header the terminal is a clear 400, not a hang.
	a.get(t, "/pods/pod-000000000000/terminal").wantError(t, http.StatusBadRequest, "invalid_argument", "Upgrade")
	dialErr(t, a.base, a.auth, "pod-000000000000", "", http.StatusNotFound)
	dialErr(t, a.base, "", "pod-000000000000", "", http.StatusUnauthorized)
	dialErr(t, a.base, a.auth, "pod-000000000000", "?readonly=perhaps", http.StatusBadRequest)
}

// dialErr wants the WebSocket handshake refused with status.
func dialErr(t *testing.T, base, auth, key, query string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/pods/" + key + "/terminal" + query
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	c, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial %s succeeded, want %d", u, status)
	}
	if res == nil || res.StatusCode != status {
		t.Fatalf("dial %s: %v, want status %d", u, err, status)
	}
}

// follower is a GET /output?follow=1 in progress.
type follower struct {
	body io.ReadCloser
	read chan string
}

func openFollow(t *testing.T, base, auth, key string) *follower {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/pods/"+key+"/output?follow=1", nil)
	mustOK(t, err, "new request")
	req.Header.Set("Authorization", auth)
	res, err := http.DefaultClient.Do(req)
	mustOK(t, err, "follow output")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("follow output: status %d", res.StatusCode)
	}
	t.Cleanup(func() { res.Body.Close() })
	f := &follower{body: res.Body, read: make(chan string, 1)}
	go func() {
		var b strings.Builder
		_, _ = io.Copy(&b, bufio.NewReader(res.Body))
		f.read <- b.String()
	}()
	return f
}

// rest waits for the followed response to end and returns all of it.
func (f *follower) rest(t *testing.T) string {
	t.Helper()
	select {
	case s := <-f.read:
		return s
	case <-time.After(waitFor):
		t.Fatalf("the followed output did not end within %s", waitFor)
	}
	return ""
}

// TestPods_BuiltinAiderGetsItsPromptTyped runs the built-in aider agent type
// with a stand-in aider on the runner's PATH: aider takes its prompt typed
// into its terminal (wrapped in its multi-line braces), not on its command
// line.
func TestPods_BuiltinAiderGetsItsPromptTyped(t *testing.T) {
	bin := t.TempDir()
	fake := "#!/bin/sh\necho \"aider args: $#\"\nwhile read line; do echo \"aider got: $line\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "aider"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ts, _ := startServerWithStore(t, testutil.SQLite, 0)
	adm := newAdmin(ts, testutil.AdminToken)
	a := newAPI(ts, "default", bearer(testutil.AdminToken))
	_, x := adm.createRunner(t, name("aider"))
	testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: x, Name: "aider-host", MaxPods: 1})

	p := a.createPod(t, map[string]any{"agent_type_id": "aider", "initial_prompt": "fix the login bug"})
	eventually(t, "aider received its prompt", func() string {
		res := a.get(t, "/pods/"+p.Key+"/output")
		if res.Status != http.StatusOK {
			return fmt.Sprintf("%d %s", res.Status, res.Body)
		}
		out := string(res.Body)
		for _, want := range []string{"aider args: 0", "aider got: {", "aider got: fix the login bug", "aider got: }"} {
			if !strings.Contains(out, want) {
				return fmt.Sprintf("output %q lacks %q", out, want)
			}
		}
		return ""
	})
}

// TestPods_StreamsOutliveReadTimeout checks that the control plane's read
// timeout, which cuts off clients that trickle a request, ends none of the
// long-lived exchanges: the runner's stream, a terminal WebSocket and a
// followed output all work on well past it.
func TestPods_StreamsOutliveReadTimeout(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	ts := testutil.StartServerWith(t, testutil.SQLite, testutil.Options{ReadTimeout: readTimeout})
	adm := newAdmin(ts, testutil.AdminToken)
	a := newAPI(ts, "default", bearer(testutil.AdminToken))
	a.post(t, "/agents", echoAgent).wantStatus(t, http.StatusCreated, nil)
	_, x := adm.createRunner(t, name("patient"))
	var log syncLog
	testutil.StartRunner(t, runner.Config{Server: ts.URL, ExchangeToken: x, Name: "patient-host", MaxPods: 1,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	p := a.createPod(t, map[string]any{"agent_type_id": "echo-agent", "initial_prompt": "patience"})
	eventually(t, "the pod runs", func() string {
		if got := a.pod(t, p.Key); got.Status != "running" {
			return got.Status
		}
		return ""
	})
	tm := dialTerminal(t, a.base, a.auth, p.Key, "")
	tm.event("status")
	tm.expect("prompt: patience")
	follow := openFollow(t, a.base, a.auth, p.Key)

	time.Sleep(5 * readTimeout) // each of them idle, well past the timeout
	tm.send(websocket.MessageBinary, "still here\n")
	tm.expect("got: still here")
	tm.send(websocket.MessageBinary, "quit\n")
	tm.event("exit")
	if got := follow.rest(t); !strings.Contains(got, "got: still here") {
		t.Errorf("followed output %q, want it to go on past the read timeout", got)
	}
	if n := strings.Count(log.String(), "connected to the control plane"); n != 1 {
		t.Errorf("the runner connected %d times, want once: the read timeout must not end its stream", n)
	}
}

// syncLog is a log sink safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
