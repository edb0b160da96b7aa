package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

// Runner statuses of the REST API.
const (
	statusOnline  = "online"
	statusOffline = "offline"
)

// runnerJSON is a runner as the REST API shows it.
type runnerJSON struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Version  string   `json:"version"`
	OS       string   `json:"os"`
	Arch     string   `json:"arch"`
	Labels   []string `json:"labels"`
	PodCount int      `json:"pod_count"`
	MaxPods  int      `json:"max_pods"`
	// LastHeartbeatAt is null for a runner whose daemon never connected.
	LastHeartbeatAt *string `json:"last_heartbeat_at"`
	CreatedAt       string  `json:"created_at"`
}

type runnersResponse struct {
	Runners []runnerJSON `json:"runners"`
}

type runnerResponse struct {
	Runner runnerJSON `json:"runner"`
}

type podJSON struct {
	Key           string `json:"key"`
	Status        string `json:"status"`
	AgentTypeID   string `json:"agent_type_id"`
	InitialPrompt string `json:"initial_prompt"`
	CreatedAt     string `json:"created_at"`
}

type podsResponse struct {
	Pods   []podJSON `json:"pods"`
	Total  int       `json:"total"`
	Limit  int       `json:"limit"`
	Offset int       `json:"offset"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// runnerView converts r; online is its status at the time of the request.
func runnerView(r *runners.Runner, online bool, podCount int) runnerJSON {
	v := runnerJSON{
		ID:        r.Seq,
		Name:      r.Name,
		Status:    statusOffline,
		Version:   r.Report.Version,
		OS:        r.Report.OS,
		Arch:      r.Report.Arch,
		Labels:    append([]string{}, r.Report.Labels...),
		PodCount:  podCount,
		MaxPods:   r.Report.MaxPods,
		CreatedAt: formatTime(r.CreatedAt),
	}
	if online {
		v.Status = statusOnline
	}
	if !r.LastSeen.IsZero() {
		s := formatTime(r.LastSeen)
		v.LastHeartbeatAt = &s
	}
	return v
}

func podView(p *pods.Pod) podJSON {
	return podJSON{
		Key:           p.Key,
		Status:        string(p.Status),
		AgentTypeID:   p.AgentTypeID,
		InitialPrompt: p.InitialPrompt,
		CreatedAt:     formatTime(p.CreatedAt),
	}
}

// now is the runner registry's clock, so that online means the same here as
// in the registry's own expiry.
func (h *handler) now() time.Time {
	if h.svc.Runners.Now != nil {
		return h.svc.Runners.Now()
	}
	return time.Now()
}

// allRunners walks every page of the caller's organization's runners.
func (h *handler) allRunners(ctx context.Context) ([]*runners.Runner, error) {
	var out []*runners.Runner
	page := paging.Page{Limit: paging.MaxSize}
	for {
		items, next, err := h.svc.Runners.List(ctx, runners.ListFilter{}, page)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		if page, err = paging.Parse(next, paging.MaxSize); err != nil {
			return nil, err
		}
	}
}

// runnerViews lists the organization's runners that keep says to keep.
func (h *handler) runnerViews(ctx context.Context, keep func(r *runners.Runner, now time.Time, podCount int) bool) (any, error) {
	items, err := h.allRunners(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := h.svc.Pods.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	now, timeout := h.now(), h.svc.RunnerTimeout
	out := runnersResponse{Runners: []runnerJSON{}}
	for _, r := range items {
		if keep(r, now, counts[r.ID]) {
			out.Runners = append(out.Runners, runnerView(r, r.Online(now, timeout), counts[r.ID]))
		}
	}
	return out, nil
}

// listRunners is GET /runners.
func (h *handler) listRunners(ctx context.Context, _ *http.Request) (any, error) {
	return h.runnerViews(ctx, func(*runners.Runner, time.Time, int) bool { return true })
}

// availableRunners is GET /runners/available: the runners that can take
// another pod now.
func (h *handler) availableRunners(ctx context.Context, _ *http.Request) (any, error) {
	return h.runnerViews(ctx, func(r *runners.Runner, now time.Time, podCount int) bool {
		return r.Available(now, h.svc.RunnerTimeout, podCount)
	})
}

// runnerByPath returns the runner that the path's {id} names.
func (h *handler) runnerByPath(ctx context.Context, r *http.Request) (*runners.Runner, error) {
	return h.svc.Runners.GetBySeq(ctx, r.PathValue("id"))
}

// getRunner is GET /runners/{id}.
func (h *handler) getRunner(ctx context.Context, r *http.Request) (any, error) {
	rn, err := h.runnerByPath(ctx, r)
	if err != nil {
		return nil, err
	}
	counts, err := h.svc.Pods.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	return runnerResponse{Runner: runnerView(rn, rn.Online(h.now(), h.svc.RunnerTimeout), counts[rn.ID])}, nil
}

// runnerPods is GET /runners/{id}/pods?status=&limit=&offset=.
func (h *handler) runnerPods(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, offset, err := pageParams(q)
	if err != nil {
		return nil, err
	}
	rn, err := h.runnerByPath(ctx, r)
	if err != nil {
		return nil, err
	}
	items, total, err := h.svc.Pods.ListOnRunner(ctx, rn.ID, pods.Status(q.Get("status")), limit, offset)
	if err != nil {
		return nil, err
	}
	out := podsResponse{Pods: make([]podJSON, 0, len(items)), Total: total, Limit: limit, Offset: offset}
	for _, p := range items {
		out.Pods = append(out.Pods, podView(p))
	}
	return out, nil
}

// intParam parses an integer query parameter; empty means def. The domain
// checks the range.
// pageParams reads ?limit= (default pods.DefaultLimit) and ?offset=; the
// domain checks their ranges.
func pageParams(q url.Values) (limit, offset int, err error) {
	if limit, err = intParam(q.Get("limit"), "limit", pods.DefaultLimit); err != nil {
		return 0, 0, err
	}
	if offset, err = intParam(q.Get("offset"), "offset", 0); err != nil {
		return 0, 0, err
	}
	return limit, offset, nil
}

func intParam(raw, name string, def int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, apperr.Invalid(name, "must be an integer, got %q", raw)
	}
	return n, nil
}
