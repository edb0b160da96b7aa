// Package holder runs one command of a runner (a service run, a task step,
// an agent pod) under a small process of its own, the holder, so that the
// command outlives the runner daemon: a daemon that crashes, is upgraded or
// restarted leaves its work running, and the next daemon re-adopts it with
// the same pids, the same log file and the same terminal scrollback. This is
// the role containerd's shim, conmon or Nomad's executor play.
//
// The holder is this same binary started again under the name
// "runyard-holder" (see Invoked); it leads a session of its own, starts the
// command as the leader of another session (with a pseudo-terminal for a
// pod, with its output captured for a log otherwise), and owns what the
// daemon used to own:
//
//   - the output: written, with secret values masked, to the log file up to
//     its cap (log mode), or kept in a scrollback ring and relayed to the
//     daemon (terminal mode);
//   - the exit status: the holder reaps the command, kills what is left of
//     its session, and writes exit.json before it exits;
//   - a socket (DIR/sock) a daemon connects to for the output, the exit, and
//     to send input, terminal sizes and signals.
//
// The life of a holder:
//
//	daemon: write the intent (DIR) in its own record ─▶ take a spare holder ─▶ pending.json ─▶ send Spec on fd 3
//	holder: start the command ─▶ holder.json (pids) ─▶ hello on fd 5 ─▶ "ok" on fd 4 ─▶ serve DIR/sock
//	        (beside the start: listen on DIR/sock, open the log, sync DIR so that pending.json survives a crash)
//	           │ the command's leader exits
//	           ▼
//	        kill what is left of its session, reap it, drain the output
//	           ▼
//	        (terminal mode: DIR/output) ─▶ exit.json ─▶ tell connected daemons ─▶ exit 0
//	           │ log mode, the starting daemon still connected on fd 5
//	           ▼
//	        wait on fd 5 ─▶ frameRecycle (the next Spec, for a new DIR) ─▶ start the command, as above
//	           │ fd 5 closed, or a minute without a command
//	           ▼
//	        exit 0
//
// Recycling (Hooks.Recyclable, Handle.Recycle) exists because a holder is
// this whole binary starting up: for a task step that runs `true`, the
// holder's start was most of the step's CPU. A daemon recycles a holder
// only after it recorded the command's end and removed its directory, so
// no record names a holder that has since moved on to another command.
//
// A spare is started with a socket pair (fd 5): the daemon that hands it a
// command hears from it there, with no dial of DIR/sock; later daemons
// dial DIR/sock.
//
// A daemon that finds a holder directory in its records adopts it
// (Adopt): a live holder is connected to (in the background while it does
// not answer); a holder that ended left exit.json; a holder that died
// (killed itself) took its command's leader with it (the leader's
// parent-death signal is SIGKILL), and what is left of the session is swept
// with the pids of holder.json. A holder that pending.json names and that
// has not written holder.json yet is starting the command for a daemon that
// died: Adopt waits for it, and kills it if it stays silent.
package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Mode is how a holder treats its command's output.
type Mode string

const (
	// ModeLog captures stdout and stderr into a capped log file.
	ModeLog Mode = "log"
	// ModeTerminal runs the command on a pseudo-terminal and keeps a
	// scrollback of its output.
	ModeTerminal Mode = "terminal"
)

// Spec is what a holder runs. It reaches the holder over a pipe, never
// through a file: its environment may carry secrets.
type Spec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// Dir is the command's working directory.
	Dir  string `json:"dir"`
	Mode Mode   `json:"mode"`

	// LogPath and LogCap: ModeLog's output file and its cap in bytes.
	LogPath string `json:"logPath,omitempty"`
	LogCap  int64  `json:"logCap,omitempty"`

	// Cols and Rows size ModeTerminal's terminal; Scrollback bounds what
	// is kept of its output; Input is typed into it once it started.
	Cols       uint16 `json:"cols,omitempty"`
	Rows       uint16 `json:"rows,omitempty"`
	Scrollback int    `json:"scrollback,omitempty"`
	Input      string `json:"input,omitempty"`

	// Mask lists secret values (mask.Values) shown as *** in the output.
	Mask []string `json:"mask,omitempty"`

	// HolderDir is the holder's own directory (its record, socket and
	// exit). Start sets it: a spare holder learns where it lives with its
	// command.
	HolderDir string `json:"holderDir"`
}

// The files of a holder's directory.
const (
	recordFile = "holder.json"
	exitFile   = "exit.json"
	sockFile   = "sock"
	// OutputFile is a terminal's scrollback when its command ended.
	OutputFile = "output"
	errorsFile = "holder.log"
	// pendingFile names the holder process a daemon handed the command
	// to, written before the command is handed over: until holder.json
	// exists it is the only trace of a holder that is starting the
	// command.
	pendingFile = "pending.json"
)

// Record identifies a holder and its command across daemon processes.
type Record struct {
	Holder proc.Record `json:"holder"`
	// Command is the command's session: its leader's pid and start time.
	Command   proc.Record `json:"command"`
	StartedAt time.Time   `json:"startedAt"`
}

// Exit is how a command ended.
type Exit struct {
	// Code is the exit code, 128+signal when a signal killed it, as a
	// shell reports it.
	Code int `json:"code"`
	// Signal is the signal that killed it, 0 when it exited.
	Signal int `json:"signal,omitempty"`
	// How says it as a user reads it: "exit code 3", "killed by SIGKILL".
	How        string    `json:"how"`
	FinishedAt time.Time `json:"finishedAt"`
}

// ErrDied is the exit of a command whose holder died before it could
// record one: the command was killed with it.
var ErrDied = errors.New("the process holder died: the command was killed with it")

// ReadExit returns the exit recorded in dir, or an error satisfying
// errors.Is(err, fs.ErrNotExist) while there is none.
func ReadExit(dir string) (Exit, error) {
	var x Exit
	err := statefile.Read(filepath.Join(dir, exitFile), &x)
	return x, err
}

// ReadRecord returns the record of the holder in dir.
func ReadRecord(dir string) (Record, error) {
	var r Record
	err := statefile.Read(filepath.Join(dir, recordFile), &r)
	return r, err
}

// Alive reports whether the holder of rec still runs: a process with its
// pid and start time exists on this boot and is not a zombie.
func (r Record) Alive() bool { return running(r.Holder) }

// running reports whether the process of p exists on this boot with its
// start time and is not a zombie.
func running(p proc.Record) bool {
	if p.Session <= 0 || p.BootID != proc.BootID() {
		return false
	}
	st, err := proc.ReadStat(p.Session)
	return err == nil && st.StartTicks == p.StartTicks && st.State != 'Z'
}

// pendingRecord is what pending.json says of the holder process pid.
func pendingRecord(pid int) ([]byte, error) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return nil, fmt.Errorf("read the process holder's start time: %w", err)
	}
	return json.Marshal(proc.Record{Session: pid, StartTicks: st.StartTicks, BootID: proc.BootID()})
}

// writePending records in dir that the holder process of the record
// (pendingRecord) is about to get dir's command. The holder syncs it while
// it starts the command, before it says "ok": from then on a machine crash
// leaves a directory that records a hand-over (Unstarted is false), and
// the command is not started a second time after the reboot.
func writePending(dir string, record []byte) error {
	tmp := filepath.Join(dir, pendingFile+".tmp")
	if err := os.WriteFile(tmp, record, 0o600); err != nil {
		return fmt.Errorf("record the process holder: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, pendingFile)); err != nil {
		return fmt.Errorf("record the process holder: %w", err)
	}
	return nil
}

// adoptWait bounds how long Adopt waits for a holder that is starting its
// command; a variable for tests.
var adoptWait = startTimeout

// awaitRecord returns the record of the holder in dir. A holder that got
// its command from a daemon that died before the holder recorded it
// (pending.json names it, holder.json is not there yet) is waited for up
// to adoptWait, and killed with what it started if it is still silent
// then: a command runs only under a holder some daemon can find. Without
// holder.json afterwards, the error satisfies errors.Is(err,
// fs.ErrNotExist).
func awaitRecord(dir string) (Record, error) {
	deadline := time.Now().Add(adoptWait)
	for {
		rec, err := ReadRecord(dir)
		if !errors.Is(err, fs.ErrNotExist) {
			return rec, err
		}
		var pending proc.Record
		if statefile.Read(filepath.Join(dir, pendingFile), &pending) != nil || !running(pending) {
			// No holder got the command, or it is gone; it may have
			// recorded the command just before it went.
			return ReadRecord(dir)
		}
		if time.Now().After(deadline) {
			killStarting(pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sweep kills what is left of the command of dir when its holder is gone
// without having recorded an exit, and records the exit as ErrDied's, so
// that the next look at dir finds it ended. It returns the exit.
func Sweep(dir string) (Exit, error) {
	if x, err := ReadExit(dir); err == nil {
		return x, nil
	}
	rec, err := ReadRecord(dir)
	if err == nil {
		if rec.Alive() {
			return Exit{}, fmt.Errorf("holder %d still runs", rec.Holder.Session)
		}
		proc.Sweep(rec.Command, proc.BootID())
	}
	x := Exit{Code: -1, How: ErrDied.Error(), FinishedAt: time.Now()}
	if err := statefile.Write(filepath.Join(dir, exitFile), x); err != nil {
		return x, err
	}
	return x, nil
}

// Unstarted reports whether dir's command was never handed to a holder:
// neither the daemon's pending.json nor a holder's record or exit is
// there, or dir is missing. A daemon that recorded dir and died before the
// hand-over leaves it so; the command never ran, and may be started.
func Unstarted(dir string) bool {
	for _, f := range []string{pendingFile, recordFile, exitFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// Remove deletes a holder's directory once its command ended.
func Remove(dir string) error { return os.RemoveAll(dir) }

// signalRecorded signals the command's session from rec while its holder
// lives: the holder keeps the leader unreaped until the session is killed,
// so its ids cannot belong to a stranger meanwhile.
func signalRecorded(rec Record, sig syscall.Signal) {
	if rec.Alive() {
		proc.SignalSession(rec.Command.Session, rec.Command.StartTicks, 0, sig)
	}
}
