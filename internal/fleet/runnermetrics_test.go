package fleet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

func runnerCtx(id string) context.Context {
	return identity.NewContext(context.Background(), &identity.Caller{OrgID: "org", RunnerID: id,
		Subject: identity.Subject{ID: id, Principal: identity.PrincipalRunner}})
}

// delimited encodes a registry as a runner sends it.
func delimited(t *testing.T, reg *prometheus.Registry) []byte {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestReportRunnerMetrics checks what the control plane keeps of a
// runner's managed metrics: only its runyard_runner_* families that do not
// clash with the control plane's own, each series labelled with the
// reporting runner (a runner label of its own is replaced), the latest
// report per runner; bad input and non-runners are refused.
func TestReportRunnerMetrics(t *testing.T) {
	f := New(nil, 0, slog.Default())
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runyard_runner_pods", Help: "p"}, []string{"state", "runner"})
	g.WithLabelValues("running", "spoofed").Set(2)
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_goroutines_x", Help: "x"})
	reserved := prometheus.NewCounter(prometheus.CounterOpts{Name: "runyard_runner_renewals_total", Help: "r"})
	reg.MustRegister(g, other, reserved)
	for _, id := range []string{"r1", "r2"} {
		if err := f.ReportRunnerMetrics(runnerCtx(id), delimited(t, reg)); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
	g.WithLabelValues("running", "spoofed").Set(3)
	if err := f.ReportRunnerMetrics(runnerCtx("r1"), delimited(t, reg)); err != nil {
		t.Fatalf("report: %v", err)
	}
	fams, _ := f.GatherRunnerMetrics()
	var got bytes.Buffer
	for _, mf := range fams {
		expfmt.MetricFamilyToText(&got, mf)
	}
	text := got.String()
	for _, want := range []string{`runyard_runner_pods{state="running",runner="r1"} 3`, `runyard_runner_pods{state="running",runner="r2"} 2`} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s in:\n%s", want, text)
		}
	}
	for _, unwanted := range []string{"spoofed", "go_goroutines_x", "runyard_runner_renewals_total"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("%s kept:\n%s", unwanted, text)
		}
	}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		data []byte
		code apperr.Code
	}{
		{"ErrNotRunner", identity.NewContext(context.Background(), &identity.Caller{OrgID: "org", Subject: identity.Subject{ID: "k", Principal: identity.PrincipalServiceAccount}}), nil, apperr.CodePermissionDenied},
		{"ErrGarbage", runnerCtx("r1"), []byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}, apperr.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.ReportRunnerMetrics(tc.ctx, tc.data); !apperr.Is(err, tc.code) {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
		})
	}
}
