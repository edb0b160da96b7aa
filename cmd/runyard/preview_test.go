package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// previewServerJS is an HTTP server with a WebSocket echo, in Node (no
// packages): it runs inside the environment, started through the runner
// like anything a developer starts there. It answers each request with
// what it received, so the test sees what the control plane passes on.
const previewServerJS = `
const http = require('http'), crypto = require('crypto');
const handler = (req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end('hello ' + req.url + ' host=' + req.headers.host + ' cookie=' + (req.headers.cookie || '') + ' auth=' + (req.headers.authorization || ''));
};
const upgrade = (req, sock) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  let buf = Buffer.alloc(0);
  sock.on('data', d => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f; let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const masked = buf[1] & 0x80; const mask = masked ? buf.slice(off, off + 4) : null; if (masked) off += 4;
      if (buf.length < off + len) return;
      const p = Buffer.from(buf.slice(off, off + len));
      if (mask) for (let i = 0; i < len; i++) p[i] ^= mask[i % 4];
      buf = buf.slice(off + len);
      if (op === 8) { sock.end(); return; }
      let h;
      if (len < 126) h = Buffer.from([0x80 | op, len]);
      else if (len < 65536) { h = Buffer.alloc(4); h[0] = 0x80 | op; h[1] = 126; h.writeUInt16BE(len, 2); }
      else { h = Buffer.alloc(10); h[0] = 0x80 | op; h[1] = 127; h.writeBigUInt64BE(BigInt(len), 2); }
      sock.write(Buffer.concat([h, p]));
    }
  });
};
let n = 0;
for (const port of process.argv.slice(2)) {
  const s = http.createServer(handler);
  s.on('upgrade', upgrade);
  s.listen(+port, '127.0.0.1', () => { if (++n === process.argv.length - 2) console.log('listening'); });
}
`

// previewClient sends requests for preview hosts to one server, whatever
// their host: *.localhost needs no DNS in a browser, but Go's resolver is
// not one.
func previewClient(addr string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type previewAnswer struct {
	status   int
	body     string
	location string
	header   http.Header
	cookies  []*http.Cookie
}

func previewGet(t *testing.T, c *http.Client, rawURL string, header map[string]string) previewAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return previewAnswer{status: res.StatusCode, body: string(b), location: res.Header.Get("Location"), header: res.Header, cookies: res.Cookies()}
}

func cookieOf(a previewAnswer, name string) string {
	for _, c := range a.cookies {
		if c.Name == name && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// rpc calls a Connect method with a key and decodes the answer into out.
func rpc(t *testing.T, s *serverProc, token, method, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/"+method, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", method, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
}

// startInEnvironment writes the preview server into the environment's
// checkout and runs it there with `environments exec`, until the test
// ends.
func startInEnvironment(t *testing.T, a *accessEnv, ports ...int) {
	t.Helper()
	r := runCLIInput(t, "", nil, previewServerJS, "--server", a.s.URL, "--token", adminToken, "environments", "exec", "-i", a.envID, "--", "sh", "-c", "cat > preview-server.js")
	if r.Code != 0 {
		t.Fatalf("write the server into the environment: %+v", r)
	}
	args := []string{"--server", a.s.URL, "--token", adminToken, "environments", "exec", a.envID, "--", "node", "preview-server.js"}
	for _, p := range ports {
		args = append(args, fmt.Sprint(p))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = processEnv()
	cmd.Dir = emptyDir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "listening\n" {
		t.Fatalf("the server in the environment printed %q", line)
	}
}

// freePortNumbers returns n distinct free ports: each listener stays open
// until all are chosen, so the kernel cannot hand the same port twice.
func freePortNumbers(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func TestPreviewURLs(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testPreview(t, b.databaseURL(t))
		})
	}
}

func testPreview(t *testing.T, dbURL string) {
	// No port in the domain: preview URLs take the server's.
	a := startAccessEnv(t, dbURL, "--preview-domain", "localhost")
	ports := freePortNumbers(t, 4)
	public, owner, silent, unlisted := ports[0], ports[1], ports[2], ports[3]
	rpc(t, a.s, adminToken, "gitpod.v1.EnvironmentService/UpdateEnvironment", fmt.Sprintf(`{"environmentId":%q,"spec":{"ports":[
		{"port":%d,"name":"web","admission":"ADMISSION_LEVEL_EVERYONE"},
		{"port":%d,"name":"api"},
		{"port":%d,"name":"nothing","admission":"ADMISSION_LEVEL_EVERYONE"}]}}`, a.envID, public, owner, silent), nil)
	startInEnvironment(t, a, public, owner, unlisted)

	_, serverPort, _ := net.SplitHostPort(strings.TrimPrefix(a.s.URL, "http://"))
	hostOf := func(port int) string { return fmt.Sprintf("%d--%s.localhost:%s", port, a.envID, serverPort) }
	urlOf := func(port int, path string) string { return "http://" + hostOf(port) + path }

	t.Run("StatusURLs", func(t *testing.T) {
		var got struct {
			Environment struct {
				Status struct {
					EnvironmentUrls struct {
						Ports []struct {
							Port int    `json:"port"`
							URL  string `json:"url"`
						} `json:"ports"`
					} `json:"environmentUrls"`
				} `json:"status"`
			} `json:"environment"`
		}
		rpc(t, a.s, adminToken, "gitpod.v1.EnvironmentService/GetEnvironment", fmt.Sprintf(`{"environmentId":%q}`, a.envID), &got)
		ports := got.Environment.Status.EnvironmentUrls.Ports
		if len(ports) != 3 || ports[0].Port != public || ports[0].URL != urlOf(public, "") || ports[1].URL != urlOf(owner, "") {
			t.Fatalf("status.environmentUrls.ports %+v, want the preview URLs %s and %s", ports, urlOf(public, ""), urlOf(owner, ""))
		}
	})

	t.Run("ConsoleLinks", func(t *testing.T) {
		c := previewClient(strings.TrimPrefix(a.s.URL, "http://"))
		r := previewGet(t, c, a.s.URL+"/environments/"+a.envID, map[string]string{"Authorization": "Bearer " + adminToken})
		for _, want := range []string{
			fmt.Sprintf(`<a href="%s" target="_blank" rel="noopener noreferrer" data-preview="%d">`, urlOf(public, ""), public),
			fmt.Sprintf(`data-preview="%d"`, owner), "(everyone)", "(owner)",
		} {
			if r.status != http.StatusOK || !strings.Contains(r.body, want) {
				t.Fatalf("the console's environment page (%d) lacks %q", r.status, want)
			}
		}
	})

	servers := []*serverProc{a.s}
	if a.other != nil {
		// The runner's stream is on the first replica: the second relays
		// preview requests there.
		servers = append(servers, a.other)
	}
	for i, s := range servers {
		c := previewClient(strings.TrimPrefix(s.URL, "http://"))
		// Each replica's preview URLs take its own public URL's port (one
		// public URL in production, one port per replica here).
		_, serverPort, _ = net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
		t.Run(fmt.Sprintf("Replica%d", i), func(t *testing.T) {
			t.Run("Everyone", func(t *testing.T) {
				r := previewGet(t, c, urlOf(public, "/a/b?x=1"), map[string]string{"Cookie": "app=1; runyard_preview=stolen; runyard_session=x"})
				want := "hello /a/b?x=1 host=" + hostOf(public) + " cookie=app=1; runyard_session=x auth="
				if r.status != http.StatusOK || r.body != want {
					t.Fatalf("public port: %d %q, want 200 %q", r.status, r.body, want)
				}
			})
			t.Run("HTTP2", func(t *testing.T) {
				// The control plane speaks h2c on plain HTTP: a preview is
				// served over HTTP/2 too (the port itself gets HTTP/1.1).
				tr := &http.Transport{Protocols: new(http.Protocols), DialContext: c.Transport.(*http.Transport).DialContext}
				tr.Protocols.SetUnencryptedHTTP2(true)
				res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(urlOf(public, "/h2"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "hello /h2 host="+hostOf(public)) {
					t.Fatalf("h2c preview: %s %d %q", res.Proto, res.StatusCode, b)
				}
			})
			t.Run("WebSocket", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ws, _, err := websocket.Dial(ctx, "ws://"+hostOf(public)+"/ws", &websocket.DialOptions{HTTPClient: c})
				if err != nil {
					t.Fatalf("WebSocket to the public port: %v", err)
				}
				defer ws.CloseNow()
				ws.SetReadLimit(1 << 20)
				for i := range 3 {
					msg := fmt.Sprintf("echo %d %s", i, strings.Repeat("x", i*70000))
					if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					_, b, err := ws.Read(ctx)
					if err != nil || string(b) != msg {
						t.Fatalf("WebSocket echo %d: %d bytes, %v", i, len(b), err)
					}
				}
				ws.Close(websocket.StatusNormalClosure, "")
			})
			t.Run("OwnerBrowserSignIn", func(t *testing.T) {
				// 1. No sign-in: to the console, with a state cookie.
				r := previewGet(t, c, urlOf(owner, "/private?q=1"), nil)
				state := cookieOf(r, "runyard_preview_state")
				wantConsole := a.s.URL + "/environments/" + a.envID + fmt.Sprintf("/ports/%d/preview?", owner)
				if s != a.s {
					wantConsole = s.URL + "/environments/" + a.envID + fmt.Sprintf("/ports/%d/preview?", owner)
				}
				if r.status != http.StatusFound || !strings.HasPrefix(r.location, wantConsole) || state == "" {
					t.Fatalf("owner port without sign-in: %d Location %q state %q, want a redirect to %s", r.status, r.location, state, wantConsole)
				}
				// 2. The console without a sign-in sends the browser to
				// sign in, then back here.
				r2 := previewGet(t, c, r.location, nil)
				if r2.status != http.StatusSeeOther || !strings.HasPrefix(r2.location, "/signin?next=") {
					t.Fatalf("console without a session: %d %q", r2.status, r2.location)
				}
				// A member who is not the creator is refused.
				r2 = previewGet(t, c, r.location, map[string]string{"Authorization": "Bearer " + a.memberKey(t)})
				if r2.status != http.StatusForbidden {
					t.Fatalf("console sign-in of a member who did not create the environment: %d %q", r2.status, r2.location)
				}
				// The admin is admitted: back to the preview host with a code.
				r2 = previewGet(t, c, r.location, map[string]string{"Authorization": "Bearer " + adminToken})
				if r2.status != http.StatusSeeOther || !strings.HasPrefix(r2.location, urlOf(owner, "/.runyard/preview/callback?")) {
					t.Fatalf("console sign-in of the admin: %d %q", r2.status, r2.location)
				}
				// 3. Another browser (no state cookie) cannot use the code.
				if r3 := previewGet(t, c, r2.location, nil); r3.status != http.StatusUnauthorized || cookieOf(r3, "runyard_preview") != "" {
					t.Fatalf("callback without the state cookie: %d", r3.status)
				}
				// 4. The browser that started it gets its grant, host-only
				// and HttpOnly, and goes back where it was.
				r3 := previewGet(t, c, r2.location, map[string]string{"Cookie": "runyard_preview_state=" + state})
				grant := cookieOf(r3, "runyard_preview")
				if r3.status != http.StatusSeeOther || r3.location != "/private?q=1" || grant == "" {
					t.Fatalf("callback: %d %q grant %q", r3.status, r3.location, grant)
				}
				for _, ck := range r3.cookies {
					if ck.Name == "runyard_preview" && (ck.Domain != "" || !ck.HttpOnly) {
						t.Errorf("grant cookie %+v: want host-only and HttpOnly", ck)
					}
				}
				r4 := previewGet(t, c, urlOf(owner, "/private?q=1"), map[string]string{"Cookie": "runyard_preview=" + grant})
				if want := "hello /private?q=1 host=" + hostOf(owner) + " cookie= auth="; r4.status != http.StatusOK || r4.body != want {
					t.Fatalf("owner port signed in: %d %q, want %q", r4.status, r4.body, want)
				}
				// The grant is this host's only.
				if r5 := previewGet(t, c, urlOf(public, "/"), map[string]string{"Cookie": "runyard_preview=" + grant}); r5.status != http.StatusOK {
					t.Fatalf("public port with another host's grant: %d", r5.status)
				}
				if r5 := previewGet(t, c, urlOf(silent, "/"), map[string]string{"Cookie": "runyard_preview=" + grant}); r5.status != http.StatusBadGateway {
					t.Fatalf("silent port: %d", r5.status)
				}
			})
			t.Run("SignOutEndsGrant", func(t *testing.T) {
				// A console session (signed in with the admin key).
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/auth/key", strings.NewReader(`{"key":"`+adminToken+`"}`))
				req.Header.Set("Content-Type", "application/json")
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var sess struct {
					CSRFToken string `json:"csrfToken"`
				}
				_ = json.NewDecoder(res.Body).Decode(&sess)
				res.Body.Close()
				console := ""
				for _, ck := range res.Cookies() {
					if ck.Name == "runyard_session" {
						console = ck.Value
					}
				}
				if res.StatusCode != http.StatusOK || console == "" {
					t.Fatalf("sign in: %d", res.StatusCode)
				}
				r := previewGet(t, c, urlOf(owner, "/s"), nil)
				state := cookieOf(r, "runyard_preview_state")
				r = previewGet(t, c, r.location, map[string]string{"Cookie": "runyard_session=" + console})
				r = previewGet(t, c, r.location, map[string]string{"Cookie": "runyard_preview_state=" + state})
				grant := cookieOf(r, "runyard_preview")
				if r.status != http.StatusSeeOther || grant == "" {
					t.Fatalf("sign in to the preview with the console session: %d", r.status)
				}
				if r := previewGet(t, c, urlOf(owner, "/s"), map[string]string{"Cookie": "runyard_preview=" + grant}); r.status != http.StatusOK {
					t.Fatalf("owner port with the session's grant: %d %q", r.status, r.body)
				}
				req, _ = http.NewRequest(http.MethodPost, s.URL+"/auth/signout", nil)
				req.Header.Set("Cookie", "runyard_session="+console)
				req.Header.Set("X-CSRF-Token", sess.CSRFToken)
				if res, err := c.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
					t.Fatalf("sign out: %v %v", res, err)
				}
				// The grant ends with its session (checked every few seconds).
				eventually(t, "the signed-out session's grant is refused", func() bool {
					r := previewGet(t, c, urlOf(owner, "/s"), map[string]string{"Cookie": "runyard_preview=" + grant})
					return r.status == http.StatusFound
				})
			})
			t.Run("OwnerAPIKey", func(t *testing.T) {
				r := previewGet(t, c, urlOf(owner, "/k"), map[string]string{"Authorization": "Bearer " + adminToken})
				if want := "hello /k host=" + hostOf(owner) + " cookie= auth="; r.status != http.StatusOK || r.body != want {
					t.Fatalf("owner port with the admin key: %d %q, want %q (the key not passed on)", r.status, r.body, want)
				}
				r = previewGet(t, c, urlOf(owner, "/k"), map[string]string{"Authorization": "Bearer " + a.memberKey(t)})
				if r.status != http.StatusForbidden || !strings.Contains(r.body, "creator") {
					t.Fatalf("owner port with a member's key: %d %q", r.status, r.body)
				}
				// A program is not redirected: a POST without a sign-in is 401.
				req, _ := http.NewRequest(http.MethodPost, urlOf(owner, "/k"), strings.NewReader("x"))
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("POST to the owner port without a sign-in: %d", res.StatusCode)
				}
				// A WebSocket with the key.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ws, _, err := websocket.Dial(ctx, "ws://"+hostOf(owner)+"/ws", &websocket.DialOptions{HTTPClient: c,
					HTTPHeader: http.Header{"Authorization": {"Bearer " + adminToken}}})
				if err != nil {
					t.Fatalf("WebSocket to the owner port: %v", err)
				}
				defer ws.CloseNow()
				if err := ws.Write(ctx, websocket.MessageBinary, []byte("owner")); err != nil {
					t.Fatal(err)
				}
				if _, b, err := ws.Read(ctx); err != nil || string(b) != "owner" {
					t.Fatalf("owner WebSocket echo: %q %v", b, err)
				}
			})
			t.Run("NothingListens", func(t *testing.T) {
				r := previewGet(t, c, urlOf(silent, "/"), nil)
				if r.status != http.StatusBadGateway || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
					!strings.Contains(r.body, fmt.Sprintf("Nothing answers on port %d", silent)) {
					t.Fatalf("a listed port nothing listens on: %d %q", r.status, r.body)
				}
			})
			t.Run("NotFound", func(t *testing.T) {
				for name, u := range map[string]string{
					"UnlistedPort":       urlOf(unlisted, "/"),
					"UnknownEnvironment": fmt.Sprintf("http://%d--00000000-0000-4000-8000-000000000000.localhost:%s/", public, serverPort),
				} {
					if r := previewGet(t, c, u, map[string]string{"Authorization": "Bearer " + adminToken}); r.status != http.StatusNotFound || !strings.Contains(r.body, "<html") {
						t.Errorf("%s: %d %q, want a 404 page", name, r.status, r.body)
					}
				}
				// Not a preview host: the control plane's own surfaces.
				if r := previewGet(t, c, fmt.Sprintf("http://x.localhost:%s/healthz", serverPort), nil); r.status != http.StatusOK {
					t.Errorf("/healthz at a host that names no port: %d", r.status)
				}
			})
		})
	}
}

// memberKey is an API key of a service account with environments:write
// (not the admin who created the environment), made once per test.
func (a *accessEnv) memberKey(t *testing.T) string {
	t.Helper()
	if a.member != "" {
		return a.member
	}
	var out struct {
		Secret string `json:"secret"`
	}
	rpc(t, a.s, adminToken, "runyard.v1.TokenService/CreateToken", `{"name":"preview-member","scopes":["environments:read","environments:write"]}`, &out)
	a.member = out.Secret
	return a.member
}
