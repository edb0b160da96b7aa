package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
)

// This file is `runyard automations` (the automations file) and what the
// commands of an environment's automations share; automations_services.go
// and automations_tasks.go hold `services`, `tasks` and `executions`.

// maxAutomationsFile bounds the file the CLI reads; the API takes 4 MiB.
const maxAutomationsFile = 4 << 20

func newAutomationsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "automations",
		Aliases: []string{"automation"},
		Short:   "Check an automations file, or make it an environment's services and tasks",
	}
	cmd.AddCommand(newAutomationsValidateCmd(g), newAutomationsUpdateCmd(g), newAutomationsReloadCmd(g))
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
			if g.structured() {
				return g.printAnyJSON(f)
			}
			fmt.Fprintf(g.stdout, "%s is valid: %s, %s.\n", file, plural(len(f.Services), "service"), plural(len(f.Tasks), "task"))
			w := g.table()
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
		Use:   "update -f FILE --environment ENVIRONMENT",
		Short: "Make an automations file an environment's services and tasks",
		Long: `Make an environment's services and tasks from automations files what the file
says: items are matched by reference; new ones are created, changed ones
updated, and those from an automations file (the repository's, or an earlier
update) that this file lacks are removed (a running service is stopped
first). Services and tasks created through the API (services create, tasks
create) are never changed or removed: a file that names one is refused. The
file is checked locally first, strictly, so a mistake changes nothing.

To apply the repository's own file again (edited in the workspace, or after a
pull), use 'runyard automations reload'.`,
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
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			after, err := envRefs(ctx, c, envID)
			if err != nil {
				return err
			}
			updated := append(slices.Clone(res.Msg.GetUpdatedServiceIds()), res.Msg.GetUpdatedTaskIds()...)
			counts := map[string]int{}
			w := g.table()
			fmt.Fprintf(g.stdout, "Automations of environment %s updated from %s:\n", envID, file)
			report := func(kind string, refs []string, inFile func(string) bool, beforeIDs, afterIDs map[string]string) {
				for _, ref := range refs {
					what := "unchanged"
					_, still := afterIDs[ref]
					switch _, existed := beforeIDs[ref]; {
					case !inFile(ref) && !still:
						what = "removed"
					case !inFile(ref) && kind == "service" && after.deleting[ref]:
						what = "removing (stopping first)"
					case !inFile(ref):
						// Created through the API: no file changes it.
						what = "kept (created through the API)"
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
			for _, k := range []string{"created", "updated", "removed", "removing", "unchanged", "kept"} {
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
	f.StringVar(&envID, "environment", "", "the environment: its name, ID or ID prefix")
	cmd.MarkFlagRequired("file")
	cmd.MarkFlagRequired("environment")
	return cmd
}

// refSet maps the references of an environment's services and tasks to
// their IDs.
type refSet struct {
	services map[string]string
	tasks    map[string]string
	// deleting holds the references of services being deleted.
	deleting map[string]bool
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
	rs := &refSet{services: map[string]string{}, tasks: map[string]string{}, deleting: map[string]bool{}}
	for _, s := range svcs {
		rs.services[s.GetMetadata().GetReference()] = s.GetId()
		if s.GetSpec().GetDesiredPhase() == gitpodv1.ServicePhase_SERVICE_PHASE_DELETED {
			rs.deleting[s.GetMetadata().GetReference()] = true
		}
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

func newAutomationsReloadCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload ENVIRONMENT",
		Short: "Apply the repository's automations file of an environment again",
		Long: `Ask the environment's runner to read the repository's automations file from
the workspace again and apply it, as when the environment was created. Only
items from automations files change: those the file lacks are removed (a
running service is stopped first); services and tasks created through the API
stay as they are. A runner restart or an environment stop and start never
re-applies the file: this command (or 'automations update -f') does.

The command returns at once. A running environment applies the file within
moments; a stopped one at its next start. A file the control plane refuses is
named in the environment's status (automationsFile.failureMessage).`,
		Example: `  runyard automations reload $ENV_ID`,
		Args:    exactArgs("ENVIRONMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			token, err := g.endpoint()
			if err != nil {
				return err
			}
			c := runyardv1connect.NewAutomationsServiceClient(g.httpClient(60*time.Second), strings.TrimRight(g.server, "/"),
				connect.WithInterceptors(bearer(token), fieldErrors()))
			res, err := c.ReloadAutomationsFile(cmd.Context(), connect.NewRequest(&runyardv1.ReloadAutomationsFileRequest{EnvironmentId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Reload of the automations file of environment %s requested (request %d): a running environment applies it now, a stopped one at its next start.\n", args[0], res.Msg.GetRequest())
			return nil
		},
	}
	return cmd
}
