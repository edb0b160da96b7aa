package cli

import (
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log (needs the audit:read scope)",
	}
	cmd.AddCommand(newAuditListCmd(g))
	return cmd
}

func newAuditListCmd(g *globals) *cobra.Command {
	var since, actor, method string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List audit entries, oldest first: who changed what, when, from where, and the outcome",
		Example: `  runyard audit list --since 24h
  runyard audit list --actor 7d0f... --method gitpod.v1.RunnerService/DeleteRunner -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := &gitpodv1.ListAuditLogsRequest_Filter{}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = timestamppb.New(t)
			}
			if actor != "" {
				f.ActorIds = []string{actor}
			}
			if method != "" {
				f.Methods = []string{method}
			}
			token, err := g.endpoint()
			if err != nil {
				return err
			}
			c := gitpodv1connect.NewEventServiceClient(g.httpClient(60*time.Second),
				strings.TrimRight(g.server, "/"), connect.WithInterceptors(bearer(token), fieldErrors()))
			var items []*gitpodv1.AuditLogEntry
			page := ""
			for {
				res, err := c.ListAuditLogs(cmd.Context(), connect.NewRequest(&gitpodv1.ListAuditLogsRequest{
					Filter: f, Pagination: &gitpodv1.PaginationRequest{Token: page, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				items = append(items, res.Msg.GetEntries()...)
				if page = res.Msg.GetPagination().GetNextToken(); page == "" {
					break
				}
			}
			if g.structured() {
				msgs := make([]proto.Message, len(items))
				for i, e := range items {
					msgs[i] = e
				}
				return g.printJSONList("entries", msgs)
			}
			w := g.table()
			header := "TIME\tACTOR\tKEY\tMETHOD\tOBJECT\tOUTCOME\tFROM"
			if g.wide() {
				header += "\tID\tOBJECT KIND\tUSER\tSURFACE\tUSER AGENT"
			}
			fmt.Fprintln(w, header)
			for _, e := range items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", e.GetCreatedAt().AsTime().Format(time.RFC3339),
					dash(strings.TrimSpace(enumShort("PRINCIPAL_", e.GetActorPrincipal().String())+" "+e.GetActorId())),
					dash(e.GetKeyId()), e.GetAction(), dash(e.GetSubjectId()), e.GetOutcome(), dash(e.GetClientIp()))
				if g.wide() {
					fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s", e.GetId(), dash(e.GetSubjectKind()), dash(e.GetUserId()), dash(e.GetSurface()), dash(oneLine(e.GetUserAgent())))
				}
				fmt.Fprintln(w)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only entries since this long ago (24h) or this time (RFC 3339)")
	f.StringVar(&actor, "actor", "", "only entries of this actor (a service account's, runner's or user's id)")
	f.StringVar(&method, "method", "", "only entries of this method, e.g. gitpod.v1.RunnerService/CreateRunner or \"POST /api/v1/orgs/{org}/pods\"")
	return cmd
}

// parseSince reads --since: a duration back from now or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("--since must be a positive duration, got %q", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("--since must be a duration (24h) or an RFC 3339 time, got %q", v)
	}
	return t, nil
}
