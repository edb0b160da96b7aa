package runner

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// metricPrefix starts every metric name the runner exposes. The control
// plane keeps only families with this prefix when it re-exposes a runner's
// metrics (managed metrics), so a runner can never shadow its own series.
const metricPrefix = "runyard_runner_"

// newMetrics is the daemon's registry: its work by phase, the processes
// of that work and what they use, its stream, its self-update, and the
// daemon process itself. It is read on each scrape of /metrics and each push, never kept
// up to date in between: an idle runner spends nothing on it.
func (d *Daemon) newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "runyard_runner"}),
		&workCollector{d: d},
		&updateCollector{d: d},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "stream_connected",
			Help: "1 while the runner holds a stream to the control plane.",
		}, func() float64 { return b2f(d.health.connected.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricPrefix + "stream_sessions_total",
			Help: "Streams to the control plane established (welcome received) since the daemon started.",
		}, func() float64 { return float64(d.health.sessions.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricPrefix + "stream_reconnects_total",
			Help: "Streams established after the first one: how often the runner had to reconnect.",
		}, func() float64 { return float64(max(0, d.health.sessions.Load()-1)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "stream_latency_seconds",
			Help: "Round trip of the latest renewal and its acknowledgement on the stream (0 before the first).",
		}, func() float64 { return float64(d.latency.Load()) / 1e9 }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricPrefix + "metrics_pushes_failed_total",
			Help: "Metrics pushes (remote write or to the control plane) that failed.",
		}, func() float64 { return float64(d.pushFailures.Load()) }),
	)
	return reg
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricsHandler serves the registry in the Prometheus exposition format.
func (d *Daemon) metricsHandler() http.Handler {
	return promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{})
}

var (
	podsDesc       = prometheus.NewDesc(metricPrefix+"pods", "Pods the runner holds, by state.", []string{"state"}, nil)
	envsDesc       = prometheus.NewDesc(metricPrefix+"environments", "Environments on the runner, by phase.", []string{"phase"}, nil)
	servicesDesc   = prometheus.NewDesc(metricPrefix+"services", "Services on the runner, by phase.", []string{"phase"}, nil)
	executionsDesc = prometheus.NewDesc(metricPrefix+"executions", "Task executions on the runner, by phase.", []string{"phase"}, nil)
	procsDesc      = prometheus.NewDesc(metricPrefix+"work_processes", "Processes of the runner's work (pods, services, task steps, and their process holders) alive now.", nil, nil)
	holdersDesc    = prometheus.NewDesc(metricPrefix+"work_holders", "Process holders of the runner's work alive now (one per pod, service run or task step).", nil, nil)
	cpuDesc        = prometheus.NewDesc(metricPrefix+"work_cpu_seconds", "CPU time (user and system) used so far by the processes of the runner's work that are alive now; it drops when one ends.", nil, nil)
	rssDesc        = prometheus.NewDesc(metricPrefix+"work_resident_memory_bytes", "Resident memory of the processes of the runner's work alive now.", nil, nil)
)

// workCollector reads the daemon's work once per collection.
type workCollector struct {
	d    *Daemon
	seen holderCache
}

func (c *workCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{podsDesc, envsDesc, servicesDesc, executionsDesc, procsDesc, holdersDesc, cpuDesc, rssDesc} {
		ch <- d
	}
}

func (c *workCollector) Collect(ch chan<- prometheus.Metric) {
	pods := map[string]int{"running": 0}
	for _, ev := range c.d.pods.Pods() {
		pods[ev.Status.String()]++
	}
	envs, services, execs := map[string]int{}, map[string]int{}, map[string]int{}
	for _, m := range c.d.envs.Snapshot() {
		switch m := m.Message.(type) {
		case *runnerv1.ConnectRequest_EnvironmentStatus:
			envs[phaseLabel(m.EnvironmentStatus.GetPhase().String(), "ENVIRONMENT_PHASE_")]++
		case *runnerv1.ConnectRequest_ServiceStatus:
			services[phaseLabel(m.ServiceStatus.GetPhase().String(), "SERVICE_PHASE_")]++
		case *runnerv1.ConnectRequest_ExecutionStatus:
			execs[phaseLabel(m.ExecutionStatus.GetPhase().String(), "TASK_EXECUTION_PHASE_")]++
		}
	}
	for desc, counts := range map[*prometheus.Desc]map[string]int{podsDesc: pods, envsDesc: envs, servicesDesc: services, executionsDesc: execs} {
		for label, n := range counts {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), label)
		}
	}
	w := readWork(c.d.cfg.StateDir, &c.seen)
	ch <- prometheus.MustNewConstMetric(procsDesc, prometheus.GaugeValue, float64(w.Processes))
	ch <- prometheus.MustNewConstMetric(holdersDesc, prometheus.GaugeValue, float64(w.Holders))
	ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.GaugeValue, w.CPUSeconds)
	ch <- prometheus.MustNewConstMetric(rssDesc, prometheus.GaugeValue, float64(w.RSSBytes))
}

// phaseLabel is a phase's enum name without its prefix, in lower case
// ("SERVICE_PHASE_RUNNING" is "running").
func phaseLabel(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

var (
	updateStateDesc = prometheus.NewDesc(metricPrefix+"update_state",
		"The self-update's state: 1 for the one it is in, 0 for the others (idle, downloading, waiting-for-window, draining, restarting, failed).", []string{"state"}, nil)
	updateInfoDesc = prometheus.NewDesc(metricPrefix+"update_info",
		"Always 1: the version running, the version the runner updates to (or failed to; \"\" when none) and the release channel of the desired release (\"\" when none).",
		[]string{"version", "target_version", "channel"}, nil)
	updateFailuresDesc = prometheus.NewDesc(metricPrefix+"update_failures_total",
		"Updates that failed (download, verification, replacing the binary) or were rolled back, seen by this daemon process; a rollback is counted by the previous binary the guard starts again.", nil, nil)
)

// updateCollector reads the updater once per collection. Every state has
// its series whatever the state, so a range query or an alert on
// update_state{state="failed"} == 1 never meets an absent series.
type updateCollector struct{ d *Daemon }

func (c *updateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- updateStateDesc
	ch <- updateInfoDesc
	ch <- updateFailuresDesc
}

func (c *updateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.d.upd.metrics()
	for _, s := range updateStates {
		ch <- prometheus.MustNewConstMetric(updateStateDesc, prometheus.GaugeValue, b2f(s == m.state), s)
	}
	ch <- prometheus.MustNewConstMetric(updateInfoDesc, prometheus.GaugeValue, 1, c.d.cfg.Version, m.target, m.channel)
	ch <- prometheus.MustNewConstMetric(updateFailuresDesc, prometheus.CounterValue, float64(m.failures))
}
