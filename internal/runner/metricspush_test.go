package runner

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// TestWriteRequest checks how gathered families become remote-write series:
// counters and gauges one each, histograms and summaries spelled out as
// Prometheus stores them, every series with the extra labels (empty ones
// left out) and sorted labels.
func TestWriteRequest(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"phase"})
	c.WithLabelValues("running").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: []float64{1}})
	h.Observe(0.5)
	h.Observe(2)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "s", Help: "s", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(4)
	reg.MustRegister(c, h, s)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1234)
	wr := writeRequest(fams, []prompb.Label{{Name: "runner", Value: "r1"}, {Name: "job", Value: ""}}, now)
	var got []string
	for _, ts := range wr.Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		if !sort.StringsAreSorted(ls) {
			t.Errorf("labels not sorted: %v", ls)
		}
		if len(ts.Samples) != 1 || ts.Samples[0].Timestamp != 1234 {
			t.Errorf("samples = %v", ts.Samples)
		}
		got = append(got, fmt.Sprintf("%s %g", strings.Join(ls, ","), ts.Samples[0].Value))
	}
	want := []string{
		"__name__=c_total,phase=running,runner=r1 3",
		"__name__=h_bucket,le=1,runner=r1 1",
		"__name__=h_bucket,le=+Inf,runner=r1 2",
		"__name__=h_sum,runner=r1 2.5",
		"__name__=h_count,runner=r1 2",
		"__name__=s,quantile=0.5,runner=r1 4",
		"__name__=s_sum,runner=r1 4",
		"__name__=s_count,runner=r1 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:9090/api/v1/write", "http://127.0.0.1:9090/api/v1/write"},
		{"https://user:hunter2@metrics.example/api/v1/write", "https://user:xxxxx@metrics.example/api/v1/write"},
		{"http://[::1", "(an unparsable URL)"},
	} {
		if got := redacted(tc.in); got != tc.want || strings.Contains(got, "hunter2") {
			t.Errorf("redacted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
