package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// Guard watches a new binary on trial (`runyard runner update-guard`, started
// by the previous binary just before it execs the new one). When the new
// binary confirms (it reached the control plane) the guard exits. When the
// new binary's process ends first, or the deadline passes, the guard stops
// it, puts the previous binary back, records why, and becomes the runner
// itself: it execs the previous binary with the runner's arguments, which
// re-adopts the services and pods (they run in their own sessions).
func Guard(stateDir string, log *slog.Logger) error {
	path := stateDir + "/" + updateRecordFile
	for {
		var rec updateRecord
		if err := statefile.Read(path, &rec); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("update guard: %w", err)
		}
		if rec.State != recordTrial {
			return nil // confirmed, or already handled
		}
		gone := !processAlive(rec.PID)
		late := time.Now().After(rec.Deadline)
		if gone || late {
			reason := fmt.Sprintf("%s exited before it reached the control plane", rec.Target)
			if !gone {
				reason = fmt.Sprintf("%s did not reach the control plane within %s", rec.Target, rec.RollbackAfter)
				_ = syscall.Kill(rec.PID, syscall.SIGKILL)
				for i := 0; i < 100 && processAlive(rec.PID); i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
			// Read again: a confirmation that came in meanwhile wins.
			var now updateRecord
			if err := statefile.Read(path, &now); err == nil && now.State == recordConfirmed {
				return nil
			}
			log.Warn("the updated binary failed: rolling back", "target", rec.Target, "previous", rec.Previous, "reason", reason)
			if err := installBinary(rec.PreviousBin, rec.Exe); err != nil {
				return fmt.Errorf("update guard: put back %s: %w", rec.Exe, err)
			}
			rec.State = recordRolledBack
			rec.Failure = reason + "; rolled back to " + rec.Previous
			rec.FailedAt = time.Now().UTC()
			if err := statefile.Write(path, &rec); err != nil {
				log.Error("record the rollback", "err", err)
			}
			args := rec.Args
			if len(args) == 0 {
				args = []string{rec.Exe, "runner", "--state-dir", stateDir}
			}
			return syscall.Exec(rec.Exe, args, os.Environ())
		}
		time.Sleep(200 * time.Millisecond)
	}
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
