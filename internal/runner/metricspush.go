package runner

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/exp/api/remote"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/prompb"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// DefaultMetricsInterval is how often a runner pushes its metrics when its
// configuration asks it to.
const DefaultMetricsInterval = 30 * time.Second

// metricsTarget is where the metrics go, from the desired state's
// spec.configuration.metrics, with the password opened.
type metricsTarget struct {
	managed            bool
	url                string
	username, password string
	// shown is url with any password in it masked, for logs and errors.
	shown string
}

// redacted masks the password of a URL that carries one (user:pass@host).
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

func (t *metricsTarget) remote() bool { return t != nil && !t.managed && t.url != "" }

// setMetricsTarget takes the metrics configuration of a desired state and
// wakes the pusher when it changed, so that a new target is used at once.
func (d *Daemon) setMetricsTarget(c *runnerv1.MetricsConfig) {
	var t *metricsTarget
	switch {
	case c.GetManaged():
		t = &metricsTarget{managed: true}
	case c.GetEnabled() && c.GetUrl() != "":
		t = &metricsTarget{url: c.GetUrl(), username: c.GetUsername(), shown: redacted(c.GetUrl())}
		if sealed := c.GetSealedPassword(); len(sealed) > 0 {
			pw, err := d.openSecret(sealed)
			if err != nil {
				d.log.Warn("metrics: the password does not open with this runner's key; pushing without it", "err", err)
			} else {
				t.password = string(pw)
			}
		}
	}
	old := d.metricsTarget.Swap(t)
	if (old == nil) != (t == nil) || (old != nil && *old != *t) {
		if t != nil {
			// Never the password.
			d.log.Info("metrics: pushing", "managed", t.managed, "url", t.shown)
		} else if old != nil {
			d.log.Info("metrics: no longer pushing")
		}
		select {
		case d.metricsWake <- struct{}{}:
		default:
		}
	}
}

// pushMetrics pushes the registry every interval to the target of the
// latest desired state, until ctx ends. Without a target it only waits.
func (d *Daemon) pushMetrics(ctx context.Context) {
	every := d.cfg.MetricsInterval
	if every <= 0 {
		every = DefaultMetricsInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.metricsWake:
		}
		target := d.metricsTarget.Load()
		if target == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, max(every, 10*time.Second))
		err := d.pushOnce(pctx, target)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			d.pushFailures.Add(1)
			// One line per change of cause, not one per interval.
			if msg := err.Error(); msg != lastErr {
				d.log.Warn("metrics: push failed", "err", msg)
				lastErr = msg
			}
		case err == nil && lastErr != "":
			d.log.Info("metrics: pushing again")
			lastErr = ""
		}
	}
}

func (d *Daemon) pushOnce(ctx context.Context, t *metricsTarget) error {
	families, err := d.metrics.Gather()
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	if t.managed {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
		for _, f := range families {
			if err := enc.Encode(f); err != nil {
				return fmt.Errorf("encode: %w", err)
			}
		}
		req := connect.NewRequest(&runnerv1.ReportRunnerMetricsRequest{MetricFamilies: buf.Bytes()})
		req.Header().Set("Authorization", "Bearer "+d.state.AccessToken)
		if _, err := d.control.ReportRunnerMetrics(ctx, req); err != nil {
			return fmt.Errorf("report to the control plane: %s", message(err))
		}
		return nil
	}
	api, err := remote.NewAPI(t.url,
		remote.WithAPIPath(""), // the configured URL is the write endpoint itself
		remote.WithAPIHTTPClient(&http.Client{Transport: basicAuth{t.username, t.password}, Timeout: 30 * time.Second}),
		remote.WithAPIBackoff(remote.BackoffConfig{Min: 200 * time.Millisecond, Max: 2 * time.Second, MaxRetries: 2}),
		remote.WithAPINoRetryOnRateLimit(),
	)
	if err != nil {
		return fmt.Errorf("remote write URL %s: invalid", t.shown)
	}
	runnerID, _ := d.runnerID.Load().(string)
	wr := writeRequest(families, []prompb.Label{{Name: "job", Value: "runyard-runner"}, {Name: "runner", Value: runnerID}}, time.Now())
	if _, err := api.Write(ctx, remote.WriteV1MessageType, wr); err != nil {
		return fmt.Errorf("remote write to %s: %s", t.shown, strings.ReplaceAll(err.Error(), t.url, t.shown))
	}
	return nil
}

// basicAuth adds the metrics collector's credentials to each request.
type basicAuth struct{ username, password string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.username == "" && b.password == "" {
		return http.DefaultTransport.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.username, b.password)
	return http.DefaultTransport.RoundTrip(r)
}

// writeRequest turns gathered families into a remote-write request (1.0):
// one series per sample, histograms and summaries spelled out as
// Prometheus stores them (_bucket, _sum, _count, quantiles), every series
// with extra's labels, all at now.
func writeRequest(families []*dto.MetricFamily, extra []prompb.Label, now time.Time) *prompb.WriteRequest {
	ts := now.UnixMilli()
	wr := &prompb.WriteRequest{}
	add := func(name string, m *dto.Metric, v float64, more ...prompb.Label) {
		labels := []prompb.Label{{Name: "__name__", Value: name}}
		for _, l := range extra {
			if l.Value != "" {
				labels = append(labels, l)
			}
		}
		for _, l := range m.GetLabel() {
			labels = append(labels, prompb.Label{Name: l.GetName(), Value: l.GetValue()})
		}
		labels = append(labels, more...)
		sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
	}
	for _, f := range families {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, m, q.GetValue(), prompb.Label{Name: "quantile", Value: fmt.Sprint(q.GetQuantile())})
				}
				add(name+"_sum", m, s.GetSampleSum())
				add(name+"_count", m, float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", m, float64(b.GetCumulativeCount()), prompb.Label{Name: "le", Value: fmt.Sprint(b.GetUpperBound())})
				}
				add(name+"_bucket", m, float64(h.GetSampleCount()), prompb.Label{Name: "le", Value: fmt.Sprint(math.Inf(1))})
				add(name+"_sum", m, h.GetSampleSum())
				add(name+"_count", m, float64(h.GetSampleCount()))
			}
		}
	}
	return wr
}
