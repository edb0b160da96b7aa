package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/apperr"
)

// This file is `runyard tasks` and `runyard executions`: an environment's
// tasks, their executions, and waiting for one with progress.

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
			if g.structured() {
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
			w := g.table()
			oneEnv := len(envIDs) == 1
			header := "ID\tENVIRONMENT\tREFERENCE\tNAME\tDEPENDS ON\tTRIGGERS"
			if oneEnv {
				header = "ID\tREFERENCE\tNAME\tDEPENDS ON\tTRIGGERS"
			}
			if g.wide() {
				header += "\tCOMMAND\tCREATED"
			}
			fmt.Fprintln(w, header)
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
				fmt.Fprintf(w, "%s\t%s%s\t%s\t%s\t%s", t.GetId(), env, t.GetMetadata().GetReference(), dash(t.GetMetadata().GetName()),
					dash(strings.Join(deps, ",")), triggerList(t.GetMetadata().GetTriggeredBy()))
				if g.wide() {
					fmt.Fprintf(w, "\t%s\t%s", dash(oneLine(t.GetSpec().GetCommand())), ago(t.GetMetadata().GetCreatedAt().AsTime()))
				}
				fmt.Fprintln(w)
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only the tasks of these environments (names, IDs or ID prefixes)")
	f.StringSliceVar(&refs, "reference", nil, "only tasks with these references")
	return cmd
}

// taskArgs names a task, like serviceArgs.
const taskArgs = "TASK"

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
			res, err := c.autos.StartTask(ctx, connect.NewRequest(&gitpodv1.StartTaskRequest{Id: id}))
			if err != nil {
				return err
			}
			x := res.Msg.GetTaskExecution()
			if !w.wait && g.structured() {
				return g.printJSON(res.Msg)
			}
			names, err := refNames(ctx, c, []string{x.GetMetadata().GetEnvironmentId()})
			if err != nil {
				return err
			}
			if !g.structured() {
				fmt.Fprintf(g.stdout, "Execution %s of %s started: %s\n", x.GetId(), nameOr(names, x.GetMetadata().GetTaskId(), "task"), planString(x, names))
			}
			if !w.wait {
				return nil
			}
			return g.waitExecution(ctx, c, x, names, w)
		},
	}
	cmd.Flags().StringVar(&envID, "environment", "", "the task's environment (name or ID): its reference need only be unique there")
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
		if !g.structured() {
			fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(begin)), fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]gitpodv1.TaskExecutionPhase{}
	lastPhase := gitpodv1.TaskExecutionPhase(-1)
	for {
		res, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: id}))
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx, w.timeout, what, "execution "+id+" keeps running; stop it with `runyard executions stop "+id+"`")
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
			if g.structured() {
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
		if msg := unreachableIn(st.GetFailureMessage()); msg != "" {
			progress("%s", msg)
			return unreachableError(what, msg)
		}
		if !sleepCtx(ctx, pollInterval) {
			return waitError(ctx, w.timeout, what, "execution "+id+" keeps running; stop it with `runyard executions stop "+id+"`")
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
		Use:   "logs EXECUTION",
		Short: "Print the log of a task execution: every step's output in plan order",
		Long: `Print the log of a task execution (see "runyard executions list"): every
step's output, in plan order. With -f, go on printing until the execution ends
or Ctrl-C.`,
		Args: exactArgs("EXECUTION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var x *gitpodv1.TaskExecution
			logURL, err := waitLogURL(ctx, follow, func() (string, bool, error) {
				res, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: args[0]}))
				if err != nil {
					return "", false, err
				}
				x = res.Msg.GetTaskExecution()
				st := x.GetStatus()
				return st.GetLogUrl(), finalExecution(st.GetPhase()), nil
			})
			if err != nil {
				return err
			}
			if logURL == "" {
				return apperr.FailedPrecondition("execution %s has no log: no step has run", args[0])
			}
			// The runner heads each step's output with the step's ID;
			// the reader wants the task's name. A key that cannot list
			// the tasks still gets the log, with the IDs.
			steps := map[string]string{}
			names, _ := refNames(ctx, c, []string{x.GetMetadata().GetEnvironmentId()})
			for _, grp := range x.GetSpec().GetPlan() {
				for _, st := range grp.GetSteps() {
					steps[st.GetId()] = stepName(st, names)
				}
			}
			h := &stepHeaders{w: g.stdout, names: steps}
			err = g.streamLogTo(ctx, h, c.token, logURL, follow)
			if ferr := h.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the execution ends")
	return cmd
}

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
			if g.structured() {
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
			w := g.table()
			header := "ID\tTASK\tPHASE\tSTARTED BY\tSTEPS\tCREATED\tDURATION\tFAILURE"
			if g.wide() {
				header += "\tENVIRONMENT\tSTARTED\tCOMPLETED\tCREATOR"
			}
			fmt.Fprintln(w, header)
			for _, x := range all {
				md := x.GetMetadata()
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", x.GetId(), strings.TrimPrefix(nameOr(names, md.GetTaskId(), "task"), "task "),
					execPhase(x.GetStatus().GetPhase()), dash(md.GetStartedBy()), stepCount(x), ago(md.GetCreatedAt().AsTime()),
					duration(x), dash(oneLine(x.GetStatus().GetFailureMessage())))
				if g.wide() {
					fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", md.GetEnvironmentId(), stamp(md.GetStartedAt()), stamp(md.GetCompletedAt()), dash(md.GetCreator().GetId()))
				}
				fmt.Fprintln(w)
			}
			w.Flush()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&envIDs, "environment", nil, "only executions in these environments (names, IDs or ID prefixes)")
	f.StringSliceVar(&taskIDs, "task", nil, "only executions of these tasks (references, IDs or ID prefixes; with --environment, references there)")
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
		Use:   "get EXECUTION",
		Short: "Show one task execution with its plan and the phase of each step",
		Args:  exactArgs("EXECUTION"),
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
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			x := res.Msg.GetTaskExecution()
			md, st := x.GetMetadata(), x.GetStatus()
			names, err := refNames(ctx, c, []string{md.GetEnvironmentId()})
			if err != nil {
				return err
			}
			w := g.table()
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
			w = g.table()
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
		Use:   "stop EXECUTION",
		Short: "Stop a running task execution: its running steps are stopped, later ones never start",
		Args:  exactArgs("EXECUTION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// A finished execution has nothing to stop: say so rather
			// than "stopping", which it will never be.
			got, err := c.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			x := got.Msg.GetTaskExecution()
			if p := x.GetStatus().GetPhase(); finalExecution(p) {
				if g.structured() {
					return g.printJSON(got.Msg)
				}
				when := ""
				if t := x.GetMetadata().GetCompletedAt(); t != nil {
					when = " " + ago(t.AsTime())
				}
				fmt.Fprintf(g.stdout, "Execution %s already %s%s: nothing to stop.\n", args[0], execPhase(p), when)
				return nil
			}
			res, err := c.autos.StopTaskExecution(ctx, connect.NewRequest(&gitpodv1.StopTaskExecutionRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Execution %s is stopping.\n", args[0])
			return nil
		},
	}
}
