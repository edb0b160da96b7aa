package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/release"
)

// Versions of the builds TestRunner_AutoUpdate updates between.
const (
	updV1     = "v1.0.0-upd"
	updV2     = "v2.0.0-upd"
	updBroken = "v3.0.0-broken"
)

// updateBuilds builds runyard twice, stamped updV1 and updV2, into dir.
func updateBuilds(t *testing.T, dir string) (v1, v2 string) {
	t.Helper()
	for _, v := range []string{updV1, updV2} {
		out := filepath.Join(dir, "runyard-"+v)
		b := exec.Command("go", "build", "-ldflags", buildinfo.LDFlags(v, "upd-"+v, "2026-12-07T00:00:00Z"), "-o", out, ".")
		if o, err := b.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", v, err, o)
		}
	}
	return filepath.Join(dir, "runyard-"+updV1), filepath.Join(dir, "runyard-"+updV2)
}

type updRunner struct {
	Runner struct {
		Status struct {
			Phase          string `json:"phase"`
			Message        string `json:"message"`
			Version        string `json:"version"`
			AdditionalInfo []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"additionalInfo"`
		} `json:"status"`
	} `json:"runner"`
}

func (r updRunner) fact(key string) string {
	for _, kv := range r.Runner.Status.AdditionalInfo {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// lockPID is the PID of the daemon holding a state directory.
func lockPID(t *testing.T, state string) int {
	b, _ := os.ReadFile(filepath.Join(state, "lock"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// pidOf reads the one "<id> <pid>" line of a starts file; it fails the test
// when the process started more than once.
func pidOf(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("%s = %q: the process started %d times, want once", file, b, len(lines))
	}
	f := strings.Fields(lines[0])
	pid, _ := strconv.Atoi(f[len(f)-1])
	return pid
}

// TestRunner_AutoUpdate drives a runner through its self-update with real
// builds of two versions: a release published outside the runner's UTC
// window waits; inside it the runner replaces its binary and execs it (same
// PID) with a service and a pod running (same PIDs after, started once);
// a broken build (exits 1) is rolled back with the reason in the runner's
// status; a release signed by another key is refused on publish. The
// runner's /metrics follows: waiting-for-window, idle on the new version,
// failed with one failure counted after the rollback.
func TestRunner_AutoUpdate(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := updateBuilds(t, dir)
	key, err := release.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := release.MarshalPublicKey(key.Public().(release.PublicKey))
	pub := filepath.Join(dir, "release-public-key.pem")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	host := release.HostTarget()
	relV2 := filepath.Join(dir, "rel-v2")
	if _, err := release.Package(relV2, release.Manifest{Version: updV2}, map[release.Target]string{host: v2}, key); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	relBroken := filepath.Join(dir, "rel-broken")
	if _, err := release.Package(relBroken, release.Manifest{Version: updBroken}, map[release.Target]string{host: broken}, key); err != nil {
		t.Fatal(err)
	}
	other, _ := release.GenerateKey()
	relOther := filepath.Join(dir, "rel-other")
	if _, err := release.Package(relOther, release.Manifest{Version: "v9.0.0-other"}, map[release.Target]string{host: v2}, other); err != nil {
		t.Fatal(err)
	}

	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := startServer(t, serverConfig{DatabaseURL: be.databaseURL(t), Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
				Args: []string{"--release-public-key", pub}})
			runnerID, exchange := registerRunner(t, s, "updating-host")
			// The window starts three hours from now: closed.
			hour := time.Now().UTC().Hour()
			s.mustRun(t, adminToken, "runners", "update", runnerID, "--auto-update", "--release-channel", "stable",
				"--update-window-start", strconv.Itoa((hour+3)%24))
			// The runner's own copy of v1: the update replaces it.
			exe := filepath.Join(t.TempDir(), "runyard")
			if err := copyExe(v1, exe); err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(t.TempDir(), "state")
			health := freePort(t)
			r := startRunnerBin(t, exe, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state,
				"--release-public-key", pub, "--update-rollback-after", "30s", "--stop-grace", "5s", "--health-addr", health)
			// Whatever process holds the state dir at the end (the guard
			// becomes the runner after a rollback) goes with the test.
			t.Cleanup(func() {
				if pid := lockPID(t, state); pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			get := func() updRunner {
				var v updRunner
				s.mustJSON(t, adminToken, &v, "runners", "get", runnerID, "-o", "json")
				return v
			}
			eventually(t, "the runner is ACTIVE on "+updV1, func() bool {
				v := get()
				return v.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE" && v.Runner.Status.Version == updV1
			})
			daemonPID := r.cmd.Process.Pid

			// A service and a pod, each writing its PID once when it starts.
			files := t.TempDir()
			svcStarts, podStarts := filepath.Join(files, "svc"), filepath.Join(files, "pod")
			out := s.mustRun(t, adminToken, "environments", "create", "--runner", runnerID, "--wait")
			envID := strings.Fields(strings.Split(out, "\n")[1])[0]
			var svc struct {
				Service struct {
					ID string `json:"id"`
				} `json:"service"`
			}
			connectJSON(t, s, "EnvironmentAutomationService/CreateService", fmt.Sprintf(
				`{"environmentId":%q,"metadata":{"reference":"ticker","name":"ticker"},"spec":{"commands":{"start":%q}}}`,
				envID, `echo "$RUNYARD_SERVICE_ID $$" >> `+svcStarts+`; while :; do sleep 0.2; done`), &svc)
			connectJSON(t, s, "EnvironmentAutomationService/StartService", fmt.Sprintf(`{"id":%q}`, svc.Service.ID), &struct{}{})
			svcRunning := func() bool {
				var v unreachableService
				connectJSON(t, s, "EnvironmentAutomationService/GetService", fmt.Sprintf(`{"id":%q}`, svc.Service.ID), &v)
				return v.Service.Status.Phase == "SERVICE_PHASE_RUNNING"
			}
			restCall(t, s, http.MethodPost, "/agents", fmt.Sprintf(
				`{"id":"upd-agent","name":"Upd","command":["sh","-c","echo \"$RUNYARD_POD_KEY $$\" >> %s; while :; do sleep 1; done"]}`, podStarts), http.StatusCreated, nil)
			var pod podJSON
			restCall(t, s, http.MethodPost, "/pods", `{"agent_type_id":"upd-agent","initial_prompt":"hi"}`, http.StatusCreated, &pod)
			podRunning := func() bool {
				var p podJSON
				restCall(t, s, http.MethodGet, "/pods/"+pod.Pod.Key, "", http.StatusOK, &p)
				return p.Pod.Status == "running"
			}
			eventually(t, "the service and the pod run", func() bool {
				_, e1 := os.Stat(svcStarts)
				_, e2 := os.Stat(podStarts)
				return e1 == nil && e2 == nil && svcRunning() && podRunning()
			})
			svcPID, podPID := pidOf(t, svcStarts), pidOf(t, podStarts)

			// A release signed by a key the control plane does not trust is
			// refused, and changes nothing.
			res := s.run(t, adminToken, "releases", "publish", "--channel", "stable", relOther)
			if res.Code == 0 || !strings.Contains(res.Stderr, "does not match the release public key") {
				t.Fatalf("publish of a release signed by another key: exit %d, stderr %q; want it refused", res.Code, res.Stderr)
			}

			// Outside the window: downloaded and verified, then nothing.
			s.mustRun(t, adminToken, "releases", "publish", "--channel", "stable", relV2)
			if out := s.mustRun(t, adminToken, "releases", "list"); !strings.Contains(out, updV2) {
				t.Fatalf("releases list:\n%s\nwant %s", out, updV2)
			}
			eventually(t, "the runner waits for its window", func() bool {
				return get().fact("update.state") == "waiting-for-window"
			})
			time.Sleep(2 * time.Second) // a few updater steps: still waiting
			if v := get(); v.Runner.Status.Version != updV1 || v.fact("update.state") != "waiting-for-window" {
				t.Fatalf("outside its window the runner is %s, update state %q", v.Runner.Status.Version, v.fact("update.state"))
			}
			if sameFile(t, exe, v2) {
				t.Fatal("the binary was replaced outside the window")
			}
			// The runner's /metrics says so too.
			eventually(t, "the runner's metrics say it waits for its window", func() bool {
				return runnerUpdateMetrics(health) == (updMetrics{state: "waiting-for-window", version: updV1, target: updV2, channel: "stable"})
			})

			// The window opens: the runner drains, execs v2, re-adopts.
			s.mustRun(t, adminToken, "runners", "update", runnerID, "--update-window-start", strconv.Itoa(hour))
			eventually(t, "the runner reports "+updV2, func() bool {
				v := get()
				return v.Runner.Status.Version == updV2 && v.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
			})
			if !sameFile(t, exe, v2) {
				t.Fatal("the runner reports v2 but its binary is not v2")
			}
			if pid := lockPID(t, state); pid != daemonPID {
				t.Fatalf("the updated daemon has PID %d, want the same process %d (exec)", pid, daemonPID)
			}
			for what, pid := range map[string]int{"service": svcPID, "pod": podPID} {
				if syscall.Kill(pid, 0) != nil {
					t.Fatalf("the %s's process %d died in the update", what, pid)
				}
			}
			eventually(t, "the service and the pod still run", func() bool { return svcRunning() && podRunning() })
			if pidOf(t, svcStarts) != svcPID || pidOf(t, podStarts) != podPID {
				t.Fatal("a process was started again")
			}
			if !strings.Contains(r.Stderr.String(), "adopted a service run") {
				t.Fatalf("the updated daemon did not adopt the service; stderr:\n%s", r.Stderr)
			}
			eventually(t, "the updated runner's metrics say idle on "+updV2, func() bool {
				return runnerUpdateMetrics(health) == (updMetrics{state: "idle", version: updV2, channel: "stable"})
			})

			// A broken build: it exits at once; the guard puts v2 back.
			s.mustRun(t, adminToken, "releases", "publish", "--channel", "stable", relBroken)
			eventually(t, "the broken update is rolled back and says why", func() bool {
				v := get()
				return v.Runner.Status.Version == updV2 && v.fact("update.state") == "failed" &&
					strings.Contains(v.Runner.Status.Message, "update to "+updBroken+" failed") &&
					strings.Contains(v.fact("update.failure"), "rolled back to "+updV2)
			})
			if !sameFile(t, exe, v2) {
				t.Fatal("after the rollback the binary is not v2")
			}
			// The restored v2 counts the rollback it found.
			eventually(t, "the restored runner's metrics show the failed update", func() bool {
				return runnerUpdateMetrics(health) == (updMetrics{state: "failed", version: updV2, target: updBroken, channel: "stable", failures: 1})
			})
			if out := s.mustRun(t, adminToken, "runners", "get", runnerID); !strings.Contains(out, "Update failure:") || !strings.Contains(out, updBroken+" exited before it reached the control plane") {
				t.Fatalf("runners get does not show the failed update:\n%s", out)
			}
			eventually(t, "the service and the pod still run after the rollback", func() bool { return svcRunning() && podRunning() })
			if pidOf(t, svcStarts) != svcPID || pidOf(t, podStarts) != podPID || syscall.Kill(svcPID, 0) != nil || syscall.Kill(podPID, 0) != nil {
				t.Fatal("the rollback restarted or lost the service or the pod")
			}
		})
	}
}

// updMetrics is what a runner's /metrics says of its self-update.
type updMetrics struct {
	state, version, target, channel string
	failures                        float64
}

// runnerUpdateMetrics scrapes the runner's /metrics on its health address
// (the zero value when it does not answer). state is the one state whose
// series is 1; it is "" unless every state has a series and exactly one is
// 1.
func runnerUpdateMetrics(addr string) updMetrics {
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return updMetrics{}
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return updMetrics{}
	}
	var m updMetrics
	ones := 0
	states := mfs["runyard_runner_update_state"].GetMetric()
	for _, s := range states {
		if s.GetGauge().GetValue() == 1 {
			ones++
			m.state = s.GetLabel()[0].GetValue()
		}
	}
	if ones != 1 || len(states) != 6 {
		m.state = ""
	}
	for _, info := range mfs["runyard_runner_update_info"].GetMetric() {
		for _, l := range info.GetLabel() {
			switch l.GetName() {
			case "version":
				m.version = l.GetValue()
			case "target_version":
				m.target = l.GetValue()
			case "channel":
				m.channel = l.GetValue()
			}
		}
	}
	for _, f := range mfs["runyard_runner_update_failures_total"].GetMetric() {
		m.failures = f.GetCounter().GetValue()
	}
	return m
}

func copyExe(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}

// TestRunner_UpdateGuardDeadline: a new binary that runs but never reaches
// the control plane is killed when --update-rollback-after passes; the
// guard puts the previous binary back, records why, and runs it with the
// runner's arguments.
func TestRunner_UpdateGuardDeadline(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "runyard")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	previous := filepath.Join(dir, "previous")
	if err := os.WriteFile(previous, []byte("#!/bin/sh\necho \"$@\" > "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The silent new binary: it runs, and says nothing to anyone.
	silent := exec.Command(exe)
	if err := silent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { silent.Wait(); close(exited) }()
	t.Cleanup(func() { silent.Process.Kill(); <-exited })
	rec := map[string]any{
		"state": "trial", "target": "v2-silent", "targetSha256": "ab", "previous": "v1-good",
		"previousBinary": previous, "exe": exe, "args": []string{exe, "runner", "--state-dir", state},
		"pid": silent.Process.Pid, "deadline": time.Now().Add(time.Second), "rollbackAfter": time.Second,
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(state, "update.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	guard := exec.Command(bin, "runner", "update-guard", "--state-dir", state)
	guard.Env = processEnv()
	if out, err := guard.CombinedOutput(); err != nil {
		t.Fatalf("guard: %v\n%s", err, out)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the guard did not stop the silent binary")
	}
	if !sameFile(t, exe, previous) {
		t.Fatal("the previous binary was not put back")
	}
	got, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(got)) != "runner --state-dir "+state {
		t.Fatalf("the previous binary ran with %q (%v), want the runner's arguments", got, err)
	}
	var after struct {
		State   string `json:"state"`
		Failure string `json:"failure"`
	}
	b, _ = os.ReadFile(filepath.Join(state, "update.json"))
	if err := json.Unmarshal(b, &after); err != nil {
		t.Fatal(err)
	}
	if after.State != "rolled-back" || after.Failure != "v2-silent did not reach the control plane within 1s; rolled back to v1-good" {
		t.Fatalf("update record = %+v", after)
	}
}
