package pods

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// The files of a pod's directory, StateDir/pods/<key>/.
const (
	pidFile  = "pid"       // pidRecord, while the pod's processes may run
	exitFile = "exit.json" // the pod's final Event: its tombstone
	// outputFile is the pod's scrollback when it ended, so that its output
	// can still be read after a runner restart.
	outputFile = "output"
	workDir    = "work" // the default working directory
)

// pidRecord identifies a pod's session across runner processes. The boot id
// and the leader's start time make sure a recycled pid is never taken for a
// leftover of ours.
type pidRecord struct {
	// Session is the leader's pid: the id of its session and process group.
	Session    int       `json:"session"`
	StartTicks uint64    `json:"startTicks"`
	BootID     string    `json:"bootId"`
	StartedAt  time.Time `json:"startedAt"`
}

// finish writes the pod's exit record, then removes its pid file: a crash
// between the two leaves both, and the exit record wins.
func finish(dir string, ev Event) error {
	if err := statefile.Write(filepath.Join(dir, exitFile), ev); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, pidFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// recover reads the pod directory dir of a previous runner process. A pod
// with an exit record ended and is returned as it ended. A pod with only a
// pid file was running when that runner died: what is left of its session is
// killed, and it is recorded and returned failed "runner restarted"
// (changed reports that).
func recoverPod(dir, key, boot string, now time.Time) (ev Event, changed bool, err error) {
	err = statefile.Read(filepath.Join(dir, exitFile), &ev)
	if err == nil {
		ev.Key = key
		return ev, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Event{}, false, err
	}
	var rec pidRecord
	err = statefile.Read(filepath.Join(dir, pidFile), &rec)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Event{}, false, err
	}
	// Without a pid file the runner died while starting the pod, before its
	// process existed or before it was recorded; there is nothing to kill.
	if err == nil {
		proc.Sweep(proc.Record{Session: rec.Session, StartTicks: rec.StartTicks, BootID: rec.BootID}, boot)
	}
	ev = Event{
		Key:        key,
		Status:     StatusFailed,
		ExitCode:   -1,
		Reason:     "runner restarted",
		StartedAt:  rec.StartedAt,
		FinishedAt: now,
	}
	if err := finish(dir, ev); err != nil {
		return Event{}, false, err
	}
	return ev, true, nil
}
