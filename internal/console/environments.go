package console

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/paging"
)

type environmentsData struct {
	Envs   []*environments.Environment
	Phase  string
	Phases []string
	Next   string
}

func (h *handler) environmentsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav, v.Live = "Environments", "environments", true
	q := r.URL.Query()
	d := &environmentsData{Phase: q.Get("phase")}
	for _, p := range []environments.Phase{environments.PhaseRunning, environments.PhaseCreating, environments.PhaseStarting,
		environments.PhaseUpdating, environments.PhaseStopping, environments.PhaseStopped, environments.PhaseDeleting} {
		d.Phases = append(d.Phases, string(p))
	}
	f := environments.ListFilter{}
	if d.Phase != "" {
		if !slices.Contains(d.Phases, d.Phase) {
			return "", apperr.Invalid("phase", "unknown environment phase %q (known: %s)", d.Phase, strings.Join(d.Phases, ", "))
		}
		f.Phases = []environments.Phase{environments.Phase(d.Phase)}
	}
	page, err := paging.Parse(q.Get("token"), listPage)
	if err != nil {
		return "", err
	}
	d.Envs, d.Next, err = h.svc.Environments.List(ctx, f, page)
	if err != nil {
		return "", err
	}
	v.Data = d
	return "environments", nil
}

type environmentData struct {
	Env        *environments.Environment
	RunnerName string
	Services   []*automations.Service
	Tasks      []*automations.Task
	Executions []*automations.TaskExecution
}

func (h *handler) environmentDetail(ctx context.Context, r *http.Request, v *view) (string, error) {
	e, err := h.svc.Environments.Get(ctx, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	name := e.Name
	if name == "" {
		name = e.ID
	}
	v.Title, v.Nav, v.Live = "Environment "+name, "environments", true
	d := &environmentData{Env: e}
	if rn, err := h.svc.Runners.Get(ctx, e.RunnerID); err == nil {
		d.RunnerName = rn.Name
	}
	if h.svc.Automations != nil {
		ids := []string{e.ID}
		page := paging.Page{Limit: paging.MaxSize}
		if d.Services, _, err = h.svc.Automations.ListServices(ctx, automations.ServiceListFilter{EnvironmentIDs: ids}, page); err != nil {
			return "", err
		}
		if d.Tasks, _, err = h.svc.Automations.ListTasks(ctx, automations.TaskListFilter{EnvironmentIDs: ids}, page); err != nil {
			return "", err
		}
		if d.Executions, _, err = h.svc.Automations.ListTaskExecutions(ctx, automations.ExecutionListFilter{EnvironmentIDs: ids}, page); err != nil {
			return "", err
		}
		slices.Reverse(d.Executions)
	}
	v.Data = d
	return "environment", nil
}

// signin is the sign-in page; its forms post to the session endpoints
// (/auth/password, /auth/key) from the island.
func (h *handler) signin(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title = "Sign in"
	return "signin", nil
}
