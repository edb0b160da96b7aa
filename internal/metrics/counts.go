package metrics

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Count is how many objects of a kind are in a phase, across all
// organizations.
type Count struct {
	// Kind is "environment", "service", "execution", "pod", or
	// "pending_pod" (then Phase is the pod's pending reason, as stored).
	Kind, Phase string
	N           int64
}

// Counter counts the control plane's objects by phase (the store).
type Counter interface {
	CountObjects(ctx context.Context) ([]Count, error)
}

// countsTTL is how long one count is served: a scrape every few seconds
// from several scrapers costs one count.
const countsTTL = 5 * time.Second

var (
	environmentsDesc = prometheus.NewDesc("runyard_environments", "Environments, by phase.", []string{"phase"}, nil)
	servicesDesc     = prometheus.NewDesc("runyard_services", "Automation services, by phase.", []string{"phase"}, nil)
	executionsDesc   = prometheus.NewDesc("runyard_task_executions", "Task executions, by phase.", []string{"phase"}, nil)
	podsDesc         = prometheus.NewDesc("runyard_pods", "Pods, by status.", []string{"status"}, nil)
	placedDesc       = prometheus.NewDesc("runyard_pods_placed", "Pods placed on a runner that are pending or running there (what counts against runners' max_pods).", nil, nil)
	pendingDesc      = prometheus.NewDesc("runyard_pods_pending", "Pods waiting for a runner, by why none takes them.", []string{"reason"}, nil)
)

// countsCollector exposes the store's counts, read at most every countsTTL.
type countsCollector struct {
	c   Counter
	log *slog.Logger

	mu   sync.Mutex
	at   time.Time
	last []Count
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{environmentsDesc, servicesDesc, executionsDesc, podsDesc, placedDesc, pendingDesc} {
		ch <- d
	}
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.at) > countsTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.c.CountObjects(ctx)
		cancel()
		if err != nil {
			c.log.Warn("metrics: count objects", "err", err)
		} else {
			c.last, c.at = counts, time.Now()
		}
	}
	counts := c.last
	c.mu.Unlock()
	pending := map[string]int64{}
	for _, n := range counts {
		switch n.Kind {
		case "environment":
			ch <- prometheus.MustNewConstMetric(environmentsDesc, prometheus.GaugeValue, float64(n.N), phaseLabel(n.Phase, "ENVIRONMENT_PHASE_"))
		case "service":
			ch <- prometheus.MustNewConstMetric(servicesDesc, prometheus.GaugeValue, float64(n.N), phaseLabel(n.Phase, "SERVICE_PHASE_"))
		case "execution":
			ch <- prometheus.MustNewConstMetric(executionsDesc, prometheus.GaugeValue, float64(n.N), phaseLabel(n.Phase, "TASK_EXECUTION_PHASE_"))
		case "pod":
			ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(n.N), n.Phase)
		case "placed_pod":
			ch <- prometheus.MustNewConstMetric(placedDesc, prometheus.GaugeValue, float64(n.N))
		case "pending_pod":
			pending[PendingReason(n.Phase)] += n.N
		}
	}
	for reason, n := range pending {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), reason)
	}
}

func phaseLabel(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// PendingReason folds a pending pod's reason (internal/pods/placement.go
// words it with the agent type, labels and counts) into one of a few
// label values, so that reasons add no series per agent type or label.
func PendingReason(reason string) string {
	switch {
	case reason == "":
		return "not_placed_yet"
	case strings.HasPrefix(reason, "no runner online"):
		return "no_runner_online"
	case strings.HasPrefix(reason, "no runner takes work"):
		return "runners_draining"
	case strings.HasPrefix(reason, "no online runner with agent type"):
		return "labels_unmatched"
	case strings.HasPrefix(reason, "no online runner has agent type"):
		return "agent_type_missing"
	case strings.HasPrefix(reason, "all runners that fit are full"):
		return "runners_full"
	}
	return "other"
}
