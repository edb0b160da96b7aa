package console

import (
	"context"
	"net/http"

	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

// overviewCap bounds how many runners and environments the overview reads
// to count them: beyond it the counts say "at least".
const overviewCap = 10000

type count struct {
	Label string
	N     int
	Link  string
	Tone  string
}

type overviewData struct {
	Runners, Environments, Pods []count
	RunnersCapped, EnvsCapped   bool
	// Failing are the latest failed task executions.
	Failing []*automations.TaskExecution
	// Pending are pending pods, with the reason each waits.
	Pending      []*pods.Pod
	PendingTotal int
}

func (h *handler) overview(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav, v.Poll = "Overview", "overview", 5
	v.watch(events.TypeRunner, events.TypeEnvironment, events.TypeTaskExecution, events.TypeAgentExecution)
	d := &overviewData{}
	c := v.Caller
	if c.Has(identity.ScopeRunnersRead) {
		byPhase := map[runners.Phase]int{}
		draining := 0
		n, err := eachPage(ctx, func(ctx context.Context, page paging.Page) (string, error) {
			items, next, err := h.svc.Runners.List(ctx, runners.ListFilter{}, page)
			for _, rn := range items {
				byPhase[rn.Status.Phase]++
				if rn.Spec.DesiredPhase == runners.PhaseInactive {
					draining++
				}
			}
			return next, err
		})
		if err != nil {
			return "", err
		}
		d.RunnersCapped = n >= overviewCap
		for _, p := range []runners.Phase{runners.PhaseActive, runners.PhaseDegraded, runners.PhaseInactive, runners.PhaseCreated, runners.PhaseDeleting} {
			d.Runners = append(d.Runners, count{Label: shortEnum(p), N: byPhase[p], Link: "/runners?phase=" + string(p), Tone: tone(p)})
		}
		d.Runners = append(d.Runners, count{Label: "draining", N: draining, Link: "/runners?desired=" + string(runners.PhaseInactive), Tone: "warn"})
	}
	if c.Has(identity.ScopeEnvironmentsRead) {
		byPhase := map[environments.Phase]int{}
		n, err := eachPage(ctx, func(ctx context.Context, page paging.Page) (string, error) {
			items, next, err := h.svc.Environments.List(ctx, environments.ListFilter{}, page)
			for _, e := range items {
				byPhase[e.Status.Phase]++
			}
			return next, err
		})
		if err != nil {
			return "", err
		}
		d.EnvsCapped = n >= overviewCap
		for _, p := range []environments.Phase{environments.PhaseRunning, environments.PhaseCreating, environments.PhaseStarting,
			environments.PhaseUpdating, environments.PhaseStopping, environments.PhaseStopped, environments.PhaseDeleting} {
			d.Environments = append(d.Environments, count{Label: shortEnum(p), N: byPhase[p], Link: "/environments?phase=" + string(p), Tone: tone(p)})
		}
		if h.svc.Automations != nil {
			// The newest failures: the list is oldest first, so read to the
			// end (bounded) and keep the last few.
			_, err := eachPage(ctx, func(ctx context.Context, page paging.Page) (string, error) {
				items, next, err := h.svc.Automations.ListTaskExecutions(ctx, automations.ExecutionListFilter{
					Phases: []automations.ExecutionPhase{automations.ExecutionPhaseFailed}}, page)
				d.Failing = append(d.Failing, items...)
				if len(d.Failing) > 10 {
					d.Failing = d.Failing[len(d.Failing)-10:]
				}
				return next, err
			})
			if err != nil {
				return "", err
			}
			for i, j := 0, len(d.Failing)-1; i < j; i, j = i+1, j-1 {
				d.Failing[i], d.Failing[j] = d.Failing[j], d.Failing[i]
			}
		}
	}
	if c.Has(identity.ScopePodsRead) {
		for _, st := range pods.Statuses {
			_, total, err := h.svc.Pods.List(ctx, pods.ListInput{Status: st, Limit: 1})
			if err != nil {
				return "", err
			}
			d.Pods = append(d.Pods, count{Label: string(st), N: total, Link: "/pods?status=" + string(st), Tone: tone(st)})
		}
		items, total, err := h.svc.Pods.List(ctx, pods.ListInput{Status: pods.StatusPending, Limit: 10})
		if err != nil {
			return "", err
		}
		d.Pending, d.PendingTotal = items, total
	}
	v.Data = d
	return "overview", nil
}

// eachPage calls fn with every page of a keyset-paged list, up to
// overviewCap items, and returns how many pages' worth it read.
func eachPage(ctx context.Context, fn func(ctx context.Context, page paging.Page) (string, error)) (int, error) {
	page := paging.Page{Limit: paging.MaxSize}
	read := 0
	for read < overviewCap {
		next, err := fn(ctx, page)
		if err != nil {
			return read, err
		}
		read += page.Limit
		if next == "" {
			return 0, nil
		}
		if page, err = paging.Parse(next, paging.MaxSize); err != nil {
			return read, err
		}
	}
	return read, nil
}
