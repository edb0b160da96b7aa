package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
)

// This file is the commands of an environment's automations: `runyard
// automations` (the automations file), `services`, `tasks` and `executions`.

// maxAutomationsFile bounds the file the CLI reads; the API takes 4 MiB.
const maxAutomationsFile = 4 << 20

func newAutomationsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "automations",
		Aliases: []string{"automation"},
		Short:   "Check an automations file, or make it an environment's services and tasks",
	}
	cmd.AddCommand(newAutomationsValidateCmd(g), newAutomationsUpdateCmd(g))
	return cmd
}

// readAutomationsFile reads, parses and validates an automations file with
// the same rules as the control plane. An invalid file is an invalid
// argument naming the file and the path of the offending field.
func readAutomationsFile(cmd *cobra.Command, path string) (*spec.File, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxAutomationsFile+1))
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			b, err = io.ReadAll(io.LimitReader(f, maxAutomationsFile+1))
			f.Close()
		}
	}
	if err != nil {
		return nil, usagef("-f: %v", err)
	}
	if len(b) > maxAutomationsFile {
		return nil, usagef("%s: larger than %d MiB", path, maxAutomationsFile>>20)
	}
	f, err := spec.Parse(b)
	if err == nil {
		err = spec.Validate(f)
	}
	if err != nil {
		name := path
		if name == "-" {
			name = "stdin"
		}
		return nil, &apperr.Error{Code: apperr.CodeInvalid, Message: name + ": " + err.Error()}
	}
	return f, nil
}

func newAutomationsValidateCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check an automations file locally, with the control plane's rules",
		Long: `Check an automations file without a control plane: strict YAML (an unknown
field, a wrong type or a duplicate key is an error naming the field's path and
line), then the rules (references, commands, triggers, dependsOn, cycles). A
valid file prints its services, tasks and what each start trigger runs, in
order.`,
		Example: `  runyard automations validate -f .runyard/automations.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			f, err := readAutomationsFile(cmd, file)
			if err != nil {
				return err
			}
			f.SetDefaults()
			if g.output == "json" {
				return g.printAnyJSON(f)
			}
			fmt.Fprintf(g.stdout, "%s is valid: %s, %s.\n", file, plural(len(f.Services), "service"), plural(len(f.Tasks), "task"))
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, ref := range sortedRefs(f.Services) {
				s := f.Services[ref]
				fmt.Fprintf(w, "  service\t%s\t%s\t%s\n", ref, s.Name, fileTriggerList(s.TriggeredBy))
			}
			for _, ref := range sortedRefs(f.Tasks) {
				t := f.Tasks[ref]
				deps := "-"
				if len(t.DependsOn) > 0 {
					deps = "after " + strings.Join(t.DependsOn, ", ")
				}
				fmt.Fprintf(w, "  task\t%s\t%s\t%s\t%s\n", ref, t.Name, fileTriggerList(t.TriggeredBy), deps)
			}
			w.Flush()
			for _, tr := range spec.FileTriggers {
				roots := f.TriggeredBy(tr)
				if len(roots) == 0 {
					continue
				}
				groups, err := spec.PlanAll(f.Graph(), roots)
				if err != nil {
					return err
				}
				parts := make([]string, len(groups))
				for i, grp := range groups {
					parts[i] = strings.Join(grp, ", ")
				}
				fmt.Fprintf(g.stdout, "On %s: %s\n", tr, strings.Join(parts, " -> "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the automations file (- for stdin)")
	cmd.MarkFlagRequired("file")
	return cmd
}

func newAutomationsUpdateCmd(g *globals) *cobra.Command {
	var file, envID string
	cmd := &cobra.Command{
		Use:   "update -f FILE --environment ENVIRONMENT_ID",
		Short: "Make an automations file an environment's services and tasks",
		Long: `Make an environment's services and tasks what the file says: items are matched
by reference; new ones are created, changed ones updated, and those the file
lacks removed (a running service is stopped first). The file is checked
locally first, strictly, so a mistake changes nothing.`,
		Example: `  runyard automations update -f .runyard/automations.yaml --environment $ENV_ID`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			f, err := readAutomationsFile(cmd, file)
			if err != nil {
				return err
			}
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			before, err := envRefs(ctx, c, envID)
			if err != nil {
				return err
			}
			res, err := c.autos.UpsertAutomationsFile(ctx, connect.NewRequest(&gitpodv1.UpsertAutomationsFileRequest{
				EnvironmentId: envID, AutomationsFile: fileToProto(f),
			}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			after, err := envRefs(ctx, c, envID)
			if err != nil {
				return err
			}
			updated := append(slices.Clone(res.Msg.GetUpdatedServiceIds()), res.Msg.GetUpdatedTaskIds()...)
			counts := map[string]int{}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(g.stdout, "Automations of environment %s updated from %s:\n", envID, file)
			report := func(kind string, refs []string, inFile func(string) bool, beforeIDs, afterIDs map[string]string) {
				for _, ref := range refs {
					what := "unchanged"
					switch _, existed := beforeIDs[ref]; {
					case !inFile(ref):
						what = "removed"
						if _, still := afterIDs[ref]; still {
							what = "removing (stopping first)"
						}
					case slices.Contains(updated, afterIDs[ref]) && !existed:
						what = "created"
					case slices.Contains(updated, afterIDs[ref]):
						what = "updated"
					}
					counts[strings.Fields(what)[0]]++
					fmt.Fprintf(w, "  %s\t%s\t%s\n", kind, ref, what)
				}
			}
			report("service", unionRefs(f.Services, before.services), func(r string) bool { _, ok := f.Services[r]; return ok }, before.services, after.services)
			report("task", unionRefs(f.Tasks, before.tasks), func(r string) bool { _, ok := f.Tasks[r]; return ok }, before.tasks, after.tasks)
			w.Flush()
			var sum []string
			for _, k := range []string{"created", "updated", "removed", "removing", "unchanged"} {
				if counts[k] > 0 {
					sum = append(sum, fmt.Sprintf("%d %s", counts[k], k))
				}
			}
			if len(sum) == 0 {
				sum = []string{"nothing to change"}
			}
			fmt.Fprintf(g.stdout, "%s.\n", strings.Join(sum, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the automations file (- for stdin)")
	f.StringVar(&envID, "environment", "", "the environment's ID")
	cmd.MarkFlagRequired("file")
	cmd.MarkFlagRequired("environment")
	return cmd
}

// refSet maps the references of an environment's services and tasks to
// their IDs.
type refSet struct {
	services map[string]string
	tasks    map[string]string
}

func envRefs(ctx context.Context, c *envClients, envID string) (*refSet, error) {
	svcs, err := listServices(ctx, c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{envID}})
	if err != nil {
		return nil, err
	}
	tasks, err := listTasks(ctx, c, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{envID}})
	if err != nil {
		return nil, err
	}
	rs := &refSet{services: map[string]string{}, tasks: map[string]string{}}
	for _, s := range svcs {
		rs.services[s.GetMetadata().GetReference()] = s.GetId()
	}
	for _, t := range tasks {
		rs.tasks[t.GetMetadata().GetReference()] = t.GetId()
	}
	return rs, nil
}

func unionRefs[V any](file map[string]V, before map[string]string) []string {
	var refs []string
	for r := range file {
		refs = append(refs, r)
	}
	for r := range before {
		if _, ok := file[r]; !ok {
			refs = append(refs, r)
		}
	}
	sort.Strings(refs)
	return refs
}

func sortedRefs[V any](m map[string]V) []string {
	refs := make([]string, 0, len(m))
	for r := range m {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	return refs
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func fileTriggerList(ts []spec.Trigger) string {
	if len(ts) == 0 {
		return "-"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// fileToProto is the automations file of UpsertAutomationsFile: the parsed
// file as it is, roles and triggers spelt as in YAML.
func fileToProto(f *spec.File) *gitpodv1.AutomationsFile {
	out := &gitpodv1.AutomationsFile{}
	if len(f.Services) > 0 {
		out.Services = make(map[string]*gitpodv1.AutomationsFile_Service, len(f.Services))
	}
	for ref, s := range f.Services {
		out.Services[ref] = &gitpodv1.AutomationsFile_Service{
			Name:        s.Name,
			Description: s.Description,
			Commands:    &gitpodv1.ServiceSpec_Commands{Start: s.Commands.Start, Ready: s.Commands.Ready, Stop: s.Commands.Stop},
			TriggeredBy: triggerStrings(s.TriggeredBy),
			RunsOn:      runsOnProto(s.RunsOn),
			Role:        string(s.Role),
		}
	}
	if len(f.Tasks) > 0 {
		out.Tasks = make(map[string]*gitpodv1.AutomationsFile_Task, len(f.Tasks))
	}
	for ref, t := range f.Tasks {
		out.Tasks[ref] = &gitpodv1.AutomationsFile_Task{
			Name:        t.Name,
			Description: t.Description,
			Command:     t.Command,
			DependsOn:   t.DependsOn,
			TriggeredBy: triggerStrings(t.TriggeredBy),
			RunsOn:      runsOnProto(t.RunsOn),
		}
	}
	return out
}

func triggerStrings(ts []spec.Trigger) []string {
	if len(ts) == 0 {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func runsOnProto(r spec.RunsOn) *gitpodv1.RunsOn {
	switch {
	case r.Docker != nil:
		return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Docker_{Docker: &gitpodv1.RunsOn_Docker{
			Image: r.Docker.Image, Environment: r.Docker.Environment,
		}}}
	case r.Machine != nil:
		return &gitpodv1.RunsOn{Target: &gitpodv1.RunsOn_Machine_{Machine: &gitpodv1.RunsOn_Machine{}}}
	}
	return nil
}

// ---- services ----

func newServicesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "services",
		Aliases: []string{"service", "svc"},
		Short:   "List, start and stop an environment's services, and read their logs",
	}
	cmd.AddCommand(newServicesListCmd(g), newServicesStartCmd(g), newServicesStopCmd(g), newServicesLogsCmd(g))
	return cmd
}

func listServices(ctx context.Context, c *envClients, filter *gitpodv1.ListServicesRequest_Filter) ([]*gitpodv1.Service, error) {
	var all []*gitpodv1.Service
	token := ""
	for {
		res, err := c.autos.ListServices(ctx, connect.NewRequest(&gitpodv1.ListServicesRequest{
			Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return nil, err
		}
		all = append(all, res.Msg.GetServices()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return all, nil
		}
	}
}

// resolveService finds the service arg names: its ID, or with envID its
// reference in that environment.
func resolveService(ctx context.Context, c *envClients, envID, arg string) (*gitpodv1.Service, error) {
	if envID == "" {
		res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: arg}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetService(), nil
	}
	svcs, err := listServices(ctx, c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{envID}, References: []string{arg}})
	if err != nil {
		return nil, err
	}
	if len(svcs) == 0 {
		return nil, apperr.NotFound("service %q not found in environment %s", arg, envID)
	}
	return svcs[0], nil
}

func newServicesListCmd(g *globals) *cobra.Command {
	var envIDs, refs []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List services with their phases",
		Example: `  runyard services list --environment $ENV_ID`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			all, err := listServices(cmd.Context(), c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: envIDs, References: refs})
			if err != nil {
				return err
			}
			if g.output == "json" {
				items := make([]proto.Message, len(all))
				for i, s := range all {
					items[i] = s
				}
				return g.printJSONList("services", items)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			oneEnv := len(envIDs) == 1
			header := "ID\tREFERENCE\tNAME\tPHASE\tDESIRED\tTRIGGERS\tFAILURE"
			if !oneEnv {
				header = "ID\tENVIRONMENT\tREFERENCE\tNAME\tPHASE\tDESIRED\tTRIGGERS\tFAILURE"
			}
			fmt.Fprintln(w, header)
			for _, s := range all {
				env := ""
				if !oneEnv {
					env = s.GetEnvironmentId() + "\t"
				}
				fmt.Fprintf(w, "%s\t%s%s\t%s\t%s\t%s\t%s\t%s\n", s.GetId(), env, s.GetMetadata().GetReference(), dash(s.GetMetadata().GetName()),
					servicePhase(s.GetStatus().GetPhase()), servicePhase(s.GetSpec().GetDesiredPhase()),
					triggerList(s.GetMetadata().GetTriggeredBy()), dash(oneLine(s.GetStatus().GetFailureMessage())))
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only the services of these environments")
	f.StringSliceVar(&refs, "reference", nil, "only services with these references")
	return cmd
}

// serviceArgs are the ways to name a service: SERVICE_ID, or
// --environment ENVIRONMENT_ID REFERENCE.
const serviceArgs = "SERVICE_ID (or --environment ENVIRONMENT_ID REFERENCE)"

func newServicesStartCmd(g *globals) *cobra.Command {
	return newServiceDesiredCmd(g, "start", "Start a service (a stopped or failed one in a new session)", true)
}

func newServicesStopCmd(g *globals) *cobra.Command {
	return newServiceDesiredCmd(g, "stop", "Stop a service: its stop command, or SIGTERM and SIGKILL after the grace period", false)
}

func newServiceDesiredCmd(g *globals, verb, short string, start bool) *cobra.Command {
	var envID string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   verb + " " + serviceArgs,
		Short: short,
		Example: fmt.Sprintf(`  runyard services %[1]s $SERVICE_ID
  runyard services %[1]s --environment $ENV_ID web --wait`, verb),
		Args: exactArgs(serviceArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := resolveService(ctx, c, envID, args[0])
			if err != nil {
				return err
			}
			var res proto.Message
			if start {
				r, err := c.autos.StartService(ctx, connect.NewRequest(&gitpodv1.StartServiceRequest{Id: svc.GetId()}))
				if err != nil {
					return err
				}
				res = r.Msg
			} else {
				r, err := c.autos.StopService(ctx, connect.NewRequest(&gitpodv1.StopServiceRequest{Id: svc.GetId()}))
				if err != nil {
					return err
				}
				res = r.Msg
			}
			name := fmt.Sprintf("service %s (%s)", svc.GetMetadata().GetReference(), svc.GetId())
			if !w.wait {
				if g.output == "json" {
					return g.printJSON(res)
				}
				doing := "stopping"
				if start {
					doing = "starting"
				}
				fmt.Fprintf(g.stdout, "Service %s (%s) is %s.\n", svc.GetMetadata().GetReference(), svc.GetId(), doing)
				return nil
			}
			return g.waitService(ctx, c, svc.GetId(), name, start, w)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "name the service by its reference in this environment")
	what := "the service is stopped"
	if start {
		what = "the service is running"
	}
	w.add(cmd, what)
	return cmd
}

// waitService waits until service id runs (start) or is stopped, printing
// its phases. A start counts the session the start asked for, so a failure
// of an earlier session is not mistaken for this one's.
func (g *globals) waitService(parent context.Context, c *envClients, id, name string, start bool, w waitFlags) error {
	ctx, cancel := w.context(parent)
	defer cancel()
	what := name + " is running"
	if !start {
		what = name + " is stopped"
	}
	begin := time.Now()
	last := gitpodv1.ServicePhase(-1)
	for {
		res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx, w.timeout, what)
			}
			return err
		}
		s := res.Msg.GetService()
		st := s.GetStatus()
		current := !start || st.GetSession() == s.GetSpec().GetSession()
		if p := st.GetPhase(); current && p != last {
			last = p
			if g.output != "json" {
				fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(begin)), servicePhase(p))
			}
		}
		done, failed := false, false
		if current {
			switch st.GetPhase() {
			case gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING:
				done = start
			case gitpodv1.ServicePhase_SERVICE_PHASE_FAILED:
				done, failed = true, true
			case gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED:
				// A start that ends stopped: its command exited 0.
				done, failed = true, start
			case gitpodv1.ServicePhase_SERVICE_PHASE_UNSPECIFIED:
				// Never ran: as good as stopped.
				done = !start
			}
		}
		if done {
			if g.output == "json" {
				if err := g.printJSON(res.Msg); err != nil {
					return err
				}
			}
			if failed {
				msg := st.GetFailureMessage()
				if msg == "" {
					msg = "its start command exited"
				}
				return fmt.Errorf("%s %s: %s", name, servicePhase(st.GetPhase()), msg)
			}
			if g.output != "json" {
				fmt.Fprintf(g.stdout, "Service %s is %s (%s).\n", s.GetMetadata().GetReference(), servicePhase(st.GetPhase()), elapsed(time.Since(begin)))
			}
			return nil
		}
		if !sleepCtx(ctx, pollInterval) {
			return waitError(ctx, w.timeout, what)
		}
	}
}

func newServicesLogsCmd(g *globals) *cobra.Command {
	var envID string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs " + serviceArgs,
		Short: "Print the log of a service's current run",
		Long: `Print the log of a service's current (or last) run, from its runner. With -f,
go on printing as the service writes, until the run ends or Ctrl-C.`,
		Example: `  runyard services logs --environment $ENV_ID web -f`,
		Args:    exactArgs(serviceArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := resolveService(ctx, c, envID, args[0])
			if err != nil {
				return err
			}
			id := svc.GetId()
			logURL, err := waitLogURL(ctx, follow, func() (string, bool, error) {
				res, err := c.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
				if err != nil {
					return "", false, err
				}
				s := res.Msg.GetService()
				return s.GetStatus().GetLogUrl(), s.GetSpec().GetDesiredPhase() != gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING, nil
			})
			if err != nil {
				return err
			}
			if logURL == "" {
				return apperr.FailedPrecondition("service %s has no log yet: it has not run", svc.GetMetadata().GetReference())
			}
			return g.streamLog(ctx, c.token, logURL, follow)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "name the service by its reference in this environment")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the run ends")
	return cmd
}

// waitLogURL returns the log URL fetch finds. With follow it waits for one
// while fetch says more may come (done false), so `logs -f` right after a
// start shows the run from its beginning.
func waitLogURL(ctx context.Context, follow bool, fetch func() (logURL string, done bool, err error)) (string, error) {
	for {
		u, done, err := fetch()
		if err != nil || u != "" || !follow || done {
			return u, err
		}
		if !sleepCtx(ctx, pollInterval) {
			return "", ctx.Err()
		}
	}
}

// streamLog copies a log URL (status.logUrl, on the control plane) to
// stdout; with follow it asks for ?follow=1 and copies until the run ends.
func (g *globals) streamLog(ctx context.Context, token, logURL string, follow bool) error {
	u, err := url.Parse(logURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("the control plane gave an unusable log URL %q", logURL)
	}
	if follow {
		q := u.Query()
		q.Set("follow", "1")
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// No overall timeout: a followed log lasts as long as the run.
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return unreachable(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
		return restError(res.StatusCode, b)
	}
	if _, err := io.Copy(g.stdout, res.Body); err != nil && ctx.Err() == nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: "the log stream broke: " + err.Error()}
	}
	return nil
}

// ---- tasks ----

func newTasksCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tasks",
		Aliases: []string{"task"},
		Short:   "List and start an environment's tasks, and read the logs of their executions",
	}
	cmd.AddCommand(newTasksListCmd(g), newTasksStartCmd(g), newTasksLogsCmd(g))
	return cmd
}

func listTasks(ctx context.Context, c *envClients, filter *gitpodv1.ListTasksRequest_Filter) ([]*gitpodv1.Task, error) {
	var all []*gitpodv1.Task
	token := ""
	for {
		res, err := c.autos.ListTasks(ctx, connect.NewRequest(&gitpodv1.ListTasksRequest{
			Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return nil, err
		}
		all = append(all, res.Msg.GetTasks()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			return all, nil
		}
	}
}

// refNames maps the IDs of the services and tasks of environments to
// "service REF" and "task REF", for plans and dependencies.
func refNames(ctx context.Context, c *envClients, envIDs []string) (map[string]string, error) {
	names := map[string]string{}
	if len(envIDs) == 0 {
		return names, nil
	}
	svcs, err := listServices(ctx, c, &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: envIDs})
	if err != nil {
		return nil, err
	}
	for _, s := range svcs {
		names[s.GetId()] = "service " + s.GetMetadata().GetReference()
	}
	tasks, err := listTasks(ctx, c, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: envIDs})
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		names[t.GetId()] = "task " + t.GetMetadata().GetReference()
	}
	return names, nil
}

func newTasksListCmd(g *globals) *cobra.Command {
	var envIDs, refs []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tasks with their dependencies and triggers",
		Example: `  runyard tasks list --environment $ENV_ID`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			all, err := listTasks(ctx, c, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: envIDs, References: refs})
			if err != nil {
				return err
			}
			if g.output == "json" {
				items := make([]proto.Message, len(all))
				for i, t := range all {
					items[i] = t
				}
				return g.printJSONList("tasks", items)
			}
			var envs []string
			for _, t := range all {
				if !slices.Contains(envs, t.GetEnvironmentId()) {
					envs = append(envs, t.GetEnvironmentId())
				}
			}
			names, err := refNames(ctx, c, envs)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			oneEnv := len(envIDs) == 1
			if oneEnv {
				fmt.Fprintln(w, "ID\tREFERENCE\tNAME\tDEPENDS ON\tTRIGGERS")
			} else {
				fmt.Fprintln(w, "ID\tENVIRONMENT\tREFERENCE\tNAME\tDEPENDS ON\tTRIGGERS")
			}
			for _, t := range all {
				deps := make([]string, len(t.GetDependsOn()))
				for i, d := range t.GetDependsOn() {
					deps[i] = d
					if n, ok := names[d]; ok {
						deps[i] = n[strings.IndexByte(n, ' ')+1:]
					}
				}
				env := ""
				if !oneEnv {
					env = t.GetEnvironmentId() + "\t"
				}
				fmt.Fprintf(w, "%s\t%s%s\t%s\t%s\t%s\n", t.GetId(), env, t.GetMetadata().GetReference(), dash(t.GetMetadata().GetName()),
					dash(strings.Join(deps, ",")), triggerList(t.GetMetadata().GetTriggeredBy()))
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only the tasks of these environments")
	f.StringSliceVar(&refs, "reference", nil, "only tasks with these references")
	return cmd
}

// taskArgs are the ways to name a task, like serviceArgs.
const taskArgs = "TASK_ID (or --environment ENVIRONMENT_ID REFERENCE)"

func newTasksStartCmd(g *globals) *cobra.Command {
	var envID string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "start " + taskArgs,
		Short: "Run a task, after what it depends on",
		Long: `Start an execution of a task: its dependencies first, in groups (the steps of a
group run at once, groups one after another). With --wait, show which steps
run and which finished until the execution ends; a failed or stopped
execution exits non-zero.`,
		Example: `  runyard tasks start --environment $ENV_ID build --wait
  runyard tasks start $TASK_ID`,
		Args: exactArgs(taskArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id := args[0]
			if envID != "" {
				tasks, err := listTasks(ctx, c, &gitpodv1.ListTasksRequest_Filter{EnvironmentIds: []string{envID}, References: []string{id}})
				if err != nil {
					return err
				}
				if len(tasks) == 0 {
					return apperr.NotFound("task %q not found in environment %s", id, envID)
				}
				id = tasks[0].GetId()
			}
			res, err := c.autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: id}))
			if err != nil {
				return err
			}
			x := res.Msg.GetTaskExecution()
			if !w.wait && g.output == "json" {
				return g.printJSON(res.Msg)
			}
			names, err := refNames(ctx, c, []string{x.GetMetadata().GetEnvironmentId()})
			if err != nil {
				return err
			}
			if g.output != "json" {
				fmt.Fprintf(g.stdout, "Execution %s of %s started: %s\n", x.GetId(), nameOr(names, x.GetMetadata().GetTaskId(), "task"), planString(x, names))
			}
			if !w.wait {
				return nil
			}
			return g.waitExecution(ctx, c, x, names, w)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "name the task by its reference in this environment")
	w.add(cmd, "the execution ends")
	return cmd
}

func nameOr(names map[string]string, id, kind string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return kind + " " + id
}

// stepName names a step of an execution's plan by what it runs.
func stepName(st *gitpodv1.TaskExecutionSpec_Step, names map[string]string) string {
	switch {
	case st.GetTask() != nil:
		if n, ok := names[st.GetTask().GetId()]; ok {
			return n
		}
	case st.GetServiceId() != "":
		if n, ok := names[st.GetServiceId()]; ok {
			return n
		}
	}
	if st.GetLabel() != "" {
		return st.GetLabel()
	}
	return st.GetId()
}

// planString renders an execution's plan: groups in order, the steps of a
// group together.
func planString(x *gitpodv1.TaskExecution, names map[string]string) string {
	var groups []string
	n := 0
	for _, grp := range x.GetSpec().GetPlan() {
		var steps []string
		for _, st := range grp.GetSteps() {
			steps = append(steps, stepName(st, names))
			n++
		}
		groups = append(groups, strings.Join(steps, " + "))
	}
	return fmt.Sprintf("%s: %s", plural(n, "step"), strings.Join(groups, " -> "))
}

// waitExecution follows an execution until it ends, printing each step
// that starts, finishes or fails with the time since the start, and fails
// unless the execution succeeds.
func (g *globals) waitExecution(parent context.Context, c *envClients, x *gitpodv1.TaskExecution, names map[string]string, w waitFlags) error {
	ctx, cancel := w.context(parent)
	defer cancel()
	id := x.GetId()
	what := "execution " + id + " ends"
	steps := map[string]string{}
	total := 0
	for _, grp := range x.GetSpec().GetPlan() {
		for _, st := range grp.GetSteps() {
			steps[st.GetId()] = stepName(st, names)
			total++
		}
	}
	begin := time.Now()
	progress := func(format string, args ...any) {
		if g.output != "json" {
			fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(begin)), fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]gitpodv1.TaskExecutionPhase{}
	lastPhase := gitpodv1.TaskExecutionPhase(-1)
	for {
		res, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: id}))
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx, w.timeout, what)
			}
			return err
		}
		x = res.Msg.GetTaskExecution()
		st := x.GetStatus()
		if p := st.GetPhase(); p != lastPhase && !finalExecution(p) {
			lastPhase = p
			progress("execution %s", execPhase(p))
		}
		done := 0
		for _, s := range st.GetSteps() {
			if finalExecution(s.GetPhase()) {
				done++
			}
			if seen[s.GetId()] == s.GetPhase() {
				continue
			}
			seen[s.GetId()] = s.GetPhase()
			name := steps[s.GetId()]
			if name == "" {
				name = "step " + s.GetId()
			}
			switch {
			case s.GetPhase() == gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED && s.GetFailureMessage() != "":
				progress("%-10s %s: %s", execPhase(s.GetPhase()), name, oneLine(s.GetFailureMessage()))
			default:
				progress("%-10s %s", execPhase(s.GetPhase()), name)
			}
		}
		if p := st.GetPhase(); finalExecution(p) {
			took := time.Since(begin)
			if g.output == "json" {
				if err := g.printJSON(res.Msg); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "Execution %s %s in %s (%d of %d steps finished).\n", id, execPhase(p), elapsed(took), done, total)
			}
			switch p {
			case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED:
				return nil
			case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED:
				return fmt.Errorf("execution %s was stopped", id)
			}
			// The failed step, by name, says more than the execution's
			// summary, which names the step by ID.
			msg := ""
			for _, s := range st.GetSteps() {
				if s.GetPhase() == gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED && s.GetFailureMessage() != "" {
					msg = steps[s.GetId()] + ": " + s.GetFailureMessage()
					break
				}
			}
			if msg == "" {
				msg = st.GetFailureMessage()
			}
			if msg == "" {
				msg = "a step failed"
			}
			return fmt.Errorf("execution %s failed: %s", id, msg)
		}
		if !sleepCtx(ctx, pollInterval) {
			return waitError(ctx, w.timeout, what)
		}
	}
}

func finalExecution(p gitpodv1.TaskExecutionPhase) bool {
	switch p {
	case gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED, gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED,
		gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED:
		return true
	}
	return false
}

func newTasksLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs EXECUTION_ID",
		Short: "Print the log of a task execution: every step's output in plan order",
		Long: `Print the log of a task execution (see "runyard executions list"): every
step's output, in plan order. With -f, go on printing until the execution ends
or Ctrl-C.`,
		Args: exactArgs("EXECUTION_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			logURL, err := waitLogURL(ctx, follow, func() (string, bool, error) {
				res, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: args[0]}))
				if err != nil {
					return "", false, err
				}
				st := res.Msg.GetTaskExecution().GetStatus()
				return st.GetLogUrl(), finalExecution(st.GetPhase()), nil
			})
			if err != nil {
				return err
			}
			if logURL == "" {
				return apperr.FailedPrecondition("execution %s has no log: no step has run", args[0])
			}
			return g.streamLog(ctx, c.token, logURL, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the execution ends")
	return cmd
}

// ---- executions ----

func newExecutionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "executions",
		Aliases: []string{"execution", "exec"},
		Short:   "List, inspect and stop task executions",
	}
	cmd.AddCommand(newExecutionsListCmd(g), newExecutionsGetCmd(g), newExecutionsStopCmd(g))
	return cmd
}

func newExecutionsListCmd(g *globals) *cobra.Command {
	var envIDs, taskIDs, taskRefs, phases []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List task executions",
		Example: `  runyard executions list --environment $ENV_ID --phase failed`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := &gitpodv1.ListTaskExecutionsRequest_Filter{EnvironmentIds: envIDs, TaskIds: taskIDs, TaskReferences: taskRefs}
			for _, p := range phases {
				v, err := enumValue("phase", "TASK_EXECUTION_PHASE_", p, gitpodv1.TaskExecutionPhase_value)
				if err != nil {
					return err
				}
				filter.Phases = append(filter.Phases, gitpodv1.TaskExecutionPhase(v))
			}
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var all []*gitpodv1.TaskExecution
			token := ""
			for {
				res, err := c.autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{
					Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetTaskExecutions()...)
				if token = res.Msg.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			if g.output == "json" {
				items := make([]proto.Message, len(all))
				for i, x := range all {
					items[i] = x
				}
				return g.printJSONList("taskExecutions", items)
			}
			var envs []string
			for _, x := range all {
				if e := x.GetMetadata().GetEnvironmentId(); !slices.Contains(envs, e) {
					envs = append(envs, e)
				}
			}
			names, err := refNames(ctx, c, envs)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTASK\tPHASE\tSTARTED BY\tSTEPS\tCREATED\tDURATION\tFAILURE")
			for _, x := range all {
				md := x.GetMetadata()
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.GetId(), strings.TrimPrefix(nameOr(names, md.GetTaskId(), "task"), "task "),
					execPhase(x.GetStatus().GetPhase()), dash(md.GetStartedBy()), stepCount(x), ago(md.GetCreatedAt().AsTime()),
					duration(x), dash(oneLine(x.GetStatus().GetFailureMessage())))
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only executions in these environments")
	f.StringSliceVar(&taskIDs, "task", nil, "only executions of these task IDs")
	f.StringSliceVar(&taskRefs, "task-reference", nil, "only executions of tasks with these references")
	f.StringSliceVar(&phases, "phase", nil, "only executions in these phases (pending, running, succeeded, failed, stopped)")
	return cmd
}

// stepCount is "finished/planned" steps of an execution.
func stepCount(x *gitpodv1.TaskExecution) string {
	total, done := 0, 0
	for _, grp := range x.GetSpec().GetPlan() {
		total += len(grp.GetSteps())
	}
	for _, s := range x.GetStatus().GetSteps() {
		if finalExecution(s.GetPhase()) {
			done++
		}
	}
	return fmt.Sprintf("%d/%d", done, total)
}

// duration is how long an execution ran, "-" before it started; a running
// one counts until now.
func duration(x *gitpodv1.TaskExecution) string {
	md := x.GetMetadata()
	if md.GetStartedAt() == nil {
		return "-"
	}
	end := time.Now()
	if md.GetCompletedAt() != nil {
		end = md.GetCompletedAt().AsTime()
	}
	return elapsed(end.Sub(md.GetStartedAt().AsTime()))
}

func newExecutionsGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get EXECUTION_ID",
		Short: "Show one task execution with its plan and the phase of each step",
		Args:  exactArgs("EXECUTION_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			x := res.Msg.GetTaskExecution()
			md, st := x.GetMetadata(), x.GetStatus()
			names, err := refNames(ctx, c, []string{md.GetEnvironmentId()})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			rows := [][2]string{
				{"ID", x.GetId()},
				{"Task", nameOr(names, md.GetTaskId(), "task")},
				{"Environment", md.GetEnvironmentId()},
				{"Phase", execPhase(st.GetPhase())},
				{"Desired phase", execPhase(x.GetSpec().GetDesiredPhase())},
				{"Started by", dash(md.GetStartedBy())},
				{"Creator", md.GetCreator().GetId() + " (" + enumShort("PRINCIPAL_", md.GetCreator().GetPrincipal().String()) + ")"},
				{"Created", stamp(md.GetCreatedAt())},
				{"Started", stamp(md.GetStartedAt())},
				{"Completed", stamp(md.GetCompletedAt())},
				{"Duration", duration(x)},
				{"Log", dash(st.GetLogUrl())},
			}
			if m := st.GetFailureMessage(); m != "" {
				rows = append(rows, [2]string{"Failure", m})
			}
			for _, row := range rows {
				fmt.Fprintf(w, "%s:\t%s\n", row[0], oneLine(row[1]))
			}
			w.Flush()
			status := map[string]*gitpodv1.TaskExecutionStatus_Step{}
			for _, s := range st.GetSteps() {
				status[s.GetId()] = s
			}
			fmt.Fprintln(g.stdout)
			w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tSTEP\tPHASE\tOUTPUT\tFAILURE")
			for i, grp := range x.GetSpec().GetPlan() {
				for _, step := range grp.GetSteps() {
					s := status[step.GetId()]
					phase := "not started"
					if s != nil {
						phase = execPhase(s.GetPhase())
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", i+1, stepName(step, names), phase, outputs(s.GetOutput()), dash(oneLine(s.GetFailureMessage())))
				}
			}
			w.Flush()
			return nil
		},
	}
}

func outputs(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := sortedRefs(m)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return oneLine(strings.Join(keys, ","))
}

func newExecutionsStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop EXECUTION_ID",
		Short: "Stop a running task execution: its running steps are stopped, later ones never start",
		Args:  exactArgs("EXECUTION_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			res, err := c.autos.StopTaskExecution(cmd.Context(), connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Execution %s is stopping.\n", args[0])
			return nil
		},
	}
}

// ---- shared ----

// printAnyJSON writes v as indented JSON, for -o json of what is not an
// API message.
func (g *globals) printAnyJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}

func servicePhase(p gitpodv1.ServicePhase) string {
	if p == gitpodv1.ServicePhase_SERVICE_PHASE_UNSPECIFIED {
		return "-"
	}
	return enumShort("SERVICE_PHASE_", p.String())
}

func execPhase(p gitpodv1.TaskExecutionPhase) string {
	if p == gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_UNSPECIFIED {
		return "-"
	}
	return enumShort("TASK_EXECUTION_PHASE_", p.String())
}

// triggerName is the automations file's name of a trigger.
func triggerName(t *gitpodv1.AutomationTrigger) string {
	switch t.GetTrigger().(type) {
	case *gitpodv1.AutomationTrigger_Manual:
		return string(spec.TriggerManual)
	case *gitpodv1.AutomationTrigger_PostMachineStart:
		return string(spec.TriggerPostMachineStart)
	case *gitpodv1.AutomationTrigger_PostEnvironmentStart:
		return string(spec.TriggerPostEnvironmentStart)
	case *gitpodv1.AutomationTrigger_PostDevcontainerStart:
		return string(spec.TriggerPostDevcontainerStart)
	case *gitpodv1.AutomationTrigger_Prebuild:
		return string(spec.TriggerPrebuild)
	case *gitpodv1.AutomationTrigger_BeforeSnapshot:
		return string(spec.TriggerBeforeSnapshot)
	}
	return "?"
}

func triggerList(ts []*gitpodv1.AutomationTrigger) string {
	if len(ts) == 0 {
		return "-"
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = triggerName(t)
	}
	return strings.Join(names, ",")
}
