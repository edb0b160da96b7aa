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

	"github.com/runyard/runyard/bench/internal/report"
	"github.com/runyard/runyard/internal/runner/holder"
	"github.com/runyard/runyard/internal/runner/proc"
)

func main() {
	starts := flag.Int("starts", 100, "holders started one after another for the latency figure")
	pause := flag.Duration("pause", 150*time.Millisecond, "pause between two starts (spare holders start meanwhile, as between a user's calls)")
	burst := flag.Int("burst", 50, "holders started at once for the burst figure")
	held := flag.Int("held", 100, "holders kept running at once for the memory figure")
	short := report.Short()
	flag.Parse()
	if *short {
		*starts, *pause, *burst, *held = 5, 20*time.Millisecond, 5, 5
	}
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
		time.Sleep(*pause)
	}
	fmt.Printf("start->running  bare fork/exec p50 %v p99 %v | under a holder p50 %v p99 %v (%d starts, %v apart)\n",
		pct(bare, 50), pct(bare, 99), pct(heldLat, 50), pct(heldLat, 99), *starts, *pause)
	report.Emit(report.Figure{Bench: "holder", Name: "start->running p50", Value: ms(pct(heldLat, 50)), Unit: "ms",
		Baseline: ms(pct(bare, 50)), BaselineName: "bare fork/exec"}, nil)

	// A burst: all at once, until every command runs.
	t0 := time.Now()
	var cmds []*exec.Cmd
	for range *burst {
		cmd := exec.Command(sleep, "0")
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		cmds = append(cmds, cmd)
	}
	bareBurst := time.Since(t0)
	for _, c := range cmds {
		_ = c.Wait()
	}
	t0 = time.Now()
	errs := make(chan error, *burst)
	for i := range *burst {
		go func() {
			hd := filepath.Join(dir, "burst", strconv.Itoa(i))
			h, err := holder.Start(hd, holder.Spec{Path: sleep, Args: []string{"sleep", "0"}, Mode: holder.ModeLog, LogPath: filepath.Join(hd, "log")}, holder.Hooks{})
			if err == nil {
				<-h.Done()
			}
			errs <- err
		}()
	}
	for range *burst {
		if err := <-errs; err != nil {
			fail(err)
		}
	}
	burstTook := time.Since(t0)
	fmt.Printf("burst           %d bare fork/execs %v | %d commands under holders, all ended %v\n", *burst, bareBurst.Round(time.Millisecond), *burst, burstTook.Round(time.Millisecond))
	report.Emit(report.Figure{Bench: "holder", Name: fmt.Sprintf("burst of %d, all ended", *burst), Value: ms(burstTook), Unit: "ms",
		Baseline: ms(bareBurst), BaselineName: "bare fork/execs"}, nil)

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
	var holderKiB, cmdKiB, holderAnon, cmdAnon, holderThreads int
	for _, h := range hs {
		r := h.Record()
		holderKiB += status(r.Holder.Session, "VmRSS")
		cmdKiB += status(r.Command.Session, "VmRSS")
		holderAnon += status(r.Holder.Session, "RssAnon")
		cmdAnon += status(r.Command.Session, "RssAnon")
		holderThreads += status(r.Holder.Session, "Threads")
	}
	n := len(hs)
	fmt.Printf("memory          a sleep (the command) %d KiB RSS, %d KiB anonymous | its holder %d KiB RSS, %d KiB anonymous, %d threads (mean of %d)\n",
		cmdKiB/n, cmdAnon/n, holderKiB/n, holderAnon/n, holderThreads/n, n)
	report.Emit(report.Figure{Bench: "holder", Name: "memory per holder (RssAnon)", Value: float64(holderAnon / n), Unit: "KiB",
		Baseline: float64(cmdAnon / n), BaselineName: "the command's own", Count: float64(holderThreads / n), CountUnit: "threads"}, nil)
	for _, h := range hs {
		_ = h.Signal(syscall.SIGKILL)
		<-h.Done()
	}
}

// status reads a number field of /proc/PID/status (VmRSS, RssAnon: KiB).
// RssAnon is what a process does not share: VmRSS also counts the pages of
// the binary and libraries that every holder maps.
func status(pid int, field string) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Microsecond)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/holder:", err)
	os.Exit(1)
}
