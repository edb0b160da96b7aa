package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxScreen is a program running in a detached tmux session of its own
// tmux server (-L), driven as a person at a terminal would: keys in,
// screen out.
type tmuxScreen struct {
	t      *testing.T
	socket string
}

// startTmux runs script (a shell script) in a new tmux session of cols x
// rows. The session's shell prints EXIT=<code> when the program ends.
func startTmux(t *testing.T, cols, rows int, script string) *tmuxScreen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	path := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(path, []byte(script+"\necho EXIT=$?\nsleep 600\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &tmuxScreen{t: t, socket: fmt.Sprintf("runyard-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	s.tmux("new-session", "-d", "-s", "main", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), "sh "+path)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxScreen) tmux(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
	cmd.Env = processEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the terminal shows now.
func (s *tmuxScreen) screen() string { return s.tmux("capture-pane", "-p", "-t", "main") }

// keys types keys (tmux key names: Enter, Escape, Right, C-]).
func (s *tmuxScreen) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		s.tmux("send-keys", "-t", "main", k)
	}
}

// see waits until the screen shows every string of want.
func (s *tmuxScreen) see(what string, want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sc := s.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(sc, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen does not show %s (%q); it shows:\n%s", what, want, sc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLI_StatusTUI drives `runyard status` in tmux: it shows the runners
// and follows a change another call makes, switches views with keys, shows
// a resource's detail, streams a service's log, attaches to a pod's
// terminal and comes back, and quits with q (exit 0).
func TestCLI_StatusTUI(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testStatusTUI(t, b.databaseURL(t))
		})
	}
}

func testStatusTUI(t *testing.T, dbURL string) {
	s := startServer(t, serverConfig{DatabaseURL: dbURL, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	script := `echo "prompt: $1"; while read line; do echo "got: $line"; done`
	s.mustRun(t, adminToken, "agents", "create", "--id", "tui-agent", "--name", "TUI", "--", "sh", "-c", script, "tui-agent", "{{prompt}}")
	runnerID, exchange := registerRunner(t, s, "tui-host")
	startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "5s")
	eventually(t, "the runner is ACTIVE", func() bool {
		r, _ := phaseOf(t, s, runnerID)
		return r.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})

	tm := startTmux(t, 180, 40, fmt.Sprintf("cd %s && env XDG_CONFIG_HOME=%s RUNYARD_SERVER=%s RUNYARD_TOKEN=%s %s status",
		emptyDir, configHome, s.URL, adminToken, bin))
	tm.see("the runner", "Runners (1)", "tui-host", "active", "live")

	// Live: a runner created by another call appears.
	createRunner(t, s, "tui-second", "linux-host")
	tm.see("the new runner", "Runners (2)", "tui-second")

	// An environment with a service that logs.
	var env struct {
		Environment struct {
			ID string `json:"id"`
		} `json:"environment"`
	}
	s.mustJSON(t, adminToken, &env, "environments", "create", "--runner", runnerID, "--name", "tui-env")
	file := filepath.Join(t.TempDir(), "automations.yaml")
	if err := os.WriteFile(file, []byte("services:\n  tui-web:\n    name: tui web\n    commands:\n      start: echo tui-log-marker; sleep 300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustRun(t, adminToken, "automations", "update", "-f", file, "--environment", env.Environment.ID)
	s.mustRun(t, adminToken, "services", "start", "--environment", env.Environment.ID, "tui-web")

	tm.keys("Right")
	tm.see("the environments view", "Environments (1)", "tui-env")
	tm.keys("Enter")
	tm.see("the environment's detail", `"id": "`+env.Environment.ID+`"`, "esc back")
	tm.keys("Escape")
	tm.see("the environments table again", "enter detail")

	tm.keys("3")
	tm.see("the running service", "Services (1)", "tui-web", "running")
	tm.keys("l")
	tm.see("the service's log", "log of service", "tui-log-marker")
	tm.keys("Escape")
	tm.see("the services table again", "enter detail")

	var pod struct{ Pod cliPod }
	s.mustJSON(t, adminToken, &pod, "pods", "create", "--agent", "tui-agent", "--prompt", "hello tui")
	tm.keys("5")
	tm.see("the running pod", "Pods (1)", pod.Pod.Key, "running")
	tm.keys("a")
	tm.see("the pod's terminal", "attached to pod "+pod.Pod.Key, "prompt: hello tui")
	tm.keys("typed-in-tui", "Enter")
	tm.see("the pod's answer", "got: typed-in-tui")
	tm.keys("C-]")
	tm.see("the status view again", "Pods (1)", "enter detail")

	tm.keys("q")
	tm.see("status exited 0", "EXIT=0")
}
