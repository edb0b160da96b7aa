package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
)

type environmentsData struct {
	Envs   []*environments.Environment
	Phase  string
	Phases []string
	Next   string
}

func (h *handler) environmentsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Environments", "environments"
	v.watch(events.TypeEnvironment, events.TypeRunner)
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
	// Ports are the spec's ports with their preview URLs (preview.go).
	Ports []portLink
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
	v.Events = "/console/events?environment=" + url.QueryEscape(e.ID)
	d := &environmentData{Env: e, Ports: h.portLinks(e)}
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

// envAction returns an action on environment {id} that calls fn and goes
// back to the environment's page.
func (h *handler) envAction(fn func(ctx context.Context, r *http.Request) error) actionFunc {
	return func(ctx context.Context, r *http.Request, v *view) (string, string, error) {
		if err := fn(ctx, r); err != nil {
			return "", "", err
		}
		return "/environments/" + r.PathValue("id"), "", nil
	}
}

func (h *handler) envStart(ctx context.Context, r *http.Request) error {
	return h.svc.Environments.Start(ctx, r.PathValue("id"))
}

func (h *handler) envStop(ctx context.Context, r *http.Request) error {
	return h.svc.Environments.Stop(ctx, r.PathValue("id"))
}

func (h *handler) serviceStart(ctx context.Context, r *http.Request) error {
	return h.svc.Automations.StartServiceIn(ctx, r.PathValue("id"), r.PathValue("item"))
}

func (h *handler) serviceStop(ctx context.Context, r *http.Request) error {
	return h.svc.Automations.StopServiceIn(ctx, r.PathValue("id"), r.PathValue("item"))
}

func (h *handler) taskStart(ctx context.Context, r *http.Request) error {
	_, err := h.svc.Automations.StartTaskIn(ctx, r.PathValue("id"), r.PathValue("item"))
	return err
}

// notInEnvironment is the answer for a log page whose item belongs to
// another environment than the page's: the page would show one
// environment's name over another's log.
func notInEnvironment(kind, id, envID string) error {
	return apperr.NotFound("%s %q is not in environment %q", kind, id, envID)
}

type logData struct {
	Env *environments.Environment
	// What the log is of, e.g. "service web" or "task build, execution X".
	Of string
	// URL is the log's path on this server (GET /logs/{runner}/{log}).
	URL string
}

// environmentLog is the page of one service's or execution's log, which the
// island streams from the log endpoint (?follow=1) as it is written.
func (h *handler) environmentLog(ctx context.Context, r *http.Request, v *view) (string, error) {
	e, err := h.svc.Environments.Get(ctx, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	d := &logData{Env: e}
	var logURL string
	switch kind, id := r.PathValue("kind"), r.PathValue("item"); kind {
	case "service":
		s, err := h.svc.Automations.GetService(ctx, id)
		if err != nil {
			return "", err
		}
		if s.EnvironmentID != e.ID {
			return "", notInEnvironment("service", id, e.ID)
		}
		d.Of, logURL = "service "+s.Name, s.Status.LogURL
	case "execution":
		x, err := h.svc.Automations.GetTaskExecution(ctx, id)
		if err != nil {
			return "", err
		}
		if x.EnvironmentID != e.ID {
			return "", notInEnvironment("execution", id, e.ID)
		}
		d.Of, logURL = "task "+x.TaskReference+", execution "+x.ID, x.Status.LogURL
	default:
		return "", apperr.NotFound("no log of a %q: a service or an execution has one", kind)
	}
	if logURL == "" {
		return "", apperr.FailedPrecondition("%s has no log yet: it has not run", d.Of)
	}
	u, err := url.Parse(logURL)
	if err != nil {
		return "", fmt.Errorf("log URL %q: %w", logURL, err)
	}
	d.URL = u.Path
	v.Title, v.Nav, v.Data = "Log of "+d.Of, "environments", d
	return "log", nil
}

type envForm struct {
	Classes []envClass
	// What the user entered.
	Name, URL, Class string
}

type envClass struct {
	ID, Label string
}

func (h *handler) envFormData(ctx context.Context, r *http.Request) (*envForm, error) {
	yes := true
	classes, _, err := h.svc.Environments.ListClasses(ctx, environments.ClassFilter{CanCreate: &yes}, paging.Page{Limit: paging.MaxSize})
	if err != nil {
		return nil, err
	}
	f := &envForm{Name: r.FormValue("name"), URL: strings.TrimSpace(r.FormValue("url")), Class: r.FormValue("class")}
	for _, c := range classes {
		label := c.DisplayName
		if rn, err := h.svc.Runners.Get(ctx, c.RunnerID); err == nil {
			label = rn.Name + ": " + c.DisplayName
		}
		f.Classes = append(f.Classes, envClass{ID: c.ID, Label: label})
	}
	return f, nil
}

func (h *handler) environmentNew(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "New environment", "environments"
	if _, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite); err != nil {
		return "", err
	}
	f, err := h.envFormData(ctx, r)
	if err != nil {
		return "", err
	}
	v.Data = f
	return "environment_new", nil
}

// environmentCreate makes an environment from a git or context URL on the
// chosen runner's class; the environments service resolves the URL and
// checks the class.
func (h *handler) environmentCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	v.Title, v.Nav = "New environment", "environments"
	f, err := h.envFormData(ctx, r)
	if err != nil {
		return "", "", err
	}
	v.Data = f
	in := environments.CreateInput{Spec: environments.Spec{
		DesiredPhase: environments.PhaseRunning,
		Machine:      environments.Machine{Class: f.Class},
	}}
	if f.Name != "" {
		in.Name = &f.Name
	}
	if f.URL != "" {
		u := f.URL
		in.Spec.Content.Initializers = []environments.Initializer{{ContextURL: &u}}
	}
	e, err := h.svc.Environments.Create(ctx, in)
	if err != nil {
		return "", "", &formError{"environment_new", err}
	}
	return "/environments/" + e.ID, "", nil
}
