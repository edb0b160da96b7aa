package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
)

func newPrebuildsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "prebuilds",
		Aliases: []string{"prebuild"},
		Short:   "Prebuild a repository on a runner: its prebuild tasks run once, new environments start from the snapshot",
	}
	cmd.AddCommand(newPrebuildsCreateCmd(g), newPrebuildsListCmd(g), newPrebuildsGetCmd(g), newPrebuildsCancelCmd(g), newPrebuildsDeleteCmd(g), newPrebuildSchedulesCmd(g))
	return cmd
}

// prebuildsClient returns the prebuild client, and the environment clients
// for a runner's default class.
func (g *globals) prebuildsClient() (gitpodv1connect.PrebuildServiceClient, *envClients, error) {
	ec, err := g.envClients()
	if err != nil {
		return nil, nil, err
	}
	hc := g.httpClient(60 * time.Second)
	base := strings.TrimRight(g.server, "/")
	return gitpodv1connect.NewPrebuildServiceClient(hc, base, connect.WithInterceptors(bearer(ec.token), fieldErrors())), ec, nil
}

func newPrebuildsCreateCmd(g *globals) *cobra.Command {
	var contextURL, class, runner string
	var timeout time.Duration
	var wait bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Prebuild a repository (and branch or commit) on a runner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, ec, err := g.prebuildsClient()
			if err != nil {
				return err
			}
			if class == "" {
				if class, err = defaultClass(cmd.Context(), ec, runner); err != nil {
					return err
				}
			}
			req := &gitpodv1.CreatePrebuildRequest{ContextUrl: contextURL, EnvironmentClassId: class}
			if timeout != 0 {
				req.Spec = &gitpodv1.PrebuildSpec{Timeout: timeout.String()}
			}
			res, err := pb.CreatePrebuild(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			p := res.Msg.GetPrebuild()
			if wait {
				if p, err = waitPrebuild(cmd, pb, p.GetId()); err != nil {
					return err
				}
			}
			if g.structured() {
				return g.printJSON(p)
			}
			g.printPrebuilds([]*gitpodv1.Prebuild{p})
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&contextURL, "context-url", "", "the repository to prebuild: a repository, branch or commit URL, or a local path (required)")
	f.StringVar(&class, "class", "", "environment class ID (decides the runner that keeps the snapshot)")
	f.StringVar(&runner, "runner", "", "runner (name, ID or ID prefix): use its default class")
	f.DurationVar(&timeout, "timeout", 0, "fail the prebuild after this long (default 1h, at most 2h)")
	f.BoolVar(&wait, "wait", false, "wait until the prebuild completed, failed or was cancelled")
	cmd.MarkFlagRequired("context-url")
	cmd.MarkFlagsMutuallyExclusive("class", "runner")
	return cmd
}

// waitPrebuild polls a prebuild until it is over.
func waitPrebuild(cmd *cobra.Command, pb gitpodv1connect.PrebuildServiceClient, id string) (*gitpodv1.Prebuild, error) {
	for {
		res, err := pb.GetPrebuild(cmd.Context(), connect.NewRequest(&gitpodv1.GetPrebuildRequest{PrebuildId: id}))
		if err != nil {
			return nil, err
		}
		p := res.Msg.GetPrebuild()
		switch p.GetStatus().GetPhase() {
		case gitpodv1.PrebuildPhase_PREBUILD_PHASE_COMPLETED, gitpodv1.PrebuildPhase_PREBUILD_PHASE_FAILED, gitpodv1.PrebuildPhase_PREBUILD_PHASE_CANCELLED:
			return p, nil
		}
		select {
		case <-cmd.Context().Done():
			return nil, cmd.Context().Err()
		case <-time.After(pollInterval):
		}
	}
}

func newPrebuildsListCmd(g *globals) *cobra.Command {
	var contextURLs, phases []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List prebuilds, newest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, _, err := g.prebuildsClient()
			if err != nil {
				return err
			}
			filter := &gitpodv1.ListPrebuildsRequestFilter{ContextUrls: contextURLs}
			for _, p := range phases {
				v, ok := gitpodv1.PrebuildPhase_value["PREBUILD_PHASE_"+strings.ToUpper(p)]
				if !ok {
					return usagef("--phase: unknown phase %q (pending, starting, running, completed, failed, cancelled)", p)
				}
				filter.Phases = append(filter.Phases, gitpodv1.PrebuildPhase(v))
			}
			var all []*gitpodv1.Prebuild
			token := ""
			for {
				res, err := pb.ListPrebuilds(cmd.Context(), connect.NewRequest(&gitpodv1.ListPrebuildsRequest{
					Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetPrebuilds()...)
				if token = res.Msg.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			if g.structured() {
				items := make([]proto.Message, len(all))
				for i, p := range all {
					items[i] = p
				}
				return g.printJSONList("prebuilds", items)
			}
			g.printPrebuilds(all)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&contextURLs, "context-url", nil, "only prebuilds of these repositories (as created)")
	f.StringSliceVar(&phases, "phase", nil, "only prebuilds in these phases (pending, starting, running, completed, failed, cancelled)")
	return cmd
}

func newPrebuildsGetCmd(g *globals) *cobra.Command {
	return prebuildCmd(g, "get", "Show a prebuild and its snapshot",
		func(ctx context.Context, pb gitpodv1connect.PrebuildServiceClient, id string) (*gitpodv1.Prebuild, error) {
			res, err := pb.GetPrebuild(ctx, connect.NewRequest(&gitpodv1.GetPrebuildRequest{PrebuildId: id}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetPrebuild(), nil
		})
}

func newPrebuildsCancelCmd(g *globals) *cobra.Command {
	return prebuildCmd(g, "cancel", "Cancel a prebuild under way (its environment is deleted, no snapshot is kept)",
		func(ctx context.Context, pb gitpodv1connect.PrebuildServiceClient, id string) (*gitpodv1.Prebuild, error) {
			res, err := pb.CancelPrebuild(ctx, connect.NewRequest(&gitpodv1.CancelPrebuildRequest{PrebuildId: id}))
			if err != nil {
				return nil, err
			}
			return res.Msg.GetPrebuild(), nil
		})
}

// prebuildCmd is a command that calls one method on a prebuild and shows
// the prebuild it answers.
func prebuildCmd(g *globals, verb, short string, call func(context.Context, gitpodv1connect.PrebuildServiceClient, string) (*gitpodv1.Prebuild, error)) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " PREBUILD",
		Short: short,
		Args:  exactArgs("PREBUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, _, err := g.prebuildsClient()
			if err != nil {
				return err
			}
			p, err := call(cmd.Context(), pb, args[0])
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(p)
			}
			g.printPrebuilds([]*gitpodv1.Prebuild{p})
			return nil
		},
	}
}

func newPrebuildsDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete PREBUILD",
		Short: "Delete a prebuild; its runner deletes the snapshot",
		Args:  exactArgs("PREBUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, _, err := g.prebuildsClient()
			if err != nil {
				return err
			}
			res, err := pb.DeletePrebuild(cmd.Context(), connect.NewRequest(&gitpodv1.DeletePrebuildRequest{PrebuildId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Prebuild %s deleted.\n", args[0])
			return nil
		},
	}
}

func (g *globals) printPrebuilds(ps []*gitpodv1.Prebuild) {
	w := g.table()
	header := "ID\tREPOSITORY\tPHASE\tCOMMIT\tSNAPSHOT\tCREATED"
	if g.wide() {
		header += "\tRUNNER\tENVIRONMENT\tFAILURE"
	}
	fmt.Fprintln(w, header)
	for _, p := range ps {
		st := p.GetStatus()
		snapshot := "-"
		switch {
		case st.GetSnapshotDeleted():
			snapshot = "deleted"
		case st.GetSnapshotSizeBytes() > 0:
			snapshot = fmt.Sprintf("%.1f MB", float64(st.GetSnapshotSizeBytes())/1e6)
		}
		commit := st.GetCommit()
		if len(commit) > 12 {
			commit = commit[:12]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", p.GetId(), p.GetMetadata().GetContextUrl(),
			strings.TrimPrefix(st.GetPhase().String(), "PREBUILD_PHASE_"), dash(commit), snapshot, ago(p.GetMetadata().GetCreatedAt().AsTime()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s\t%s", dash(p.GetMetadata().GetRunnerId()), dash(st.GetEnvironmentId()), dash(st.GetFailureMessage()))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}
