package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/pods"
)

type agentsData struct {
	Builtin, Custom []*pods.AgentType
	// What the user typed in the create form.
	ID, Name, Command, Env string
}

func init() {
	// agentTable is what the agent-table template gets: the page's view,
	// the types, and whether they are the organization's (deletable).
	funcs["agentTable"] = func(v *view, types []*pods.AgentType, custom bool) map[string]any {
		return map[string]any{"V": v, "Types": types, "Custom": custom}
	}
}

// agentsList is the page of the agent types a pod may run: the built-in
// ones and the organization's own, with their command and the names of
// the variables they set (values may be credentials: not shown).
func (h *handler) agentsList(ctx context.Context, r *http.Request, v *view) (string, error) {
	v.Title, v.Nav = "Agents", "agents"
	v.watch(events.TypeAgent)
	d := &agentsData{}
	var err error
	if d.Builtin, d.Custom, err = h.svc.Pods.AgentTypes(ctx); err != nil {
		return "", err
	}
	v.Data = d
	return "agents", nil
}

// agentCreate adds a custom agent type: the command one argument a line,
// the environment NAME=value a line.
func (h *handler) agentCreate(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	v.Title, v.Nav = "Agents", "agents"
	d := &agentsData{ID: strings.TrimSpace(r.PostFormValue("id")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Command: r.PostFormValue("command"), Env: r.PostFormValue("env")}
	v.Data = d
	in := pods.AgentTypeInput{ID: d.ID, Name: d.Name, Command: lines(d.Command)}
	for i, l := range lines(d.Env) {
		name, val, ok := strings.Cut(l, "=")
		if !ok {
			return "", "", h.agentFormError(ctx, d, apperr.Invalid("env", "line %d: must be NAME=value, got %q", i+1, l))
		}
		if in.Env == nil {
			in.Env = map[string]string{}
		}
		in.Env[strings.TrimSpace(name)] = val
	}
	if _, err := h.svc.Pods.CreateAgentType(ctx, in); err != nil {
		return "", "", h.agentFormError(ctx, d, err)
	}
	return "/agents", "", nil
}

func (h *handler) agentFormError(ctx context.Context, d *agentsData, err error) error {
	var lerr error
	if d.Builtin, d.Custom, lerr = h.svc.Pods.AgentTypes(ctx); lerr != nil {
		return lerr
	}
	return &formError{"agents", err}
}

// agentEdit changes a custom agent type from its row's edit form: the
// name, the command (one argument a line), variables to set (NAME=value a
// line) and variables to remove (checked by name). The form never holds a
// variable's value, so the ones not named stay as they are.
func (h *handler) agentEdit(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	v.Title, v.Nav = "Agents", "agents"
	d := &agentsData{}
	v.Data = d
	name := strings.TrimSpace(r.PostFormValue("name"))
	u := pods.AgentTypeUpdate{Name: &name, Command: lines(r.PostFormValue("command")), UnsetEnv: r.PostForm["unset"]}
	if u.Command == nil {
		// A blank command is a mistake to report, not "leave it as it is"
		// (what a nil Command means to the service).
		u.Command = []string{}
	}
	for i, l := range lines(r.PostFormValue("set")) {
		k, val, ok := strings.Cut(l, "=")
		if !ok {
			return "", "", h.agentFormError(ctx, d, apperr.Invalid("set", "line %d: must be NAME=value, got %q", i+1, l))
		}
		if u.SetEnv == nil {
			u.SetEnv = map[string]string{}
		}
		u.SetEnv[strings.TrimSpace(k)] = val
	}
	if _, err := h.svc.Pods.UpdateAgentType(ctx, r.PathValue("id"), u); err != nil {
		return "", "", h.agentFormError(ctx, d, err)
	}
	return "/agents", "", nil
}

func (h *handler) agentDelete(ctx context.Context, r *http.Request, v *view) (string, string, error) {
	if err := h.svc.Pods.DeleteAgentType(ctx, r.PathValue("id")); err != nil {
		return "", "", err
	}
	return "/agents", "", nil
}

// lines splits a textarea into its non-blank lines, trimmed of the line
// ends a browser adds.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}
