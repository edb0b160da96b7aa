package console

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

type podsData struct {
	Pods                 []*pods.Pod
	Total, Offset, Limit int
	Status, Runner       string
	Statuses             []string
	PrevOffset           int
	NextOffset           int
}

func (h *handler) podsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Pods", "pods"
	v.watch(events.TypeAgentExecution)
	q := r.URL.Query()
	d := &podsData{Status: q.Get("status"), Runner: q.Get("runner"), Limit: listPage}
	for _, s := range pods.Statuses {
		d.Statuses = append(d.Statuses, string(s))
	}
	var runnerSeq int64
	if d.Runner != "" {
		n, err := strconv.ParseInt(d.Runner, 10, 64)
		if err != nil || n <= 0 {
			return "", apperr.Invalid("runner", "must be a runner's numeric id, got %q", d.Runner)
		}
		runnerSeq = n
	}
	if o := q.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return "", apperr.Invalid("offset", "must be a non-negative number, got %q", o)
		}
		d.Offset = n
	}
	var err error
	d.Pods, d.Total, err = h.svc.Pods.List(ctx, pods.ListInput{Status: pods.Status(d.Status), RunnerID: runnerSeq, Limit: d.Limit, Offset: d.Offset})
	if err != nil {
		return "", err
	}
	d.PrevOffset = max(0, d.Offset-d.Limit)
	if d.Offset+len(d.Pods) < d.Total {
		d.NextOffset = d.Offset + d.Limit
	}
	v.Data = d
	return "pods", nil
}

type podData struct {
	Pod *pods.Pod
	// Runner is the pod's runner's name, when it has one.
	RunnerName string
	// Terminal is the path of the pod's terminal WebSocket; empty when the
	// pod has none to attach to.
	Terminal string
	ReadOnly bool
}

func (h *handler) podDetail(ctx context.Context, r *http.Request, v *view) (string, error) {
	p, err := h.svc.Pods.Get(ctx, r.PathValue("key"))
	if err != nil {
		return "", err
	}
	v.Title, v.Nav = "Pod "+p.Key, "pods"
	v.watch(events.TypeAgentExecution)
	d := &podData{Pod: p, ReadOnly: !v.Caller.Has(identity.ScopePodsWrite)}
	if p.RunnerID != "" && v.Caller.Has(identity.ScopeRunnersRead) {
		if rn, err := h.svc.Runners.Get(ctx, p.RunnerID); err == nil {
			d.RunnerName = rn.Name
		}
	}
	if v.Org != "" && p.RunnerID != "" && (p.Status == pods.StatusRunning || p.Status == pods.StatusTerminated || p.Status == pods.StatusFailed) {
		d.Terminal = "/api/v1/orgs/" + v.Org + "/pods/" + p.Key + "/terminal"
		v.Nonce = newNonce()
	}
	v.Data = d
	return "pod", nil
}

type podForm struct {
	AgentTypes []*pods.AgentType
	Runners    []*runners.Runner
	// What the user entered.
	AgentType, Prompt, Labels, Runner string
}

func (h *handler) podFormData(ctx context.Context, r *http.Request) (*podForm, error) {
	builtin, custom, err := h.svc.Pods.AgentTypes(ctx)
	if err != nil {
		return nil, err
	}
	f := &podForm{AgentTypes: slices.Concat(custom, builtin)}
	if c, _ := identity.FromContext(ctx); c.Has(identity.ScopeRunnersRead) {
		f.Runners, _, err = h.svc.Runners.List(ctx, runners.ListFilter{}, paging.Page{Limit: paging.MaxSize})
		if err != nil {
			return nil, err
		}
	}
	f.AgentType, f.Prompt, f.Labels, f.Runner = r.FormValue("agent_type_id"), r.FormValue("initial_prompt"), r.FormValue("labels"), r.FormValue("runner")
	return f, nil
}

func (h *handler) podNew(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "New pod", "pods"
	if _, err := identity.Require(ctx, identity.ScopePodsWrite); err != nil {
		return "", err
	}
	f, err := h.podFormData(ctx, r)
	if err != nil {
		return "", err
	}
	v.Data = f
	return "pod_new", nil
}

func (h *handler) podCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	v.Title, v.Nav = "New pod", "pods"
	f, err := h.podFormData(ctx, r)
	if err != nil {
		return "", "", err
	}
	v.Data = f
	in := pods.CreateInput{AgentTypeID: f.AgentType, InitialPrompt: f.Prompt}
	for _, l := range strings.Split(f.Labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			in.Labels = append(in.Labels, l)
		}
	}
	if f.Runner != "" {
		n, err := strconv.ParseInt(f.Runner, 10, 64)
		if err != nil {
			return "", "", &formError{"pod_new", apperr.Invalid("runner", "pick a runner from the list")}
		}
		in.RunnerID = &n
	}
	p, err := h.svc.Pods.Create(ctx, in)
	if err != nil {
		return "", "", &formError{"pod_new", err}
	}
	return "/pods/" + p.Key, "", nil
}

func (h *handler) podTerminate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	key := r.PathValue("key")
	if _, err := h.svc.Pods.Terminate(ctx, key); err != nil {
		return "", "", err
	}
	return "/pods/" + key, "", nil
}
