package fleet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/runners"
)

// Limits on one runner's managed metrics: a runner sends its registry (a
// few dozen families); anything far beyond is refused, not kept.
const (
	maxRunnerFamilies = 500
	maxRunnerSeries   = 10000
	// runnerMetricsStale is how long a runner's last report is exposed:
	// a runner that stopped reporting (gone, or managed metrics turned
	// off) drops out instead of showing old values forever.
	runnerMetricsStale = 3 * time.Minute
	// runnerMetricPrefix is the prefix every family a runner may report
	// carries (the runner's own names); others are dropped.
	runnerMetricPrefix = "runyard_runner_"
)

// runnerMetrics holds the latest managed metrics of each runner that
// reported to this process.
type runnerMetrics struct {
	mu   sync.Mutex
	last map[string]runnerReport // by runner ID
}

type runnerReport struct {
	at       time.Time
	families []*dto.MetricFamily
}

// ReportRunnerMetrics records the metrics a runner sent (managed metrics):
// families in Prometheus's delimited protobuf format, replacing its
// previous report. Only the calling runner's own metrics are recorded, and
// only families named runyard_runner_*.
func (f *Fleet) ReportRunnerMetrics(ctx context.Context, data []byte) error {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return err
	}
	var families []*dto.MetricFamily
	series := 0
	dec := expfmt.NewDecoder(bytes.NewReader(data), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return apperr.Invalid("metric_families", "not Prometheus's delimited protobuf format: %v", err)
		}
		if !strings.HasPrefix(mf.GetName(), runnerMetricPrefix) || reservedFamily(mf.GetName()) {
			continue
		}
		series += len(mf.GetMetric())
		if len(families) >= maxRunnerFamilies || series > maxRunnerSeries {
			return apperr.Invalid("metric_families", "more than %d families or %d series", maxRunnerFamilies, maxRunnerSeries)
		}
		for _, m := range mf.GetMetric() {
			// The control plane says which runner it is; a label of the
			// same name from the runner would be ambiguous.
			kept := m.Label[:0]
			for _, l := range m.GetLabel() {
				if l.GetName() != "runner" {
					kept = append(kept, l)
				}
			}
			m.Label = append(kept, &dto.LabelPair{Name: proto.String("runner"), Value: proto.String(c.RunnerID)})
			m.TimestampMs = nil
		}
		families = append(families, mf)
	}
	f.rm.mu.Lock()
	if f.rm.last == nil {
		f.rm.last = map[string]runnerReport{}
	}
	f.rm.last[c.RunnerID] = runnerReport{at: time.Now(), families: families}
	f.rm.mu.Unlock()
	return nil
}

// reservedFamily reports the families the control plane's own registry
// has under the runner prefix (internal/metrics): a runner's family of the
// same name would clash with them on /metrics.
func reservedFamily(name string) bool {
	return name == "runyard_runner_renewals_total"
}

// GatherRunnerMetrics returns the latest managed metrics of every runner
// that reported within runnerMetricsStale, merged by family, each series
// labelled with its runner's ID. It implements prometheus.Gatherer.
func (f *Fleet) GatherRunnerMetrics() ([]*dto.MetricFamily, error) {
	now := time.Now()
	byName := map[string]*dto.MetricFamily{}
	var order []string
	f.rm.mu.Lock()
	defer f.rm.mu.Unlock()
	for id, r := range f.rm.last {
		if now.Sub(r.at) > runnerMetricsStale {
			delete(f.rm.last, id)
			continue
		}
		for _, mf := range r.families {
			have := byName[mf.GetName()]
			if have == nil {
				have = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				byName[mf.GetName()] = have
				order = append(order, mf.GetName())
			} else if have.GetType() != mf.GetType() {
				continue // a runner of another version with another type: skip it
			}
			have.Metric = append(have.Metric, mf.Metric...)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(order))
	for _, n := range order {
		out = append(out, byName[n])
	}
	return out, nil
}

// OpenRunnerFile asks the runner's live stream for one of the daemon's own
// files (runners.FileLog, runners.FileSupportBundle) and returns it as it
// arrives. The caller authorized the request (runners.Service.AuthorizeFile).
func (f *Fleet) OpenRunnerFile(ctx context.Context, orgID, runnerID string, file runners.File) (io.ReadCloser, error) {
	which := runnerv1.RunnerFile_RUNNER_FILE_LOG
	if file == runners.FileSupportBundle {
		which = runnerv1.RunnerFile_RUNNER_FILE_SUPPORT_BUNDLE
	}
	r, err := f.open(ctx, orgID, runnerID, &runnerv1.OpenTerminal{RunnerFile: which}, string(file))
	if err != nil {
		return nil, err
	}
	if msg := r.hello.GetError(); msg != "" {
		r.Close()
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "the runner cannot send its " + string(file) + ": " + msg}
	}
	return &LogReader{r: r}, nil
}
