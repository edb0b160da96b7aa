package console_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/testutil"
)

// gitRepo makes a repository with files committed and returns its file://
// URL.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + dir
}

// countTask writes five lines, then waits for the file %[1]s before the
// sixth: the test makes it once the page shows the first five, which is
// thus the log read while it is written.
const countTask = `tasks:
  count:
    name: Count
    command: for i in 1 2 3 4 5; do echo "count line $i"; done; while [ ! -f %[1]s ]; do sleep 0.1; done; echo "count line 6"
services:
  web:
    name: Web
    commands:
      start: echo "web up"; exec sleep 600
`

// TestConsole_Environment makes an environment from a local git
// repository in the console's form: its task and service are listed, the
// task is started from the page, its execution appears without a reload,
// and its log shows its lines as they are written; a service starts from
// the page.
func TestConsole_Environment(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		_, exchange := e.createRunner(t, "env-runner")
		testutil.StartRunner(t, runner.Config{Server: e.ts.URL, ExchangeToken: exchange, Name: "env-host", StopGrace: 5 * time.Second})
		release := filepath.Join(t.TempDir(), "release")
		repo := gitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(countTask, release)})

		b := newBrowser(t, e.ts.URL, "admin", nil)
		b.signInKey(testutil.AdminToken)
		// The runner's class is offered once the runner is connected.
		b.open("/environments/new")
		for deadline := time.Now().Add(browserWait); !b.exists("#env-class option"); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the new environment form offers no class %s after the runner started", browserWait)
			}
			b.open("/environments/new")
		}
		b.do(chromedp.SendKeys(chromedp.ID("env-url"), repo), chromedp.SendKeys(chromedp.ID("env-name"), "from-the-form"))
		b.shot("environment-new")
		b.checkAxe("/environments/new")
		b.do(chromedp.Click(chromedp.CSS(`form[action="/environments/new"] button[type=submit]`)))
		b.waitJS("the environment's page opens", `/^\/environments\/[0-9a-f-]{36}$/.test(location.pathname)`)
		id := strings.TrimPrefix(eval[string](b, `location.pathname`), "/environments/")
		b.open("/environments")
		b.waitJS("the environment runs", `!!document.querySelector('a[href="/environments/`+id+`"]') && document.getElementById("envs-table").innerText.includes("running")`)
		b.do(chromedp.Click(chromedp.CSS(`a[href="/environments/` + id + `"]`)))
		b.waitJS("the file's task is listed", `!!document.querySelector('tr[data-task="count"] button')`)
		b.waitJS("the page is live", `(document.getElementById("live-status")||{}).dataset?.state === "live"`)
		eval[bool](b, `window.__sameDocument = true`)

		b.do(chromedp.Click(chromedp.CSS(`tr[data-service="web"] button`)))
		b.waitJS("the service runs", `(document.querySelector('tr[data-service="web"] [data-phase]')||{}).innerText === "running"`)
		b.do(chromedp.Click(chromedp.CSS(`tr[data-task="count"] button`)))
		b.waitJS("the execution shows with its log", `!!document.querySelector('tr[data-execution] a[href*="/logs/execution/"]')`)
		b.shot("environment")
		b.checkAxe("/environments/{id}")

		b.do(chromedp.Click(chromedp.CSS(`tr[data-execution] a[href*="/logs/execution/"]`)))
		b.waitJS("the log page opens", `!!document.getElementById("log")`)
		b.waitJS("the lines so far show while the task runs", `document.getElementById("log").innerText.includes("count line 5")`)
		if b.text("#log") == "" || strings.Contains(b.text("#log"), "count line 6") {
			t.Fatalf("log before the release: %q", b.text("#log"))
		}
		if err := os.WriteFile(release, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		b.waitJS("the next line follows as it is written", `document.getElementById("log").innerText.includes("count line 6")`)
		b.waitJS("the log says the run ended", `document.getElementById("log-status").innerText.includes("ended")`)
		b.do(chromedp.SendKeys(chromedp.ID("log-search"), "line 4"))
		b.waitJS("search shows only matching lines", `document.getElementById("log").innerText.trim() === "count line 4"`)
		b.shot("log")
		b.checkAxe("log page")
	})
}
