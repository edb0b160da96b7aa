package holder

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/runyard/runyard/internal/runner/proc"
)

// KillUnder kills every holder whose directory is under root, with its
// command's whole session, and returns how many it killed. It is for
// uninstalling a runner and for tests: a holder outlives every daemon by
// design, so whoever removes a runner's state directory ends its work with
// it.
func KillUnder(root string) int {
	root, err := filepath.Abs(root)
	if err != nil {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var holders []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		argv, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(bytes.SplitN(argv, []byte{0}, 2)[0]) != Name {
			continue
		}
		// The holder's working directory is its own; a removed one reads
		// "... (deleted)", still under root.
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || (cwd != root && !strings.HasPrefix(cwd, root+"/")) {
			continue
		}
		holders = append(holders, pid)
	}
	killHolders(entries, holders)
	return len(holders)
}

// killHolders kills the holders with pids holders and the sessions of
// their commands; entries lists /proc.
func killHolders(entries []os.DirEntry, holders []int) {
	if len(holders) == 0 {
		return
	}
	// The commands are the holders' children: their sessions are killed
	// once the holders are gone (the leaders die with them).
	isHolder := map[int]bool{}
	for _, pid := range holders {
		isHolder[pid] = true
	}
	var sessions []proc.Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := proc.ReadStat(pid); err == nil && isHolder[st.PPid] && st.Pid == st.Session {
			sessions = append(sessions, st)
		}
	}
	for _, pid := range holders {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, st := range sessions {
		proc.KillSession(st.Session, st.StartTicks, 0)
	}
}

// killStarting kills the holder p, still starting its command, with the
// command's session, once it is sure p is that holder (its start time).
func killStarting(p proc.Record) {
	if !running(p) {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	killHolders(entries, []int{p.Session})
}

// RunIsolated runs a test binary's tests (run: m.Run) with TMPDIR set to a
// directory of its own, then kills every holder left under it and removes
// it. Services and pods outlive their runner daemons under holders by
// design, so a test package that runs them ends their work this way, even
// when a test failed before its own cleanup; other packages' holders,
// under other directories, are left alone.
func RunIsolated(run func() int) int {
	root, err := os.MkdirTemp("", "runyard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create the test directory:", err)
		return 1
	}
	prev, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", root)
	code := run()
	if had {
		os.Setenv("TMPDIR", prev)
	} else {
		os.Unsetenv("TMPDIR")
	}
	KillUnder(root)
	os.RemoveAll(root)
	return code
}
