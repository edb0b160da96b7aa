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

// cpuSample is the CPU time, in clock ticks, of the machine (busy time) and
// of the three processes: this one, the control plane and the runner.
type cpuSample struct {
	at                            time.Time
	machine, self, server, runner int64
	ok                            bool
}

func (b *bench) sampleCPU() cpuSample {
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
	s.server = pidTicks(b.srv.cmd.Process.Pid)
	s.runner = pidTicks(b.runner.cmd.Process.Pid)
	s.ok = true
	return s
}

// pidTicks returns utime+stime of a process (its children not included),
// 0 if it is gone.
func pidTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	g := strings.Fields(rest)
	// utime and stime are fields 14 and 15, the 12th and 13th after the
	// name.
	if len(g) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(g[11], 10, 64)
	stime, _ := strconv.ParseInt(g[12], 10, 64)
	return utime + stime
}

// cores returns the cores each party used between b and s: the control
// plane, the runner, this process, and everything else on the machine
// (the commands the runner starts included).
func (s cpuSample) cores(b cpuSample) (server, runner, self, other float64) {
	ticks := s.at.Sub(b.at).Seconds() * userHZ
	c := func(t int64) float64 { return max(float64(t)/ticks, 0) }
	server, runner, self = c(s.server-b.server), c(s.runner-b.runner), c(s.self-b.self)
	other = max(c(s.machine-b.machine)-server-runner-self, 0)
	return
}

// since formats the cores each party used between b and s and, with ops,
// the CPU time per operation of the control plane and the runner.
func (s cpuSample) since(b cpuSample, ops int, what string) string {
	if !s.ok || !b.ok {
		return "cpu=unknown"
	}
	server, runner, self, other := s.cores(b)
	out := fmt.Sprintf("cores: server=%.2f runner=%.2f bench=%.2f other=%.2f", server, runner, self, other)
	if ops > 0 {
		per := func(t int64) string {
			return (time.Duration(t) * time.Second / userHZ / time.Duration(ops)).Round(time.Microsecond).String()
		}
		out += fmt.Sprintf("; cpu per %s: server=%s runner=%s", what, per(s.server-b.server), per(s.runner-b.runner))
	}
	return out
}

// rss returns a process's resident set size and its peak, in MiB, and
// its number of threads.
func rss(pid int) (cur, peak float64, threads int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
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
		case "Threads":
			threads = int(n)
		}
	}
	return cur, peak, threads
}

// msf is d in milliseconds, for a report figure.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
