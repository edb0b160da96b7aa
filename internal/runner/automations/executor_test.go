package automations

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
)

// deadline bounds every wait; a passing test never waits for it.
const deadline = 20 * time.Second

// recorder collects an executor's events.
type recorder struct {
	mu       sync.Mutex
	services map[string][]ServiceStatus
	execs    map[string][]ExecutionStatus
	changed  chan struct{}
}

func open(t *testing.T, cfg Config) (*Executor, *recorder) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.ReadyInterval == 0 {
		cfg.ReadyInterval = 50 * time.Millisecond
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 5 * time.Second
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{services: map[string][]ServiceStatus{}, execs: map[string][]ExecutionStatus{}, changed: make(chan struct{}, 1)}
	go func() {
		for ev := range e.Events() {
			rec.mu.Lock()
			if ev.Service != nil {
				rec.services[ev.Service.ID] = append(rec.services[ev.Service.ID], *ev.Service)
			}
			if ev.Execution != nil {
				rec.execs[ev.Execution.ID] = append(rec.execs[ev.Execution.ID], *ev.Execution)
			}
			rec.mu.Unlock()
			select {
			case rec.changed <- struct{}{}:
			default:
			}
		}
	}()
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAndClose(t, e) })
	return e, rec
}

// stopAndClose ends what e runs (Close alone leaves services running for
// the next runner process) and closes it.
func stopAndClose(t *testing.T, e *Executor) {
	e.StopAll()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		e.mu.Lock()
		busy := false
		if e.closed {
			e.mu.Unlock()
			break
		}
		for _, s := range e.services {
			s.mu.Lock()
			busy = busy || s.running || s.adopt != ""
			s.mu.Unlock()
		}
		e.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	e.Close(ctx)
}

func (r *recorder) service(id string) (ServiceStatus, []Phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var phases []Phase
	for _, s := range r.services[id] {
		if len(phases) == 0 || phases[len(phases)-1] != s.Phase {
			phases = append(phases, s.Phase)
		}
	}
	if len(r.services[id]) == 0 {
		return ServiceStatus{}, nil
	}
	return r.services[id][len(r.services[id])-1], phases
}

func (r *recorder) execution(id string) ExecutionStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.execs[id]) == 0 {
		return ExecutionStatus{}
	}
	return r.execs[id][len(r.execs[id])-1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recorder) waitService(t *testing.T, id string, phase Phase) ServiceStatus {
	t.Helper()
	var last ServiceStatus
	waitFor(t, fmt.Sprintf("service %s is %s", id, phase), func() bool {
		last, _ = r.service(id)
		return last.Phase == phase
	})
	return last
}

func (r *recorder) waitExecution(t *testing.T, id string) ExecutionStatus {
	t.Helper()
	var last ExecutionStatus
	waitFor(t, "execution "+id+" ends", func() bool {
		last = r.execution(id)
		return last.Phase.Final()
	})
	return last
}

// marker is a unique string that shows in the command lines of a test's
// processes, so that leftovers can be found.
func marker(t *testing.T) string {
	return fmt.Sprintf("runyard-automation-%d-%s", time.Now().UnixNano(), strings.ReplaceAll(t.Name(), "/", "-"))
}

// processes returns the pids whose command line contains m.
func processes(m string) []string {
	out, _ := exec.Command("pgrep", "-f", m).Output()
	return strings.Fields(string(out))
}

func readLog(t *testing.T, e *Executor, id string) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.ReadLog(context.Background(), id, false, &b); err != nil {
		t.Fatalf("read log %s: %v", id, err)
	}
	return b.String()
}

func cmd(dir, script string) Command { return Command{Script: script, Dir: dir} }

func TestServices(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   func(dir, m string) ServiceSpec
		stop   bool
		phases []Phase
		fail   string // part of the final failureMessage
		log    string // part of the log
	}{
		{
			name: "ReadyProbe",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: cmd(dir, "echo up; touch ready; exec -a "+m+" sleep 1000"), Ready: cmd(dir, "test -f ready")}
			},
			stop:   true,
			phases: []Phase{PhaseStarting, PhaseRunning, PhaseStopping, PhaseStopped},
			log:    "ready probe passed",
		},
		{
			name:   "NoReadyIsRunningAtOnce",
			spec:   func(dir, m string) ServiceSpec { return ServiceSpec{Start: cmd(dir, "exec -a "+m+" sleep 1000")} },
			stop:   true,
			phases: []Phase{PhaseRunning, PhaseStopping, PhaseStopped},
		},
		{
			name:   "StartExitsZero",
			spec:   func(dir, m string) ServiceSpec { return ServiceSpec{Start: cmd(dir, "echo done")} },
			phases: []Phase{PhaseRunning, PhaseStopped},
			log:    "done",
		},
		{
			name:   "StartFails",
			spec:   func(dir, m string) ServiceSpec { return ServiceSpec{Start: cmd(dir, "echo broken >&2; exit 7")} },
			phases: []Phase{PhaseRunning, PhaseFailed},
			fail:   "exit code 7",
			log:    "broken",
		},
		{
			name: "StopCommandFails",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: cmd(dir, "exec -a "+m+" sleep 1000"), Stop: cmd(dir, "echo cannot stop; exit 4")}
			},
			stop:   true,
			phases: []Phase{PhaseRunning, PhaseStopping, PhaseFailed},
			fail:   "stop command failed: exit code 4",
		},
		{
			name: "StopCommandStops",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: cmd(dir, "echo $$ > pid; exec -a "+m+" sleep 1000"), Stop: cmd(dir, "kill $(cat pid)")}
			},
			stop:   true,
			phases: []Phase{PhaseRunning, PhaseStopping, PhaseStopped},
		},
		{
			// A service that ignores SIGTERM, with children that do too: all
			// are killed once the grace period passes.
			name: "IgnoresSIGTERM",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: cmd(dir, "trap '' TERM; (trap '' TERM; exec -a "+m+" sleep 1000) & (trap '' TERM; exec -a "+m+"-2 sleep 1000) & while :; do sleep 1; done")}
			},
			stop:   true,
			phases: []Phase{PhaseRunning, PhaseStopping, PhaseStopped},
			log:    "did not stop within",
		},
		{
			name: "StopCommandHangs",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: cmd(dir, "exec -a "+m+" sleep 1000"), Stop: cmd(dir, "exec -a "+m+"-stop sleep 1000")}
			},
			stop:   true,
			phases: []Phase{PhaseRunning, PhaseStopping, PhaseFailed},
			fail:   "did not finish within the 300ms grace period",
		},
		{
			name: "DockerWithoutEngine",
			spec: func(dir, m string) ServiceSpec {
				return ServiceSpec{Start: Command{Script: "true", Dir: dir, Docker: &Docker{Image: "alpine"}}}
			},
			phases: []Phase{PhaseRunning, PhaseFailed},
			fail:   "no Docker engine",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, rec := open(t, Config{StopGrace: 300 * time.Millisecond})
			m := marker(t)
			sp := tc.spec(t.TempDir(), m)
			sp.ID, sp.Session, sp.Run = "svc", "s1", true
			if err := e.EnsureServices([]ServiceSpec{sp}); err != nil {
				t.Fatal(err)
			}
			if tc.stop {
				rec.waitService(t, "svc", tc.phases[len(tc.phases)-3])
				waitFor(t, "the service's process runs", func() bool { return len(processes(m)) > 0 })
				sp.Run = false
				if err := e.EnsureServices([]ServiceSpec{sp}); err != nil {
					t.Fatal(err)
				}
			}
			last := rec.waitService(t, "svc", tc.phases[len(tc.phases)-1])
			if _, phases := rec.service("svc"); fmt.Sprint(phases) != fmt.Sprint(tc.phases) {
				t.Errorf("phases %v, want %v", phases, tc.phases)
			}
			if !strings.Contains(last.FailureMessage, tc.fail) || (tc.fail == "" && last.FailureMessage != "") {
				t.Errorf("failureMessage %q, want %q", last.FailureMessage, tc.fail)
			}
			if tc.log != "" {
				if got := readLog(t, e, last.LogID); !strings.Contains(got, tc.log) {
					t.Errorf("log %q, want %q", got, tc.log)
				}
			}
			if left := processes(m); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
			// An ended session does not run again; a new session does.
			time.Sleep(100 * time.Millisecond)
			if _, phases := rec.service("svc"); len(phases) != len(tc.phases) {
				t.Errorf("the ended session ran again: %v", phases)
			}
		})
	}
}

func TestServices_NewSessionRestarts(t *testing.T) {
	e, rec := open(t, Config{})
	dir := t.TempDir()
	sp := ServiceSpec{ID: "once", Session: "1", Run: true, Start: cmd(dir, "echo run >> runs")}
	if err := e.EnsureServices([]ServiceSpec{sp}); err != nil {
		t.Fatal(err)
	}
	rec.waitService(t, "once", PhaseStopped)
	e.EnsureServices([]ServiceSpec{sp})
	sp.Session = "2"
	e.EnsureServices([]ServiceSpec{sp})
	waitFor(t, "the second session ran", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "runs"))
		return strings.Count(string(b), "run") == 2
	})
	time.Sleep(100 * time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(dir, "runs")); strings.Count(string(b), "run") != 2 {
		t.Fatalf("runs = %q, want two", b)
	}
}

// TestServices_OutliveTheRunner: a runner process that stops leaves its
// services running under their holders; the next one adopts them (same
// process, status continuous, not started again) and can stop them.
func TestServices_OutliveTheRunner(t *testing.T) {
	state := t.TempDir()
	dir := t.TempDir()
	m := marker(t)
	sp := ServiceSpec{ID: "web", Session: "1", Run: true, Start: cmd(dir, "echo started >> starts; exec -a "+m+" sleep 1000")}
	e, rec := open(t, Config{Dir: state})
	e.EnsureServices([]ServiceSpec{sp})
	before := rec.waitService(t, "web", PhaseRunning)
	waitFor(t, "the service's process", func() bool { return len(processes(m)) == 1 })
	pids := processes(m)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := processes(m); fmt.Sprint(left) != fmt.Sprint(pids) {
		t.Fatalf("processes after Close = %v, want %v still running", left, pids)
	}
	e2, rec2 := open(t, Config{Dir: state})
	waitFor(t, "the adopted service's status", func() bool {
		st, _ := rec2.service("web")
		return st.Phase == PhaseRunning && st.LogID == before.LogID && st.Session == "1"
	})
	e2.EnsureServices([]ServiceSpec{sp})
	// Give a wrong restart the time to show.
	time.Sleep(300 * time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(dir, "starts")); strings.Count(string(b), "started") != 1 {
		t.Errorf("starts = %q: the service was started again", b)
	}
	if now := processes(m); fmt.Sprint(now) != fmt.Sprint(pids) {
		t.Errorf("processes = %v, want the same %v", now, pids)
	}
	for _, st := range func() []Phase { _, p := rec2.service("web"); return p }() {
		if st != PhaseRunning {
			t.Errorf("the adopted service went %s: its status must stay continuous", st)
		}
	}
	sp.Run = false
	e2.EnsureServices([]ServiceSpec{sp})
	rec2.waitService(t, "web", PhaseStopped)
	waitFor(t, "no process left", func() bool { return len(processes(m)) == 0 })
}

// TestServices_Held covers what the holder brings a service: masked
// secrets, $RUNYARD_OUTPUT, and a forced removal that does not wait for
// the grace period.
func TestServices_Held(t *testing.T) {
	t.Run("SecretMaskedAndOutput", func(t *testing.T) {
		e, rec := open(t, Config{})
		dir := t.TempDir()
		c := Command{Script: `echo "token is $TOKEN"; echo url=http://x >> "$RUNYARD_OUTPUT"; touch ready; sleep 1000`, Dir: dir,
			Env: map[string]string{"TOKEN": "s3cr3t-v4lue"}, Mask: []string{"s3cr3t-v4lue"}}
		e.EnsureServices([]ServiceSpec{{ID: "svc", Session: "1", Run: true, Start: c, Ready: Command{Script: "test -f ready", Dir: dir}}})
		st := rec.waitService(t, "svc", PhaseRunning)
		if st.Output["url"] != "http://x" {
			t.Errorf("output = %v, want url=http://x", st.Output)
		}
		waitFor(t, "the log line", func() bool { return strings.Contains(readLog(t, e, st.LogID), "token is") })
		if l := readLog(t, e, st.LogID); strings.Contains(l, "s3cr3t-v4lue") || !strings.Contains(l, "token is ***") {
			t.Errorf("log = %q, want the secret masked", l)
		}
	})
	t.Run("ForcedRemovalKillsAtOnce", func(t *testing.T) {
		e, rec := open(t, Config{StopGrace: time.Hour})
		dir := t.TempDir()
		m := marker(t)
		e.EnsureServices([]ServiceSpec{{ID: "stubborn", Session: "1", Run: true, Start: cmd(dir, "trap '' TERM; exec -a "+m+" sleep 1000")}})
		rec.waitService(t, "stubborn", PhaseRunning)
		e.EnsureServices(nil)
		// The grace period is an hour: only a kill ends it within the
		// test's deadline.
		waitFor(t, "the process to be killed", func() bool { return len(processes(m)) == 0 })
	})
}

func TestExecutions(t *testing.T) {
	task := func(dir, id, script string) StepSpec {
		return StepSpec{ID: id, Task: &Command{Script: script, Dir: dir}}
	}
	t.Run("DiamondWithOutputs", func(t *testing.T) {
		e, rec := open(t, Config{})
		dir := t.TempDir()
		x := ExecutionSpec{ID: "x1", Groups: [][]StepSpec{
			{task(dir, "a", "echo a >> order; echo who=a >> $RUNYARD_OUTPUT")},
			{task(dir, "b", "sleep 0.2; echo b >> order"), task(dir, "c", "echo c >> order")},
			{task(dir, "d", "echo d >> order; echo 'msg=hello world' >> $RUNYARD_OUTPUT")},
		}}
		e.EnsureExecutions([]ExecutionSpec{x})
		st := rec.waitExecution(t, "x1")
		if st.Phase != ExecutionSucceeded || st.CompletedAt.IsZero() || len(st.Steps) != 4 {
			t.Fatalf("execution %+v", st)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "order"))
		if lines := strings.Fields(string(b)); lines[0] != "a" || lines[3] != "d" {
			t.Errorf("order %v: a first, d last", lines)
		}
		if st.Steps[0].Outputs["who"] != "a" || st.Steps[3].Outputs["msg"] != "hello world" {
			t.Errorf("outputs %v / %v", st.Steps[0].Outputs, st.Steps[3].Outputs)
		}
		// Started again (a reconnect's re-sent set): nothing runs twice.
		e.EnsureExecutions([]ExecutionSpec{x})
		time.Sleep(200 * time.Millisecond)
		if b2, _ := os.ReadFile(filepath.Join(dir, "order")); !bytes.Equal(b, b2) {
			t.Errorf("the execution ran again: %q", b2)
		}
	})
	t.Run("FailingMiddleStep", func(t *testing.T) {
		e, rec := open(t, Config{StopGrace: 300 * time.Millisecond})
		dir := t.TempDir()
		m := marker(t)
		x := ExecutionSpec{ID: "x2", Groups: [][]StepSpec{
			{task(dir, "a", "true")},
			{task(dir, "b", "echo failing; exit 5"), task(dir, "slow", "exec -a "+m+" sleep 1000")},
			{task(dir, "never", "touch never")},
		}}
		e.EnsureExecutions([]ExecutionSpec{x})
		st := rec.waitExecution(t, "x2")
		if st.Phase != ExecutionFailed || !strings.Contains(st.FailureMessage, "step b") || !strings.Contains(st.FailureMessage, "exit code 5") {
			t.Fatalf("execution %+v", st)
		}
		if len(st.Steps) != 3 {
			t.Errorf("steps %+v: the third group must not start", st.Steps)
		}
		if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
			t.Error("a later group ran")
		}
		if left := processes(m); len(left) > 0 {
			t.Errorf("the failed group's other step is still running: %v", left)
		}
		if got := readLog(t, e, st.Steps[1].LogID); !strings.Contains(got, "failing") {
			t.Errorf("log of b: %q", got)
		}
	})
	t.Run("StopMidRun", func(t *testing.T) {
		e, rec := open(t, Config{StopGrace: 300 * time.Millisecond})
		dir := t.TempDir()
		m := marker(t)
		x := ExecutionSpec{ID: "x3", Groups: [][]StepSpec{{task(dir, "long", "trap '' TERM; exec -a "+m+" sleep 1000")}, {task(dir, "after", "touch after")}}}
		e.EnsureExecutions([]ExecutionSpec{x})
		waitFor(t, "the step runs", func() bool { return len(processes(m)) > 0 })
		x.Stop = true
		e.EnsureExecutions([]ExecutionSpec{x})
		st := rec.waitExecution(t, "x3")
		if st.Phase != ExecutionStopped || st.Steps[0].Phase != StepStopped || len(st.Steps) != 1 {
			t.Fatalf("execution %+v", st)
		}
		if left := processes(m); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
	})
	t.Run("ServiceStepAwaitsRunning", func(t *testing.T) {
		e, rec := open(t, Config{})
		dir := t.TempDir()
		m := marker(t)
		e.EnsureServices([]ServiceSpec{{ID: "db", Session: "1", Run: true, Start: cmd(dir, "sleep 0.3; touch up; exec -a "+m+" sleep 1000"), Ready: cmd(dir, "test -f up")}})
		e.EnsureExecutions([]ExecutionSpec{{ID: "x4", Groups: [][]StepSpec{{{ID: "db", ServiceID: "db"}}, {task(dir, "use", "test -f up")}}}})
		if st := rec.waitExecution(t, "x4"); st.Phase != ExecutionSucceeded {
			t.Fatalf("execution %+v", st)
		}
	})
	// A runner process that stops leaves its steps running under their
	// holders; the next one adopts them and carries on with the plan,
	// running nothing twice.
	t.Run("ResumedAfterRestart", func(t *testing.T) {
		state := t.TempDir()
		dir := t.TempDir()
		m := marker(t)
		x := ExecutionSpec{ID: "x5", Groups: [][]StepSpec{
			{task(dir, "first", "echo started >> starts; echo k=v >> $RUNYARD_OUTPUT; exec -a "+m+" sh -c 'while [ ! -f go ]; do sleep 0.05; done'")},
			{task(dir, "second", "echo second >> order")},
		}}
		e, rec := open(t, Config{Dir: state})
		e.EnsureExecutions([]ExecutionSpec{x})
		waitFor(t, "the step runs", func() bool { return len(processes(m)) > 0 })
		pids := processes(m)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		e.Close(ctx)
		if st := rec.execution("x5"); st.Phase != ExecutionRunning {
			t.Fatalf("after Close: %+v, want it still running", st)
		}
		// The step's shell (its loop's forks come and go).
		if left := processes(m); !slices.Contains(left, pids[0]) {
			t.Fatalf("processes after Close = %v, want %s still running", left, pids[0])
		}
		e2, rec2 := open(t, Config{Dir: state})
		e2.EnsureExecutions([]ExecutionSpec{x})
		if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		st := rec2.waitExecution(t, "x5")
		if st.Phase != ExecutionSucceeded || len(st.Steps) != 2 || st.Steps[0].Outputs["k"] != "v" {
			t.Fatalf("resumed execution: %+v", st)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "starts")); string(b) != "started\n" {
			t.Errorf("starts = %q: the first step ran more than once", b)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "order")); string(b) != "second\n" {
			t.Errorf("order = %q: the second group did not run once", b)
		}
	})

	t.Run("RemovedWhileNoRunnerWatched", func(t *testing.T) {
		state := t.TempDir()
		dir := t.TempDir()
		m := marker(t)
		e, _ := open(t, Config{Dir: state})
		e.EnsureExecutions([]ExecutionSpec{{ID: "x6", Groups: [][]StepSpec{{task(dir, "long", "exec -a "+m+" sleep 1000")}}}})
		waitFor(t, "the step runs", func() bool { return len(processes(m)) > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		e.Close(ctx)
		e2, rec2 := open(t, Config{Dir: state})
		e2.EnsureExecutions(nil)
		if st := rec2.waitExecution(t, "x6"); st.Phase != ExecutionStopped {
			t.Errorf("removed execution: %+v, want stopped", st)
		}
		waitFor(t, "the step's process to be gone", func() bool { return len(processes(m)) == 0 })
	})
}

func TestReadLog_FollowAndCap(t *testing.T) {
	e, rec := open(t, Config{LogCap: 1000})
	dir := t.TempDir()
	e.EnsureExecutions([]ExecutionSpec{{ID: "chatty", Groups: [][]StepSpec{{{ID: "t", Task: &Command{Script: "echo first; sleep 0.3; yes line | head -n 1000", Dir: dir}}}}}})
	var logID string
	waitFor(t, "the step has a log", func() bool {
		st := rec.execution("chatty")
		if len(st.Steps) > 0 {
			logID = st.Steps[0].LogID
		}
		return logID != ""
	})
	var b bytes.Buffer
	if err := e.ReadLog(context.Background(), logID, true, &b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	if !strings.HasPrefix(got, "first") || !strings.Contains(got, "reached its cap of 1000 bytes") || len(got) > 1200 {
		t.Errorf("followed log (%d bytes): %q", len(got), got)
	}
	if err := e.ReadLog(context.Background(), "nope", false, &b); err != ErrUnknownLog {
		t.Errorf("unknown log: %v", err)
	}
}

// TestPruneLogs_WhileRunning checks that logs past their retention go while
// the executor runs, and that the log of a run still going stays however
// long ago it was last written.
func TestPruneLogs_WhileRunning(t *testing.T) {
	e, rec := open(t, Config{LogRetention: time.Hour, PruneInterval: 20 * time.Millisecond})
	dir := t.TempDir()
	m := marker(t)
	e.EnsureExecutions([]ExecutionSpec{{ID: "done", Groups: [][]StepSpec{{{ID: "t", Task: &Command{Script: "echo old", Dir: dir}}}}}})
	ended := rec.waitExecution(t, "done")
	e.EnsureServices([]ServiceSpec{{ID: "quiet", Session: "1", Run: true, Start: Command{Script: "echo once; exec sleep 600 # " + m, Dir: dir}}})
	running := rec.waitService(t, "quiet", PhaseRunning)
	waitFor(t, "the service's first line", func() bool { return strings.Contains(readLog(t, e, running.LogID), "once") })
	old := time.Now().Add(-2 * time.Hour)
	for _, id := range []string{ended.Steps[0].LogID, running.LogID} {
		if err := os.Chtimes(filepath.Join(e.cfg.Dir, logsDir, id+".log"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the ended run's log is pruned", func() bool {
		return e.ReadLog(context.Background(), ended.Steps[0].LogID, false, io.Discard) == ErrUnknownLog
	})
	if got := readLog(t, e, running.LogID); !strings.Contains(got, "once") {
		t.Errorf("the running service's log = %q, want it kept", got)
	}
}

// TestRecordedNotStarted: a runner process that recorded a service run's
// or a task step's holder directory and died before it handed the command
// to a holder (no directory yet, or an empty one) leaves work that never
// ran. The next runner process starts it (the service runs, the execution
// succeeds), instead of failing it as work it could not take over.
func TestRecordedNotStarted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		empty bool // the directory was made, the hand-over not
	}{{"NoDirectory", false}, {"EmptyDirectory", true}} {
		t.Run(tc.name, func(t *testing.T) {
			state, dir := t.TempDir(), t.TempDir()
			m := marker(t)
			sp := ServiceSpec{ID: "web", Session: "1", Run: true, Start: cmd(dir, "echo started >> svc-starts; exec -a "+m+"-web sleep 1000")}
			x := ExecutionSpec{ID: "x", Groups: [][]StepSpec{{{ID: "step", Task: &Command{Dir: dir,
				Script: "echo started >> step-starts; exec -a " + m + "-step sh -c 'while [ ! -f go ]; do sleep 0.05; done'"}}}}}
			e, rec := open(t, Config{Dir: state})
			e.EnsureServices([]ServiceSpec{sp})
			e.EnsureExecutions([]ExecutionSpec{x})
			rec.waitService(t, "web", PhaseRunning)
			started := func(f string) int {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				return strings.Count(string(b), "started")
			}
			waitFor(t, "the first runs", func() bool { return started("svc-starts") == 1 && started("step-starts") == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			e.Close(ctx)
			// What a runner process that died before the hand-overs leaves:
			// the records name holder directories that hold nothing.
			holder.KillUnder(state)
			waitFor(t, "the first runs to be gone", func() bool { return len(processes(m)) == 0 })
			holders, err := os.ReadDir(filepath.Join(state, holdersDir))
			if err != nil || len(holders) != 2 {
				t.Fatalf("holder directories: %v, %v; want 2", holders, err)
			}
			for _, h := range holders {
				p := filepath.Join(state, holdersDir, h.Name())
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
				if tc.empty {
					if err := os.Mkdir(p, 0o700); err != nil {
						t.Fatal(err)
					}
				}
			}

			e2, rec2 := open(t, Config{Dir: state})
			e2.EnsureServices([]ServiceSpec{sp})
			e2.EnsureExecutions([]ExecutionSpec{x})
			waitFor(t, "the service's and the step's new runs", func() bool { return started("svc-starts") == 2 && started("step-starts") == 2 })
			if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if st := rec2.waitExecution(t, "x"); st.Phase != ExecutionSucceeded {
				t.Errorf("execution after the restart: %+v, want succeeded", st)
			}
			if st, phases := rec2.service("web"); st.Phase != PhaseRunning || slices.Contains(phases, PhaseFailed) {
				t.Errorf("service after the restart: %+v (phases %v), want running, never failed", st, phases)
			}
			for _, f := range []string{"svc-starts", "step-starts"} {
				if n := started(f); n != 2 {
					t.Errorf("%s: %d starts, want the first run and the new one", f, n)
				}
			}
		})
	}
}
