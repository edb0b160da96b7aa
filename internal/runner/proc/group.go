package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Group is a started command that leads a session of its own: it and
// everything it starts (unless that leaves the session) are signalled and
// killed together.
type Group struct {
	Cmd *exec.Cmd
	// Pid is the leader's pid: the id of its session and process group.
	Pid int
	// StartTicks is the leader's start time; members started before it are
	// strangers with a recycled id.
	StartTicks uint64
}

// Start starts cmd as the leader of a new session.
func Start(cmd *exec.Cmd) (*Group, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return Track(cmd)
}

// Track returns the group of cmd, already started as a session leader. It
// kills and reaps cmd when its start time cannot be read.
func Track(cmd *exec.Cmd) (*Group, error) {
	pid := cmd.Process.Pid
	// The child is not reaped before cmd.Wait, so its stat is readable even
	// if it already exited.
	st, err := ReadStat(pid)
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("read the start time of process %d: %w", pid, err)
	}
	return &Group{Cmd: cmd, Pid: pid, StartTicks: st.StartTicks}, nil
}

// WaitExited blocks until the leader exited, without reaping it, so that
// its ids stay reserved until Finish.
func (g *Group) WaitExited() error { return WaitExited(g.Pid) }

// Signal sends sig to every member of the session, the leader included.
func (g *Group) Signal(sig syscall.Signal) { SignalSession(g.Pid, g.StartTicks, 0, sig) }

// Finish kills what is left of the session once the leader exited, then
// reaps the leader (waiting for cmd's I/O to be copied) and returns its
// state. Call it after WaitExited returned.
func (g *Group) Finish() *os.ProcessState {
	KillSession(g.Pid, g.StartTicks, g.Pid)
	_ = g.Cmd.Wait()
	return g.Cmd.ProcessState
}

// Kill SIGKILLs the whole session, leader included, and reaps it.
func (g *Group) Kill() *os.ProcessState {
	g.Signal(syscall.SIGKILL)
	_ = g.WaitExited()
	return g.Finish()
}

// Record identifies a group across runner processes, so that a restarted
// runner can kill what a previous one left running.
type Record struct {
	Session    int    `json:"session"`
	StartTicks uint64 `json:"startTicks"`
	BootID     string `json:"bootId"`
}

// Record returns g's record on this boot.
func (g *Group) Record(bootID string) Record {
	return Record{Session: g.Pid, StartTicks: g.StartTicks, BootID: bootID}
}

// Sweep kills the leftover session of rec, when rec is of this boot (bootID).
// When the leader still runs with the recorded start time, the session is
// ours. When a process with the leader's pid runs with another start time,
// the pid was recycled, which the kernel does only once no process uses it
// as a group or session id: nothing of ours is left. When the leader is
// gone, members of its session that started after it are ours: a new
// session with that id needs a new leader with that pid.
//
// With the leader gone, its pid may be recycled at any moment, and a new
// session led by it would have the same id: the group is never signalled
// as a whole then, only the members found, each by its own pid, and the
// sweep stops as soon as another process holds the leader's pid.
func Sweep(rec Record, bootID string) {
	if rec.Session <= 0 || rec.BootID != bootID {
		return // another boot: nothing of it runs
	}
	s, err := ReadStat(rec.Session)
	if err == nil && s.StartTicks != rec.StartTicks {
		return
	}
	if err == nil {
		// The leader (perhaps a zombie) still holds the ids.
		KillSession(rec.Session, rec.StartTicks, 0)
		return
	}
	killUntilGone(func() ([]Stat, bool) {
		if s, err := ReadStat(rec.Session); err == nil && s.StartTicks != rec.StartTicks {
			return nil, false // the id is someone else's now
		}
		var found []Stat
		for _, m := range SessionMembers(rec.Session, rec.StartTicks, rec.Session) {
			_ = syscall.Kill(m.Pid, syscall.SIGKILL)
			found = append(found, m)
		}
		return found, true
	})
}

// ExitDescription says how a process ended, as a user reads it: "exit code
// 3" or "killed by SIGKILL"; code is the exit code, 128+signal when killed.
func ExitDescription(ps *os.ProcessState) (how string, code int) {
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return "killed by " + SignalName(ws.Signal()), 128 + int(ws.Signal())
	}
	return fmt.Sprintf("exit code %d", ws.ExitStatus()), ws.ExitStatus()
}
