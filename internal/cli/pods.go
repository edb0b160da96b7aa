package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// This file is `runyard pods` and `runyard agents`: agent pods and the agent
// types they run, over the REST API of one organization (--org).

// restPod is a pod as the REST API shows it (rest.podDetailJSON).
type restPod struct {
	Key           string   `json:"key"`
	Status        string   `json:"status"`
	DesiredStatus string   `json:"desired_status"`
	AgentTypeID   string   `json:"agent_type_id"`
	InitialPrompt string   `json:"initial_prompt"`
	RunnerID      *int64   `json:"runner_id"`
	Labels        []string `json:"labels"`
	Workdir       string   `json:"workdir"`
	Reason        string   `json:"reason"`
	ExitCode      *int     `json:"exit_code"`
	CreatedAt     string   `json:"created_at"`
	StartedAt     *string  `json:"started_at"`
	FinishedAt    *string  `json:"finished_at"`
}

// restAgent is an agent type as the REST API shows it (rest.agentJSON).
type restAgent struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env"`
	Builtin   bool              `json:"builtin"`
	CreatedAt *string           `json:"created_at"`
}

// podsPageSize is the page size of `pods list`: the API's maximum.
const podsPageSize = 100

func newPodsCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "pods",
		Aliases: []string{"pod"},
		Short:   "Create, list, inspect and terminate agent pods",
		Long: `Create, list, inspect and terminate agent pods.

A pod runs one agent (a built-in or custom agent type, see "runyard agents")
in a terminal on a runner, started with an initial prompt. The control plane
places a new pod on a runner that can run its agent type; the pod is pending
until that runner reports it running. "pods attach" connects this terminal
to the pod's, "pods logs" prints its output.`,
	}
	cmd.PersistentFlags().StringVar(&org, "org", "default", "organization")
	cmd.AddCommand(
		newPodsCreateCmd(g, &org),
		newPodsListCmd(g, &org),
		newPodsGetCmd(g, &org),
		newPodsTerminateCmd(g, &org),
		newPodsLogsCmd(g, &org),
		newPodsAttachCmd(g, &org),
	)
	return cmd
}

func newPodsCreateCmd(g *globals, org *string) *cobra.Command {
	var agent, prompt, workdir string
	var labels, env []string
	var runner string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Start an agent pod with an initial prompt",
		Long: `Start an agent pod with an initial prompt.

--runner pins the pod to one runner, named by its name, ID, a unique ID prefix
or its numeric id (the RUNNER column of "runyard pods list", the id of
GET /api/v1/orgs/{org}/runners). Without it the
control plane picks a runner that has every --label and can run the agent
type, or keeps the pod pending until one can. --env adds variables to the
pod's process, over the agent type's own.`,
		Example: `  runyard pods create --agent claude-code --prompt "fix the flaky test in ./store"
  runyard pods create --agent my-agent --prompt hello --label gpu --env MODEL=large --workdir repo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			envMap, err := parseEnv("env", env)
			if err != nil {
				return err
			}
			body := struct {
				AgentTypeID   string            `json:"agent_type_id"`
				InitialPrompt string            `json:"initial_prompt"`
				RunnerID      *int64            `json:"runner_id,omitempty"`
				Labels        []string          `json:"labels,omitempty"`
				Env           map[string]string `json:"env,omitempty"`
				Workdir       string            `json:"workdir,omitempty"`
			}{AgentTypeID: agent, InitialPrompt: prompt, Labels: labels, Env: envMap, Workdir: workdir}
			if cmd.Flags().Changed("runner") {
				n, err := runnerNumber(runner)
				if err != nil {
					return err
				}
				body.RunnerID = &n
			}
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/pods", nil, body)
			if err != nil {
				return err
			}
			return g.showPod(raw)
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "agent type id, e.g. claude-code (see runyard agents list) (required)")
	f.StringVar(&prompt, "prompt", "", "the agent's initial prompt (required)")
	f.StringArrayVar(&labels, "label", nil, "only a runner with this label (repeat for several)")
	f.StringVar(&runner, "runner", "", "run on this runner: its name, ID, ID prefix or numeric id")
	f.StringArrayVar(&env, "env", nil, "NAME=VALUE for the pod's process (repeat for several)")
	f.StringVar(&workdir, "workdir", "", "working directory: absolute, or relative to the runner's pod directory")
	cmd.MarkFlagRequired("agent")
	cmd.MarkFlagRequired("prompt")
	return cmd
}

func newPodsListCmd(g *globals, org *string) *cobra.Command {
	var status, runner string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pods, newest first",
		Long: `List pods, newest first.

The command pages through the API until it has every pod or --limit of them.
With -o json it prints {"pods": [...], "total": N}, each pod as the API shows
it, and total the number of matching pods on the server.`,
		Example: `  runyard pods list --status running
  runyard pods list --runner 3 --limit 20 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", status)
			}
			if cmd.Flags().Changed("runner") {
				n, err := runnerNumber(runner)
				if err != nil {
					return err
				}
				q.Set("runner_id", strconv.FormatInt(n, 10))
			}
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			var all []json.RawMessage
			var pods []restPod
			seen := map[string]bool{}
			total := 0
			for offset := 0; ; {
				size := podsPageSize
				if limit > 0 && limit-len(pods) < size {
					size = limit - len(pods)
				}
				q.Set("limit", strconv.Itoa(size))
				q.Set("offset", strconv.Itoa(offset))
				raw, err := c.do(cmd.Context(), http.MethodGet, "/pods", q, nil)
				if err != nil {
					return err
				}
				var page struct {
					Pods  []json.RawMessage `json:"pods"`
					Total int               `json:"total"`
				}
				if err := json.Unmarshal(raw, &page); err != nil {
					return fmt.Errorf("decode pods: %w", err)
				}
				total = page.Total
				for _, item := range page.Pods {
					var p restPod
					if err := json.Unmarshal(item, &p); err != nil {
						return fmt.Errorf("decode pod: %w", err)
					}
					// A pod created while we page shifts the newest-first
					// list by one; skip what an earlier page showed.
					if seen[p.Key] {
						continue
					}
					seen[p.Key] = true
					all, pods = append(all, item), append(pods, p)
				}
				offset += len(page.Pods)
				if len(page.Pods) == 0 || offset >= page.Total || (limit > 0 && len(pods) >= limit) {
					break
				}
			}
			if g.structured() {
				if all == nil {
					all = []json.RawMessage{}
				}
				b, err := json.Marshal(map[string]any{"pods": all, "total": total})
				if err != nil {
					return fmt.Errorf("encode json: %w", err)
				}
				return g.printRawJSON(b)
			}
			return g.printPods(cmd.Context(), *org, pods)
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only pods in this status: pending, running, terminated or failed")
	f.StringVar(&runner, "runner", "", "only pods of this runner: its name, ID, ID prefix or numeric id")
	f.IntVar(&limit, "limit", 0, "list at most this many pods (0: all)")
	return cmd
}

func newPodsGetCmd(g *globals, org *string) *cobra.Command {
	return &cobra.Command{
		Use:   "get POD",
		Short: "Show one pod",
		Args:  exactArgs("POD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodGet, "/pods/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			return g.showPod(raw)
		},
	}
}

func newPodsTerminateCmd(g *globals, org *string) *cobra.Command {
	return &cobra.Command{
		Use:   "terminate POD",
		Short: "End a pod",
		Long: `End a pod. A pod no runner took yet is terminated at once; a placed or
running pod stays as it is until its runner has stopped the process and
reported it terminated. Terminating a finished pod changes nothing.`,
		Args: exactArgs("POD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/pods/"+url.PathEscape(args[0])+"/terminate", nil, nil)
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printRawJSON(raw)
			}
			p, err := decodePod(raw)
			if err != nil {
				return err
			}
			switch p.Status {
			case "terminated", "failed":
				fmt.Fprintf(g.stdout, "Pod %s is %s.\n", p.Key, p.Status)
			default:
				fmt.Fprintf(g.stdout, "Pod %s is terminating: its runner stops it.\n", p.Key)
			}
			return nil
		},
	}
}

func decodePod(raw json.RawMessage) (*restPod, error) {
	var res struct {
		Pod restPod `json:"pod"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	return &res.Pod, nil
}

// showPod prints an answer {"pod": ...}.
func (g *globals) showPod(raw json.RawMessage) error {
	if g.structured() {
		return g.printRawJSON(raw)
	}
	p, err := decodePod(raw)
	if err != nil {
		return err
	}
	w := g.table()
	exit := "-"
	if p.ExitCode != nil {
		exit = strconv.Itoa(*p.ExitCode)
	}
	rows := [][2]string{
		{"Key", p.Key},
		{"Status", podStatus(p)},
		{"Desired status", p.DesiredStatus},
		{"Agent", p.AgentTypeID},
		{"Runner", runnerCell(p.RunnerID)},
		{"Prompt", oneLine(p.InitialPrompt)},
		{"Labels", dash(strings.Join(p.Labels, ","))},
		{"Workdir", dash(p.Workdir)},
		{"Reason", dash(p.Reason)},
		{"Exit code", exit},
		{"Created", dash(p.CreatedAt)},
		{"Started", dash(deref(p.StartedAt))},
		{"Finished", dash(deref(p.FinishedAt))},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", row[0], row[1])
	}
	return w.Flush()
}

func (g *globals) printPods(ctx context.Context, org string, ps []restPod) error {
	w := g.table()
	header := "KEY\tSTATUS\tAGENT\tRUNNER\tREASON\tCREATED"
	runnerNames := map[int64]string{}
	if g.wide() {
		header += "\tRUNNER NAME\tEXIT CODE\tLABELS\tWORKDIR\tPROMPT"
		// The runners' names; a key that cannot read them sees dashes.
		if rs, err := g.restRunners(ctx, org); err == nil {
			for name, r := range rs {
				runnerNames[r.ID] = name
			}
		}
	}
	fmt.Fprintln(w, header)
	for i := range ps {
		p := &ps[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", p.Key, podStatus(p), p.AgentTypeID,
			runnerCell(p.RunnerID), dash(oneLine(p.Reason)), agoRFC3339(p.CreatedAt))
		if g.wide() {
			name, exit := "-", "-"
			if p.RunnerID != nil && runnerNames[*p.RunnerID] != "" {
				name = runnerNames[*p.RunnerID]
			}
			if p.ExitCode != nil {
				exit = strconv.Itoa(*p.ExitCode)
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s", name, exit, dash(strings.Join(p.Labels, ",")), dash(p.Workdir), dash(oneLine(p.InitialPrompt)))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// podStatus is a pod's status, marked while a terminate waits for the
// runner.
func podStatus(p *restPod) string {
	if p.DesiredStatus == "terminated" && (p.Status == "pending" || p.Status == "running") {
		return p.Status + " (terminating)"
	}
	return p.Status
}

func runnerCell(id *int64) string {
	if id == nil {
		return "-"
	}
	return strconv.FormatInt(*id, 10)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// agoRFC3339 is ago of an API timestamp; the timestamp itself if it does not
// parse.
func agoRFC3339(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return dash(s)
	}
	return ago(t)
}

func newAgentsCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "agents",
		Aliases: []string{"agent"},
		Short:   "List, add, change and remove the agent types pods run",
	}
	cmd.PersistentFlags().StringVar(&org, "org", "default", "organization")
	cmd.AddCommand(newAgentsListCmd(g, &org), newAgentsCreateCmd(g, &org), newAgentsGetCmd(g, &org),
		newAgentsUpdateCmd(g, &org), newAgentsDeleteCmd(g, &org))
	return cmd
}

func newAgentsListCmd(g *globals, org *string) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the built-in and the organization's custom agent types",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodGet, "/agents", nil, nil)
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printRawJSON(raw)
			}
			var res struct {
				Builtin []restAgent `json:"builtin_agents"`
				Custom  []restAgent `json:"custom_agents"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode agents: %w", err)
			}
			return g.printAgents(append(res.Builtin, res.Custom...))
		},
	}
}

func newAgentsCreateCmd(g *globals, org *string) *cobra.Command {
	var id, name string
	var env []string
	cmd := &cobra.Command{
		Use:   "create --id ID --name NAME [--env NAME=VALUE]... -- COMMAND [ARG]...",
		Short: "Add a custom agent type",
		// The usage line above already shows the flags.
		DisableFlagsInUseLine: true,
		Long: `Add a custom agent type to the organization.

The agent's command is everything after "--": the program, which a runner
looks up on its PATH (a runner offers the type only if it finds it), and its
arguments. No shell is involved. {{prompt}} anywhere in an argument stands for
the pod's initial prompt; the process also gets it in RUNYARD_INITIAL_PROMPT
and its pod key in RUNYARD_POD_KEY. "runyard agents update" changes the type
for pods created afterwards.`,
		Example: `  runyard agents create --id my-agent --name "My agent" -- my-agent --interactive {{prompt}}
  runyard agents create --id echo --name Echo --env GREETING=hi -- sh -c 'echo "$GREETING $1"; exec sh' echo {{prompt}}`,
		Args: func(cmd *cobra.Command, args []string) error {
			if at := cmd.ArgsLenAtDash(); at != 0 || len(args) == 0 {
				return usagef("give the agent's command after \"--\", e.g. runyard agents create --id ID --name NAME -- PROGRAM ARG...")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			envMap, err := parseEnv("env", env)
			if err != nil {
				return err
			}
			body := struct {
				ID      string            `json:"id"`
				Name    string            `json:"name"`
				Command []string          `json:"command"`
				Env     map[string]string `json:"env,omitempty"`
			}{ID: id, Name: name, Command: args, Env: envMap}
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/agents", nil, body)
			if err != nil {
				return err
			}
			return g.printAgentAnswer(raw)
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "slug: 2 to 63 lowercase letters, digits and dashes (required)")
	f.StringVar(&name, "name", "", "display name (required)")
	f.StringArrayVar(&env, "env", nil, "NAME=VALUE for every pod of this type (repeat for several)")
	cmd.MarkFlagRequired("id")
	cmd.MarkFlagRequired("name")
	return cmd
}

// printAgentAnswer prints the {"agent": ...} answer raw.
func (g *globals) printAgentAnswer(raw json.RawMessage) error {
	if g.structured() {
		return g.printRawJSON(raw)
	}
	var res struct {
		Agent restAgent `json:"agent"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("decode agent: %w", err)
	}
	return g.printAgents([]restAgent{res.Agent})
}

func newAgentsGetCmd(g *globals, org *string) *cobra.Command {
	return &cobra.Command{
		Use:   "get AGENT",
		Short: "Show a built-in or custom agent type",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodGet, "/agents/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			return g.printAgentAnswer(raw)
		},
	}
}

func newAgentsUpdateCmd(g *globals, org *string) *cobra.Command {
	var name string
	var env []string
	var clearEnv bool
	cmd := &cobra.Command{
		Use:                   "update AGENT [--name NAME] [--env NAME=VALUE]... [--clear-env] [-- COMMAND [ARG]...]",
		Short:                 "Change a custom agent type",
		DisableFlagsInUseLine: true,
		Long: `Change a custom agent type. Only what is given changes: --name, the
environment (--env replaces all of it, --clear-env empties it), and the
command after "--". Pods created before keep the command they were created
with; pods created afterwards run the new one.`,
		Example: `  runyard agents update my-agent -- my-agent --batch {{prompt}}
  runyard agents update my-agent --name "My agent v2" --env MODE=fast`,
		Args: func(cmd *cobra.Command, args []string) error {
			at := cmd.ArgsLenAtDash()
			if (at < 0 && len(args) != 1) || at > 1 || (at == 1 && len(args) == 1) || len(args) == 0 {
				return usagef("give the agent type's ID, and a new command only after \"--\", e.g. runyard agents update ID -- PROGRAM ARG...")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if clearEnv && len(env) > 0 {
				return usagef("--env and --clear-env exclude each other")
			}
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			if len(env) > 0 {
				envMap, err := parseEnv("env", env)
				if err != nil {
					return err
				}
				body["env"] = envMap
			}
			if clearEnv {
				body["env"] = map[string]string{}
			}
			if len(args) > 1 {
				body["command"] = args[1:]
			}
			if len(body) == 0 {
				return usagef("nothing to change: give --name, --env, --clear-env or a command after \"--\"")
			}
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPatch, "/agents/"+url.PathEscape(args[0]), nil, body)
			if err != nil {
				return err
			}
			return g.printAgentAnswer(raw)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringArrayVar(&env, "env", nil, "NAME=VALUE for every pod of this type; replaces the whole environment (repeat for several)")
	f.BoolVar(&clearEnv, "clear-env", false, "remove every environment variable of the type")
	return cmd
}

func newAgentsDeleteCmd(g *globals, org *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT",
		Short: "Remove a custom agent type (its running pods keep running)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.restClient(*org)
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), http.MethodDelete, "/agents/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Deleted agent type %s\n", args[0])
			return nil
		},
	}
}

func (g *globals) printAgents(as []restAgent) error {
	w := g.table()
	header := "ID\tNAME\tTYPE\tCOMMAND\tCREATED"
	if g.wide() {
		// The variables' names only: their values may be credentials.
		header += "\tENV"
	}
	fmt.Fprintln(w, header)
	for _, a := range as {
		kind, created := "custom", "-"
		if a.Builtin {
			kind = "built-in"
		}
		if a.CreatedAt != nil {
			created = agoRFC3339(*a.CreatedAt)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", a.ID, a.Name, kind, argvString(a.Command), created)
		if g.wide() {
			fmt.Fprintf(w, "\t%s", dash(strings.Join(sortedRefs(a.Env), ",")))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// argvString shows a command as one line, quoting the arguments a reader
// could not tell apart otherwise.
func argvString(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// runnerNumber parses --runner as resolveNames left it: the runner's
// numeric id.
func runnerNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, usagef("--runner: want a runner's name, ID or numeric id, got %q", s)
	}
	return n, nil
}
