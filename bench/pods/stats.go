package main

// This file holds what the figures are computed from: latency percentiles,
// CPU time from /proc, resident memory.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pct returns the q-quantile of sorted latencies (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// latencies formats p50, p99 and max of d (sorted in place).
func latencies(d []time.Duration) string {
	slices.Sort(d)
	if len(d) == 0 {
		return "p50=- p99=- max=-"
	}
	return fmt.Sprintf("p50=%s p99=%s max=%s", ms(pct(d, 0.50)), ms(pct(d, 0.99)), ms(d[len(d)-1]))
}

// userHZ is the kernel's USER_HZ, the unit of /proc/stat; 100 on Linux.
const userHZ = 100

// cpuSample is the CPU time, in clock ticks, of the machine (busy time), of
// this process, of the control plane, of the simulators and of the postgres
// processes.
type cpuSample struct {
	at                              time.Time
	machine, self, server, sims, pg int64
	ok                              bool
}

func sampleCPU(serverPID int, simPIDs []int) cpuSample {
	s := cpuSample{at: time.Now()}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		s.machine += n
	}
	s.self = pidTicks(os.Getpid())
	s.server = pidTicks(serverPID)
	for _, p := range simPIDs {
		s.sims += pidTicks(p)
	}
	s.pg = postgresTicks()
	s.ok = true
	return s
}

// pidTicks returns utime+stime of a process, 0 if it is gone.
func pidTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	return procTicks(strings.Fields(rest))
}

// procTicks returns utime+stime from the fields of /proc/PID/stat that follow
// the parenthesised command name, where they are the 12th and 13th.
func procTicks(g []string) int64 {
	if len(g) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(g[11], 10, 64)
	stime, _ := strconv.ParseInt(g[12], 10, 64)
	return utime + stime
}

// postgresTicks sums the CPU time of the running postgres processes; a
// backend that exits between two samples drops out, so it is a lower bound.
func postgresTicks() int64 {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		head, rest, ok := strings.Cut(string(b), ") ")
		if !ok || !strings.HasSuffix(head, "(postgres") {
			continue
		}
		sum += procTicks(strings.Fields(rest))
	}
	return sum
}

// cpuSince formats the cores each party used between b and s, and the
// control plane's CPU time per operation.
func (s cpuSample) since(b cpuSample, ops int) string {
	if !s.ok || !b.ok {
		return "cpu=unknown"
	}
	ticks := s.at.Sub(b.at).Seconds() * userHZ
	cores := func(t int64) float64 { return max(float64(t)/ticks, 0) }
	server, sims, self, pg := cores(s.server-b.server), cores(s.sims-b.sims), cores(s.self-b.self), cores(s.pg-b.pg)
	other := max(cores(s.machine-b.machine)-server-sims-self-pg, 0)
	out := fmt.Sprintf("cores: server=%.2f sims=%.2f bench=%.2f", server, sims, self)
	if pg > 0.005 {
		out += fmt.Sprintf(" postgres=%.2f", pg)
	}
	out += fmt.Sprintf(" other=%.2f", other)
	if ops > 0 {
		per := func(t int64) int64 {
			return (time.Duration(t) * time.Second / userHZ / time.Duration(ops)).Microseconds()
		}
		out += fmt.Sprintf("; per pod: server=%dus", per(s.server-b.server))
		if pg > 0.005 {
			out += fmt.Sprintf(" postgres=%dus", per(s.pg-b.pg))
		}
		out += fmt.Sprintf(" sims=%dus bench=%dus", per(s.sims-b.sims), per(s.self-b.self))
	}
	return out
}

// rss returns a process's resident set size and its peak, in MiB.
func rss(pid int) (cur, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			cur = n / 1024
		case "VmHWM":
			peak = n / 1024
		}
	}
	return cur, peak
}
