package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// phaseWatch polls a Connect Get method in the background and keeps every
// phase it read, in order, without repeats: a flip that lasted one poll
// shows.
type phaseWatch struct {
	mu     sync.Mutex
	phases []string
	stop   chan struct{}
	done   chan struct{}
}

// watchPhases starts polling method with body every 50 ms; phase picks the
// phase from the decoded answer. Answers that fail (the control plane is
// busy) are skipped.
func watchPhases(t *testing.T, s *serverProc, method, body string, phase func(map[string]any) string) *phaseWatch {
	t.Helper()
	w := &phaseWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1."+method, strings.NewReader(body))
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("Content-Type", "application/json")
			res, err := s.client.Do(req)
			if err != nil {
				continue
			}
			var v map[string]any
			err = json.NewDecoder(res.Body).Decode(&v)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				continue
			}
			p := phase(v)
			w.mu.Lock()
			if n := len(w.phases); n == 0 || w.phases[n-1] != p {
				w.phases = append(w.phases, p)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.end() })
	return w
}

// end stops the polling and returns the phases read.
func (w *phaseWatch) end() []string {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.phases...)
}

// statusPhase reads obj.status.phase of a Get answer.
func statusPhase(obj string) func(map[string]any) string {
	return func(v map[string]any) string {
		o, _ := v[obj].(map[string]any)
		st, _ := o["status"].(map[string]any)
		p, _ := st["phase"].(string)
		return p
	}
}

var tickRe = regexp.MustCompile(`tick (\d+)`)

// lastTick is the highest "tick N" in a service's log, 0 without one.
func lastTick(log string) int {
	n := 0
	for _, m := range tickRe.FindAllStringSubmatch(log, -1) {
		if v, _ := strconv.Atoi(m[1]); v > n {
			n = v
		}
	}
	return n
}

// TestRunner_KilledRunnerWorkAdopted SIGKILLs a real runner process that
// runs an API-created service and a task execution in the middle of a long
// step, and starts a new runner process on the same state dir. The new
// daemon adopts the work its predecessor left under process holders: the
// service keeps its process (same pid, started once), its log keeps its
// earlier lines and grows on, its phase reads RUNNING throughout (no flip
// to failed or stopped); the step is not run again, and the execution
// completes once.
func TestRunner_KilledRunnerWorkAdopted(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := startServer(t, serverConfig{DatabaseURL: be.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
			runnerID, exchange := registerRunner(t, s, "adopting-host")
			state := filepath.Join(t.TempDir(), "state")
			r1 := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state)
			eventually(t, "the runner is ACTIVE", func() bool {
				got, _ := phaseOf(t, s, runnerID)
				return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
			})
			out := s.mustRun(t, adminToken, "environments", "create", "--runner", runnerID, "--wait")
			envID := strings.Fields(strings.Split(out, "\n")[1])[0]

			files := t.TempDir()
			starts, steps := filepath.Join(files, "starts"), filepath.Join(files, "steps")
			var svc struct {
				Service struct {
					ID string `json:"id"`
				} `json:"service"`
			}
			connectJSON(t, s, "EnvironmentAutomationService/CreateService", fmt.Sprintf(
				`{"environmentId":%q,"metadata":{"reference":"ticker","name":"ticker"},"spec":{"commands":{"start":%q}}}`,
				envID, `echo "$RUNYARD_SERVICE_ID $$" >> `+starts+`; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`), &svc)
			svcID := svc.Service.ID
			connectJSON(t, s, "EnvironmentAutomationService/StartService", fmt.Sprintf(`{"id":%q}`, svcID), &struct{}{})
			// The step outlasts the runner's death and its successor's start
			// (the file marks when it may end), so the new daemon must take
			// it over to see it end.
			release := filepath.Join(files, "release")
			var task struct {
				Task struct {
					ID string `json:"id"`
				} `json:"task"`
			}
			connectJSON(t, s, "EnvironmentAutomationService/CreateTask", fmt.Sprintf(
				`{"environmentId":%q,"metadata":{"reference":"long","name":"long"},"spec":{"command":%q}}`,
				envID, `echo "$RUNYARD_TASK_EXECUTION_ID" >> `+steps+`; while [ ! -e `+release+` ]; do sleep 0.1; done; echo step done`), &task)
			var started unreachableExecution
			connectJSON(t, s, "EnvironmentAutomationService/StartTask", fmt.Sprintf(`{"id":%q}`, task.Task.ID), &started)
			xID := started.TaskExecution.ID

			svcGet := fmt.Sprintf(`{"id":%q}`, svcID)
			// RUNNING is reported once the process is spawned, which can be
			// before its shell wrote its line: wait for the line too.
			eventually(t, "the service runs, wrote its pid, and the step started", func() bool {
				var v unreachableService
				connectJSON(t, s, "EnvironmentAutomationService/GetService", svcGet, &v)
				b, _ := os.ReadFile(steps)
				line, _ := os.ReadFile(starts)
				return v.Service.Status.Phase == "SERVICE_PHASE_RUNNING" && strings.Contains(string(b), xID) &&
					strings.HasSuffix(string(line), "\n")
			})
			svcPhases := watchPhases(t, s, "EnvironmentAutomationService/GetService", svcGet, statusPhase("service"))
			xPhases := watchPhases(t, s, "EnvironmentAutomationService/GetTaskExecution", fmt.Sprintf(`{"id":%q}`, xID), statusPhase("taskExecution"))
			b, _ := os.ReadFile(starts)
			f := strings.Fields(string(b))
			if len(f) != 2 || f[0] != svcID {
				t.Fatalf("starts = %q, want one line: the service's id and pid", b)
			}
			pid, _ := strconv.Atoi(f[1])
			var before string
			eventually(t, "the service's log shows ticks", func() bool {
				before = s.mustRun(t, adminToken, "services", "logs", svcID)
				return lastTick(before) >= 3
			})

			r1.cmd.Process.Signal(syscall.SIGKILL)
			r1.waitExit(t)
			if syscall.Kill(pid, 0) != nil {
				t.Fatalf("the service's process %d died with its runner", pid)
			}
			r2 := startRunner(t, "--server", s.URL, "--state-dir", state)
			eventually(t, "the new runner process connects", func() bool {
				return strings.Contains(r2.Stderr.String(), "connected to the control plane")
			})
			eventually(t, "the new runner adopted the service and the step", func() bool {
				e := r2.Stderr.String()
				return strings.Contains(e, "adopted a service run") && strings.Contains(e, "adopted a task step")
			})
			if err := os.WriteFile(release, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the execution completes", func() bool {
				var v unreachableExecution
				connectJSON(t, s, "EnvironmentAutomationService/GetTaskExecution", fmt.Sprintf(`{"id":%q}`, xID), &v)
				return v.TaskExecution.Status.Phase == "TASK_EXECUTION_PHASE_SUCCEEDED"
			})
			var after string
			eventually(t, "the service's log grows under the new runner", func() bool {
				after = s.mustRun(t, adminToken, "services", "logs", svcID)
				return lastTick(after) > lastTick(before)+3
			})
			if !strings.HasPrefix(after, before) {
				t.Errorf("the service's log lost its earlier lines: before %q, after %q", before, after)
			}
			if syscall.Kill(pid, 0) != nil {
				t.Errorf("the service's process %d is gone after the new runner started", pid)
			}
			if b, _ := os.ReadFile(starts); strings.Count(string(b), "\n") != 1 {
				t.Errorf("the service started %d times, want once: %q", strings.Count(string(b), "\n"), b)
			}
			if b, _ := os.ReadFile(steps); strings.Count(string(b), xID) != 1 {
				t.Errorf("the step ran %d times, want once: %q", strings.Count(string(b), xID), b)
			}
			got := svcPhases.end()
			t.Logf("the service's phases while its runner was replaced: %v", got)
			if len(got) != 1 || got[0] != "SERVICE_PHASE_RUNNING" {
				t.Errorf("the service's phases while its runner was replaced: %v, want RUNNING throughout", got)
			}
			if got := xPhases.end(); strings.Join(got, " ") != "TASK_EXECUTION_PHASE_RUNNING TASK_EXECUTION_PHASE_SUCCEEDED" {
				t.Errorf("the execution's phases: %v, want RUNNING then SUCCEEDED", got)
			}
			s.mustRun(t, adminToken, "environments", "delete", "--yes", envID, "--wait")
			eventually(t, "the service's process ends with its environment", func() bool { return syscall.Kill(pid, 0) != nil })
		})
	}
}

// TestRunner_RestartStartsWhatItsPredecessorDidNot: a pod handed to a
// runner process that died before it started it (stopped, handed the pod,
// then SIGKILLed) is started by the next process on the same state dir,
// once. Before, the next process took the pod for one handed to another
// daemon of the runner and reported it failed ("lost"), though no process
// ever started it. SQLite only: the test reads the pod's binding to the
// dead process's stream from the database.
func TestRunner_RestartStartsWhatItsPredecessorDidNot(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	starts := filepath.Join(t.TempDir(), "starts")
	marker := fmt.Sprintf("runyard-handed-marker-%d", time.Now().UnixNano())
	agent := fmt.Sprintf(`{"id":"handed-agent","name":"Handed","command":["sh","-c","echo \"$RUNYARD_POD_KEY\" >> %s; while :; do sleep 1; done","%s"]}`, starts, marker)
	restCall(t, s, http.MethodPost, "/agents", agent, http.StatusCreated, nil)
	runnerID, exchange := registerRunner(t, s, "handed-host")
	state := filepath.Join(t.TempDir(), "state")
	r1 := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state, "--stop-grace", "5s")
	eventually(t, "the runner is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, runnerID)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})

	// The process gets the pod and can do nothing with it.
	if err := r1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var created podJSON
	restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"handed-agent","initial_prompt":"hello"}`, http.StatusCreated, &created)
	key := created.Pod.Key
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "runyard.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, "the pod is handed to the stopped process's stream", func() bool {
		var epoch int64
		err := db.QueryRow(`SELECT started_epoch FROM pods WHERE key = ?`, key).Scan(&epoch)
		return err == nil && epoch > 0
	})
	r1.cmd.Process.Signal(syscall.SIGKILL)
	r1.waitExit(t)
	if processWithArg(marker) {
		t.Fatal("the stopped runner process started the pod")
	}

	startRunner(t, "--server", s.URL, "--state-dir", state, "--stop-grace", "5s")
	pod := func() podJSON {
		var p podJSON
		restCall(t, s, http.MethodGet, "/pods/"+key, "", http.StatusOK, &p)
		return p
	}
	eventually(t, "the next runner process starts the pod", func() bool {
		p := pod()
		if p.Pod.Status == "failed" {
			t.Fatalf("the pod failed: %s", p.Pod.Reason)
		}
		b, _ := os.ReadFile(starts)
		return p.Pod.Status == "running" && processWithArg(marker) && strings.Contains(string(b), key)
	})
	if b, _ := os.ReadFile(starts); strings.Count(string(b), key) != 1 {
		t.Errorf("the pod's command started %d times, want once: %q", strings.Count(string(b), key), b)
	}
	s.mustRun(t, adminToken, "pods", "terminate", "--yes", key)
	eventually(t, "the pod's process ends", func() bool { return !processWithArg(marker) })
}
