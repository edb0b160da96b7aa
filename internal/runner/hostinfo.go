package runner

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// hostFacts are the host's facts the runner reports as
// status.additionalInfo: kernel, CPUs, memory, the free disk of its state
// dir, and whether a container engine answers. A fact that cannot be read
// is left out rather than guessed.
func (d *Daemon) hostFacts() []*gitpodv1.FieldValue {
	var out []*gitpodv1.FieldValue
	add := func(k, v string) { out = append(out, &gitpodv1.FieldValue{Key: k, Value: v}) }
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		add("kernel", unix.ByteSliceToString(u.Sysname[:])+" "+unix.ByteSliceToString(u.Release[:]))
	}
	add("cpus", strconv.Itoa(runtime.NumCPU()))
	if n, ok := memTotal(); ok {
		add("memoryBytes", strconv.FormatUint(n, 10))
	}
	var fs unix.Statfs_t
	if unix.Statfs(d.cfg.StateDir, &fs) == nil {
		add("stateDirFreeBytes", strconv.FormatUint(fs.Bavail*uint64(fs.Bsize), 10))
	}
	engine := "none"
	if d.docker {
		engine = "docker"
	}
	add("containerEngine", engine)
	return out
}

// memTotal is MemTotal of /proc/meminfo in bytes.
func memTotal() (uint64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// capabilities are the RUNNER_CAPABILITY_* this runner has now: agent
// execution only with at least one agent binary on its PATH. (Containers
// for automations have no capability in the API; whether an engine
// answers is in additionalInfo's containerEngine.)
func (d *Daemon) capabilities() []gitpodv1.RunnerCapability {
	var out []gitpodv1.RunnerCapability
	if len(availableAgentTypes(d.customAgents)) > 0 {
		out = append(out, gitpodv1.RunnerCapability_RUNNER_CAPABILITY_AGENT_EXECUTION)
	}
	return out
}

// gateway fills the status's view of the stream: the control plane URL
// it is connected to and the round trip last measured on it.
func (d *Daemon) gateway(st *runnerv1.Status) {
	st.GatewayUrl = d.state.Server
	if l := time.Duration(d.latency.Load()); l > 0 {
		st.GatewayLatency = durationpb.New(l)
	}
}

// latencyReportEvery bounds how often a changed round trip is reported:
// a status report is a write on the control plane.
const latencyReportEvery = time.Minute

// measured records the round trip of a renewal from its acknowledgement
// and reports whether the status should be sent again: after the first
// measurement of a stream, and when the round trip changed by more than
// half (and 5 ms) since the last reported, at most once a minute.
func (d *Daemon) measured(ack *runnerv1.RenewalAck) bool {
	if ack.GetSentAt() == nil {
		return false
	}
	rtt := time.Since(ack.GetSentAt().AsTime())
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	d.latency.Store(int64(rtt))
	last := d.reportedLatency
	changed := last == 0 || (absDur(rtt-last) > 5*time.Millisecond && (rtt > 3*last/2 || rtt < last/2))
	if !changed || (last != 0 && time.Since(d.reportedLatencyAt) < latencyReportEvery) {
		return false
	}
	d.reportedLatency, d.reportedLatencyAt = rtt, time.Now()
	return true
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
