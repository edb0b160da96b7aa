package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
)

// This file is `runyard environments`; automations.go holds the commands of
// an environment's automations (services, tasks, executions).

// envClients are the clients of the environment and automation commands.
type envClients struct {
	envs  gitpodv1connect.EnvironmentServiceClient
	autos gitpodv1connect.EnvironmentAutomationServiceClient
	// token is the command's token, for the log URLs.
	token string
}

// envClients returns the clients with the command's server and token.
func (g *globals) envClients() (*envClients, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	hc := g.httpClient(60 * time.Second)
	base := strings.TrimRight(g.server, "/")
	opt := connect.WithInterceptors(bearer(token), fieldErrors())
	return &envClients{
		envs:  gitpodv1connect.NewEnvironmentServiceClient(hc, base, opt),
		autos: gitpodv1connect.NewEnvironmentAutomationServiceClient(hc, base, opt),
		token: token,
	}, nil
}

// pollInterval is how often waiting commands ask for news. The API has no
// watch; a few requests a second on one object are cheap.
const pollInterval = 250 * time.Millisecond

// waitFlags are --wait and --timeout of the commands that can wait.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.BoolVar(&w.wait, "wait", false, "wait until "+what+", showing progress; exit non-zero if it fails")
	f.DurationVar(&w.timeout, "timeout", 10*time.Minute, "with --wait, give up after this long")
}

// context returns the context a wait runs in, bounded by --timeout.
func (w *waitFlags) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, w.timeout)
}

// sleepCtx waits d or until ctx ends, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// elapsed renders a duration for progress lines: 0.4s, 12.3s, 2m05s.
func elapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

func newEnvironmentsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "environments",
		Aliases: []string{"environment", "env", "envs"},
		Short:   "Create, list, start, stop and delete environments",
	}
	cmd.AddCommand(
		newEnvironmentsCreateCmd(g),
		newEnvironmentsListCmd(g),
		newEnvironmentsGetCmd(g),
		newEnvironmentsStartCmd(g),
		newEnvironmentsStopCmd(g),
		newEnvironmentsDeleteCmd(g),
		newEnvironmentsExecCmd(g),
		newEnvironmentsSSHCmd(g),
		newEnvironmentsPortForwardCmd(g),
		newEnvironmentsSSHConfigCmd(g),
	)
	return cmd
}

func newEnvironmentsCreateCmd(g *globals) *cobra.Command {
	var class, runner, git, branch, name, automationsFile, contextURL string
	var timeout time.Duration
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an environment on a runner and start it",
		Long: `Create an environment and start it. Its content is a clone of --git (any URL
the git binary takes, file:// too; the remote's default branch unless --branch),
of what --context-url names (a repository, branch, commit or pull request URL
of GitHub, GitLab, Bitbucket, Gitea or Forgejo, git@host:org/repo.git, or a
local path), or an empty workspace. Starting it runs what its automations file
(--automations-file, default .runyard/automations.yaml) triggers on start.
With --inactivity-timeout the environment is stopped after that long without
activity (at least 30m; see MarkEnvironmentActive).

The environment runs on the runner of --class. Without --class it takes the
default class of --runner, or of the only runner when there is exactly one.`,
		Example: `  runyard environments create --git https://github.com/me/app --wait
  runyard environments create --runner $RUNNER_ID --git file:///srv/git/app --branch dev --name app-dev
  runyard environments create --context-url https://github.com/me/app/pull/42 --inactivity-timeout 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if branch != "" && git == "" {
				return usagef("--branch needs --git")
			}
			if automationsFile != "" && git == "" && contextURL == "" {
				return usagef("--automations-file needs --git or --context-url: an empty workspace has no files")
			}
			c, err := g.envClients()
			if err != nil {
				return err
			}
			if class == "" {
				if class, err = defaultClass(cmd.Context(), c, runner); err != nil {
					return err
				}
			}
			spec := &gitpodv1.EnvironmentSpec{
				DesiredPhase: gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING,
				Machine:      &gitpodv1.EnvironmentSpec_Machine{Class: class},
			}
			if git != "" {
				gi := &gitpodv1.GitInitializer{RemoteUri: git, TargetMode: gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_HEAD}
				if branch != "" {
					gi.TargetMode, gi.CloneTarget = gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_BRANCH, branch
				}
				spec.Content = &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
					Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_Git{Git: gi}}},
				}}
			}
			if contextURL != "" {
				spec.Content = &gitpodv1.EnvironmentSpec_Content{Initializer: &gitpodv1.EnvironmentInitializer{
					Specs: []*gitpodv1.EnvironmentInitializer_Spec{{Spec: &gitpodv1.EnvironmentInitializer_Spec_ContextUrl{
						ContextUrl: &gitpodv1.ContextURLInitializer{Url: contextURL},
					}}},
				}}
			}
			if cmd.Flags().Changed("inactivity-timeout") {
				spec.Timeout = &gitpodv1.EnvironmentSpec_Timeout{Disconnected: durationpb.New(timeout)}
			}
			if automationsFile != "" {
				spec.AutomationsFile = &gitpodv1.EnvironmentSpec_AutomationsFile{AutomationsFilePath: automationsFile}
			}
			req := &gitpodv1.CreateEnvironmentRequest{Spec: spec}
			if cmd.Flags().Changed("name") {
				req.Name = &name
			}
			res, err := c.envs.CreateEnvironment(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			e := res.Msg.GetEnvironment()
			if !w.wait {
				if g.structured() {
					return g.printJSON(res.Msg)
				}
				g.printEnvironments([]*gitpodv1.Environment{e})
				return nil
			}
			if !g.structured() {
				g.printEnvironments([]*gitpodv1.Environment{e})
				fmt.Fprintln(g.stdout)
			}
			return g.waitEnvironment(cmd.Context(), c, e.GetId(), e.GetSpec().GetSpecVersion(), gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&class, "class", "", "environment class ID (decides the runner)")
	f.StringVar(&runner, "runner", "", "runner (name, ID or ID prefix): use its default class")
	f.StringVar(&git, "git", "", "clone this git repository into the workspace")
	f.StringVar(&branch, "branch", "", "with --git, check out this branch")
	f.StringVar(&contextURL, "context-url", "", "clone what this URL names (repository, branch, commit, pull request, or a local path)")
	f.DurationVar(&timeout, "inactivity-timeout", 0, "stop the environment after this long without activity: spec.timeout.disconnected (at least 30m; 0 never)")
	f.StringVar(&name, "name", "", "environment name (default: generated)")
	f.StringVar(&automationsFile, "automations-file", "", "path of the automations file in the repository (default .runyard/automations.yaml)")
	w.add(cmd, "the environment runs")
	cmd.MarkFlagsMutuallyExclusive("class", "runner")
	cmd.MarkFlagsMutuallyExclusive("git", "context-url")
	return cmd
}

// defaultClass picks the class of an environment created without --class:
// the default class of runner, or, without runner, of the only runner that
// has an enabled class.
func defaultClass(ctx context.Context, c *envClients, runner string) (string, error) {
	filter := &gitpodv1.ListEnvironmentClassesRequest_Filter{}
	if runner != "" {
		filter.RunnerIds = []string{runner}
	} else {
		// Only runners that can take an environment now count: a
		// registered runner that never connected is no choice.
		can := true
		filter.CanCreateEnvironments = &can
	}
	var classes []*gitpodv1.EnvironmentClass
	token := ""
	for {
		res, err := c.envs.ListEnvironmentClasses(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentClassesRequest{
			Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return "", err
		}
		classes = append(classes, res.Msg.GetEnvironmentClasses()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	if runner != "" {
		if len(classes) == 0 {
			return "", apperr.NotFound("runner %q not found, or it has no environment class", runner)
		}
		// Every runner has a default class; take another of its classes
		// only if that one is missing.
		want := environments.DefaultClassID(runner)
		for _, cl := range classes {
			if cl.GetId() == want {
				return want, nil
			}
		}
		return classes[0].GetId(), nil
	}
	byRunner := map[string]string{}
	var runners []string
	for _, cl := range classes {
		r := cl.GetRunnerId()
		if !cl.GetEnabled() {
			continue
		}
		if _, ok := byRunner[r]; !ok {
			runners = append(runners, r)
			byRunner[r] = cl.GetId()
		}
		if cl.GetId() == environments.DefaultClassID(r) {
			byRunner[r] = cl.GetId()
		}
	}
	switch len(runners) {
	case 0:
		return "", apperr.FailedPrecondition("no runner can take environments: none is active (see `runyard runners list`)")
	case 1:
		return byRunner[runners[0]], nil
	}
	return "", usagef("%d runners can take environments: choose one with --runner or --class (see `runyard runners list`)", len(runners))
}

func newEnvironmentsListCmd(g *globals) *cobra.Command {
	var runners, phases []string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List environments, newest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			filter := &gitpodv1.ListEnvironmentsRequest_Filter{RunnerIds: runners}
			for _, p := range phases {
				v, err := enumValue("phase", "ENVIRONMENT_PHASE_", p, gitpodv1.EnvironmentPhase_value)
				if err != nil {
					return err
				}
				filter.StatusPhases = append(filter.StatusPhases, gitpodv1.EnvironmentPhase(v))
			}
			c, err := g.envClients()
			if err != nil {
				return err
			}
			var all []*gitpodv1.Environment
			token := ""
			for {
				res, err := c.envs.ListEnvironments(cmd.Context(), connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{
					Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetEnvironments()...)
				token = res.Msg.GetPagination().GetNextToken()
				if token == "" || (limit > 0 && len(all) >= limit) {
					break
				}
			}
			if limit > 0 && len(all) > limit {
				all = all[:limit]
			}
			if g.structured() {
				items := make([]proto.Message, len(all))
				for i, e := range all {
					items[i] = e
				}
				return g.printJSONList("environments", items)
			}
			g.printEnvironments(all)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&runners, "runner", nil, "only environments on these runners (names, IDs or ID prefixes)")
	f.StringSliceVar(&phases, "phase", nil, "only environments in these phases (creating, starting, running, stopping, stopped, deleting)")
	f.IntVar(&limit, "limit", 0, "list at most this many environments (0: all)")
	return cmd
}

func newEnvironmentsGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ENVIRONMENT",
		Short: "Show one environment",
		Args:  exactArgs("ENVIRONMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			res, err := c.envs.GetEnvironment(cmd.Context(), connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			g.printEnvironmentDetail(res.Msg.GetEnvironment())
			return nil
		},
	}
}

func newEnvironmentsStartCmd(g *globals) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "start ENVIRONMENT",
		Short: "Start a stopped environment (runs its start triggers again)",
		Args:  exactArgs("ENVIRONMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			res, err := c.envs.StartEnvironment(cmd.Context(), connect.NewRequest(&gitpodv1.StartEnvironmentRequest{EnvironmentId: args[0]}))
			if err != nil {
				return err
			}
			return g.afterDesired(cmd.Context(), c, args[0], res.Msg, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, w, "starting")
		},
	}
	w.add(cmd, "the environment runs")
	return cmd
}

func newEnvironmentsStopCmd(g *globals) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "stop ENVIRONMENT",
		Short: "Stop an environment and its services",
		Args:  exactArgs("ENVIRONMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			res, err := c.envs.StopEnvironment(cmd.Context(), connect.NewRequest(&gitpodv1.StopEnvironmentRequest{EnvironmentId: args[0]}))
			if err != nil {
				return err
			}
			return g.afterDesired(cmd.Context(), c, args[0], res.Msg, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED, w, "stopping")
		},
	}
	w.add(cmd, "the environment is stopped")
	return cmd
}

// afterDesired finishes start and stop: without --wait it says what
// happens, with --wait it waits for the runner to get there.
func (g *globals) afterDesired(ctx context.Context, c *envClients, id string, res proto.Message, want gitpodv1.EnvironmentPhase, w waitFlags, doing string) error {
	if !w.wait {
		if g.structured() {
			return g.printJSON(res)
		}
		fmt.Fprintf(g.stdout, "Environment %s is %s.\n", id, doing)
		return nil
	}
	// The spec version after the call tells reports on the new desired
	// phase from older ones.
	got, err := c.envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
	if err != nil {
		return err
	}
	return g.waitEnvironment(ctx, c, id, got.Msg.GetEnvironment().GetSpec().GetSpecVersion(), want, w)
}

func newEnvironmentsDeleteCmd(g *globals) *cobra.Command {
	var force bool
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "delete ENVIRONMENT",
		Short: "Delete an environment: its runner stops everything and removes its workspace (at once with --force)",
		Args:  exactArgs("ENVIRONMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.envClients()
			if err != nil {
				return err
			}
			id := args[0]
			res, err := c.envs.DeleteEnvironment(cmd.Context(), connect.NewRequest(&gitpodv1.DeleteEnvironmentRequest{EnvironmentId: id, Force: force}))
			if err != nil {
				return err
			}
			if !w.wait {
				if g.structured() {
					return g.printJSON(res.Msg)
				}
				if force {
					fmt.Fprintf(g.stdout, "Environment %s deleted.\n", id)
				} else {
					fmt.Fprintf(g.stdout, "Environment %s is being deleted.\n", id)
				}
				return nil
			}
			ctx, cancel := w.context(cmd.Context())
			defer cancel()
			start := time.Now()
			last := gitpodv1.EnvironmentPhase(-1)
			for {
				got, err := c.envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
				if connect.CodeOf(err) == connect.CodeNotFound {
					break
				}
				if err != nil {
					if ctx.Err() != nil {
						return waitError(ctx, w.timeout, "environment "+id+" is deleted", "the environment is still being deleted on the control plane; see `runyard environments get "+id+"`")
					}
					return err
				}
				if p := got.Msg.GetEnvironment().GetStatus().GetPhase(); p != last && !g.structured() {
					last = p
					fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(start)), envPhase(p))
				}
				if msg := unreachableIn(got.Msg.GetEnvironment().GetStatus().GetWarningMessage()...); msg != "" {
					return unreachableErrorHint("environment "+id+" is deleted", msg,
						"it is deleted when the runner comes back; `runyard environments delete --force "+id+"` removes it without the runner")
				}
				if !sleepCtx(ctx, pollInterval) {
					return waitError(ctx, w.timeout, "environment "+id+" is deleted", "the environment is still being deleted on the control plane; see `runyard environments get "+id+"`")
				}
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Environment %s deleted (%s).\n", id, elapsed(time.Since(start)))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove at once, without waiting for the runner to stop its work")
	w.add(cmd, "the environment is gone")
	return cmd
}

// waitEnvironment waits until the runner reports environment id in phase
// want for spec version specVersion or later, printing each phase it goes
// through. A failure message reported for that spec fails the wait, and so
// does a running environment whose automations file was refused: what it
// should run does not run.
func (g *globals) waitEnvironment(parent context.Context, c *envClients, id string, specVersion uint64, want gitpodv1.EnvironmentPhase, w waitFlags) error {
	ctx, cancel := w.context(parent)
	defer cancel()
	what := fmt.Sprintf("environment %s is %s", id, envPhase(want))
	start := time.Now()
	progress := func(format string, args ...any) {
		if !g.structured() {
			fmt.Fprintf(g.stdout, "%8s  %s\n", elapsed(time.Since(start)), fmt.Sprintf(format, args...))
		}
	}
	last := gitpodv1.EnvironmentPhase(-1)
	for {
		res, err := c.envs.GetEnvironment(ctx, connect.NewRequest(&gitpodv1.GetEnvironmentRequest{EnvironmentId: id}))
		if err != nil {
			if ctx.Err() != nil {
				return waitError(ctx, w.timeout, what, waitKeeps(id, want))
			}
			return err
		}
		e := res.Msg.GetEnvironment()
		st := e.GetStatus()
		current := st.GetRunnerAck().GetSpecVersion() >= specVersion
		if p := st.GetPhase(); p != last {
			last = p
			progress("%s", envPhase(p))
		}
		if e.GetSpec().GetDesiredPhase() != want && e.GetSpec().GetSpecVersion() > specVersion {
			return apperr.FailedPrecondition("environment %s is no longer meant to be %s: someone changed its desired phase to %s",
				id, envPhase(want), envPhase(e.GetSpec().GetDesiredPhase()))
		}
		if current {
			if msgs := st.GetFailureMessage(); len(msgs) > 0 {
				progress("failed: %s", oneLine(strings.Join(msgs, "; ")))
				if g.structured() {
					g.printJSON(res.Msg)
				}
				return fmt.Errorf("environment %s failed: %s", id, strings.Join(msgs, "; "))
			}
			if st.GetPhase() == want {
				if g.structured() {
					if err := g.printJSON(res.Msg); err != nil {
						return err
					}
				}
				if af := st.GetAutomationsFile(); af.GetFailureMessage() != "" && want == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
					progress("automations file %s failed: %s", af.GetAutomationsFilePath(), oneLine(af.GetFailureMessage()))
					return fmt.Errorf("environment %s is running, but its automations file %s failed: %s", id, af.GetAutomationsFilePath(), af.GetFailureMessage())
				}
				if !g.structured() {
					fmt.Fprintf(g.stdout, "Environment %s is %s (%s).\n", id, envPhase(want), elapsed(time.Since(start)))
				}
				return nil
			}
		}
		if msg := unreachableIn(st.GetWarningMessage()...); msg != "" {
			progress("%s", msg)
			return unreachableError(what, msg)
		}
		if !sleepCtx(ctx, pollInterval) {
			return waitError(ctx, w.timeout, what, waitKeeps(id, want))
		}
	}
}

// envPhase is the CLI's name of an environment phase: running, stopped.
func envPhase(p gitpodv1.EnvironmentPhase) string {
	if p == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_UNSPECIFIED {
		return "pending"
	}
	return enumShort("ENVIRONMENT_PHASE_", p.String())
}

// envContent describes an environment's content in a few words: the git
// remote (and branch), or an empty workspace.
func envContent(e *gitpodv1.Environment) string {
	for _, s := range e.GetSpec().GetContent().GetInitializer().GetSpecs() {
		if gi := s.GetGit(); gi != nil {
			if t := gi.GetCloneTarget(); t != "" {
				return gi.GetRemoteUri() + "@" + t
			}
			return gi.GetRemoteUri()
		}
		if u := s.GetContextUrl().GetUrl(); u != "" {
			return u
		}
	}
	return "(empty)"
}

func (g *globals) printEnvironments(es []*gitpodv1.Environment) {
	w := g.table()
	header := "ID\tNAME\tPHASE\tDESIRED\tRUNNER\tCONTENT\tCREATED"
	if g.wide() {
		header += "\tCLASS\tCREATOR\tLAST STARTED\tMESSAGE"
	}
	fmt.Fprintln(w, header)
	for _, e := range es {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", e.GetId(), dash(e.GetMetadata().GetName()),
			envPhase(e.GetStatus().GetPhase()), envPhase(e.GetSpec().GetDesiredPhase()),
			dash(e.GetMetadata().GetRunnerId()), envContent(e), ago(e.GetMetadata().GetCreatedAt().AsTime()))
		if g.wide() {
			st := e.GetStatus()
			msg := strings.Join(append(append([]string(nil), st.GetFailureMessage()...), st.GetWarningMessage()...), "; ")
			if m := st.GetAutomationsFile().GetFailureMessage(); m != "" {
				msg = strings.TrimPrefix(msg+"; automations file: "+m, "; ")
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", dash(e.GetSpec().GetMachine().GetClass()), dash(e.GetMetadata().GetCreator().GetId()),
				stamp(e.GetMetadata().GetLastStartedAt()), dash(oneLine(msg)))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

func (g *globals) printEnvironmentDetail(e *gitpodv1.Environment) {
	w := g.table()
	md, st := e.GetMetadata(), e.GetStatus()
	af := st.GetAutomationsFile()
	afPath := af.GetAutomationsFilePath()
	if afPath == "" {
		afPath = e.GetSpec().GetAutomationsFile().GetAutomationsFilePath()
	}
	if afPath == "" {
		afPath = "-"
	} else if p := af.GetAutomationsFilePresence(); p != gitpodv1.EnvironmentStatus_AutomationsFile_PRESENCE_UNSPECIFIED {
		afPath += " (" + enumShort("PRESENCE_", p.String()) + ")"
	}
	rows := [][2]string{
		{"ID", e.GetId()},
		{"Name", dash(md.GetName())},
		{"Phase", envPhase(st.GetPhase())},
		{"Desired phase", envPhase(e.GetSpec().GetDesiredPhase())},
		{"Runner", dash(md.GetRunnerId())},
		{"Class", dash(e.GetSpec().GetMachine().GetClass())},
		{"Content", envContent(e)},
		{"Workspace", dash(st.GetContent().GetContentLocationInMachine())},
		{"Automations file", afPath},
		{"Creator", md.GetCreator().GetId() + " (" + enumShort("PRINCIPAL_", md.GetCreator().GetPrincipal().String()) + ")"},
		{"Created", stamp(md.GetCreatedAt())},
		{"Last started", stamp(md.GetLastStartedAt())},
	}
	for _, m := range st.GetFailureMessage() {
		rows = append(rows, [2]string{"Failure", m})
	}
	if m := af.GetFailureMessage(); m != "" {
		rows = append(rows, [2]string{"Automations failure", m})
	}
	for _, m := range st.GetWarningMessage() {
		rows = append(rows, [2]string{"Warning", m})
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", row[0], oneLine(row[1]))
	}
	w.Flush()
}

// waitKeeps says what goes on after a wait for environment id to reach want
// is interrupted, and how to stop it.
func waitKeeps(id string, want gitpodv1.EnvironmentPhase) string {
	if want == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING {
		return "environment " + id + " keeps starting on its runner; stop it with `runyard environments stop " + id + "`"
	}
	return "environment " + id + " keeps stopping on its runner; see `runyard environments get " + id + "`"
}
