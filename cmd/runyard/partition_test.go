package main

// A real network partition between a runner and its control plane: the
// runner daemon runs in its own network namespace, joined to the host by a
// veth pair in a private /30 that exists only on this machine, and the
// control plane listens on the host side's address. Taking the host side's
// link down cuts the runner off (its packets go nowhere, the control plane's
// cannot leave), as a switch failure would; the test's own requests reach
// the control plane on the host, where the address stays local.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/testutil/netns"
)

// requireNetns skips the test where network namespaces cannot be made (not
// root, no CAP_NET_ADMIN, no ip(8)).
func requireNetns(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
}

// newNetnsLink makes namespace number n with its veth pair (netns.New),
// removed when the test ends, whatever happened.
func newNetnsLink(t *testing.T, n int) *netns.Link {
	t.Helper()
	l, err := netns.New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// freePortOn returns host:port with a port that was free on host a moment
// ago.
func freePortOn(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRunnerInNetns starts `runyard runner args...` inside link's
// namespace (ip netns exec joins it and execs the binary, so the process is
// the runner itself).
func startRunnerInNetns(t *testing.T, link *netns.Link, args ...string) *runnerProc {
	t.Helper()
	p := &runnerProc{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = link.Command(bin, append([]string{"runner"}, args...)...)
	p.cmd.Dir = emptyDir
	p.cmd.Env = processEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start runner in %s: %v", link.NS, err)
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
			t.Logf("runner stdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
		}
	})
	return p
}

// killLeftovers makes sure, when the test ends, that no process with one of
// markers in its command line outlives it: a passing test must have ended
// them itself (an error otherwise), a failing one may leave them, and they
// are killed either way.
func killLeftovers(t *testing.T, markers ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, m := range markers {
			for range 10 {
				pid := pidWithArg(m)
				if pid == 0 {
					break
				}
				if !t.Failed() {
					t.Errorf("process %s (%d) outlived the test", m, pid)
				}
				syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
}

// pidWithArg returns the PID of the process with arg in its command line
// (the lowest, should there be several), or 0.
func pidWithArg(arg string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	found := 0
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil || !strings.Contains(string(b), arg) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && (found == 0 || pid < found) {
			found = pid
		}
	}
	return found
}

// TestPartition_RunnerKeepsItsPods cuts a runner off its control plane for
// longer than --runner-timeout. Back before --lost-after, the runner keeps
// its pod: it runs on, was neither restarted (its command ran once) nor
// killed, and is running again as far as the control plane can tell, while
// during the partition it showed running with a reason naming the
// unreachable runner. A pod a user terminated during the partition is
// stopped when the runner is back. Back after --lost-after, the pods were
// failed for good meanwhile and the runner stops them when it comes back.
func TestPartition_RunnerKeepsItsPods(t *testing.T) {
	requireNetns(t)
	const timeout = 3 * time.Second
	for i, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Run("BackBeforeLostAfter", func(t *testing.T) {
				testPartition(t, be, 2*i, time.Minute, false)
			})
			t.Run("BackAfterLostAfter", func(t *testing.T) {
				testPartition(t, be, 2*i+1, 3*timeout, true)
			})
		})
	}
}

func testPartition(t *testing.T, be backend, n int, lostAfter time.Duration, outlast bool) {
	const timeout = 3 * time.Second
	link := newNetnsLink(t, n)
	cfg := serverConfig{
		DatabaseURL: be.databaseURL(t),
		Env:         []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
		Args:        []string{"--runner-timeout", timeout.String(), "--lost-after", lostAfter.String()},
	}
	s := spawnServer(t, cfg, freePortOn(t, link.HostIP))
	if err := s.waitHealthy(); err != nil {
		t.Fatalf("server on %s: %v\nstderr:\n%s", s.Addr, err, s.Stderr)
	}

	starts := filepath.Join(t.TempDir(), "starts")
	// The marker is the script's $0: it shows in the pod's command line for
	// as long as the pod's shell runs.
	marker := fmt.Sprintf("runyard-partition-marker-%d-%d", os.Getpid(), n)
	// A second agent type, with its own marker, for a pod a user
	// terminates during the partition.
	doomed := fmt.Sprintf("runyard-partition-doomed-%d-%d", os.Getpid(), n)
	autoMarker := fmt.Sprintf("runyard-partition-auto-%d-%d", os.Getpid(), n)
	// Registered before the runner starts, so it runs after the runner is
	// killed: services and tasks live in sessions of their own.
	killLeftovers(t, marker, doomed, autoMarker+"-web", autoMarker+"-long")
	for id, m := range map[string]string{"partition-agent": marker, "doomed-agent": doomed} {
		agent := fmt.Sprintf(`{"id":%q,"name":"Partition","command":["sh","-c","echo \"$RUNYARD_POD_KEY\" >> %s; while :; do sleep 1; done","%s"]}`, id, starts, m)
		restCall(t, s, http.MethodPost, "/agents", agent, http.StatusCreated, nil)
	}

	runnerID, exchange := registerRunner(t, s, "cut-off")
	r := startRunnerInNetns(t, link, "--server", s.URL, "--exchange-token", exchange,
		"--state-dir", filepath.Join(t.TempDir(), "state"), "--stop-grace", "5s")
	var created podJSON
	restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"partition-agent","initial_prompt":"hello"}`, http.StatusCreated, &created)
	key := created.Pod.Key
	restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"doomed-agent","initial_prompt":"hello"}`, http.StatusCreated, &created)
	doomedKey := created.Pod.Key
	podOf := func(key string) podJSON {
		var p podJSON
		restCall(t, s, http.MethodGet, "/pods/"+key, "", http.StatusOK, &p)
		return p
	}
	pod := func() podJSON { return podOf(key) }
	eventually(t, "the pods run", func() bool {
		return pod().Pod.Status == "running" && podOf(doomedKey).Pod.Status == "running"
	})
	pid := pidWithArg(marker)
	if pid == 0 || pidWithArg(doomed) == 0 {
		t.Fatal("the pods' processes are not running")
	}
	// An environment with a running service and a running task execution
	// lives through the same partition.
	repo := makeGitRepo(t, map[string]string{".runyard/automations.yaml": fmt.Sprintf(unreachableAutomations, autoMarker)})
	out := s.mustRun(t, adminToken, "environments", "create", "--git", repo, "--wait")
	envID := strings.Fields(strings.Split(out, "\n")[1])[0]
	svcID := serviceID(t, s, envID, "web")
	var started unreachableExecution
	s.mustJSON(t, adminToken, &started, "tasks", "start", "--environment", envID, "long")
	svc := func() unreachableService {
		var v unreachableService
		connectJSON(t, s, "EnvironmentAutomationService/GetService", fmt.Sprintf(`{"id":%q}`, svcID), &v)
		return v
	}
	exec := func() unreachableExecution {
		var v unreachableExecution
		connectJSON(t, s, "EnvironmentAutomationService/GetTaskExecution", fmt.Sprintf(`{"id":%q}`, started.TaskExecution.ID), &v)
		return v
	}
	eventually(t, "the service and the execution run", func() bool {
		return svc().Service.Status.Phase == "SERVICE_PHASE_RUNNING" && exec().TaskExecution.Status.Phase == "TASK_EXECUTION_PHASE_RUNNING" &&
			pidWithArg(autoMarker+"-web") != 0 && pidWithArg(autoMarker+"-long") != 0
	})
	webPID, longPID := pidWithArg(autoMarker+"-web"), pidWithArg(autoMarker+"-long")

	phase := func() string {
		st, _ := phaseOf(t, s, runnerID)
		return st.Runner.Status.Phase
	}

	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cut-off runner is INACTIVE", func() bool { return phase() == "RUNNER_PHASE_INACTIVE" })
	if !outlast {
		// Unreachable, not failed: the pod may well run on, and it does.
		p := pod()
		if p.Pod.Status != "running" || !strings.HasPrefix(p.Pod.Reason, "runner cut-off unreachable since ") {
			t.Fatalf("during the partition the pod is %s (%q), want running, its runner unreachable", p.Pod.Status, p.Pod.Reason)
		}
		if v := svc().Service.Status; v.Phase != "SERVICE_PHASE_RUNNING" || !strings.HasPrefix(v.FailureMessage, "runner cut-off unreachable since ") {
			t.Errorf("during the partition the service is %+v, want running, its runner unreachable", v)
		}
		if v := exec().TaskExecution.Status; v.Phase != "TASK_EXECUTION_PHASE_RUNNING" || !strings.HasPrefix(v.FailureMessage, "runner cut-off unreachable since ") {
			t.Errorf("during the partition the execution is %+v, want running, its runner unreachable", v)
		}
		// A user terminates the other pod meanwhile: it keeps its status
		// until its runner can confirm.
		restCall(t, s, http.MethodPost, "/pods/"+doomedKey+"/terminate", "", http.StatusOK, nil)
		// Hold the partition for a few more timeouts: the runner's own
		// reconnect attempts fail all along.
		time.Sleep(3 * timeout)
		if p := pod(); p.Pod.Status != "running" {
			t.Fatalf("later in the partition the pod is %s (%q)", p.Pod.Status, p.Pod.Reason)
		}
	} else {
		want := "runner unreachable for more than " + lostAfter.String()
		eventually(t, "the pod, the service and the execution fail after --lost-after", func() bool {
			p, v, x := pod(), svc().Service.Status, exec().TaskExecution.Status
			return p.Pod.Status == "failed" && p.Pod.Reason == want && v.Phase == "SERVICE_PHASE_FAILED" && v.FailureMessage == want &&
				x.Phase == "TASK_EXECUTION_PHASE_FAILED" && x.FailureMessage == want
		})
	}
	if got := pidWithArg(marker); got != pid {
		t.Fatalf("during the partition the pod's process is %d, want %d still running", got, pid)
	}
	if pidWithArg(autoMarker+"-web") != webPID || pidWithArg(autoMarker+"-long") != longPID {
		t.Fatal("the service's or the execution's process changed during the partition")
	}
	before := strings.Count(r.Stderr.String(), "connected to the control plane")
	took, err := link.Heal()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("partition lasted %s (runner timeout %s, lost after %s)", took.Round(time.Millisecond), timeout, lostAfter)
	healed := time.Now()
	eventually(t, "the runner reconnects", func() bool {
		return strings.Count(r.Stderr.String(), "connected to the control plane") > before && phase() == "RUNNER_PHASE_ACTIVE"
	})
	// A figure for the record, not a bound: the runner's backoff is capped
	// at a third of the timeout.
	t.Logf("runner ACTIVE again %s after the link came back", time.Since(healed).Round(time.Millisecond))

	if !outlast {
		eventually(t, "the pod shows running without a reason", func() bool {
			p := pod()
			return p.Pod.Status == "running" && p.Pod.Reason == ""
		})
		// The runner applied its desired state on reconnecting; a kill
		// would follow at once. Give it one more timeout to show.
		time.Sleep(timeout)
		if got := pidWithArg(marker); got != pid {
			t.Fatalf("after the partition the pod's process is %d, want %d: not killed, not restarted", got, pid)
		}
		if p := pod(); p.Pod.Status != "running" {
			t.Fatalf("after the partition the pod is %s (%q)", p.Pod.Status, p.Pod.Reason)
		}
		eventually(t, "the pod terminated during the partition is stopped", func() bool {
			return podOf(doomedKey).Pod.Status == "terminated" && pidWithArg(doomed) == 0
		})
		if v := svc().Service.Status; v.Phase != "SERVICE_PHASE_RUNNING" || v.FailureMessage != "" {
			t.Errorf("after the partition the service is %+v, want running", v)
		}
		if v := exec().TaskExecution.Status; v.Phase != "TASK_EXECUTION_PHASE_RUNNING" || v.FailureMessage != "" {
			t.Errorf("after the partition the execution is %+v, want running", v)
		}
		if pidWithArg(autoMarker+"-web") != webPID || pidWithArg(autoMarker+"-long") != longPID {
			t.Error("the service's or the execution's process changed after the partition: restarted or killed")
		}
		// Nothing of it must outlive the test: the environment goes, and
		// its runner stops what runs in it.
		s.mustRun(t, adminToken, "environments", "delete", "--yes", envID, "--wait")
		s.mustRun(t, adminToken, "pods", "terminate", "--yes", key)
		eventually(t, "the pod's process ends", func() bool { return pidWithArg(marker) == 0 })
	} else {
		eventually(t, "the runner stops the failed pods, service and execution", func() bool {
			return pidWithArg(marker) == 0 && pidWithArg(doomed) == 0 && pidWithArg(autoMarker+"-web") == 0 && pidWithArg(autoMarker+"-long") == 0
		})
		if x := exec().TaskExecution.Status; x.Phase != "TASK_EXECUTION_PHASE_FAILED" {
			t.Errorf("after the runner came back the execution is %+v, want failed for good", x)
		}
		if p := pod(); p.Pod.Status != "failed" || p.Pod.Reason != "runner unreachable for more than "+lostAfter.String() {
			t.Fatalf("after the runner came back the pod is %s (%q), want failed for good", p.Pod.Status, p.Pod.Reason)
		}
	}
	b, err := os.ReadFile(starts)
	if err != nil {
		t.Fatalf("read starts: %v", err)
	}
	for _, k := range []string{key, doomedKey} {
		if got := strings.Count(string(b), k); got != 1 {
			t.Fatalf("pod %s's command started %d times, want once:\n%s", k, got, b)
		}
	}
}
