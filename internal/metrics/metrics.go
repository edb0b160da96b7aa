// Package metrics is the control plane's Prometheus surface: a registry per
// server (never the global default, so that several servers in one process,
// as in tests, do not collide), the Go and process collectors, the fleet's
// counters, and an HTTP middleware that counts and times requests by the
// ServeMux pattern that served them.
//
// GET /metrics takes no token, like /healthz: Prometheus scrapers rarely carry
// API keys, and nothing here is a secret or names a tenant. Labels hold only
// the HTTP method, the mux pattern, the status code and phases, never an
// organization or a raw URL path; the one exception is the runners' managed
// metrics (spec.configuration.metrics.managedMetricsEnabled), which carry
// the reporting runner's ID as label runner, as that runner's owner asked. What a scrape does reveal is the fleet's size
// and the request mix; an operator who wants to hide that serves the control
// plane behind a proxy that keeps /metrics internal.
package metrics

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Fleet is what the metrics read from the runners' streams; *fleet.Fleet
// implements it.
type Fleet interface {
	// Connected is the number of runners with a live stream.
	Connected() int64
	// Renewals is the number of renewals received since start.
	Renewals() int64
	// TerminalStreams is the number of Terminal streams (pod terminals,
	// logs, runner files) open from runners to this process.
	TerminalStreams() int64
	// LogConnections is the number of logs runners sent on connections
	// of their own (rawconn) instead of Terminal streams, since start.
	LogConnections() int64
}

// Metrics is one server's registry and its HTTP instruments.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	extra    prometheus.Gatherers
	// series caches the children of requests and duration by labels.
	series sync.Map // seriesKey → *series
}

// New returns a registry with the Go and process collectors and the fleet's
// gauges; fleet may be nil (no fleet metrics then).
func New(fleet Fleet) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runyard_http_requests_total",
			Help: "HTTP requests answered, by method, route (the mux pattern) and status code. A stream counts when it ends; an upgraded connection (101) when its handler hands it on (a runner's stream at once, a port forward when it ends).",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "runyard_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route (the mux pattern). Long-lived streams land in the last bucket.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.duration,
	)
	if fleet != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "runyard_runners_connected",
				Help: "Runners with a live stream to this control plane process.",
			}, func() float64 { return float64(fleet.Connected()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "runyard_runner_renewals_total",
				Help: "Runner renewals received by this control plane process since it started.",
			}, func() float64 { return float64(fleet.Renewals()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "runyard_terminal_streams",
				Help: "Terminal streams (pod terminals, logs, runners' own files) and logs' connections of their own open from runners to this control plane process.",
			}, func() float64 { return float64(fleet.TerminalStreams()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "runyard_log_connections_total",
				Help: "Logs runners sent to this control plane process on connections of their own (an HTTP/1.1 upgrade) since it started; the others took Terminal streams (a proxy in the way, an upgrade refused).",
			}, func() float64 { return float64(fleet.LogConnections()) }),
		)
	}
	return m
}

// AddCounts exposes the store's counts of environments, services,
// executions and pods by phase, placed pods and pending pods by reason.
func (m *Metrics) AddCounts(c Counter, log *slog.Logger) {
	m.reg.MustRegister(&countsCollector{c: c, log: log})
}

// Placer is what the placements counter reads; *pods.Service implements
// it.
type Placer interface {
	// Placements is the number of pods this process placed on a runner.
	Placements() int64
}

// AddPlacements exposes the pods p placed as a counter. Beside the gauge
// runyard_pods_placed (what is on runners now), it gives the placement
// rate: rate(runyard_pod_placements_total[5m]).
func (m *Metrics) AddPlacements(p Placer) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "runyard_pod_placements_total",
		Help: "Pods this control plane process placed on a runner (at creation or later, when one fit) since it started.",
	}, func() float64 { return float64(p.Placements()) }))
}

// AddGatherer adds what g gathers to /metrics (the runners' managed
// metrics, fleet.Fleet.GatherRunnerMetrics).
func (m *Metrics) AddGatherer(g prometheus.Gatherer) { m.extra = append(m.extra, g) }

// Registry is the server's registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	// Gatherers are read per scrape, so ones added after Handler count.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := append(prometheus.Gatherers{m.reg}, m.extra...)
		promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: m.reg}).ServeHTTP(w, r)
	})
}

// Middleware counts and times the requests next serves. next must be (or end
// in) the *http.ServeMux: the route label is the pattern the mux matched,
// which it stores in the request it was given. Requests no pattern matched
// are labelled "unmatched", so a scan of random paths adds no series.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		se := m.seriesOf(methodLabel(r.Method), routeLabel(r.Pattern), rw.code())
		se.requests.Inc()
		se.duration.Observe(time.Since(start).Seconds())
	})
}

// seriesKey names the series of a request: every label is one of a few
// values (methodLabel, the mux's patterns, the status codes the handlers
// write), so the series are few.
type seriesKey struct {
	method, route string
	code          int
}

// series are the counter and histogram of one seriesKey.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesOf returns the series of a request. Looking the labels up in the
// vectors (hashing and checking each value, formatting the code) was a few
// per cent of a GetRunner's CPU (issue 17); this is one map read.
func (m *Metrics) seriesOf(method, route string, code int) *series {
	k := seriesKey{method: method, route: route, code: code}
	if se, ok := m.series.Load(k); ok {
		return se.(*series)
	}
	se := &series{
		requests: m.requests.WithLabelValues(method, route, strconv.Itoa(code)),
		duration: m.duration.WithLabelValues(method, route),
	}
	// Two requests that race here store equal series: the vectors hand
	// out one child per label values.
	m.series.Store(k, se)
	return se
}

// routeLabel is the pattern without its method ("GET /healthz" is
// "/healthz"): the method has its own label.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

// methodLabel keeps the standard methods and folds any other into "other":
// a client chooses the method, and must not choose new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// responseWriter records the status code. It implements http.Flusher, which
// connect-go requires of streaming handlers, and Unwrap, through which
// http.ResponseController reaches the other optional interfaces (full duplex,
// deadlines, hijacking).
type responseWriter struct {
	http.ResponseWriter
	status int
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered; a stream's messages go out as they are
// written.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over for an upgrade (rawconn), which answers
// 101 Switching Protocols on the connection itself: that is the status
// the client saw.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// code is the status the client saw: 200 when the handler wrote nothing,
// as net/http answers then.
func (w *responseWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
