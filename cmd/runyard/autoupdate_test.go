package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
//
// On SQLite the runner runs as systemd's Type=notify unit of install-service
// would (a notification socket that takes messages from the main PID only,
// fakeSystemd): READY=1 comes once it is connected; the update moves the
// main PID to the guard before the exec and back after the confirmation;
// the rollback moves it to the guard, which then runs the restored daemon,
// so the unit's main process never exits while the runner runs. On
// PostgreSQL it runs as a plain process, with no socket.
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
			var sd *fakeSystemd
			var env []string
			if be.name == "SQLite" {
				sd = newFakeSystemd(t)
				env = append(env, sd.env())
			}
			r := startRunnerEnv(t, exe, env, "--server", s.URL, "--exchange-token", exchange, "--state-dir", state,
				"--release-public-key", pub, "--update-rollback-after", "30s", "--stop-grace", "5s", "--health-addr", health)
			// Whatever process holds the state dir at the end (the guard
			// becomes the runner after a rollback) goes with the test.
			t.Cleanup(func() {
				if pid := lockPID(t, state); pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			if sd != nil {
				sd.watch(t, r.cmd.Process.Pid)
			}
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
			if sd != nil {
				eventually(t, "the runner tells systemd it is ready", func() bool { return sd.unit().ready })
				u := sd.unit()
				if u.main != daemonPID || u.firstReady.PID != daemonPID || !strings.HasPrefix(u.status, "connected to "+s.URL) {
					t.Fatalf("systemd sees main PID %d (want %d), READY=1 from %v, status %q", u.main, daemonPID, u.firstReady, u.status)
				}
				// READY=1 waits for the connection: it comes with the
				// status that says so.
				if st, _ := u.firstReady.Get("STATUS"); !strings.HasPrefix(st, "connected to ") {
					t.Fatalf("READY=1 came with status %q, want it sent once connected", st)
				}
			}

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
			if sd != nil {
				// The guard held the main PID while v2 was on trial and
				// gave it back once v2 confirmed.
				eventually(t, "the main PID is the updated daemon's again", func() bool {
					u := sd.unit()
					return len(u.handoffs) == 2 && u.main == daemonPID
				})
				u := sd.unit()
				guard := u.handoffs[0].to
				if u.handoffs[0].from != daemonPID || guard == daemonPID || u.handoffs[1] != (handoff{guard, daemonPID}) {
					t.Fatalf("handoffs = %v, want %d to the guard and back", u.handoffs, daemonPID)
				}
				eventually(t, "systemd's status names "+updV2, func() bool {
					return strings.Contains(sd.unit().status, "connected to "+s.URL+" ("+updV2+")")
				})
			}

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
			if sd != nil {
				// Before the broken build ran, the main PID went to the
				// guard; the guard runs the restored daemon, still the
				// unit's main process.
				u := sd.unit()
				if len(u.handoffs) != 3 || u.handoffs[2].from != daemonPID {
					t.Fatalf("handoffs = %v, want a third from %d to the rollback's guard", u.handoffs, daemonPID)
				}
				restored := u.handoffs[2].to
				if u.main != restored || lockPID(t, state) != restored || !alive(restored) {
					t.Fatalf("systemd's main PID is %d, the guard was %d, the state dir is held by %d (alive %v)", u.main, restored, lockPID(t, state), alive(restored))
				}
				if argv := cmdline(restored); len(argv) < 2 || argv[0] != exe || argv[1] != "runner" || slices.Contains(argv, "update-guard") {
					t.Fatalf("the main PID %d runs %q, want the runner %s", restored, argv, exe)
				}
				eventually(t, "systemd's status shows the failed update", func() bool {
					st := sd.unit().status
					return strings.Contains(st, "connected to "+s.URL+" ("+updV2+")") && strings.Contains(st, "update to "+updBroken+": failed")
				})
				// The daemon took the socket out of its environment: the
				// service and the agent cannot speak for the unit.
				for what, pid := range map[string]int{"service": svcPID, "pod": podPID} {
					env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
					if err != nil || strings.Contains(string(env), "NOTIFY_SOCKET=") {
						t.Fatalf("the %s's environment (%v) has NOTIFY_SOCKET", what, err)
					}
				}
				if u := sd.unit(); len(u.problems) > 0 {
					t.Fatalf("systemd would have seen:\n%s", strings.Join(u.problems, "\n"))
				}
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

// TestRunner_UpdateGuard drives the guard (the real binary) against a
// stand-in new binary on trial, with and without a service manager's
// notification socket (under systemd the guard holds the unit's main PID
// during the trial, handed to it by the previous binary before its exec):
// a new binary that runs but never reaches the control plane is killed
// when --update-rollback-after passes, and one that exits is noticed; both
// times the guard puts the previous binary back, records why, and runs it
// with the runner's arguments under its own PID (the main PID: nothing to
// hand over). A confirmation makes the guard hand the main PID back to the
// new binary and exit. A stop of the unit (SIGTERM to the guard, the main
// process) stops the new binary too and calls the update off: the previous
// binary is back, the record gone, and nothing is started.
func TestRunner_UpdateGuard(t *testing.T) {
	const silent = "#!/bin/sh\nexec sleep 600\n"
	for _, tt := range []struct {
		name    string
		systemd bool
		// newBin is the new binary's script; do is what happens during
		// the trial: nothing ("wait"), "confirm" or "stop".
		newBin, do string
		// wantState is the record's state after ("" gone), wantFailure
		// its failure; wantPrevious says the previous binary is back in
		// place, and ran (rolled back).
		wantState, wantFailure string
		wantPrevious, wantRan  bool
	}{
		{name: "Deadline", newBin: silent, do: "wait", wantState: "rolled-back",
			wantFailure: "v2-silent did not reach the control plane within 1s; rolled back to v1-good", wantPrevious: true, wantRan: true},
		{name: "DeadlineUnderSystemd", systemd: true, newBin: silent, do: "wait", wantState: "rolled-back",
			wantFailure: "v2-silent did not reach the control plane within 1s; rolled back to v1-good", wantPrevious: true, wantRan: true},
		{name: "ExitedUnderSystemd", systemd: true, newBin: "#!/bin/sh\nexit 3\n", do: "wait", wantState: "rolled-back",
			wantFailure: "v2-silent exited before it reached the control plane; rolled back to v1-good", wantPrevious: true, wantRan: true},
		{name: "ConfirmedUnderSystemd", systemd: true, newBin: silent, do: "confirm", wantState: "confirmed"},
		{name: "StoppedUnderSystemd", systemd: true, newBin: silent, do: "stop", wantPrevious: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			if err := os.MkdirAll(state, 0o700); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(dir, "runyard")
			if err := os.WriteFile(exe, []byte(tt.newBin), 0o755); err != nil {
				t.Fatal(err)
			}
			// The previous binary notes its arguments and whether it can
			// speak to the service manager; under one it stays, as the
			// restored daemon would.
			marker := filepath.Join(dir, "ran")
			previous := filepath.Join(dir, "previous")
			script := "#!/bin/sh\necho \"$@\" > " + marker + ".tmp\necho \"$NOTIFY_SOCKET\" >> " + marker + ".tmp\nmv " + marker + ".tmp " + marker + "\n"
			if tt.systemd {
				script += "exec sleep 600\n"
			}
			if err := os.WriteFile(previous, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			// The new binary on trial.
			trial := exec.Command(exe)
			if err := trial.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { trial.Wait(); close(exited) }()
			t.Cleanup(func() { trial.Process.Kill(); <-exited })
			deadline := time.Second
			if tt.do != "wait" {
				deadline = time.Minute
			}
			rec := map[string]any{
				"state": "trial", "target": "v2-silent", "targetSha256": "ab", "previous": "v1-good",
				"previousBinary": previous, "exe": exe, "args": []string{exe, "runner", "--state-dir", state},
				"pid": trial.Process.Pid, "deadline": time.Now().Add(deadline), "rollbackAfter": deadline, "guardMainPid": tt.systemd,
			}
			writeRec := func() {
				b, _ := json.Marshal(rec)
				if err := os.WriteFile(filepath.Join(state, "update.json"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeRec()

			var sd *fakeSystemd
			var env []string
			if tt.systemd {
				sd = newFakeSystemd(t)
				env = append(env, sd.env())
			}
			guard := exec.Command(bin, "runner", "update-guard", "--state-dir", state)
			guard.Env = processEnv(env...)
			var out syncBuffer
			guard.Stdout, guard.Stderr = &out, &out
			if err := guard.Start(); err != nil {
				t.Fatal(err)
			}
			guardDone := make(chan struct{})
			go func() { guard.Wait(); close(guardDone) }()
			t.Cleanup(func() {
				guard.Process.Kill()
				<-guardDone
				if t.Failed() {
					t.Logf("guard output:\n%s", out.String())
				}
			})
			if sd != nil {
				// As after the previous binary's MAINPID= handoff.
				sd.watch(t, guard.Process.Pid)
			}
			// The guard's first look at the record takes the lock (its
			// signal handling is in place long before).
			eventually(t, "the guard looks at the record", func() bool {
				_, err := os.Stat(filepath.Join(state, "update.lock"))
				return err == nil
			})
			switch tt.do {
			case "confirm":
				rec["state"] = "confirmed"
				writeRec()
			case "stop":
				guard.Process.Signal(syscall.SIGTERM)
			}

			if tt.wantRan {
				eventually(t, "the previous binary runs", func() bool {
					_, err := os.Stat(marker)
					return err == nil
				})
				got, _ := os.ReadFile(marker)
				lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
				if lines[0] != "runner --state-dir "+state {
					t.Fatalf("the previous binary ran with %q, want the runner's arguments", lines[0])
				}
				wantSocket := ""
				if sd != nil {
					wantSocket = sd.l.Addr
				}
				if len(lines) != 2 || lines[1] != wantSocket {
					t.Fatalf("the previous binary ran with NOTIFY_SOCKET %q, want %q", lines[1:], wantSocket)
				}
				if sd != nil {
					// It runs under the guard's PID, the main PID.
					if argv := cmdline(guard.Process.Pid); !slices.Contains(argv, "sleep") && !slices.Contains(argv, previous) {
						t.Fatalf("the guard's PID runs %q, want the previous binary", argv)
					}
				} else {
					<-guardDone
				}
			} else {
				select {
				case <-guardDone:
				case <-time.After(30 * time.Second):
					t.Fatal("the guard did not exit")
				}
				if code := guard.ProcessState.ExitCode(); code != 0 {
					t.Fatalf("the guard exited %d, want 0", code)
				}
				if _, err := os.Stat(marker); err == nil {
					t.Fatal("the previous binary ran")
				}
			}
			if tt.do != "confirm" {
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					t.Fatal("the new binary still runs")
				}
			} else if !alive(trial.Process.Pid) {
				t.Fatal("the confirmed binary was stopped")
			}
			if got := sameFile(t, exe, previous); got != tt.wantPrevious {
				t.Fatalf("the previous binary is in place: %v, want %v", got, tt.wantPrevious)
			}
			var after struct {
				State   string `json:"state"`
				Failure string `json:"failure"`
			}
			b, err := os.ReadFile(filepath.Join(state, "update.json"))
			switch {
			case tt.wantState == "" && err == nil:
				t.Fatalf("the update record is still there: %s", b)
			case tt.wantState != "":
				if err := json.Unmarshal(b, &after); err != nil {
					t.Fatal(err)
				}
				if after.State != tt.wantState || after.Failure != tt.wantFailure {
					t.Fatalf("update record = %+v, want state %q, failure %q", after, tt.wantState, tt.wantFailure)
				}
			}
			if sd == nil {
				return
			}
			// What systemd saw: the main PID moved only on confirmation,
			// to the new binary; nothing was refused.
			u := sd.unit()
			var wantHandoffs []handoff
			if tt.do == "confirm" {
				wantHandoffs = []handoff{{guard.Process.Pid, trial.Process.Pid}}
			}
			if !slices.Equal(u.handoffs, wantHandoffs) {
				t.Fatalf("handoffs = %v, want %v", u.handoffs, wantHandoffs)
			}
			for _, p := range u.problems {
				// Stopping the unit ends its main process: expected.
				if tt.do == "stop" && strings.Contains(p, "exited without a handoff") {
					continue
				}
				t.Errorf("systemd would have seen: %s", p)
			}
			if tt.wantRan && !strings.Contains(u.status, "rolled back to v1-good") {
				t.Errorf("status = %q, want the rollback", u.status)
			}
		})
	}
}
