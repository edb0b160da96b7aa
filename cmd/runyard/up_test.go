package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
)

// TestUp runs `runyard up` twice in one directory: each run serves a control
// plane with one ACTIVE local runner, Ctrl-C stops both with exit 0, and the
// second run reuses the first run's runner.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	var firstID string
	for run := 1; run <= 2; run++ {
		addr := freePort(t)
		p := &runnerProc{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, "up", "--listen", addr)
		p.cmd.Dir = dir
		p.cmd.Env = processEnv()
		p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start up: %v", err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			select {
			case <-p.done:
			default:
				p.cmd.Process.Kill()
				<-p.done
			}
			if t.Failed() {
				t.Logf("up #%d stdout:\n%s\nstderr:\n%s", run, p.Stdout, p.Stderr)
			}
		})
		url := "http://" + addr
		eventually(t, "the control plane answers", func() bool {
			res, err := http.Get(url + "/healthz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		// The CLI finds .runyard/admin-token in the working directory.
		var list struct {
			Runners []struct {
				RunnerID string `json:"runnerId"`
				Name     string `json:"name"`
				Status   struct {
					Phase string `json:"phase"`
				} `json:"status"`
			} `json:"runners"`
		}
		eventually(t, "the local runner is ACTIVE", func() bool {
			r := runCLI(t, dir, nil, "--server", url, "runners", "list", "-o", "json")
			if r.Code != 0 {
				t.Fatalf("runners list: exit %d: %s", r.Code, r.Stderr)
			}
			if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
				t.Fatalf("decode list: %v", err)
			}
			return len(list.Runners) == 1 && list.Runners[0].Status.Phase == "RUNNER_PHASE_ACTIVE"
		})
		if run == 1 {
			firstID = list.Runners[0].RunnerID
		} else if got := list.Runners[0].RunnerID; got != firstID {
			t.Fatalf("second up runs runner %s, want the first run's %s", got, firstID)
		}
		p.cmd.Process.Signal(syscall.SIGINT)
		if code := p.waitExit(t); code != 0 {
			t.Fatalf("up #%d exit code after Ctrl-C = %d, want 0", run, code)
		}
	}
}
