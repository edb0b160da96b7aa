package runner

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/sdnotify"
)

// The daemon's side of systemd's notification protocol, for the Type=notify
// unit `runyard runner install-service` writes (NotifyAccess=main: systemd
// takes a message only from the process it holds as the unit's main PID).
//
// READY=1 goes out once the daemon reached the control plane, or once its
// first attempt failed for a reason that retrying can fix: a start then
// waits for the network and the credentials to be checked, and still never
// waits for a control plane that is down (the daemon keeps trying on its own,
// and a start timeout would only restart it). STATUS= says whether it is
// connected and how its update goes (systemctl status shows it).
//
// During an update the main PID moves, so that systemd never sees the
// unit's main process vanish while the runner runs on:
//
//  1. the running daemon starts the guard, sends MAINPID=<guard> and waits
//     for the barrier (systemd has taken it), then execs the new binary;
//  2. the new binary, not the main process now, sends nothing; whether it
//     runs, exits at once or hangs, the guard (the main process) stays;
//  3. confirmed, it waits for the guard, which sends MAINPID=<new binary>
//     and exits; the daemon is the main process again and says READY=1;
//  4. rolled back, the guard execs the previous binary itself: the restored
//     daemon has the guard's PID, which is the main PID already.
//
// KillMode=process stays right throughout: stopping the unit signals the
// main process only, which is the daemon, or during a trial the guard, which
// stops the new binary itself (updateguard.go).

// barrierTimeout bounds the wait for systemd to take a message.
const barrierTimeout = 10 * time.Second

// svcNotify is what the daemon tells the service manager.
type svcNotify struct {
	n *sdnotify.Notifier

	mu sync.Mutex
	// main is false while the update guard holds the unit's main PID: a
	// message from this process would be refused.
	main bool
	// ready is set once READY=1 is due; readySent once it went out.
	ready, readySent bool
	// conn is the connection part of the status; sent the last status.
	conn, sent string
}

// notifyConnected is called at each Welcome.
func (d *Daemon) notifyConnected() {
	d.sd.mu.Lock()
	d.sd.ready = true
	d.sd.conn = fmt.Sprintf("connected to %s", d.state.Server)
	d.sd.mu.Unlock()
	d.notify()
}

// notifyLost is called when a stream ended and the daemon tries again.
func (d *Daemon) notifyLost(err error) {
	d.sd.mu.Lock()
	d.sd.ready = true
	d.sd.conn = fmt.Sprintf("reconnecting to %s: %s", d.state.Server, message(err))
	d.sd.mu.Unlock()
	d.notify()
}

// notify sends what changed since the last message, if this process is the
// unit's main process.
func (d *Daemon) notify() {
	if d.sd.n == nil {
		return
	}
	status := d.serviceStatus()
	d.sd.mu.Lock()
	defer d.sd.mu.Unlock()
	if !d.sd.main {
		return
	}
	var fields []string
	if d.sd.ready && !d.sd.readySent {
		fields = append(fields, "READY=1")
	}
	if status != d.sd.sent {
		fields = append(fields, "STATUS="+status)
	}
	if len(fields) == 0 {
		return
	}
	if err := d.sd.n.Send(fields...); err != nil {
		d.log.Warn("tell the service manager", "err", err)
		return
	}
	d.sd.readySent = d.sd.readySent || d.sd.ready
	d.sd.sent = status
}

// serviceStatus is the STATUS= line: the connection, then the update unless
// it is idle.
func (d *Daemon) serviceStatus() string {
	d.sd.mu.Lock()
	conn := d.sd.conn
	d.sd.mu.Unlock()
	if conn == "" {
		conn = "connecting to " + d.state.Server
	}
	parts := []string{conn + " (" + d.cfg.Version + ")"}
	if st := d.upd.status(); st != nil && st.GetState() != UpdateIdle {
		u := fmt.Sprintf("update to %s: %s", st.GetTargetVersion(), st.GetState())
		if f := st.GetFailure(); f != "" {
			u += " (" + f + ")"
		}
		parts = append(parts, u)
	}
	// systemd takes a status of up to 4 KiB (the whole message, in fact).
	s := strings.Join(parts, "; ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// handOffMain makes pid (the update guard) the unit's main process and
// returns once systemd has taken it; this process sends nothing after. An
// error means the message did not go out, so the main PID did not move.
func (d *Daemon) handOffMain(pid int, status string) error {
	d.sd.mu.Lock()
	defer d.sd.mu.Unlock()
	if err := d.sd.n.Send(fmt.Sprintf("MAINPID=%d", pid), "STATUS="+status); err != nil {
		return err
	}
	d.sd.main = false
	// Sent, and systemd handles messages in order: a barrier that does not
	// come back (a hung manager) is no reason to undo the update.
	if err := d.sd.n.Barrier(barrierTimeout); err != nil {
		d.log.Warn("the service manager did not confirm the new main PID", "pid", pid, "err", err)
	}
	return nil
}

// becomeMain is called once the guard handed the main PID back (it exited).
func (d *Daemon) becomeMain() {
	d.sd.mu.Lock()
	d.sd.main = true
	d.sd.readySent, d.sd.sent = false, ""
	d.sd.mu.Unlock()
	d.notify()
}

// notifyEnv is the environment entry that hands the notification socket to
// the next runyard process (the guard, the new binary).
func (d *Daemon) notifyEnv() []string { return d.sd.n.Env() }

// guardHoldsMain reports whether rec is the trial this very process started
// (before its exec) and its guard, alive, holds the unit's main PID.
func guardHoldsMain(rec *updateRecord) bool {
	return rec != nil && rec.GuardMain && rec.PID == os.Getpid() && processAlive(rec.GuardPID)
}
