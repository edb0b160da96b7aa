package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restCall sends a REST request with the admin token and decodes the answer.
func restCall(t *testing.T, s *serverProc, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+"/api/v1/orgs/default"+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, res.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode %s: %v\n%s", path, err, b)
		}
	}
}

type podJSON struct {
	Pod struct {
		Key    string `json:"key"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"pod"`
}

// TestPods_SurviveControlPlaneRestart hands a pod to a runner process and
// checks the delivery guarantees of the runner protocol: the pod starts once,
// its first report acknowledges it (running), a control-plane restart hands
// the runner its pods again and nothing starts twice, and a runner killed
// with SIGKILL has its pods shown unreachable once it is INACTIVE, and
// failed after --lost-after.
func TestPods_SurviveControlPlaneRestart(t *testing.T) {
	cfg := serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: []string{"--runner-timeout", "1500ms", "--lost-after", "4s"}}
	s := startServer(t, cfg)
	starts := filepath.Join(t.TempDir(), "starts")
	// The marker is the script's $0, so it shows in the process's command
	// line for as long as the pod's shell runs.
	marker := fmt.Sprintf("runyard-pod-marker-%d", time.Now().UnixNano())
	agent := fmt.Sprintf(`{"id":"marker-agent","name":"Marker","command":["sh","-c","echo \"$RUNYARD_POD_KEY\" >> %s; while :; do sleep 1; done","%s"]}`, starts, marker)
	restCall(t, s, http.MethodPost, "/agents", agent, http.StatusCreated, nil)

	_, exchange := registerRunner(t, s, "pod-host")
	stateDir := filepath.Join(t.TempDir(), "state")
	r := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", stateDir, "--stop-grace", "5s")
	var created podJSON
	restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"marker-agent","initial_prompt":"hello"}`, http.StatusCreated, &created)
	key := created.Pod.Key
	podStatus := func(s *serverProc) podJSON {
		var p podJSON
		restCall(t, s, http.MethodGet, "/pods/"+key, "", http.StatusOK, &p)
		return p
	}
	eventually(t, "the runner acknowledges the pod as running", func() bool { return podStatus(s).Pod.Status == "running" })
	if !processWithArg(marker) {
		t.Fatal("the pod's process is not running")
	}

	// The control plane goes away and comes back: the runner reconnects and
	// is handed its pods again, and starts nothing twice.
	s.stop(t)
	before := strings.Count(r.Stderr.String(), "connected to the control plane")
	cfg.DataDir = s.DataDir
	s2 := spawnServer(t, cfg, s.Addr)
	if err := s2.waitHealthy(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	eventually(t, "the runner reconnects", func() bool {
		return strings.Count(r.Stderr.String(), "connected to the control plane") > before
	})
	if p := podStatus(s2); p.Pod.Status != "running" {
		t.Fatalf("after the restart the pod is %s (%s)", p.Pod.Status, p.Pod.Reason)
	}
	b, err := os.ReadFile(starts)
	if err != nil {
		t.Fatalf("read starts: %v", err)
	}
	if got := strings.Count(string(b), key); got != 1 {
		t.Fatalf("the pod's process started %d times, want once", got)
	}

	// A runner killed outright: its pod says so once the runner is
	// INACTIVE, and is failed after --lost-after.
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.waitExit(t)
	eventually(t, "the pod of the lost runner shows it unreachable", func() bool {
		p := podStatus(s2)
		return p.Pod.Status == "running" && strings.HasPrefix(p.Pod.Reason, "runner pod-host unreachable since ")
	})
	eventually(t, "the pod of the lost runner fails", func() bool {
		p := podStatus(s2)
		return p.Pod.Status == "failed" && p.Pod.Reason == "runner unreachable for more than 4s"
	})
	// The pod's process outlives the runner under its holder; the control
	// plane gave the pod up, so the runner's next start stops it.
	if !processWithArg(marker) {
		t.Fatal("the pod's process died with its runner; its holder should keep it")
	}
	startRunner(t, "--server", s2.URL, "--state-dir", stateDir, "--stop-grace", "5s")
	eventually(t, "the pod's process is gone", func() bool { return !processWithArg(marker) })
}

// processWithArg reports whether a process has arg in its command line.
func processWithArg(arg string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && strings.Contains(string(b), arg) {
			return true
		}
	}
	return false
}
