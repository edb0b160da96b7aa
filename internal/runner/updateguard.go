package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/runner/statefile"
	"github.com/runyard/runyard/internal/sdnotify"
)

// guardStopWait bounds how long a stopped unit's new binary has to exit
// after SIGTERM before the guard kills it (systemd's default
// TimeoutStopSec is 90s).
const guardStopWait = 60 * time.Second

// Guard watches a new binary on trial (`runyard runner update-guard`, started
// by the previous binary just before it execs the new one). When the new
// binary confirms (it reached the control plane) the guard exits. When the
// new binary's process ends first, or the deadline passes, the guard stops
// it, puts the previous binary back, records why, and becomes the runner
// itself: it execs the previous binary with the runner's arguments, which
// re-adopts the services and pods (they run in their own sessions).
//
// Under a service manager (n is not nil) the guard is the unit's main
// process during the trial (notify.go): on confirmation it hands the main
// PID back to the new binary before it exits; rolled back, it keeps it, as
// its exec keeps its PID; and a stop of the unit (ctx ends, on SIGTERM)
// reaches the guard, which stops the new binary and calls the update off:
// the previous binary is put back, and the next start tries the release
// again.
func Guard(ctx context.Context, stateDir string, log *slog.Logger, n *sdnotify.Notifier) error {
	g := &guard{dir: stateDir, path: filepath.Join(stateDir, updateRecordFile), log: log, n: n}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		stop := false
		select {
		case <-ctx.Done():
			stop = true
		case <-tick.C:
		}
		if done, err := g.step(stop); done {
			return err
		}
	}
}

type guard struct {
	dir, path string
	log       *slog.Logger
	n         *sdnotify.Notifier
	// rec is the record as last read.
	rec *updateRecord
}

// step looks at the record once, under the update's lock; done is set when
// the guard's work is over (or it failed).
func (g *guard) step(stop bool) (done bool, err error) {
	unlock, err := lockUpdate(g.dir)
	if err != nil {
		return true, g.leave(fmt.Errorf("update guard: %w", err))
	}
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	var rec updateRecord
	if err := statefile.Read(g.path, &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true, g.leave(nil)
		}
		return true, g.leave(fmt.Errorf("update guard: %w", err))
	}
	g.rec = &rec
	switch {
	case stop && (rec.State == recordTrial || rec.State == recordConfirmed):
		u := unlock
		unlock = nil
		return true, g.stop(rec, u)
	case rec.State != recordTrial:
		return true, g.leave(nil) // confirmed, or handled by another
	}
	gone := !processAlive(rec.PID)
	late := time.Now().After(rec.Deadline)
	if !gone && !late {
		return false, nil
	}
	reason := fmt.Sprintf("%s exited before it reached the control plane", rec.Target)
	if !gone {
		reason = fmt.Sprintf("%s did not reach the control plane within %s", rec.Target, rec.RollbackAfter)
		// Under the lock: a confirmation waits for it, and dies here.
		killAndWait(rec.PID, syscall.SIGKILL, 10*time.Second)
	}
	g.log.Warn("the updated binary failed: rolling back", "target", rec.Target, "previous", rec.Previous, "reason", reason)
	if err := installBinary(rec.PreviousBin, rec.Exe); err != nil {
		return true, g.leave(fmt.Errorf("update guard: put back %s: %w", rec.Exe, err))
	}
	rec.State = recordRolledBack
	rec.Failure = reason + "; rolled back to " + rec.Previous
	rec.FailedAt = time.Now().UTC()
	if err := statefile.Write(g.path, &rec); err != nil {
		g.log.Error("record the rollback", "err", err)
	}
	// Still the main process: the restored daemon will be too.
	if err := g.n.Send("STATUS=" + rec.Failure); err != nil {
		g.log.Warn("tell the service manager", "err", err)
	}
	args := rec.Args
	if len(args) == 0 {
		args = []string{rec.Exe, "runner", "--state-dir", g.dir}
	}
	unlock()
	unlock = nil
	err = syscall.Exec(rec.Exe, args, append(os.Environ(), g.n.Env()...))
	return true, g.leave(fmt.Errorf("update guard: exec %s: %w", rec.Exe, err))
}

// stop ends the trial because the unit (or the guard) is being stopped: the
// new binary gets SIGTERM, as systemd would have sent it, and an update not
// confirmed yet is called off. unlock is called once the record says so,
// before the wait: the new binary may be waiting for the lock to confirm.
func (g *guard) stop(rec updateRecord, unlock func()) error {
	trial := rec.State == recordTrial
	if trial {
		rec.State = recordStopped
		if err := statefile.Write(g.path, &rec); err != nil {
			g.log.Error("record the stop", "err", err)
		}
	}
	unlock()
	g.log.Info("stopping: the updated runner stops too", "pid", rec.PID, "target", rec.Target)
	if !killAndWait(rec.PID, syscall.SIGTERM, guardStopWait) {
		killAndWait(rec.PID, syscall.SIGKILL, 10*time.Second)
	}
	if !trial {
		return nil
	}
	// The next start runs the previous binary, which tries the release
	// again: a stop is no verdict on it.
	if err := installBinary(rec.PreviousBin, rec.Exe); err != nil {
		return fmt.Errorf("update guard: put back %s: %w", rec.Exe, err)
	}
	if err := os.Remove(g.path); err != nil {
		g.log.Warn("remove the update record", "err", err)
	}
	return nil
}

// leave ends the guard while the runner it watched may run on. Holding the
// service's main PID, it gives it back to the runner first; when the runner
// is gone, it exits with a failure that Restart=on-failure acts on (exit 9),
// as systemd would have restarted the runner itself.
func (g *guard) leave(err error) error {
	if g.n == nil || g.rec == nil {
		return err
	}
	if processAlive(g.rec.PID) {
		if serr := g.n.SendSync(barrierTimeout, fmt.Sprintf("MAINPID=%d", g.rec.PID)); serr != nil {
			g.log.Error("hand the service's main PID back to the runner", "pid", g.rec.PID, "err", serr)
		}
		return err
	}
	msg := fmt.Sprintf("the runner (PID %d) is gone while the update guard held the service's main PID", g.rec.PID)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &apperr.Error{Code: apperr.CodeUnavailable, Message: msg}
}

// killAndWait sends sig to pid and reports whether it was gone within wait.
func killAndWait(pid int, sig syscall.Signal, wait time.Duration) bool {
	_ = syscall.Kill(pid, sig)
	for end := time.Now().Add(wait); processAlive(pid); {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) || !procMounted()
	}
	// The state follows the command name in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
