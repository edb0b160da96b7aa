package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// approveURLRe finds the approval page the CLI prints.
var approveURLRe = regexp.MustCompile(`http://\S+/auth/cli/approve\?\S+`)

// TestCLI_WebLogin: `runyard login --web` prints the approval page; a real
// browser (chromedp) signs in as a member and approves; the CLI receives a
// key of that user (capped by the member role) on its loopback port and
// stores it, and `auth status` shows the user. An answer with another
// state is refused, and the code is worth nothing without the CLI's
// verifier.
func TestCLI_WebLogin(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is missing (.ci/run installs it)")
		}
		t.Skip("chromium is not installed")
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testWebLogin(t, b.databaseURL(t))
		})
	}
}

func testWebLogin(t *testing.T, dbURL string) {
	s := startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})

	// Without user accounts no one can approve: the CLI says so at once and
	// stores nothing, and the approval page says the same.
	noUsersCfg := t.TempDir()
	refused := exec.Command(bin, "login", s.URL, "--web", "--name", "web")
	refused.Dir, refused.Env = emptyDir, processEnv("XDG_CONFIG_HOME="+noUsersCfg, "BROWSER=", "DISPLAY=", "WAYLAND_DISPLAY=")
	out, err := refused.CombinedOutput()
	if code := refused.ProcessState.ExitCode(); err == nil || code == 0 || !strings.Contains(string(out), "no user accounts") || !strings.Contains(string(out), "--web=false") {
		t.Fatalf("login --web without users: exit %d, %v, %s; want a refusal pointing at --web=false", code, err, out)
	}
	if entries, _ := os.ReadDir(noUsersCfg); len(entries) != 0 {
		t.Errorf("a refused login wrote %v", entries)
	}
	if res, err := http.Post(s.URL+"/auth/cli/token", "application/json", strings.NewReader(`{}`)); err != nil || res.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("token probe without users: %v %v, want 412", res, err)
	} else {
		res.Body.Close()
	}

	const pw = "web-login-password-0123456789"
	if r := s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "web@example.com", "--password-stdin", "--org", "default", "--role", "member"); r.Code != 0 {
		t.Fatalf("users create: %d %s", r.Code, r.Stderr)
	}

	// The browser the CLI opens is BROWSER's command line (as gh's): here a
	// script that records its arguments, and the test's chromium then
	// goes where it was sent.
	cfg := t.TempDir()
	opened := filepath.Join(t.TempDir(), "opened")
	recorder := filepath.Join(t.TempDir(), "browser.sh")
	if err := os.WriteFile(recorder, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.tmp\" && mv \"$0.tmp\" "+opened+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	browser := "sh '" + recorder + "' --new-window"
	cmd := exec.Command(bin, "login", s.URL, "--web", "--name", "web")
	cmd.Dir, cmd.Env = emptyDir, processEnv("XDG_CONFIG_HOME="+cfg, "BROWSER="+browser, "DISPLAY=", "WAYLAND_DISPLAY=")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	var link string
	eventually(t, "the CLI prints the approval page", func() bool {
		link = approveURLRe.FindString(stderr.String())
		return link != ""
	})
	var args []string
	eventually(t, "the CLI opens the browser", func() bool {
		b, err := os.ReadFile(opened)
		args = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return err == nil
	})
	if len(args) != 2 || args[0] != "--new-window" || args[1] != link {
		t.Fatalf("the browser was opened with %q, want --new-window and the approval page %s", args, link)
	}
	if !strings.Contains(stderr.String(), "(opened with "+"sh "+recorder+" --new-window)") {
		t.Errorf("the CLI does not say which browser it opened: %q", stderr.String())
	}
	link = args[1]
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Query().Get("port")

	// Another local process answering the CLI's port without the state
	// is refused, and the CLI goes on waiting.
	res, err := http.Get("http://127.0.0.1:" + port + "/callback?state=forged-state&code=forged")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with another state: %d, want 400", res.StatusCode)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancelWait := context.WithTimeout(bctx, 90*time.Second)
	defer cancelWait()
	fail := func(err error) {
		t.Helper()
		t.Fatalf("browser: %v\nCLI stderr: %s", err, stderr.String())
	}
	// Not signed in: the page sends the browser to sign in first.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "web@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.CSS(`form[action="/auth/password"] button`)),
		chromedp.WaitVisible(chromedp.ID("approve")),
	); err != nil {
		fail(err)
	}
	keyName, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="key-name"]').textContent`))
	if err != nil {
		fail(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		fail(err)
	}
	// The location and the page are read apart: wait until both are the
	// callback's (a read between them may see the navigation half done).
	callback := "http://127.0.0.1:" + port + "/callback?"
	var landed, body string
	deadline := time.Now().Add(60 * time.Second)
	for !(strings.HasPrefix(landed, callback) && strings.Contains(body, "Approved")) && time.Now().Before(deadline) {
		body, _ = chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		landed, _ = chromedp.Run(bctx, chromedp.Location())
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(keyName, "runyard CLI") {
		t.Errorf("the page names the key %q", keyName)
	}
	if !strings.HasPrefix(landed, callback) || !strings.Contains(body, "Approved") {
		t.Errorf("after approving the browser is at %q showing %q", landed, body)
	}
	select {
	case <-done:
	case <-time.After(exitTimeout):
		t.Fatalf("login did not end after the approval; stderr %q", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(stderr.String(), "Logged in to "+s.URL+" as user") {
		t.Fatalf("login --web: exit %d, stderr %q", code, stderr.String())
	}

	// The stored context holds the user's key.
	b, err := os.ReadFile(filepath.Join(cfg, "runyard", "config.yaml"))
	if err != nil || !apiKeyRe.Match(b) {
		t.Fatalf("config after login: %v %q", err, b)
	}
	r := runCLI(t, "", []string{"XDG_CONFIG_HOME=" + cfg}, "auth", "status", "-o", "json")
	var st struct {
		Server    string `json:"server"`
		Principal string `json:"principal"`
		SubjectID string `json:"subjectId"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("auth status: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	var users struct {
		Users []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"users"`
	}
	s.mustJSON(t, adminToken, &users, "users", "list")
	var userID string
	for _, u := range users.Users {
		if u.Email == "web@example.com" {
			userID = u.ID
		}
	}
	if st.Server != s.URL || st.Principal != "user" || st.SubjectID != userID || userID == "" {
		t.Errorf("auth status after login --web: %+v, want user %s", st, userID)
	}
	// A member's key cannot do an admin's work (a member lists only their
	// own keys, and no users).
	if r := runCLI(t, "", []string{"XDG_CONFIG_HOME=" + cfg}, "users", "list"); r.Code != 6 {
		t.Errorf("users list with a member's key: exit %d, want 6 (permission denied)", r.Code)
	}

	// The code in the browser's history is worth nothing without the
	// verifier, and nothing after its redemption.
	lu, _ := url.Parse(landed)
	resp, err := http.Post(s.URL+"/auth/cli/token", "application/json",
		strings.NewReader(`{"code":"`+lu.Query().Get("code")+`","verifier":"not-the-verifier"}`))
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Code, Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, "verifier") {
		t.Errorf("redeeming the code with another verifier: %d %+v", resp.StatusCode, e)
	}
}
