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

// unreachableAutomations is the repository's automations file of the
// unreachable-runner tests: a service and a task that run until stopped,
// and a quick task. %[1]s marks their processes.
const unreachableAutomations = `services:
  web:
    triggeredBy: [postEnvironmentStart]
    commands:
      start: exec -a %[1]s-web sleep 1000
tasks:
  long:
    command: exec -a %[1]s-long sleep 1000
  quick:
    command: echo quick
`

// connectJSON calls a gitpod.v1 method with a JSON body as the admin and
// decodes the answer.
func connectJSON(t *testing.T, s *serverProc, method, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1."+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", method, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: decode: %v\n%s", method, err, b)
	}
}

// TestUnreachableRunner_Automations silences a runner daemon (SIGSTOP: it
// renews nothing, while the processes of its services and tasks, in their
// own sessions, run on) for longer than --runner-timeout. Its environment,
// running service and running execution keep their phases and say that the
// runner is unreachable; --wait on work that needs the runner ends with
// that reason (exit 9) instead of hanging. Back before --lost-after, the
// runner's work is as it was: same processes, no message. Silent past
// --lost-after, the service and the execution are failed, and the runner
// stops their processes once it is back.
func TestUnreachableRunner_Automations(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Run("BackBeforeLostAfter", func(t *testing.T) { testUnreachableAutomations(t, be, time.Minute, false) })
			t.Run("BackAfterLostAfter", func(t *testing.T) { testUnreachableAutomations(t, be, 4*time.Second, true) })
		})
	}
}

type unreachableEnv struct {
	Environment struct {
		Status struct {
			Phase          string   `json:"phase"`
			WarningMessage []string `json:"warningMessage"`
		} `json:"status"`
	} `json:"environment"`
}

type unreachableService struct {
	Service struct {
		Spec struct {
			DesiredPhase string `json:"desiredPhase"`
		} `json:"spec"`
		Status struct {
			Phase          string `json:"phase"`
			FailureMessage string `json:"failureMessage"`
		} `json:"status"`
	} `json:"service"`
}

type unreachableExecution struct {
	TaskExecution struct {
		ID     string `json:"id"`
		Status struct {
			Phase          string `json:"phase"`
			FailureMessage string `json:"failureMessage"`
		} `json:"status"`
	} `json:"taskExecution"`
}

func testUnreachableAutomations(t *testing.T, be backend, lostAfter time.Duration, outlast bool) {
	marker := fmt.Sprintf("runyard-unreachable-%d-%d", os.Getpid(), time.Now().UnixNano())
	s := startServer(t, serverConfig{DatabaseURL: be.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
		Args: []string{"--runner-timeout", "1500ms", "--lost-after", lostAfter.String()}})
	runnerID, exchange := registerRunner(t, s, "silent-host")
	killLeftovers(t, marker+"-web", marker+"-long")
	r := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "5s")
	phase := func() string {
		st, _ := phaseOf(t, s, runnerID)
		return st.Runner.Status.Phase
	}
	eventually(t, "the runner is ACTIVE", func() bool { return phase() == "RUNNER_PHASE_ACTIVE" })

	repo := makeGitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(unreachableAutomations, marker)})
	out := s.mustRun(t, adminToken, "environments", "create", "--git", repo, "--wait")
	envID := strings.Fields(strings.Split(out, "\n")[1])[0]
	svcID := serviceID(t, s, envID, "web")
	var started unreachableExecution
	s.mustJSON(t, adminToken, &started, "tasks", "start", "--environment", envID, "long")
	xID := started.TaskExecution.ID

	// A second environment, stopped, for a start while the runner is away.
	out = s.mustRun(t, adminToken, "environments", "create", "--git", makeGitRepo(t, map[string]string{"README": "plain"}), "--wait")
	stoppedID := strings.Fields(strings.Split(out, "\n")[1])[0]
	s.mustRun(t, adminToken, "environments", "stop", stoppedID, "--wait")

	env := func() unreachableEnv {
		var e unreachableEnv
		connectJSON(t, s, "EnvironmentService/GetEnvironment", fmt.Sprintf(`{"environmentId":%q}`, envID), &e)
		return e
	}
	svc := func() unreachableService {
		var v unreachableService
		connectJSON(t, s, "EnvironmentAutomationService/GetService", fmt.Sprintf(`{"id":%q}`, svcID), &v)
		return v
	}
	exec := func() unreachableExecution {
		var v unreachableExecution
		connectJSON(t, s, "EnvironmentAutomationService/GetTaskExecution", fmt.Sprintf(`{"id":%q}`, xID), &v)
		return v
	}
	eventually(t, "the service and the execution run", func() bool {
		return svc().Service.Status.Phase == "SERVICE_PHASE_RUNNING" && exec().TaskExecution.Status.Phase == "TASK_EXECUTION_PHASE_RUNNING" &&
			pidWithArg(marker+"-web") != 0 && pidWithArg(marker+"-long") != 0
	})
	webPID, longPID := pidWithArg(marker+"-web"), pidWithArg(marker+"-long")

	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("stop the runner: %v", err)
	}
	eventually(t, "the silent runner is INACTIVE", func() bool { return phase() == "RUNNER_PHASE_INACTIVE" })
	const unreachable = "runner silent-host unreachable since "
	if e := env().Environment.Status; e.Phase != "ENVIRONMENT_PHASE_RUNNING" || len(e.WarningMessage) != 1 || !strings.HasPrefix(e.WarningMessage[0], unreachable) {
		t.Errorf("environment of the unreachable runner: %+v, want running with a warning %q...", e, unreachable)
	}
	if !outlast {
		if v := svc().Service.Status; v.Phase != "SERVICE_PHASE_RUNNING" || !strings.HasPrefix(v.FailureMessage, unreachable) {
			t.Errorf("service of the unreachable runner: %+v, want running, %q...", v, unreachable)
		}
		if v := exec().TaskExecution.Status; v.Phase != "TASK_EXECUTION_PHASE_RUNNING" || !strings.HasPrefix(v.FailureMessage, unreachable) {
			t.Errorf("execution of the unreachable runner: %+v, want running, %q...", v, unreachable)
		}
		// Waits that only the runner could end end with the reason.
		res := s.run(t, adminToken, "tasks", "start", "--environment", envID, "quick", "--wait")
		t.Logf("tasks start --wait: exit %d: %s", res.Code, res.Stderr)
		requireOneLine(t, "tasks start --wait", res.Stderr, "stopped waiting until execution", unreachable)
		if res.Code != 9 {
			t.Errorf("tasks start --wait on an unreachable runner: exit %d, want 9", res.Code)
		}
		res = s.run(t, adminToken, "environments", "start", stoppedID, "--wait")
		requireOneLine(t, "environments start --wait", res.Stderr, "stopped waiting until environment "+stoppedID+" is running", unreachable)
		if res.Code != 9 {
			t.Errorf("environments start --wait on an unreachable runner: exit %d, want 9", res.Code)
		}
	} else {
		reason := "runner unreachable for more than " + lostAfter.String()
		eventually(t, "the service and the execution fail after --lost-after", func() bool {
			v, x := svc().Service, exec().TaskExecution.Status
			return v.Status.Phase == "SERVICE_PHASE_FAILED" && v.Status.FailureMessage == reason && v.Spec.DesiredPhase == "SERVICE_PHASE_STOPPED" &&
				x.Phase == "TASK_EXECUTION_PHASE_FAILED" && x.FailureMessage == reason
		})
		// The environment is not failed (it has no such phase); waiting
		// for its deletion ends with the way out.
		res := s.run(t, adminToken, "environments", "delete", "--yes", stoppedID, "--wait")
		requireOneLine(t, "environments delete --wait", res.Stderr, "stopped waiting until environment "+stoppedID+" is deleted", unreachable,
			"runyard environments delete --force "+stoppedID)
		if res.Code != 9 {
			t.Errorf("environments delete --wait on an unreachable runner: exit %d, want 9", res.Code)
		}
	}
	if pidWithArg(marker+"-web") != webPID || pidWithArg(marker+"-long") != longPID {
		t.Fatal("the work's processes changed while the runner was silent")
	}

	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("continue the runner: %v", err)
	}
	eventually(t, "the runner is back", func() bool { return phase() == "RUNNER_PHASE_ACTIVE" })
	if !outlast {
		if e := env().Environment.Status; e.Phase != "ENVIRONMENT_PHASE_RUNNING" || len(e.WarningMessage) != 0 {
			t.Errorf("environment after the runner came back: %+v", e)
		}
		if v := svc().Service.Status; v.Phase != "SERVICE_PHASE_RUNNING" || v.FailureMessage != "" {
			t.Errorf("service after the runner came back: %+v", v)
		}
		if v := exec().TaskExecution.Status; v.Phase != "TASK_EXECUTION_PHASE_RUNNING" || v.FailureMessage != "" {
			t.Errorf("execution after the runner came back: %+v", v)
		}
		// Give the runner one renewal round to act on its desired state;
		// nothing of its work may have been restarted or stopped.
		time.Sleep(1500 * time.Millisecond)
		if pidWithArg(marker+"-web") != webPID || pidWithArg(marker+"-long") != longPID {
			t.Fatal("the work's processes changed after the runner came back")
		}
		// Its runner stops what runs in a deleted environment.
		s.mustRun(t, adminToken, "environments", "delete", "--yes", envID, "--wait")
		return
	}
	eventually(t, "the runner stops the failed service and execution", func() bool {
		return pidWithArg(marker+"-web") == 0 && pidWithArg(marker+"-long") == 0
	})
	if x := exec().TaskExecution.Status; x.Phase != "TASK_EXECUTION_PHASE_FAILED" || x.FailureMessage != "runner unreachable for more than "+lostAfter.String() {
		t.Errorf("execution after the runner came back: %+v, want failed for good", x)
	}
	eventually(t, "the service is stopped", func() bool {
		v := svc().Service
		return v.Spec.DesiredPhase == "SERVICE_PHASE_STOPPED" && (v.Status.Phase == "SERVICE_PHASE_STOPPED" || v.Status.Phase == "SERVICE_PHASE_FAILED")
	})
	t.Logf("service after the runner came back: %+v", svc().Service.Status)
}
