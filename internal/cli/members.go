package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

func newMembersCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "Manage an organization's members and their roles (default: your organization)",
	}
	cmd.PersistentFlags().StringVar(&org, "org", "", "organization (ID, or a name for the installation admin); default: the key's")
	resolve := func(ctx context.Context, c *clients) (string, error) {
		if org == "" {
			return "", nil
		}
		return organizationID(ctx, c, org)
	}
	cmd.AddCommand(newMembersAddCmd(g, resolve), newMembersListCmd(g, resolve), newMembersRemoveCmd(g, resolve), newMembersSetRoleCmd(g, resolve))
	return cmd
}

type orgResolver func(ctx context.Context, c *clients) (string, error)

func (g *globals) printMembers(items []*runyardv1.Member) error {
	if g.output == "json" {
		msgs := make([]proto.Message, len(items))
		for i, m := range items {
			msgs[i] = m
		}
		return g.printJSONList("members", msgs)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	header := "USER\tEMAIL\tNAME\tROLE\tSTATUS\tSINCE"
	if g.wide() {
		header += "\tORGANIZATION\tMEMBER SINCE"
	}
	fmt.Fprintln(w, header)
	for _, m := range items {
		u := m.GetUser()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", u.GetId(), u.GetEmail(), dash(u.GetName()), m.GetRole(), userStatus(u), ago(m.GetMemberSince().AsTime()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", dash(m.GetOrganizationId()), stamp(m.GetMemberSince()))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func newMembersAddCmd(g *globals, org orgResolver) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:     "add USER --role R",
		Short:   "Add a user (id or email) to the organization with a role",
		Example: `  runyard members add ada@example.com --role runners-admin`,
		Args:    exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := org(cmd.Context(), c)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.AddMember(cmd.Context(), connect.NewRequest(&runyardv1.AddMemberRequest{OrganizationId: orgID, UserId: args[0], Role: role}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg.GetMember())
			}
			m := res.Msg.GetMember()
			fmt.Fprintf(g.stdout, "Added %s to organization %s as %s.\n", m.GetUser().GetEmail(), m.GetOrganizationId(), m.GetRole())
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, member, runners-admin, automations-admin or audit-reader")
	return cmd
}

func newMembersListCmd(g *globals, org orgResolver) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the organization's members",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := org(cmd.Context(), c)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.ListOrganizationMembers(cmd.Context(), connect.NewRequest(&runyardv1.ListOrganizationMembersRequest{OrganizationId: orgID}))
			if err != nil {
				return err
			}
			return g.printMembers(res.Msg.GetMembers())
		},
	}
}

func newMembersRemoveCmd(g *globals, org orgResolver) *cobra.Command {
	return &cobra.Command{
		Use:   "remove USER",
		Short: "Remove a user (id or email) from the organization; its last admin cannot be removed",
		Args:  exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := org(cmd.Context(), c)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.RemoveMember(cmd.Context(), connect.NewRequest(&runyardv1.RemoveMemberRequest{OrganizationId: orgID, UserId: args[0]}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Removed %s from the organization.\n", args[0])
			return nil
		},
	}
}

func newMembersSetRoleCmd(g *globals, org orgResolver) *cobra.Command {
	return &cobra.Command{
		Use:     "set-role USER ROLE",
		Short:   "Set a member's role; the organization's last admin cannot be demoted",
		Example: `  runyard members set-role ada@example.com admin`,
		Args:    exactArgs("USER", "ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := org(cmd.Context(), c)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.SetMemberRole(cmd.Context(), connect.NewRequest(&runyardv1.SetMemberRoleRequest{OrganizationId: orgID, UserId: args[0], Role: args[1]}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg.GetMember())
			}
			fmt.Fprintf(g.stdout, "%s is now %s.\n", res.Msg.GetMember().GetUser().GetEmail(), res.Msg.GetMember().GetRole())
			return nil
		},
	}
}
