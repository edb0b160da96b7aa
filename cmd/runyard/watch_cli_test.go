package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchProc is a `runyard ... --watch` running in the background.
type watchProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

func startWatch(t *testing.T, s *serverProc, args ...string) *watchProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--server", s.URL, "--token", adminToken}, args...)...)
	cmd.Dir, cmd.Env = emptyDir, processEnv()
	w := &watchProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.stdout, w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-w.done })
	return w
}

// waitFor polls until the watch's output holds every string of want.
func (w *watchProc) waitFor(t *testing.T, what string, want ...string) {
	t.Helper()
	eventually(t, what, func() bool {
		select {
		case <-w.done:
			t.Fatalf("the watch ended by itself: stdout %q, stderr %q", w.stdout.String(), w.stderr.String())
		default:
		}
		out := w.stdout.String()
		for _, s := range want {
			if !strings.Contains(out, s) {
				return false
			}
		}
		return true
	})
}

// interrupt sends SIGINT and requires exit 130 with nothing on stderr.
func (w *watchProc) interrupt(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(exitTimeout):
		t.Fatalf("no exit after SIGINT; stdout %q", w.stdout.String())
	}
	if got, want := w.cmd.ProcessState.ExitCode(), 130; got != want {
		t.Errorf("exit code after SIGINT = %d, want %d; stderr %q", got, want, w.stderr.String())
	}
	if w.stderr.String() != "" {
		t.Errorf("stderr of a watch stopped by Ctrl-C: %q", w.stderr.String())
	}
}

// TestCLI_Watch: --watch prints what the command prints, then each change
// another call makes (a new row, a changed row, a deleted row; a JSON
// document per change; a get's changed lines), fed by WatchEvents (runners,
// environments' services) or by polling (pods), and Ctrl-C ends it with 130.
func TestCLI_Watch(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{DatabaseURL: b.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			first := createRunner(t, s, "watch-first", "linux-host")

			table := startWatch(t, s, "runners", "list", "--watch")
			docs := startWatch(t, s, "runners", "list", "-w", "-o", "json")
			get := startWatch(t, s, "runners", "get", first.RunnerID, "-w")
			table.waitFor(t, "the table shows the first runner", "ID", "NAME", "watch-first")
			docs.waitFor(t, "the JSON shows the first runner", `"name": "watch-first"`)
			get.waitFor(t, "get shows the runner", "Log level:", "unspecified")

			second := createRunner(t, s, "watch-second", "linux-host")
			table.waitFor(t, "the table shows the new runner", "watch-second")
			docs.waitFor(t, "a document of the new runner", `"name": "watch-second"`)

			s.mustRun(t, adminToken, "runners", "update", first.RunnerID, "--log-level", "debug")
			get.waitFor(t, "get shows the changed line", "debug")
			s.mustRun(t, adminToken, "runners", "delete", second.RunnerID, "--yes")
			table.waitFor(t, "the table marks the deleted runner", "(deleted)")

			// The table: the header once, the first runner's row, one row per
			// change after it.
			lines := strings.Split(strings.TrimSpace(table.stdout.String()), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[0], "ID") || strings.Count(table.stdout.String(), "NAME") != 1 {
				t.Errorf("watch table:\n%s", table.stdout)
			}
			if !strings.Contains(lines[len(lines)-1], second.RunnerID) || !strings.HasSuffix(lines[len(lines)-1], "(deleted)") {
				t.Errorf("last line %q, want the deleted runner's row", lines[len(lines)-1])
			}
			// The JSON: a stream of documents, each a runner.
			dec := json.NewDecoder(strings.NewReader(docs.stdout.String()))
			n := 0
			for dec.More() {
				var r runnerJSON
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("watch -o json: %v\n%s", err, docs.stdout)
				}
				if r.RunnerID == "" {
					t.Errorf("document %d is not a runner", n)
				}
				n++
			}
			if n < 2 {
				t.Errorf("watch -o json printed %d documents, want one per change", n)
			}
			// The get: the whole detail, then only the changed lines.
			if got := strings.Count(get.stdout.String(), "Log level:"); got != 2 {
				t.Errorf("get -w shows %d Log level lines, want 2 (the detail, the change):\n%s", got, get.stdout)
			}
			if strings.Count(get.stdout.String(), "Name:") != 1 {
				t.Errorf("get -w reprinted unchanged lines:\n%s", get.stdout)
			}

			// Services have events only per environment: the watch follows
			// an environment created after it started.
			services := startWatch(t, s, "services", "list", "-w")
			pods := startWatch(t, s, "pods", "list", "-w")
			pods.waitFor(t, "pods list prints its header", "KEY")
			var env struct {
				Environment struct {
					ID string `json:"id"`
				} `json:"environment"`
			}
			s.mustJSON(t, adminToken, &env, "environments", "create", "--runner", first.RunnerID, "--name", "watched")
			file := filepath.Join(t.TempDir(), "automations.yaml")
			if err := os.WriteFile(file, []byte("services:\n  watched-web:\n    name: watched web\n    commands:\n      start: sleep 100\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.mustRun(t, adminToken, "automations", "update", "-f", file, "--environment", env.Environment.ID)
			services.waitFor(t, "services list shows the new service", "watched-web")

			for _, w := range []*watchProc{table, docs, get, services, pods} {
				w.interrupt(t)
			}
		})
	}
}
