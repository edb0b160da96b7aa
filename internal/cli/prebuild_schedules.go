package cli

import (
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
)

func newPrebuildSchedulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schedules",
		Aliases: []string{"schedule"},
		Short:   "Prebuild a repository at a fixed interval",
	}
	cmd.AddCommand(newPrebuildSchedulesCreateCmd(g), newPrebuildSchedulesListCmd(g), newPrebuildSchedulesDeleteCmd(g))
	return cmd
}

func (g *globals) schedulesClient() (runyardv1connect.PrebuildScheduleServiceClient, *envClients, error) {
	ec, err := g.envClients()
	if err != nil {
		return nil, nil, err
	}
	hc := g.httpClient(60 * time.Second)
	base := strings.TrimRight(g.server, "/")
	return runyardv1connect.NewPrebuildScheduleServiceClient(hc, base, connect.WithInterceptors(bearer(ec.token), fieldErrors())), ec, nil
}

func newPrebuildSchedulesCreateCmd(g *globals) *cobra.Command {
	var contextURL, class, runner string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Prebuild a repository now and then every interval, as you",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, ec, err := g.schedulesClient()
			if err != nil {
				return err
			}
			if class == "" {
				if class, err = defaultClass(cmd.Context(), ec, runner); err != nil {
					return err
				}
			}
			res, err := sc.CreatePrebuildSchedule(cmd.Context(), connect.NewRequest(&runyardv1.CreatePrebuildScheduleRequest{
				ContextUrl: contextURL, EnvironmentClassId: class, Interval: durationpb.New(every),
			}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg.GetSchedule())
			}
			g.printSchedules([]*runyardv1.PrebuildSchedule{res.Msg.GetSchedule()})
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&contextURL, "context-url", "", "the repository to prebuild (required)")
	f.StringVar(&class, "class", "", "environment class ID (decides the runner)")
	f.StringVar(&runner, "runner", "", "runner (name, ID or ID prefix): use its default class")
	f.DurationVar(&every, "every", 24*time.Hour, "interval between prebuilds (at least 1m)")
	cmd.MarkFlagRequired("context-url")
	cmd.MarkFlagsMutuallyExclusive("class", "runner")
	return cmd
}

func newPrebuildSchedulesListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List prebuild schedules",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, _, err := g.schedulesClient()
			if err != nil {
				return err
			}
			res, err := sc.ListPrebuildSchedules(cmd.Context(), connect.NewRequest(&runyardv1.ListPrebuildSchedulesRequest{}))
			if err != nil {
				return err
			}
			if g.structured() {
				items := make([]proto.Message, len(res.Msg.GetSchedules()))
				for i, s := range res.Msg.GetSchedules() {
					items[i] = s
				}
				return g.printJSONList("schedules", items)
			}
			g.printSchedules(res.Msg.GetSchedules())
			return nil
		},
	}
}

func newPrebuildSchedulesDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete SCHEDULE",
		Short: "Delete a prebuild schedule (its prebuilds stay)",
		Args:  exactArgs("SCHEDULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, _, err := g.schedulesClient()
			if err != nil {
				return err
			}
			res, err := sc.DeletePrebuildSchedule(cmd.Context(), connect.NewRequest(&runyardv1.DeletePrebuildScheduleRequest{ScheduleId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Prebuild schedule %s deleted.\n", args[0])
			return nil
		},
	}
}

func (g *globals) printSchedules(ss []*runyardv1.PrebuildSchedule) {
	w := g.table()
	header := "ID\tREPOSITORY\tEVERY\tNEXT\tLAST PREBUILD"
	if g.wide() {
		header += "\tCLASS\tCREATED"
	}
	fmt.Fprintln(w, header)
	for _, s := range ss {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", s.GetId(), s.GetContextUrl(), s.GetInterval().AsDuration(),
			stamp(s.GetNextRunAt()), dash(s.GetLastPrebuildId()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", s.GetEnvironmentClassId(), stamp(s.GetCreatedAt()))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}
