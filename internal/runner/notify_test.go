package runner

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/sdnotify"
	"github.com/runyard/runyard/internal/sdnotify/sdnotifytest"
)

// notifyDaemon is a daemon with just what notify.go uses, speaking to a
// listener.
func notifyDaemon(t *testing.T) (*Daemon, *sdnotifytest.Listener) {
	t.Helper()
	sock, err := os.MkdirTemp("", "rn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	l, err := sdnotifytest.Listen(filepath.Join(sock, "notify"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n, err := sdnotify.New(l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	st.Server = "http://cp.test:8080"
	d := &Daemon{cfg: Config{Version: "v1.0.0", Notify: n}, log: slog.New(slog.DiscardHandler), state: st,
		healthChanged: make(chan struct{}, 1), reapply: make(chan struct{}, 1)}
	d.upd = newUpdater(d)
	d.sd.n = n
	return d, l
}

// collect reads messages as systemd would (closing a barrier's descriptor
// at once) until the returned function is called, which returns their
// fields in order, barriers left out.
func collect(t *testing.T, l *sdnotifytest.Listener) func() []string {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		var out []string
		for {
			m, err := l.Read(20 * time.Millisecond)
			if err != nil {
				select {
				case <-stop:
					done <- out
					return
				default:
					continue
				}
			}
			if m.PID != os.Getpid() {
				t.Errorf("message from PID %d, want this process", m.PID)
			}
			if !slices.Equal(m.Fields, []string{"BARRIER=1"}) {
				out = append(out, m.Fields...)
			}
		}
	}()
	return func() []string { close(stop); return <-done }
}

// TestDaemonNotify: READY=1 once, when connected or when the first attempt
// failed; STATUS= only when it changed, with the update's state; nothing
// while the guard holds the main PID, and READY=1 again once it handed it
// back; nothing after the daemon handed it to the guard.
func TestDaemonNotify(t *testing.T) {
	const connected = "STATUS=connected to http://cp.test:8080 (v1.0.0)"
	tests := []struct {
		name string
		main bool
		do   func(d *Daemon)
		want []string
	}{
		{"Connected", true, func(d *Daemon) { d.notifyConnected() }, []string{"READY=1", connected}},
		{"ConnectedTwice", true, func(d *Daemon) { d.notifyConnected(); d.notifyConnected() }, []string{"READY=1", connected}},
		{"FirstAttemptFailed", true, func(d *Daemon) { d.notifyLost(os.ErrDeadlineExceeded) },
			[]string{"READY=1", "STATUS=reconnecting to http://cp.test:8080: i/o timeout (v1.0.0)"}},
		{"LostThenConnected", true, func(d *Daemon) { d.notifyLost(os.ErrDeadlineExceeded); d.notifyConnected() },
			[]string{"READY=1", "STATUS=reconnecting to http://cp.test:8080: i/o timeout (v1.0.0)", connected}},
		{"Update", true, func(d *Daemon) {
			d.notifyConnected()
			d.upd.set(UpdateDraining, "v2.0.0")
		}, []string{"READY=1", connected, connected + "; update to v2.0.0: draining"}},
		{"GuardHoldsMain", false, func(d *Daemon) { d.notifyConnected() }, nil},
		{"GuardHandedBack", false, func(d *Daemon) { d.notifyConnected(); d.becomeMain() }, []string{"READY=1", connected}},
		{"HandedToGuard", true, func(d *Daemon) {
			d.notifyConnected()
			if err := d.handOffMain(4242, "updating"); err != nil {
				t.Fatal(err)
			}
			d.upd.set(UpdateRestarting, "v2.0.0")
			d.notifyLost(os.ErrClosed)
		}, []string{"READY=1", connected, "MAINPID=4242", "STATUS=updating"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, l := notifyDaemon(t)
			d.sd.main = tt.main
			sent := collect(t, l)
			tt.do(d)
			if got := sent(); !slices.Equal(got, tt.want) {
				t.Errorf("sent %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestGuardHoldsMain: the daemon holds back only when the trial is its own
// (started by this very process before its exec) and its guard, which took
// the main PID, still runs; a stale record (a restart since) does not
// silence it.
func TestGuardHoldsMain(t *testing.T) {
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	tests := []struct {
		name string
		rec  *updateRecord
		want bool
	}{
		{"NoTrial", nil, false},
		{"OwnTrial", &updateRecord{PID: me, GuardPID: live.Process.Pid, GuardMain: true}, true},
		{"NotUnderSystemd", &updateRecord{PID: me, GuardPID: live.Process.Pid}, false},
		{"AnotherProcessTrial", &updateRecord{PID: me + 1, GuardPID: live.Process.Pid, GuardMain: true}, false},
		{"GuardGone", &updateRecord{PID: me, GuardPID: dead.Process.Pid, GuardMain: true}, false},
	}
	for _, tt := range tests {
		if got := guardHoldsMain(tt.rec); got != tt.want {
			t.Errorf("%s: guardHoldsMain = %v, want %v", tt.name, got, tt.want)
		}
	}
}
