// Command holder measures what running a command under a process holder
// costs beside running it bare: the time from asking to the command
// running, and the memory each holder keeps while its command runs. Every
// figure prints beside its baseline from the same run (a bare fork/exec of
// the same command, and the command's own memory).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/proc"
)

func main() {
	starts := flag.Int("starts", 200, "holders started one after another for the latency figure")
	held := flag.Int("held", 100, "holders kept running at once for the memory figure")
	flag.Parse()
	dir, err := os.MkdirTemp("", "runyard-bench-holder-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	defer holder.KillUnder(dir)

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		fail(err)
	}
	// Latency: from the call to the command running (its pid known).
	var bare, heldLat []time.Duration
	for i := range *starts {
		t0 := time.Now()
		cmd := exec.Command(sleep, "0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		if _, err := proc.ReadStat(cmd.Process.Pid); err != nil {
			fail(err)
		}
		bare = append(bare, time.Since(t0))
		_ = cmd.Wait()

		hd := filepath.Join(dir, "lat", strconv.Itoa(i))
		t0 = time.Now()
		h, err := holder.Start(hd, holder.Spec{Path: sleep, Args: []string{"sleep", "0"}, Mode: holder.ModeLog, LogPath: filepath.Join(hd, "log")}, holder.Hooks{})
		if err != nil {
			fail(err)
		}
		heldLat = append(heldLat, time.Since(t0))
		<-h.Done()
	}
	fmt.Printf("start->running  bare fork/exec p50 %v p99 %v | under a holder p50 %v p99 %v (%d starts)\n",
		pct(bare, 50), pct(bare, 99), pct(heldLat, 50), pct(heldLat, 99), *starts)

	// Memory: holders with a sleeping command each.
	var hs []*holder.Handle
	for i := range *held {
		hd := filepath.Join(dir, "mem", strconv.Itoa(i))
		h, err := holder.Start(hd, holder.Spec{Path: sleep, Args: []string{"sleep", "600"}, Mode: holder.ModeLog, LogPath: filepath.Join(hd, "log")}, holder.Hooks{})
		if err != nil {
			fail(err)
		}
		hs = append(hs, h)
	}
	time.Sleep(500 * time.Millisecond)
	var holderKiB, cmdKiB int
	for _, h := range hs {
		r := h.Record()
		holderKiB += rss(r.Holder.Session)
		cmdKiB += rss(r.Command.Session)
	}
	fmt.Printf("memory          a sleep (the command) %d KiB RSS | its holder %d KiB RSS (mean of %d)\n",
		cmdKiB/len(hs), holderKiB/len(hs), len(hs))
	for _, h := range hs {
		_ = h.Signal(syscall.SIGKILL)
		<-h.Done()
	}
}

func rss(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/holder:", err)
	os.Exit(1)
}
