package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/sdnotify/sdnotifytest"
)

// fakeSystemd is what a Type=notify unit with NotifyAccess=main sees of
// systemd: a notification socket whose messages carry their sender's PID
// (SO_PASSCRED), taken only from the main PID of the moment (MAINPID=
// moving it to a live process, READY=1, STATUS=), and BARRIER=1 from
// anyone. It also watches the main PID as systemd does: the main process
// ending without a handoff first would end the unit while a runner runs on,
// and is a problem the test reports, as is a message systemd would refuse.
type fakeSystemd struct {
	l    *sdnotifytest.Listener
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	main     int
	ready    bool
	status   string
	msgs     []sdnotifytest.Message
	handoffs []handoff
	problems []string
}

// handoff is one accepted MAINPID=.
type handoff struct{ from, to int }

var fakeSystemdN atomic.Int64

// newFakeSystemd opens the socket; env is what the unit's process gets.
func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	addr := fmt.Sprintf("@runyard-e2e-notify-%d-%d", os.Getpid(), fakeSystemdN.Add(1))
	l, err := sdnotifytest.Listen(addr)
	if err != nil {
		t.Fatalf("notification socket: %v", err)
	}
	return &fakeSystemd{l: l, stop: make(chan struct{}), done: make(chan struct{})}
}

func (f *fakeSystemd) env() string { return "NOTIFY_SOCKET=" + f.l.Addr }

// watch starts following the unit whose process systemd forked as pid; the
// watch ends with the test, before the cleanups registered earlier (which
// kill the runner) run.
func (f *fakeSystemd) watch(t *testing.T, pid int) {
	f.mu.Lock()
	f.main = pid
	f.mu.Unlock()
	go f.loop()
	t.Cleanup(func() {
		close(f.stop)
		<-f.done
		f.l.Close()
		if t.Failed() {
			t.Logf("notification messages:\n%s", f.log())
		}
	})
}

func (f *fakeSystemd) loop() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		m, err := f.l.Read(20 * time.Millisecond)
		switch {
		case err == nil:
			f.handle(m)
		case errors.Is(err, sdnotifytest.ErrTimeout):
			f.checkMain()
		default:
			f.problem("read: %v", err)
			return
		}
	}
}

func (f *fakeSystemd) handle(m sdnotifytest.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, m)
	// A barrier alone is taken from anyone before the sender is looked at
	// (systemd 246 and later; the listener closed its descriptor).
	if len(m.Fields) == 1 && m.Fields[0] == "BARRIER=1" {
		return
	}
	if m.PID != f.main {
		f.problems = append(f.problems, fmt.Sprintf("message from PID %d while the main PID is %d (NotifyAccess=main refuses it): %v", m.PID, f.main, m.Fields))
		return
	}
	if v, ok := m.Get("MAINPID"); ok {
		var pid int
		if _, err := fmt.Sscanf(v, "%d", &pid); err != nil || !alive(pid) {
			f.problems = append(f.problems, fmt.Sprintf("MAINPID=%s names no live process", v))
		} else if pid != f.main {
			f.handoffs = append(f.handoffs, handoff{f.main, pid})
			f.main = pid
		}
	}
	if _, ok := m.Get("READY"); ok {
		f.ready = true
	}
	if v, ok := m.Get("STATUS"); ok {
		f.status = v
	}
}

// checkMain: a dead main PID is a problem unless a handoff sent before it
// died is still queued (systemd reads notifications before it reaps).
func (f *fakeSystemd) checkMain() {
	f.mu.Lock()
	main := f.main
	f.mu.Unlock()
	if main == 0 || alive(main) {
		return
	}
	// A process that execs from a thread other than its first shows that
	// thread as a zombie under its PID for a moment (the kernel's
	// de_thread), which systemd, told of exits by SIGCHLD, never sees: a
	// main PID is gone once it has stayed so across a few looks.
	for range 5 {
		time.Sleep(50 * time.Millisecond)
		if alive(main) {
			return
		}
	}
	for {
		m, err := f.l.Read(0)
		if err != nil {
			break
		}
		f.handle(m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.main == main {
		f.problems = append(f.problems, fmt.Sprintf("the main PID %d exited without a handoff: systemd ends the unit", main))
		f.main = 0
	}
}

func (f *fakeSystemd) problem(format string, args ...any) {
	f.mu.Lock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// fakeUnit is the unit as systemd sees it at one moment.
type fakeUnit struct {
	main     int
	ready    bool
	status   string
	handoffs []handoff
	problems []string
	// firstReady is the first message with READY=1.
	firstReady *sdnotifytest.Message
}

func (f *fakeSystemd) unit() fakeUnit {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := fakeUnit{main: f.main, ready: f.ready, status: f.status,
		handoffs: append([]handoff(nil), f.handoffs...), problems: append([]string(nil), f.problems...)}
	for i := range f.msgs {
		if _, ok := f.msgs[i].Get("READY"); ok {
			m := f.msgs[i]
			u.firstReady = &m
			break
		}
	}
	return u
}

func (f *fakeSystemd) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, m := range f.msgs {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	for _, p := range f.problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	return b.String()
}

// alive is processAlive of the runner: a zombie is dead.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// cmdline is a process's argument vector.
func cmdline(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
