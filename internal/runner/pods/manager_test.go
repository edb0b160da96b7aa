package pods

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// The tests run real processes on real PTYs. They wait by polling with
// generous deadlines and never assert how long anything took.

const deadline = 20 * time.Second

func TestMain(m *testing.M) {
	if dir := os.Getenv("RUNYARD_PODS_HELPER_DIR"); dir != "" {
		if os.Getenv("RUNYARD_PODS_HELPER_MODE") == "handover" {
			handoverRunner(dir, os.Getenv("RUNYARD_PODS_HELPER_MARKER"))
		}
		crashingRunner(dir, os.Getenv("RUNYARD_PODS_HELPER_MARKER"))
		return
	}
	// As a child subreaper (like a runner that is PID 1 in a container),
	// this process inherits the pods' orphans, so the tests also see that
	// the manager reaps them.
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_CHILD_SUBREAPER):", e)
		os.Exit(1)
	}
	// Pods outlive their managers: what a failed test leaves is killed.
	os.Exit(holder.RunIsolated(m.Run))
}

// crashingRunner is the helper process of TestManager_SweepsLeftovers: a
// runner that starts a pod, says so, and waits to be SIGKILLed.
func crashingRunner(dir, marker string) {
	m, err := New(Config{StateDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = m.Open(context.Background())
	}
	if err == nil {
		err = m.Ensure([]Spec{{Key: "leftover", Argv: []string{"bash", fixture("stubborn.sh"), marker}}})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for {
		b, _ := m.Scrollback("leftover")
		if bytes.Contains(b, []byte("ready")) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	select {}
}

// handoverRunner is the helper process of
// TestManager_RunnerDiesWhileHolderStarts: a runner that starts a first pod
// (which fills its pool of spare holders), says so, and, once told on
// stdin, starts the pod "second", which its test keeps from starting.
func handoverRunner(dir, marker string) {
	m, err := New(Config{StateDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = m.Open(context.Background())
	}
	if err == nil {
		err = m.Ensure([]Spec{{Key: "first", Argv: []string{"true"}}})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	_ = m.Ensure([]Spec{{Key: "first", Argv: []string{"true"}}, {Key: "second", Argv: []string{"bash", fixture("stubborn.sh"), marker}}})
	select {}
}

func fixture(name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return p
}

// MustOpen returns an open Manager on a new state directory (or cfg's),
// closed when the test ends, with an event recorder.
func MustOpen(tb testing.TB, cfg Config) (*Manager, *recorder) {
	tb.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	rec := record(m)
	if err := m.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		// Close leaves pods running for the next runner process: a test
		// ends its own.
		stopCtx, stopCancel := context.WithTimeout(ctx, time.Second)
		defer stopCancel()
		m.StopAll(stopCtx, "the test ended")
		if err := m.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
		mustNoZombies(tb)
	})
	return m, rec
}

// recorder keeps every event a Manager delivers.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func record(m *Manager) *recorder {
	r := &recorder{}
	go func() {
		for ev := range m.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) of(key string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Key == key {
			out = append(out, ev)
		}
	}
	return out
}

// waitFinal waits for the final event of key and checks that running came
// first, when it expects a running event.
func (r *recorder) waitFinal(tb testing.TB, key string, started bool) Event {
	tb.Helper()
	var evs []Event
	poll(tb, "final event of "+key, func() bool {
		evs = r.of(key)
		return len(evs) > 0 && evs[len(evs)-1].Status.Final()
	})
	final := evs[len(evs)-1]
	if started && (len(evs) != 2 || evs[0].Status != StatusRunning) {
		tb.Errorf("events of %s = %+v, want running then %s", key, evs, final.Status)
	}
	if final.FinishedAt.IsZero() || (started && final.StartedAt.IsZero()) {
		tb.Errorf("final event %+v: want StartedAt and FinishedAt", final)
	}
	return final
}

func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	pollSays(tb, what, cond, func() string { return "" })
}

// pollSays is poll whose failure message adds what says then.
func pollSays(tb testing.TB, what string, cond func() bool, says func() string) {
	tb.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			tb.Fatalf("timed out waiting for %s %s", what, says())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustScrollbackContain(tb testing.TB, m *Manager, key, want string) {
	tb.Helper()
	var b []byte
	poll(tb, fmt.Sprintf("%q in the scrollback of %s", want, key), func() bool {
		var err error
		b, err = m.Scrollback(key)
		if err != nil {
			tb.Fatal(err)
		}
		return bytes.Contains(b, []byte(want))
	})
}

// reader collects an attachment's output.
type reader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func read(a *Attachment) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for chunk := range a.Output() {
			r.mu.Lock()
			r.buf.Write(chunk)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *reader) mustSee(tb testing.TB, want string) {
	tb.Helper()
	poll(tb, fmt.Sprintf("%q in the attached output", want), func() bool { return strings.Contains(r.String(), want) })
}

func mustWrite(tb testing.TB, w io.Writer, s string) {
	tb.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		tb.Fatalf("write %q: %v", s, err)
	}
}

func agent(key string, extra ...string) Spec {
	return Spec{
		Key:  key,
		Argv: append([]string{"sh", fixture("agent.sh")}, extra...),
		Env:  map[string]string{"RUNYARD_INITIAL_PROMPT": "Fix the login bug", "RUNYARD_POD_KEY": key},
	}
}

// processes returns the pids whose command line contains marker.
func processes(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(marker)) {
			out = append(out, pid)
		}
	}
	return out
}

func mustNoProcesses(tb testing.TB, marker string) {
	tb.Helper()
	poll(tb, "no process with "+marker+" in its command line", func() bool { return len(processes(marker)) == 0 })
}

// mustNoZombies checks that every child this process inherited or started
// was reaped.
func mustNoZombies(tb testing.TB) {
	tb.Helper()
	var zombies []int
	pollSays(tb, "no unreaped children", func() bool {
		zombies = zombies[:0]
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			s, err := proc.ReadStat(pid)
			if err == nil && s.State == 'Z' && s.PPid == os.Getpid() {
				zombies = append(zombies, pid)
			}
		}
		return len(zombies) == 0
	}, func() string { return describeProcs(zombies) })
}

// describeProcs names pids for a failure message: pid, state, name and
// session, so a leaked child says what it was.
func describeProcs(pids []int) string {
	var out []string
	for _, pid := range pids {
		s, err := proc.ReadStat(pid)
		if err != nil {
			out = append(out, fmt.Sprintf("%d (gone)", pid))
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		out = append(out, fmt.Sprintf("%d %c %s session %d", pid, s.State, strings.TrimSpace(string(comm)), s.Session))
	}
	return strings.Join(out, "; ")
}

// sparesOf lists the spare holders of runner process pid: its children
// that have not entered a holder directory (their working directory is
// "/").
func sparesOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := proc.ReadStat(child); err == nil && s.PPid == pid {
			if cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd"); cwd == "/" {
				out = append(out, child)
			}
		}
	}
	return out
}

// reapSpares reaps spares, the spare holders of a killed runner process:
// they end once they read that it is gone, and are handed to this process,
// a subreaper, as an init reaps them for a real runner.
func reapSpares(tb testing.TB, spares []int) {
	tb.Helper()
	for _, pid := range spares {
		poll(tb, "a dead runner's spare holder to end", func() bool {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			return got == pid || err != nil
		})
	}
	// One it was starting as it died ends too, at any time: reap such
	// ones (session leaders named exe) until the test ends.
	stop := make(chan struct{})
	tb.Cleanup(func() { close(stop) })
	go reapStrays(stop)
}

func reapStrays(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if st, err := proc.ReadStat(pid); err == nil && st.State == 'Z' && st.PPid == os.Getpid() && st.Session == pid {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			}
		}
	}
}

func uniqueMarker(t *testing.T) string {
	return fmt.Sprintf("rymark%d%d", os.Getpid(), time.Now().UnixNano())
}

func TestManager_PromptAndInput(t *testing.T) {
	m, rec := MustOpen(t, Config{})
	if err := m.Ensure([]Spec{agent("p1")}); err != nil {
		t.Fatal(err)
	}
	mustScrollbackContain(t, m, "p1", "prompt: Fix the login bug")
	mustScrollbackContain(t, m, "p1", "key: p1")

	a, err := m.Attach("p1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(a.Scrollback, []byte("prompt: Fix the login bug")) {
		t.Errorf("attach scrollback = %q, want the prompt", a.Scrollback)
	}
	out := read(a)
	mustWrite(t, a, "hello agent\n")
	out.mustSee(t, "echo: hello agent")

	if got, err := m.Get("p1"); err != nil || got.Status != StatusRunning {
		t.Errorf("Get = %+v, %v; want running", got, err)
	}
	if evs := rec.of("p1"); len(evs) != 1 || evs[0].Status != StatusRunning || evs[0].StartedAt.IsZero() {
		t.Errorf("events = %+v, want one running event", evs)
	}
}

func TestManager_Reattach(t *testing.T) {
	m, _ := MustOpen(t, Config{})
	if err := m.Ensure([]Spec{agent("p1")}); err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach("p1")
	if err != nil {
		t.Fatal(err)
	}
	out := read(a)
	mustWrite(t, a, "first\n")
	out.mustSee(t, "echo: first")

	t.Run("DetachKeepsTheSession", func(t *testing.T) {
		a.Detach()
		a.Detach() // twice is fine
		<-out.done
		if !errors.Is(a.Err(), ErrDetached) {
			t.Errorf("Err = %v, want ErrDetached", a.Err())
		}
		if _, err := a.Write([]byte("x\n")); !errors.Is(err, ErrDetached) {
			t.Errorf("Write after detach: %v, want ErrDetached", err)
		}
		if ev, _ := m.Get("p1"); ev.Status != StatusRunning {
			t.Errorf("status after detach = %s, want running", ev.Status)
		}
	})

	t.Run("ReattachShowsScrollback", func(t *testing.T) {
		b, err := m.Attach("p1")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Detach()
		if !bytes.Contains(b.Scrollback, []byte("echo: first")) {
			t.Errorf("scrollback on re-attach = %q, want the earlier output", b.Scrollback)
		}
		out := read(b)
		mustWrite(t, b, "second\n")
		out.mustSee(t, "echo: second")
	})

	t.Run("SeveralAttachers", func(t *testing.T) {
		b, err := m.Attach("p1")
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Attach("p1")
		if err != nil {
			t.Fatal(err)
		}
		outB, outC := read(b), read(c)
		mustWrite(t, c, "third\n")
		outB.mustSee(t, "echo: third")
		outC.mustSee(t, "echo: third")
		b.Detach()
		mustWrite(t, c, "fourth\n")
		outC.mustSee(t, "echo: fourth")

		// The pod's end closes the attachments that remain.
		mustWrite(t, c, "exit 0\n")
		<-outC.done
		if !errors.Is(c.Err(), ErrPodExited) {
			t.Errorf("Err = %v, want ErrPodExited", c.Err())
		}
		if _, err := c.Write([]byte("x")); err == nil {
			t.Error("Write to an ended pod succeeded")
		}
	})

	t.Run("AttachToEndedPod", func(t *testing.T) {
		poll(t, "p1 to end", func() bool { ev, _ := m.Get("p1"); return ev.Status.Final() })
		d, err := m.Attach("p1")
		if err != nil {
			t.Fatal(err)
		}
		if _, open := <-d.Output(); open {
			t.Error("Output of an ended pod is open")
		}
		if !bytes.Contains(d.Scrollback, []byte("echo: fourth")) {
			t.Errorf("scrollback of the ended pod = %q", d.Scrollback)
		}
	})
}

func TestManager_Resize(t *testing.T) {
	m, _ := MustOpen(t, Config{})
	s := agent("p1")
	s.Cols, s.Rows = 100, 30
	if err := m.Ensure([]Spec{s}); err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach("p1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	out := read(a)
	mustWrite(t, a, "size\n")
	out.mustSee(t, "size: 30 100")

	if err := m.Resize("p1", 132, 43); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, "size\n")
	out.mustSee(t, "size: 43 132")

	if err := a.Resize(90, 20); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, "size\n")
	out.mustSee(t, "size: 20 90")

	if err := m.Resize("p1", 0, 10); err == nil {
		t.Error("Resize to 0 columns succeeded")
	}
	if err := m.Resize("nope", 80, 24); !errors.Is(err, ErrUnknownPod) {
		t.Errorf("Resize of an unknown pod: %v, want ErrUnknownPod", err)
	}
}

func TestManager_Exit(t *testing.T) {
	m, rec := MustOpen(t, Config{})
	for _, tc := range []struct {
		name   string
		spec   Spec
		input  string
		status Status
		code   int
		reason string
	}{
		{"ExitZero", agent("zero"), "exit 0\n", StatusTerminated, 0, "exit code 0"},
		{"ExitThree", agent("three"), "exit 3\n", StatusFailed, 3, "exit code 3"},
		{"KilledBySignal", Spec{Key: "sig", Argv: []string{"sh", "-c", "kill -KILL $$"}}, "", StatusFailed, 137, "killed by SIGKILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Ensure([]Spec{tc.spec}); err != nil {
				t.Fatal(err)
			}
			if tc.input != "" {
				mustScrollbackContain(t, m, tc.spec.Key, "prompt:")
				a, err := m.Attach(tc.spec.Key)
				if err != nil {
					t.Fatal(err)
				}
				mustWrite(t, a, tc.input)
			}
			ev := rec.waitFinal(t, tc.spec.Key, true)
			if ev.Status != tc.status || ev.ExitCode != tc.code || ev.Reason != tc.reason {
				t.Errorf("final event = %+v, want %s, exit code %d, reason %q", ev, tc.status, tc.code, tc.reason)
			}
			if got, _ := m.Get(tc.spec.Key); got != ev {
				t.Errorf("Get = %+v, want %+v", got, ev)
			}
			var onDisk Event
			if err := statefile.Read(filepath.Join(m.dir, tc.spec.Key, exitFile), &onDisk); err != nil || !onDisk.FinishedAt.Equal(ev.FinishedAt) || onDisk.Status != ev.Status {
				t.Errorf("exit record = %+v, %v; want %+v", onDisk, err, ev)
			}
			if _, err := os.Stat(filepath.Join(m.dir, tc.spec.Key, pidFile)); !os.IsNotExist(err) {
				t.Errorf("pid file of an ended pod: %v, want it removed", err)
			}
		})
	}

	t.Run("StartFails", func(t *testing.T) {
		if err := m.Ensure([]Spec{{Key: "missing", Argv: []string{"no-such-agent-binary"}}}); err != nil {
			t.Fatal(err)
		}
		ev := rec.waitFinal(t, "missing", false)
		if ev.Status != StatusFailed || !strings.Contains(ev.Reason, "no-such-agent-binary") {
			t.Errorf("final event = %+v, want failed naming the binary", ev)
		}
	})

	t.Run("InvalidSpec", func(t *testing.T) {
		err := m.Ensure([]Spec{{Key: "../evil", Argv: []string{"true"}}, {Key: "noargv"}})
		if err == nil || !strings.Contains(err.Error(), "../evil") {
			t.Errorf("Ensure = %v, want an error naming the bad key", err)
		}
		if ev := rec.waitFinal(t, "noargv", false); ev.Status != StatusFailed || !strings.Contains(ev.Reason, "argv") {
			t.Errorf("final event = %+v, want failed about argv", ev)
		}
	})
}

func TestManager_Terminate(t *testing.T) {
	t.Run("KillsTheWholeGroup", func(t *testing.T) {
		m, rec := MustOpen(t, Config{StopGrace: 200 * time.Millisecond})
		marker := uniqueMarker(t)
		if err := m.Ensure([]Spec{{Key: "stubborn", Argv: []string{"bash", fixture("stubborn.sh"), marker}}}); err != nil {
			t.Fatal(err)
		}
		mustScrollbackContain(t, m, "stubborn", "ready")
		poll(t, "the leader and its child", func() bool { return len(processes(marker)) == 2 })

		if err := m.Terminate("stubborn"); err != nil {
			t.Fatal(err)
		}
		ev := rec.waitFinal(t, "stubborn", true)
		if ev.Status != StatusTerminated || !strings.Contains(ev.Reason, "killed by SIGKILL") {
			t.Errorf("final event = %+v, want terminated after SIGKILL", ev)
		}
		mustNoProcesses(t, marker)
		mustNoZombies(t)
		if err := m.Terminate("stubborn"); err != nil {
			t.Errorf("second Terminate: %v", err)
		}
		if err := m.Terminate("nope"); !errors.Is(err, ErrUnknownPod) {
			t.Errorf("Terminate of an unknown pod: %v, want ErrUnknownPod", err)
		}
	})

	t.Run("CooperativeAgent", func(t *testing.T) {
		m, rec := MustOpen(t, Config{StopGrace: time.Hour})
		if err := m.Ensure([]Spec{agent("p1")}); err != nil {
			t.Fatal(err)
		}
		mustScrollbackContain(t, m, "p1", "prompt:")
		if err := m.Terminate("p1"); err != nil {
			t.Fatal(err)
		}
		// The terminal hangs up before SIGTERM: a shell-like agent ends on
		// SIGHUP at once.
		if ev := rec.waitFinal(t, "p1", true); ev.Status != StatusTerminated || ev.Reason != "terminated on request" || ev.ExitCode != 128+int(syscall.SIGHUP) {
			t.Errorf("final event = %+v, want terminated on request by SIGHUP", ev)
		}
	})

	t.Run("NotDesiredAnyMore", func(t *testing.T) {
		m, rec := MustOpen(t, Config{StopGrace: time.Hour})
		if err := m.Ensure([]Spec{agent("a"), agent("b")}); err != nil {
			t.Fatal(err)
		}
		if err := m.Ensure([]Spec{agent("b")}); err != nil {
			t.Fatal(err)
		}
		if ev := rec.waitFinal(t, "a", true); ev.Status != StatusTerminated {
			t.Errorf("final event of a = %+v, want terminated", ev)
		}
		if ev, _ := m.Get("b"); ev.Status != StatusRunning {
			t.Errorf("b = %+v, want running", ev)
		}
		// An ended pod that is no longer desired is forgotten.
		if err := m.Ensure([]Spec{agent("b")}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get("a"); !errors.Is(err, ErrUnknownPod) {
			t.Errorf("Get(a) after it left the desired set: %v, want ErrUnknownPod", err)
		}
		// A stale snapshot that lists it again does not start it again.
		if err := m.Ensure([]Spec{agent("a"), agent("b")}); err != nil {
			t.Fatal(err)
		}
		if ev, err := m.Get("a"); err != nil || ev.Status != StatusTerminated {
			t.Errorf("Get(a) = %+v, %v; want its recorded terminated status", ev, err)
		}
		if evs := rec.of("a"); len(evs) != 2 {
			t.Errorf("events of a = %+v, want running and terminated only", evs)
		}
	})
}

func TestManager_EnsureStartsOnce(t *testing.T) {
	dir := t.TempDir()
	marker := uniqueMarker(t)
	spec := agent("once", marker)

	m, rec := MustOpen(t, Config{StateDir: dir})
	for range 3 {
		if err := m.Ensure([]Spec{spec}); err != nil {
			t.Fatal(err)
		}
	}
	mustScrollbackContain(t, m, "once", "prompt:")
	if pids := processes(marker); len(pids) != 1 {
		t.Errorf("processes = %v, want one", pids)
	}
	if got := len(m.Pods()); got != 1 {
		t.Errorf("pods = %d, want 1", got)
	}

	// A pod that ended is not started again while the control plane still
	// lists it, not even by a later runner process on the same state.
	a, err := m.Attach("once")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, "exit 0\n")
	rec.waitFinal(t, "once", true)
	if err := m.Ensure([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	m2, rec2 := MustOpen(t, Config{StateDir: dir})
	if err := m2.Ensure([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if ev, err := m2.Get("once"); err != nil || ev.Status != StatusTerminated {
		t.Errorf("Get after restart = %+v, %v; want the recorded terminated status", ev, err)
	}
	// Its output was saved when it ended and is still there.
	mustScrollbackContain(t, m2, "once", "prompt:")
	if a, err := m2.Attach("once"); err != nil || !strings.Contains(string(a.Scrollback), "prompt:") {
		t.Errorf("attach after restart: scrollback %q, err %v; want the saved output", a.Scrollback, err)
	}
	if pids := processes(marker); len(pids) != 0 {
		t.Errorf("processes = %v, want none: the ended pod was started again", pids)
	}
	if evs := rec2.of("once"); len(evs) != 0 {
		t.Errorf("events after restart = %+v, want none", evs)
	}
}

// TestManager_AdoptsAfterCrash: a runner process that dies (SIGKILL) under
// a pod leaves it running under its holder, and the next one adopts it:
// same processes, scrollback intact, running without a restart.
func TestManager_AdoptsAfterCrash(t *testing.T) {
	dir := t.TempDir()
	marker := uniqueMarker(t)

	// A runner process starts a pod and dies without stopping it.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUNYARD_PODS_HELPER_DIR="+dir, "RUNYARD_PODS_HELPER_MARKER="+marker)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	// The agent and its child (a fork of the shell may come and go).
	var before []int
	poll(t, "the pod's two processes", func() bool { before = processes(marker); return len(before) == 2 })
	// Its spare holders, once it has them all (none half started).
	var spares []int
	poll(t, "the runner's spare holders", func() bool { spares = sparesOf(cmd.Process.Pid); return len(spares) == 2 })
	cmd.Process.Kill()
	cmd.Wait()
	reapSpares(t, spares)

	// The next runner process adopts it.
	m, rec := MustOpen(t, Config{StateDir: dir, StopGrace: 100 * time.Millisecond})
	if ev, err := m.Get("leftover"); err != nil || ev.Status != StatusRunning {
		t.Fatalf("Get after the crash = %+v, %v; want running", ev, err)
	}
	// The same processes run (a fork of the shell may come and go).
	after := processes(marker)
	for _, pid := range before {
		if !slices.Contains(after, pid) {
			t.Errorf("processes after the crash = %v, want %v among them", after, before)
		}
	}
	mustScrollbackContain(t, m, "leftover", "ready")
	// A stale snapshot does not start it twice; Terminate reaches it.
	if err := m.Ensure([]Spec{{Key: "leftover", Argv: []string{"bash", fixture("stubborn.sh"), marker}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Terminate("leftover"); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFinal(t, "leftover", true); ev.Status != StatusTerminated || !strings.Contains(ev.Reason, "SIGKILL") {
		t.Errorf("final event = %+v, want terminated after SIGKILL", ev)
	}
	mustNoProcesses(t, marker)
}

// pipeUnread returns how many bytes wait unread in the pipe that process
// pid has as descriptor fd, or -1.
func pipeUnread(pid, fd int) int {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return -1
	}
	defer f.Close()
	var n int32
	const fionread = 0x541B
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fionread, uintptr(unsafe.Pointer(&n))); e != 0 {
		return -1
	}
	return int(n)
}

// TestManager_RunnerDiesWhileHolderStarts: a runner process that dies
// (SIGKILL) right after it handed a pod's command to the pod's holder,
// before the holder recorded the command, leaves a pod the next runner
// process finds: it waits for the holder and adopts the pod, running,
// started once. Before, it took the holder for dead, reported the pod
// failed and went on, while the holder started the agent: a pod running
// that no runner knew of.
func TestManager_RunnerDiesWhileHolderStarts(t *testing.T) {
	dir := t.TempDir()
	marker := uniqueMarker(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUNYARD_PODS_HELPER_DIR="+dir, "RUNYARD_PODS_HELPER_MARKER="+marker, "RUNYARD_PODS_HELPER_MODE=handover")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	// Its spare holders are stopped, so that the one handed the pod cannot
	// record it; the runner process dies once the command is in the pipe.
	var spares []int
	poll(t, "the runner's spare holders", func() bool { spares = sparesOf(cmd.Process.Pid); return len(spares) == 2 })
	for _, pid := range spares {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, pid := range spares {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	mustWrite(t, stdin, "go\n")
	var handed int
	poll(t, "the pod's command handed to a holder", func() bool {
		for _, pid := range spares {
			if pipeUnread(pid, 3) > 0 {
				handed = pid
				return true
			}
		}
		return false
	})
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	var others []int
	for _, pid := range spares {
		if pid != handed {
			others = append(others, pid)
		}
	}
	// The holder goes on while the next runner process opens.
	time.AfterFunc(300*time.Millisecond, func() {
		for _, pid := range spares {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	// The killed process's holders are this process's children now (it is
	// their subreaper), and one may end only as the test does, after
	// reapSpares' reaper stopped: reap such ones until the Manager's own
	// check at its close has passed (this cleanup runs after that one).
	stopStrays := make(chan struct{})
	go reapStrays(stopStrays)
	t.Cleanup(func() { close(stopStrays) })
	m, rec := MustOpen(t, Config{StateDir: dir, StopGrace: 100 * time.Millisecond})
	reapSpares(t, others)
	if ev, err := m.Get("second"); err != nil || ev.Status != StatusRunning {
		t.Fatalf("Get after the crash = %+v, %v; want running, adopted", ev, err)
	}
	mustScrollbackContain(t, m, "second", "ready")
	// The agent and its child (a fork of the shell may come and go).
	poll(t, "the pod's two processes", func() bool { return len(processes(marker)) == 2 })
	if err := m.Ensure([]Spec{{Key: "second", Argv: []string{"bash", fixture("stubborn.sh"), marker}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Terminate("second"); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFinal(t, "second", true); ev.Status != StatusTerminated {
		t.Errorf("final event = %+v, want terminated", ev)
	}
	mustNoProcesses(t, marker)
}

// TestManager_ForgetsPodsNeverStarted: a runner process that died after it
// made a pod's directory (and perhaps its holder's) and before it handed
// the agent to a holder leaves a pod that never ran. The next process
// forgets it, so that it starts, once, if the control plane still wants
// it; before, it was reported failed ("runner restarted", "the process
// holder died") and never started.
func TestManager_ForgetsPodsNeverStarted(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"no-holder", filepath.Join("empty-holder", holderDir)} {
		if err := os.MkdirAll(filepath.Join(dir, "pods", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m, rec := MustOpen(t, Config{StateDir: dir})
	for _, key := range []string{"no-holder", "empty-holder"} {
		if ev, err := m.Get(key); !errors.Is(err, ErrUnknownPod) {
			t.Errorf("Get(%s) after the restart = %+v, %v; want it unknown", key, ev, err)
		}
	}
	if err := m.Ensure([]Spec{agent("no-holder"), agent("empty-holder")}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"no-holder", "empty-holder"} {
		mustScrollbackContain(t, m, key, "Fix the login bug")
		poll(t, "the running event of "+key, func() bool { return len(rec.of(key)) > 0 })
		if evs := rec.of(key); len(evs) != 1 || evs[0].Status != StatusRunning {
			t.Errorf("events of %s = %+v, want one: running", key, evs)
		}
	}
}

// TestManager_HolderDied: a pod whose holder was killed is reported failed
// and none of its processes is left.
func TestManager_HolderDied(t *testing.T) {
	m, rec := MustOpen(t, Config{})
	marker := uniqueMarker(t)
	if err := m.Ensure([]Spec{{Key: "orphan", Argv: []string{"bash", fixture("stubborn.sh"), marker}}}); err != nil {
		t.Fatal(err)
	}
	mustScrollbackContain(t, m, "orphan", "ready")
	m.mu.Lock()
	h := m.pods["orphan"].h
	m.mu.Unlock()
	if err := syscall.Kill(h.Record().Holder.Session, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFinal(t, "orphan", true); ev.Status != StatusFailed || !strings.Contains(ev.Reason, "holder died") {
		t.Errorf("final event = %+v, want failed: the holder died", ev)
	}
	mustNoProcesses(t, marker)
}

func TestManager_SweepSparesStrangers(t *testing.T) {
	// A pid file must not get a process killed that merely has the recorded
	// pid: here this test's own sleep stands in for the stranger.
	sleep := exec.Command("sleep", "1000")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	st, err := proc.ReadStat(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  pidRecord
	}{
		{"RecycledPid", pidRecord{Session: sleep.Process.Pid, StartTicks: st.StartTicks - 1, BootID: proc.BootID()}},
		{"OtherBoot", pidRecord{Session: sleep.Process.Pid, StartTicks: st.StartTicks, BootID: "another-boot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			podDir := filepath.Join(dir, "pods", "old")
			if err := os.MkdirAll(podDir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.rec.StartedAt = time.Now()
			if err := statefile.Write(filepath.Join(podDir, pidFile), tc.rec); err != nil {
				t.Fatal(err)
			}
			_, events := MustOpen(t, Config{StateDir: dir})
			if ev := events.waitFinal(t, "old", false); ev.Status != StatusFailed || ev.Reason != "runner restarted" {
				t.Errorf("final event = %+v, want failed, runner restarted", ev)
			}
			if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
				t.Errorf("the stranger was killed: %v", err)
			}
		})
	}
}

func TestManager_Scrollback(t *testing.T) {
	m, _ := MustOpen(t, Config{ScrollbackBytes: 4096})
	if err := m.Ensure([]Spec{{Key: "chatty", Argv: []string{"sh", fixture("chatty.sh"), "2000"}}}); err != nil {
		t.Fatal(err)
	}
	mustScrollbackContain(t, m, "chatty", "END")
	b, err := m.Scrollback("chatty")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(TruncationMarker)) {
		t.Errorf("scrollback starts %q, want the truncation marker", b[:min(len(b), 100)])
	}
	if got, most := len(b), 4096+len(TruncationMarker); got > most {
		t.Errorf("scrollback is %d bytes, want at most %d", got, most)
	}
	if !bytes.Contains(b, []byte("line 01999 of some output")) || bytes.Contains(b, []byte("line 00000 ")) {
		t.Errorf("scrollback does not hold the most recent output: %q", b)
	}
	if _, err := m.Scrollback("nope"); !errors.Is(err, ErrUnknownPod) {
		t.Errorf("Scrollback of an unknown pod: %v, want ErrUnknownPod", err)
	}
}

func TestManager_SlowAttacherIsDisconnected(t *testing.T) {
	m, _ := MustOpen(t, Config{ScrollbackBytes: 4096})
	// An attacher that never reads.
	if err := m.Ensure([]Spec{{Key: "chatty", Argv: []string{"sh", "-c", "sleep 0.2; exec sh \"$0\" 60000", fixture("chatty.sh")}}}); err != nil {
		t.Fatal(err)
	}
	slow, err := m.Attach("chatty")
	if err != nil {
		t.Fatal(err)
	}
	// The pod gets all its output out regardless.
	mustScrollbackContain(t, m, "chatty", "END")
	n := 0
	for range slow.Output() {
		n++
	}
	if !errors.Is(slow.Err(), ErrSlowAttacher) {
		t.Errorf("Err = %v after %d chunks, want ErrSlowAttacher", slow.Err(), n)
	}
	if ev, _ := m.Get("chatty"); ev.Status != StatusRunning {
		t.Errorf("pod = %+v, want it still running", ev)
	}
}

func TestManager_Close(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{StateDir: dir, StopGrace: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(nil); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Ensure before Open: %v, want ErrNotOpen", err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	marker := uniqueMarker(t)
	if err := m.Ensure([]Spec{{Key: "stubborn", Argv: []string{"bash", fixture("stubborn.sh"), marker}}, agent("p1")}); err != nil {
		t.Fatal(err)
	}
	mustScrollbackContain(t, m, "stubborn", "ready")
	mustScrollbackContain(t, m, "p1", "prompt:")
	before := processes(marker)

	// Close lets go of the pods: they run on, with no final event.
	var events []Event
	done := make(chan struct{})
	go func() {
		for ev := range m.Events() {
			events = append(events, ev)
		}
		close(done)
	}()
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done // Close closed the channel.
	for _, ev := range events {
		if ev.Status != StatusRunning {
			t.Errorf("event after Close = %+v, want only running ones", ev)
		}
	}
	if err := m.Ensure(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Ensure after Close: %v, want ErrClosed", err)
	}
	if after := processes(marker); len(after) != 2 || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("processes after Close = %v, want %v still running", after, before)
	}

	// The next manager adopts them; its StopAll ends them (grace cut short
	// by the context for the one that ignores SIGTERM).
	m2, rec := MustOpen(t, Config{StateDir: dir, StopGrace: time.Hour})
	if a, err := m2.Attach("p1"); err != nil || !strings.Contains(string(a.Scrollback), "prompt: Fix the login bug") {
		t.Fatalf("attach after adopting: %v, scrollback %q", err, a.Scrollback)
	} else {
		if _, err := a.Write([]byte("hello again\n")); err != nil {
			t.Fatal(err)
		}
		mustScrollbackContain(t, m2, "p1", "echo: hello again")
		a.Detach()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	m2.StopAll(ctx, "runner deleted")
	mustNoProcesses(t, marker)
	for _, key := range []string{"stubborn", "p1"} {
		if ev := rec.waitFinal(t, key, true); ev.Status != StatusFailed || ev.Reason != "runner deleted" {
			t.Errorf("final event of %s = %+v, want failed, runner deleted", key, ev)
		}
	}
}

// TestManager_CollectsOldPods checks that the directory of a pod that ended
// long enough ago goes once the control plane no longer wants the pod, and
// stays while it does, or while the pod ended recently.
func TestManager_CollectsOldPods(t *testing.T) {
	m, rec := MustOpen(t, Config{Retention: time.Hour, GCInterval: 20 * time.Millisecond})
	specs := []Spec{
		{Key: "old-forgotten", Argv: []string{"sh", "-c", "exit 0"}},
		{Key: "old-wanted", Argv: []string{"sh", "-c", "exit 0"}},
		{Key: "recent", Argv: []string{"sh", "-c", "exit 0"}},
	}
	if err := m.Ensure(specs); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		rec.waitFinal(t, s.Key, true)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, key := range []string{"old-forgotten", "old-wanted"} {
		if err := os.Chtimes(filepath.Join(m.dir, key, exitFile), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// The control plane recorded two of the exits and still wants one.
	if err := m.Ensure(specs[1:2]); err != nil {
		t.Fatal(err)
	}
	exists := func(key string) bool {
		_, err := os.Stat(filepath.Join(m.dir, key))
		return err == nil
	}
	poll(t, "the forgotten old pod's directory goes", func() bool { return !exists("old-forgotten") })
	// One more collection, run here so that it surely happened.
	m.collect(time.Now())
	for _, key := range []string{"old-wanted", "recent"} {
		if !exists(key) {
			t.Errorf("pod %s's directory was removed", key)
		}
	}
	// A key whose directory was collected is unknown, not started again.
	if _, err := m.Scrollback("old-forgotten"); !errors.Is(err, ErrUnknownPod) {
		t.Errorf("scrollback of a collected pod: %v, want ErrUnknownPod", err)
	}
	// The collector renames a directory before it removes it, outside
	// the lock: the rename is what the poll above saw.
	poll(t, "no directory left half collected", func() bool {
		entries, _ := os.ReadDir(m.dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), trashPrefix) {
				return false
			}
		}
		return true
	})
}
