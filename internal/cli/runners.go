package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

func newRunnersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "runners",
		Aliases: []string{"runner"},
		Short:   "Register, inspect, change and delete runners",
	}
	cmd.AddCommand(
		newRunnersCreateCmd(g),
		newRunnersListCmd(g),
		newRunnersGetCmd(g),
		newRunnersUpdateCmd(g),
		newRunnersDeleteCmd(g),
		newRunnersTokenCmd(g),
	)
	return cmd
}

func newRunnersCreateCmd(g *globals) *cobra.Command {
	var name, provider, kind, region, channel, logLevel, desired, managerID string
	var autoUpdate bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a runner and print its one-time exchange token",
		Example: `  runyard runners create --name build-box --provider linux-host
  runyard runners create --name cloud-1 --provider aws-ec2 --region us-west --release-channel stable --auto-update`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &gitpodv1.CreateRunnerRequest{
				Name:            name,
				RunnerManagerId: managerID,
				Spec: &gitpodv1.RunnerSpec{Configuration: &gitpodv1.RunnerConfiguration{
					Region: region, AutoUpdate: autoUpdate,
				}},
			}
			if provider != "" {
				v, err := enumValue("provider", "RUNNER_PROVIDER_", provider, gitpodv1.RunnerProvider_value)
				if err != nil {
					return err
				}
				req.Provider = gitpodv1.RunnerProvider(v)
			}
			if kind != "" {
				v, err := enumValue("kind", "RUNNER_KIND_", kind, gitpodv1.RunnerKind_value)
				if err != nil {
					return err
				}
				req.Kind = gitpodv1.RunnerKind(v)
			}
			if provider == "" && kind == "" {
				return usagef("--provider is required (one of: %s)", strings.Join(enumShortNames("RUNNER_PROVIDER_", gitpodv1.RunnerProvider_value), ", "))
			}
			if channel != "" {
				v, err := enumValue("release-channel", "RUNNER_RELEASE_CHANNEL_", channel, gitpodv1.RunnerReleaseChannel_value)
				if err != nil {
					return err
				}
				req.Spec.Configuration.ReleaseChannel = gitpodv1.RunnerReleaseChannel(v)
			}
			if logLevel != "" {
				v, err := enumValue("log-level", "LOG_LEVEL_", logLevel, gitpodv1.LogLevel_value)
				if err != nil {
					return err
				}
				req.Spec.Configuration.LogLevel = gitpodv1.LogLevel(v)
			}
			if desired != "" {
				v, err := enumValue("desired-phase", "RUNNER_PHASE_", desired, gitpodv1.RunnerPhase_value)
				if err != nil {
					return err
				}
				req.Spec.DesiredPhase = gitpodv1.RunnerPhase(v)
			}
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.runners.CreateRunner(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			g.printRunners(cmd.Context(), []*gitpodv1.Runner{res.Msg.GetRunner()})
			fmt.Fprintf(g.stdout, "\nExchange token (one use, valid 24h):\n  %s\n\nStart the runner with:\n  runyard runner --server %s --exchange-token %s --state-dir ./runner-state\n",
				res.Msg.GetExchangeToken(), g.server, res.Msg.GetExchangeToken())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "runner name, 3 to 127 characters (required)")
	f.StringVar(&provider, "provider", "", "linux-host, desktop-mac, dev-agent, aws-ec2, gcp or managed")
	f.StringVar(&kind, "kind", "", "local, remote or local-configuration (older clients; prefer --provider)")
	f.StringVar(&region, "region", "", "region hint")
	f.StringVar(&channel, "release-channel", "", "stable or latest")
	f.BoolVar(&autoUpdate, "auto-update", false, "let the runner update itself")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	f.StringVar(&desired, "desired-phase", "", "active (default) or inactive")
	f.StringVar(&managerID, "runner-manager-id", "", "runner manager UUID (managed runners only)")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newRunnersListCmd(g *globals) *cobra.Command {
	var providers, kinds, creators []string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List runners",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			filter := &gitpodv1.ListRunnersRequest_Filter{CreatorIds: creators}
			for _, p := range providers {
				v, err := enumValue("provider", "RUNNER_PROVIDER_", p, gitpodv1.RunnerProvider_value)
				if err != nil {
					return err
				}
				filter.Providers = append(filter.Providers, gitpodv1.RunnerProvider(v))
			}
			for _, k := range kinds {
				v, err := enumValue("kind", "RUNNER_KIND_", k, gitpodv1.RunnerKind_value)
				if err != nil {
					return err
				}
				filter.Kinds = append(filter.Kinds, gitpodv1.RunnerKind(v))
			}
			c, err := g.clients()
			if err != nil {
				return err
			}
			var all []*gitpodv1.Runner
			token := ""
			for {
				res, err := c.runners.ListRunners(cmd.Context(), connect.NewRequest(&gitpodv1.ListRunnersRequest{
					Filter:     filter,
					Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetRunners()...)
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
				for i, r := range all {
					items[i] = r
				}
				return g.printJSONList("runners", items)
			}
			g.printRunners(cmd.Context(), all)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&providers, "provider", nil, "only these providers (repeat or comma-separate)")
	f.StringSliceVar(&kinds, "kind", nil, "only these kinds")
	f.StringSliceVar(&creators, "creator", nil, "only runners created by these subject IDs")
	f.IntVar(&limit, "limit", 0, "list at most this many runners (0: all)")
	return cmd
}

func newRunnersGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get RUNNER",
		Short: "Show one runner",
		Args:  exactArgs("RUNNER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			return g.showRunner(cmd, c, args[0])
		},
	}
}

func (g *globals) showRunner(cmd *cobra.Command, c *clients, id string) error {
	res, err := c.runners.GetRunner(cmd.Context(), connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
	if err != nil {
		return err
	}
	if g.structured() {
		return g.printJSON(res.Msg)
	}
	// The REST API's view adds the numeric id and what the daemon
	// reported; a key that cannot read it still sees the rest.
	var reported *restRunner
	if rs, err := g.restRunners(cmd.Context(), ""); err == nil {
		if r, ok := rs[res.Msg.GetRunner().GetName()]; ok {
			reported = &r
		}
	}
	g.printRunnerDetail(res.Msg.GetRunner(), reported)
	return nil
}

func newRunnersUpdateCmd(g *globals) *cobra.Command {
	var name, channel, logLevel, desired, region, metricsURL, metricsUser, metricsPassword string
	var autoUpdate, metricsEnabled bool
	var windowStart, windowEnd int32
	cmd := &cobra.Command{
		Use:   "update RUNNER",
		Short: "Change a runner's name, configuration or desired phase",
		Example: `  runyard runners update $ID --log-level debug
  runyard runners update $ID --desired-phase inactive   # drain: take no new work`,
		Args: exactArgs("RUNNER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &gitpodv1.UpdateRunnerRequest{RunnerId: args[0], Spec: &gitpodv1.UpdateRunnerRequest_Spec{}}
			cfg := &gitpodv1.UpdateRunnerRequest_Configuration{}
			changed := false
			fl := cmd.Flags()
			if fl.Changed("name") {
				req.Name, changed = &name, true
			}
			if fl.Changed("desired-phase") {
				v, err := enumValue("desired-phase", "RUNNER_PHASE_", desired, gitpodv1.RunnerPhase_value)
				if err != nil {
					return err
				}
				p := gitpodv1.RunnerPhase(v)
				req.Spec.DesiredPhase, changed = &p, true
			}
			if fl.Changed("log-level") {
				v, err := enumValue("log-level", "LOG_LEVEL_", logLevel, gitpodv1.LogLevel_value)
				if err != nil {
					return err
				}
				l := gitpodv1.LogLevel(v)
				cfg.LogLevel, changed = &l, true
			}
			if fl.Changed("release-channel") {
				v, err := enumValue("release-channel", "RUNNER_RELEASE_CHANNEL_", channel, gitpodv1.RunnerReleaseChannel_value)
				if err != nil {
					return err
				}
				ch := gitpodv1.RunnerReleaseChannel(v)
				cfg.ReleaseChannel, changed = &ch, true
			}
			if fl.Changed("auto-update") {
				cfg.AutoUpdate, changed = &autoUpdate, true
			}
			if fl.Changed("region") {
				cfg.Region, changed = &region, true
			}
			if fl.Changed("update-window-start") {
				w := &gitpodv1.UpdateWindow{StartHour: &windowStart}
				if fl.Changed("update-window-end") {
					w.EndHour = &windowEnd
				}
				cfg.UpdateWindow, changed = w, true
			} else if fl.Changed("update-window-end") {
				return usagef("--update-window-end needs --update-window-start")
			}
			m := &gitpodv1.UpdateRunnerRequest_Metrics{}
			if fl.Changed("metrics-enabled") {
				m.Enabled, cfg.Metrics, changed = &metricsEnabled, m, true
			}
			if fl.Changed("metrics-url") {
				m.Url, cfg.Metrics, changed = &metricsURL, m, true
			}
			if fl.Changed("metrics-username") {
				m.Username, cfg.Metrics, changed = &metricsUser, m, true
			}
			if fl.Changed("metrics-password") {
				m.Password, cfg.Metrics, changed = &metricsPassword, m, true
			}
			if !changed {
				return usagef("nothing to change: give at least one of the flags (see --help)")
			}
			req.Spec.Configuration = cfg
			c, err := g.clients()
			if err != nil {
				return err
			}
			if _, err := c.runners.UpdateRunner(cmd.Context(), connect.NewRequest(req)); err != nil {
				return err
			}
			return g.showRunner(cmd, c, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&desired, "desired-phase", "", "active or inactive (drain)")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	f.StringVar(&channel, "release-channel", "", "stable or latest")
	f.BoolVar(&autoUpdate, "auto-update", false, "let the runner update itself")
	f.StringVar(&region, "region", "", "region hint")
	f.Int32Var(&windowStart, "update-window-start", 0, "start of the daily auto-update window, UTC hour 0-23")
	f.Int32Var(&windowEnd, "update-window-end", 0, "end of the window (default: start+2)")
	f.BoolVar(&metricsEnabled, "metrics-enabled", false, "collect metrics")
	f.StringVar(&metricsURL, "metrics-url", "", "metrics collector URL")
	f.StringVar(&metricsUser, "metrics-username", "", "metrics collector user name")
	f.StringVar(&metricsPassword, "metrics-password", "", "metrics collector password (write-only)")
	return cmd
}

func newRunnersDeleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete RUNNER",
		Short: "Delete a runner (it stops its work first unless --force)",
		Long: "Delete a runner. A connected runner first stops its work and confirms; until then it is DELETING.\n" +
			"A runner that is offline confirms only when it reconnects: --force removes it at once.",
		Args: exactArgs("RUNNER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			id := args[0]
			// The phase before the deletion says whether the runner can
			// confirm it soon; a key without runners:read cannot read it,
			// and then only the hint is less precise.
			var before gitpodv1.RunnerPhase
			if !force {
				if got, err := c.runners.GetRunner(cmd.Context(), connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id})); err == nil {
					before = got.Msg.GetRunner().GetStatus().GetPhase()
				}
			}
			res, err := c.runners.DeleteRunner(cmd.Context(), connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: id, Force: force}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			if !force && !runnerGone(cmd.Context(), c, id) {
				// The CLI does not wait: it says what the control plane
				// waits for, and how not to.
				fmt.Fprintf(g.stdout, "Runner %s is being deleted: the control plane waits for the runner to stop its work and confirm.\n", id)
				if before == gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE {
					fmt.Fprintln(g.stdout, "The runner is offline (INACTIVE): it confirms only when it reconnects.")
				} else {
					fmt.Fprintln(g.stdout, "If the runner is offline, it confirms only when it reconnects.")
				}
				fmt.Fprintf(g.stdout, "To remove it now without its confirmation: runyard runners delete %s --force\n", id)
				return nil
			}
			fmt.Fprintf(g.stdout, "Runner %s deleted.\n", id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove at once, without waiting for the runner to stop its work")
	return cmd
}

// runnerGone reports whether the runner is deleted (or cannot be read:
// then the deletion's answer is all there is to go by).
func runnerGone(ctx context.Context, c *clients, id string) bool {
	got, err := c.runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: id}))
	if err != nil {
		return true
	}
	return got.Msg.GetRunner().GetStatus().GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETING
}

func newRunnersTokenCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "token RUNNER",
		Short: "Create a new one-time exchange token for a runner",
		Args:  exactArgs("RUNNER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.runners.CreateRunnerToken(cmd.Context(), connect.NewRequest(&gitpodv1.CreateRunnerTokenRequest{RunnerId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintln(g.stdout, res.Msg.GetExchangeToken())
			return nil
		},
	}
}

// exactArgs is cobra.ExactArgs with a message that names the argument.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s needs %s (got %d arguments)", cmd.CommandPath(), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

func (g *globals) printRunners(ctx context.Context, rs []*gitpodv1.Runner) {
	w := g.table()
	header := "ID\tNAME\tPROVIDER\tPHASE\tDESIRED\tVERSION\tCREATED"
	var reported map[string]restRunner
	if g.wide() {
		header += "\tNUMBER\tPODS\tLABELS\tREGION\tKIND\tCREATOR\tMESSAGE"
		// What the daemons reported; a key that cannot read it sees
		// dashes there.
		reported, _ = g.restRunners(ctx, "")
	}
	fmt.Fprintln(w, header)
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.GetRunnerId(), r.GetName(),
			enumShort("RUNNER_PROVIDER_", r.GetProvider().String()),
			enumShort("RUNNER_PHASE_", r.GetStatus().GetPhase().String()),
			enumShort("RUNNER_PHASE_", r.GetSpec().GetDesiredPhase().String()),
			dash(r.GetStatus().GetVersion()), ago(r.GetCreatedAt().AsTime()))
		if g.wide() {
			num, pods, labels := "-", "-", "-"
			if rr, ok := reported[r.GetName()]; ok {
				num, pods, labels = strconv.FormatInt(rr.ID, 10), fmt.Sprintf("%d/%d", rr.PodCount, rr.MaxPods), dash(strings.Join(rr.Labels, ","))
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s", num, pods, labels)
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", dash(r.GetSpec().GetConfiguration().GetRegion()),
				enumShort("RUNNER_KIND_", r.GetKind().String()), dash(r.GetCreator().GetId()), dash(oneLine(r.GetStatus().GetMessage())))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

func (g *globals) printRunnerDetail(r *gitpodv1.Runner, reported *restRunner) {
	w := g.table()
	c := r.GetSpec().GetConfiguration()
	st := r.GetStatus()
	rows := [][2]string{
		{"ID", r.GetRunnerId()},
		{"Name", r.GetName()},
		{"Kind", enumShort("RUNNER_KIND_", r.GetKind().String())},
		{"Provider", enumShort("RUNNER_PROVIDER_", r.GetProvider().String())},
		{"Phase", enumShort("RUNNER_PHASE_", st.GetPhase().String())},
		{"Desired phase", enumShort("RUNNER_PHASE_", r.GetSpec().GetDesiredPhase().String())},
		{"Message", dash(st.GetMessage())},
		{"Version", dash(st.GetVersion())},
		{"System", dash(st.GetSystemDetails())},
		{"Region", dash(c.GetRegion())},
		{"Release channel", enumShort("RUNNER_RELEASE_CHANNEL_", c.GetReleaseChannel().String())},
		{"Auto update", fmt.Sprint(c.GetAutoUpdate())},
		{"Log level", enumShort("LOG_LEVEL_", c.GetLogLevel().String())},
		{"Creator", r.GetCreator().GetId() + " (" + enumShort("PRINCIPAL_", r.GetCreator().GetPrincipal().String()) + ")"},
		{"Created", r.GetCreatedAt().AsTime().Format(time.RFC3339)},
		{"Updated", r.GetUpdatedAt().AsTime().Format(time.RFC3339)},
	}
	if uw := c.GetUpdateWindow(); uw != nil {
		rows = append(rows, [2]string{"Update window", fmt.Sprintf("%02d:00-%02d:00 UTC", uw.GetStartHour(), uw.GetEndHour())})
	}
	if st.GetUpdatedAt() != nil {
		rows = append(rows, [2]string{"Last report", st.GetUpdatedAt().AsTime().Format(time.RFC3339)})
	}
	// The runner's self-update (its update.* facts).
	upd := map[string]string{}
	for _, kv := range st.GetAdditionalInfo() {
		if k, ok := strings.CutPrefix(kv.GetKey(), "update."); ok {
			upd[k] = kv.GetValue()
		}
	}
	if upd["state"] != "" {
		v := upd["state"]
		if upd["targetVersion"] != "" {
			v += " (" + upd["targetVersion"] + ")"
		}
		rows = append(rows, [2]string{"Update", v})
		if upd["failure"] != "" {
			rows = append(rows, [2]string{"Update failure", upd["failure"]})
		}
	}
	if rr := reported; rr != nil {
		// The numeric id goes right under the UUID: both name the runner.
		rows = append(rows[:1], append([][2]string{{"Numeric ID", strconv.FormatInt(rr.ID, 10)}}, rows[1:]...)...)
		platform := "-"
		if rr.OS != "" {
			platform = rr.OS + "/" + rr.Arch
		}
		rows = append(rows,
			[2]string{"Platform", platform},
			[2]string{"Labels", dash(strings.Join(rr.Labels, ","))},
			[2]string{"Pods", fmt.Sprintf("%d of %d", rr.PodCount, rr.MaxPods)})
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", row[0], row[1])
	}
	w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago renders a time as a short age, like kubectl's AGE column.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
