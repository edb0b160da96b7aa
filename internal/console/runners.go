package console

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/manifest"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
)

// listPage is the console's page size.
const listPage = 25

type runnerRow struct {
	*runners.Runner
	Pods     int
	Healthy  int
	Draining bool
}

type runnersData struct {
	Rows []runnerRow
	// Filters as the user set them.
	Phase, Desired, Provider, Name string
	Phases, Providers              []string
	Next                           string
}

// runnersList is the runners page: one page of the domain's list with the
// filters the user set (provider, phase, name, desired phase: ACTIVE, or
// INACTIVE for the runners being drained), all applied by the store, so a
// page reads one page of rows however few runners match.
func (h *handler) runnersList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Runners", "runners"
	v.watch(events.TypeRunner, events.TypeAgentExecution)
	q := r.URL.Query()
	d := &runnersData{Phase: q.Get("phase"), Desired: q.Get("desired"), Provider: q.Get("provider"), Name: strings.TrimSpace(q.Get("name"))}
	for _, p := range runners.ListPhases {
		d.Phases = append(d.Phases, string(p))
	}
	for _, p := range runners.Providers {
		d.Providers = append(d.Providers, string(p))
	}
	if d.Phase != "" && !slices.Contains(d.Phases, d.Phase) {
		return "", apperr.Invalid("phase", "unknown runner phase %q (known: %s)", d.Phase, strings.Join(d.Phases, ", "))
	}
	if d.Desired != "" && d.Desired != string(runners.PhaseInactive) && d.Desired != string(runners.PhaseActive) {
		return "", apperr.Invalid("desired", "must be %s or %s", runners.PhaseActive, runners.PhaseInactive)
	}
	f := runners.ListFilter{NameContains: d.Name}
	if d.Provider != "" {
		f.Providers = []runners.Provider{runners.Provider(d.Provider)}
	}
	if d.Phase != "" {
		f.Phases = []runners.Phase{runners.Phase(d.Phase)}
	}
	if d.Desired != "" {
		f.DesiredPhases = []runners.Phase{runners.Phase(d.Desired)}
	}
	page, err := paging.Parse(q.Get("token"), listPage)
	if err != nil {
		return "", err
	}
	counts, err := h.svc.Pods.ActiveCounts(ctx)
	if err != nil {
		return "", err
	}
	items, next, err := h.svc.Runners.List(ctx, f, page)
	if err != nil {
		return "", err
	}
	for _, rn := range items {
		d.Rows = append(d.Rows, row(rn, counts))
	}
	d.Next = next
	v.Data = d
	return "runners", nil
}

func row(rn *runners.Runner, counts map[string]int) runnerRow {
	rw := runnerRow{Runner: rn, Pods: counts[rn.ID], Draining: rn.Spec.DesiredPhase == runners.PhaseInactive}
	for _, c := range rn.Report.Components {
		if c.Healthy {
			rw.Healthy++
		}
	}
	return rw
}

type runnerData struct {
	Runner runnerRow
	Envs   []*environments.Environment
	Pods   []*pods.Pod
	// PodsTotal counts every pod on the runner, the page shows the newest.
	PodsTotal int
	// Token is a new exchange token, shown once, with what uses it.
	Token      string
	Command    string
	Systemd    string
	Kubernetes string
	// KubernetesRefused says why no manifest is shown (no reachable
	// --public-url).
	KubernetesRefused string
	// Unreachable says since when the runner's daemon is silent.
	Unreachable string
}

func (h *handler) runnerDetail(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Nav, v.Poll = "runners", 5
	v.watch(events.TypeRunner, events.TypeEnvironment, events.TypeAgentExecution)
	d, err := h.loadRunner(ctx, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	v.Title, v.Data = "Runner "+d.Runner.Name, d
	return "runner", nil
}

func (h *handler) loadRunner(ctx context.Context, id string) (*runnerData, error) {
	rn, err := h.svc.Runners.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	counts, err := h.svc.Pods.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	d := &runnerData{Runner: row(rn, counts), Unreachable: rn.UnreachableMessage()}
	c, _ := identity.FromContext(ctx)
	if c.Has(identity.ScopeEnvironmentsRead) {
		d.Envs, _, err = h.svc.Environments.List(ctx, environments.ListFilter{RunnerIDs: []string{rn.ID}}, paging.Page{Limit: paging.MaxSize})
		if err != nil {
			return nil, err
		}
	}
	d.Pods, d.PodsTotal, err = h.svc.Pods.ListOnRunner(ctx, rn.ID, "", 20, 0)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (h *handler) setDesired(ctx context.Context, r *http.Request, phase runners.Phase) (string, string, error) {
	id := r.PathValue("id")
	if _, err := h.svc.Runners.Update(ctx, id, runners.Update{DesiredPhase: &phase}); err != nil {
		return "", "", err
	}
	return "/runners/" + id, "", nil
}

func (h *handler) runnerDrain(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.setDesired(ctx, r, runners.PhaseInactive)
}

func (h *handler) runnerResume(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	return h.setDesired(ctx, r, runners.PhaseActive)
}

func (h *handler) runnerDelete(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	force, _ := strconv.ParseBool(r.PostFormValue("force"))
	if err := h.svc.Runners.Delete(ctx, r.PathValue("id"), force); err != nil {
		return "", "", err
	}
	return "/runners", "", nil
}

// runnerToken makes a new exchange token and shows it once, in the page
// that answers the post (never in a URL), with the commands that use it.
func (h *handler) runnerToken(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	id := r.PathValue("id")
	tok, err := h.svc.Runners.CreateToken(ctx, id)
	if err != nil {
		return "", "", err
	}
	d, err := h.loadRunner(ctx, id)
	if err != nil {
		return "", "", err
	}
	server := h.svc.PublicURL()
	d.Token = tok
	d.Command = "runyard runner --server " + server + " --exchange-token " + tok + " --state-dir /var/lib/runyard-runner"
	d.Systemd = "sudo runyard runner install-service --server " + server + " --exchange-token " + tok + " --state-dir /var/lib/runyard-runner"
	if y, err := manifest.Kubernetes(manifest.Options{RunnerName: d.Runner.Name, ServerURL: server, ExchangeToken: tok, Image: h.svc.RunnerImage}); err == nil {
		d.Kubernetes = string(y)
	} else {
		d.KubernetesRefused = err.Error()
	}
	v.Title, v.Nav, v.Data = "Runner "+d.Runner.Name, "runners", d
	v.Notice = "A new exchange token was made. It is shown only on this page: copy it now."
	return "", "runner", nil
}
