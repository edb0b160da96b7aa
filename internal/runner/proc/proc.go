// Package proc supervises process sessions on a runner: a pod or an
// automation command leads a session of its own, and everything it starts
// is found, signalled and killed through /proc, so that nothing it left
// behind survives it. Start times in clock ticks tell a process of ours
// from a stranger with a recycled pid.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Stat is the part of /proc/<pid>/stat a supervisor needs.
type Stat struct {
	Pid, PPid, Pgrp, Session int
	State                    byte
	// StartTicks is the start time in clock ticks since boot.
	StartTicks uint64
}

func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses a stat line. The command name (field 2) may hold spaces
// and parentheses, so the fields are counted from the last ')'.
func parseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	s := Stat{Pid: pid, State: f[0][0]}
	var errs [4]error
	s.PPid, errs[0] = strconv.Atoi(f[1])
	s.Pgrp, errs[1] = strconv.Atoi(f[2])
	s.Session, errs[2] = strconv.Atoi(f[3])
	s.StartTicks, errs[3] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return s, nil
}

// BootID identifies this boot of the host: start times in clock ticks mean
// nothing across a reboot. It is read once per process (a process never
// outlives its boot); every liveness check of a record asks for it.
func BootID() string {
	if id := bootID.Load(); id != nil {
		return *id
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	bootID.Store(&id)
	return id
}

var bootID atomic.Pointer[string]

// SessionMembers lists the processes in the group or session sid that
// started no earlier than minStart, leaving out the pid skip.
func SessionMembers(sid int, minStart uint64, skip int) []Stat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip {
			continue
		}
		// getsid and getpgid are two system calls; reading and parsing
		// every process's stat file was most of a busy runner's CPU. Only
		// candidates have theirs read.
		if !inSession(pid, sid) {
			continue
		}
		s, err := ReadStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if (s.Session == sid || s.Pgrp == sid) && s.StartTicks >= minStart {
			out = append(out, s)
		}
	}
	return out
}

// inSession reports whether process pid may be in the session or group sid;
// a process that is gone is not.
func inSession(pid, sid int) bool {
	if got, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0); errno == 0 && int(got) == sid {
		return true
	}
	pgid, err := syscall.Getpgid(pid)
	return err == nil && pgid == sid
}

// SignalSession sends sig to the process group sid and to every process
// still in the session (including groups a shell's job control made) that
// started no earlier than minStart. It returns the members it signalled
// other than skip (the leader, which its owner reaps).
func SignalSession(sid int, minStart uint64, skip int, sig syscall.Signal) []Stat {
	_ = syscall.Kill(-sid, sig) // ESRCH: the group is empty
	members := SessionMembers(sid, minStart, skip)
	for _, s := range members {
		_ = syscall.Kill(s.Pid, sig)
	}
	return members
}

// KillSession SIGKILLs the session until no member but skip is alive (a
// member may fork while it is being killed), and reaps the killed members
// that were handed to this process (when it is PID 1 or a child subreaper).
func KillSession(sid int, minStart uint64, skip int) {
	killUntilGone(func() ([]Stat, bool) { return SignalSession(sid, minStart, skip, syscall.SIGKILL), true })
}

// killUntilGone repeats round, which SIGKILLs what it finds and returns it
// (or false to stop), until nothing it found is alive, then reaps the
// killed processes handed to this process.
func killUntilGone(round func() ([]Stat, bool)) {
	killed := map[int]Stat{}
	for range 100 {
		found, ok := round()
		if !ok {
			break
		}
		alive := 0
		for _, s := range found {
			killed[s.Pid] = s
			if s.State != 'Z' {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	reapOrphans(killed)
}

// reapOrphans waits for the killed processes that became this process's
// children. Only pids it saw in the session are waited for, never -1,
// so the exit statuses of the daemon's other children are not stolen.
func reapOrphans(killed map[int]Stat) {
	self := os.Getpid()
	deadline := time.Now().Add(5 * time.Second)
	pending := killed
	for len(pending) > 0 && time.Now().Before(deadline) {
		next := map[int]Stat{}
		for pid, k := range pending {
			s, err := ReadStat(pid)
			if err != nil || s.StartTicks != k.StartTicks {
				continue // gone: its parent reaped it
			}
			if s.State == 'Z' && s.PPid == self {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
				continue
			}
			if _, dying := killed[s.PPid]; s.State == 'Z' && !dying {
				continue // its parent lives on and reaps it
			}
			next[pid] = k
		}
		pending = next
		if len(pending) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// SignalName names a signal the way a user reads it: SIGKILL.
func SignalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
	syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
	syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGSYS: "SIGSYS",
}
