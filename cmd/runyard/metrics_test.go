package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetrics scrapes a real server's /metrics, without a token, while a real
// runner process connects, renews and goes away, and after CLI calls.
func TestMetrics(t *testing.T) {
	s := startServer(t, serverConfig{
		Env:  []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
		Args: []string{"--runner-timeout", "1500ms"},
	})
	if got := scrapeMetrics(t, s).value(t, "runyard_runners_connected", nil); got != 0 {
		t.Fatalf("runyard_runners_connected before any runner = %v, want 0", got)
	}

	id, exchange := registerRunner(t, s, "metrics-host")
	p := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
	eventually(t, "runyard_runners_connected is 1", func() bool {
		return scrapeMetrics(t, s).value(t, "runyard_runners_connected", nil) == 1
	})
	first := scrapeMetrics(t, s).value(t, "runyard_runner_renewals_total", nil)
	eventually(t, "runyard_runner_renewals_total increases", func() bool {
		return scrapeMetrics(t, s).value(t, "runyard_runner_renewals_total", nil) > first
	})

	t.Run("RequestCounters", func(t *testing.T) {
		ok := map[string]string{"method": "POST", "route": "/gitpod.v1.IdentityService/", "code": "200"}
		refused := map[string]string{"method": "POST", "route": "/gitpod.v1.IdentityService/", "code": "401"}
		before := scrapeMetrics(t, s)
		s.mustRun(t, adminToken, "whoami")
		s.run(t, "ryd_ak_not_a_valid_key", "whoami")
		after := scrapeMetrics(t, s)
		for _, labels := range []map[string]string{ok, refused} {
			if got, want := after.value(t, "runyard_http_requests_total", labels)-before.value(t, "runyard_http_requests_total", labels), 1.0; got != want {
				t.Errorf("runyard_http_requests_total%v grew by %v, want %v", labels, got, want)
			}
		}
		hist := after.histogramCount(t, "runyard_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/gitpod.v1.IdentityService/"})
		if hist < 2 {
			t.Errorf("runyard_http_request_duration_seconds count for the identity service = %d, want at least 2", hist)
		}
	})

	t.Run("NoRawPathsOrIDs", func(t *testing.T) {
		for _, mf := range scrapeMetrics(t, s) {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if strings.Contains(l.GetValue(), id) {
						t.Errorf("%s has label %s=%q: the runner ID is a label", mf.GetName(), l.GetName(), l.GetValue())
					}
					// Connect services are mounted on their prefix, which
					// ends in a slash; the other patterns are fixed paths.
					if r := l.GetValue(); l.GetName() == "route" && r != "unmatched" && r != "/healthz" && r != "/metrics" && !strings.HasSuffix(r, "/") {
						t.Errorf("%s has route %q, want a mux pattern", mf.GetName(), r)
					}
				}
			}
		}
	})

	// The runner's stream, on a connection of its own, was counted when
	// the connection switched protocols; the kill ends it.
	stream := map[string]string{"method": "GET", "route": "/runyard.runner.v1.RunnerControlService/", "code": "101"}
	if got := scrapeMetrics(t, s).value(t, "runyard_http_requests_total", stream); got != 1 {
		t.Errorf("runyard_http_requests_total%v = %v with one runner connected once, want 1", stream, got)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.waitExit(t)
	eventually(t, "runyard_runners_connected is 0 after the runner died", func() bool {
		return scrapeMetrics(t, s).value(t, "runyard_runners_connected", nil) == 0
	})
}

// metricFamilies is one scrape, by metric name.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics reads GET /metrics without a token.
func scrapeMetrics(t *testing.T, s *serverProc) metricFamilies {
	t.Helper()
	res, err := s.client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape /metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape /metrics: status %d, want 200 without a token", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// find returns the sample of name whose labels include labels, nil if none.
func (mfs metricFamilies) find(name string, labels map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a gauge's or counter's value; 0 for a series not (yet) there,
// which is what a counter that never counted means. A metric family that is
// missing altogether fails the test.
func (mfs metricFamilies) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	if _, ok := mfs[name]; !ok && labels == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	m := mfs.find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	t.Fatalf("%s is neither a gauge nor a counter", name)
	return 0
}

func (mfs metricFamilies) histogramCount(t *testing.T, name string, labels map[string]string) uint64 {
	t.Helper()
	m := mfs.find(name, labels)
	if m == nil || m.Histogram == nil {
		t.Fatalf("/metrics has no histogram %s%v", name, labels)
	}
	return m.GetHistogram().GetSampleCount()
}
