package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/runyard/runyard/internal/runner/holder"
)

// work is what the processes of a runner's work use right now.
type work struct {
	Holders, Processes int
	CPUSeconds         float64
	RSSBytes           int64
}

// holderCache keeps, per live process, whether it is one of the runner's
// holders: which holders a process is does not change while it lives, and
// telling costs reads of its argv and open files.
type holderCache struct {
	mu    sync.Mutex
	known map[int]holderVerdict
}

type holderVerdict struct {
	start uint64 // start time in clock ticks: a recycled pid is another process
	// argv: named runyard-holder; holder: and holds a file under the state dir.
	argv, holder bool
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat; Linux
// fixes it at 100 for user space.
const clockTicks = 100

// readWork finds the runner's work in /proc: its process holders are the
// processes named runyard-holder with a file open under the state dir (so
// another runner's holders on the same host are not counted), and its work
// is every process in the session of a holder or of a command a holder
// started (each command leads a session of its own, and what it starts
// stays in it even when it is re-parented).
func readWork(stateDir string, seen *holderCache) work {
	var w work
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return w
	}
	dir = filepath.Clean(dir) + string(filepath.Separator)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return w
	}
	type stat struct {
		ppid, sid int
		ticks     uint64
		rssPages  int64
	}
	all := map[int]stat{}
	var holders []int
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if seen.known == nil {
		seen.known = map[int]holderVerdict{}
	}
	alive := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		_, rest, ok := splitStat(b)
		if !ok {
			continue
		}
		// Fields after the command name, from state (field 3): ppid is
		// field 4, session 6, utime 14, stime 15, rss 24.
		f := strings.Fields(rest)
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		sid, _ := strconv.Atoi(f[3])
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		rss, _ := strconv.ParseInt(f[21], 10, 64)
		all[pid] = stat{ppid: ppid, sid: sid, ticks: ut + st, rssPages: rss}
		// A holder is this binary re-executed with argv[0] runyard-holder
		// (its comm is the executable's name, so argv is what tells). The
		// verdict on a process is kept while it lives (same pid, same
		// start time), so a scan reads argv and open files of new
		// processes only.
		start, _ := strconv.ParseUint(f[19], 10, 64)
		alive[pid] = true
		v, ok := seen.known[pid]
		if !ok || v.start != start {
			v = holderVerdict{start: start, argv: isHolder(pid)}
		}
		// A spare holder opens its directory only once it gets a command:
		// until then it is asked again.
		if v.argv && !v.holder {
			v.holder = holdsUnder(pid, dir)
		}
		seen.known[pid] = v
		if v.holder {
			holders = append(holders, pid)
		}
	}
	for pid := range seen.known {
		if !alive[pid] {
			delete(seen.known, pid)
		}
	}
	sessions := map[int]bool{}
	held := map[int]bool{}
	for _, pid := range holders {
		held[pid] = true
		sessions[all[pid].sid] = true
	}
	for _, s := range all {
		if held[s.ppid] {
			sessions[s.sid] = true
		}
	}
	page := int64(os.Getpagesize())
	for _, s := range all {
		if !sessions[s.sid] {
			continue
		}
		w.Processes++
		w.CPUSeconds += float64(s.ticks) / clockTicks
		w.RSSBytes += s.rssPages * page
	}
	w.Holders = len(holders)
	return w
}

// splitStat returns the command name of a /proc/PID/stat line and what
// follows it. The name may hold spaces and parentheses, so it ends at the
// last ')'.
func splitStat(b []byte) (comm, rest string, ok bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", "", false
	}
	return string(b[open+1 : end]), string(b[end+1:]), true
}

func isHolder(pid int) bool {
	argv, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && string(bytes.SplitN(argv, []byte{0}, 2)[0]) == holder.Name
}

// holdsUnder reports whether process pid has a file open under dir.
func holdsUnder(pid int, dir string) bool {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fdDir + "/" + fd.Name()); err == nil && strings.HasPrefix(target, dir) {
			return true
		}
	}
	return false
}
