package cli

import (
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

func newInvitesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "invites",
		Aliases: []string{"invite"},
		Short:   "Invite people to an organization with one-time tokens",
	}
	cmd.AddCommand(newInvitesCreateCmd(g), newInvitesListCmd(g), newInvitesRevokeCmd(g))
	return cmd
}

// inviteOrg resolves the --org flag of an invites command: "" (the key's
// organization) when it was not given.
func inviteOrg(cmd *cobra.Command, c *clients, org string) (string, error) {
	if org == "" {
		return "", nil
	}
	return organizationID(cmd.Context(), c, org)
}

func addInviteOrgFlag(cmd *cobra.Command, org *string) {
	cmd.Flags().StringVar(org, "org", "", "organization (ID, or a name for the installation admin); default: the key's")
}

func newInvitesListCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the pending invites (unused, unexpired); their tokens are never shown again",
		Example: "  runyard invites list\n  runyard invites list --org acme -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := inviteOrg(cmd, c, org)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.ListInvites(cmd.Context(), connect.NewRequest(&runyardv1.ListInvitesRequest{OrganizationId: orgID}))
			if err != nil {
				return err
			}
			items := res.Msg.GetInvites()
			if g.structured() {
				msgs := make([]proto.Message, len(items))
				for i, inv := range items {
					msgs[i] = inv
				}
				return g.printJSONList("invites", msgs)
			}
			w := g.table()
			header := "ID\tROLE\tCREATED\tEXPIRES"
			if g.wide() {
				header += "\tORGANIZATION\tCREATOR"
			}
			fmt.Fprintln(w, header)
			for _, inv := range items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s", inv.GetId(), inv.GetRole(), ago(inv.GetCreatedAt().AsTime()), stamp(inv.GetExpiresAt()))
				if g.wide() {
					fmt.Fprintf(w, "\t%s\t%s", inv.GetOrganizationId(), dash(inv.GetCreatorId()))
				}
				fmt.Fprintln(w)
			}
			return w.Flush()
		},
	}
	addInviteOrgFlag(cmd, &org)
	return cmd
}

func newInvitesRevokeCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "revoke INVITE",
		Short:   "Withdraw a pending invite by its ID (or a unique ID prefix): its token stops working at once",
		Example: "  runyard invites revoke 3f2a --yes",
		Args:    exactArgs("INVITE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID, err := inviteOrg(cmd, c, org)
			if err != nil {
				return err
			}
			res, err := c.userAdmin.RevokeInvite(cmd.Context(), connect.NewRequest(&runyardv1.RevokeInviteRequest{OrganizationId: orgID, Id: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg.GetInvite())
			}
			fmt.Fprintf(g.stdout, "Invite %s (%s) revoked: its token no longer works.\n", res.Msg.GetInvite().GetId(), res.Msg.GetInvite().GetRole())
			return nil
		},
	}
	addInviteOrgFlag(cmd, &org)
	return cmd
}

func newInvitesCreateCmd(g *globals) *cobra.Command {
	var org, role string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create [--role R] [--ttl D]",
		Short: "Create a one-time invite; its token is printed once",
		Long: "Create a one-time invite to the organization. Its token is printed once and stored only\n" +
			"as a hash: hand it to the person, who runs `runyard join TOKEN` (with an account) or\n" +
			"`runyard join TOKEN --email E --password-stdin` (to create one).",
		Example: `  runyard invites create --role member --ttl 48h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			orgID := ""
			if org != "" {
				if orgID, err = organizationID(cmd.Context(), c, org); err != nil {
					return err
				}
			}
			req := &runyardv1.CreateInviteRequest{OrganizationId: orgID, Role: role}
			if ttl != 0 {
				req.Ttl = durationpb.New(ttl)
			}
			res, err := c.userAdmin.CreateInvite(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Invite %s to organization %s as %s, valid until %s (shown once, single use):\n\n  %s\n",
				res.Msg.GetId(), res.Msg.GetOrganizationId(), res.Msg.GetRole(), res.Msg.GetExpiresAt().AsTime().Format(time.RFC3339), res.Msg.GetInviteId())
			return nil
		},
	}
	addInviteOrgFlag(cmd, &org)
	f := cmd.Flags()
	f.StringVar(&role, "role", "member", "the role the invite gives: admin, member, runners-admin, automations-admin, audit-reader")
	f.DurationVar(&ttl, "ttl", 0, "how long the invite stays valid (1m to 720h; default 168h)")
	return cmd
}

func newJoinCmd(g *globals) *cobra.Command {
	var email, name string
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   "join TOKEN",
		Short: "Join an organization with an invite: as the key's user, or with --email as a new account",
		Example: `  runyard join ryd_inv_...                       # you have an account: join with your key
  echo 'a long passphrase' | runyard join ryd_inv_... --email ada@example.com --password-stdin`,
		Args: exactArgs("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if email == "" {
				if pw.stdin || pw.value != "" {
					return usagef("--password needs --email: a new account is created with both")
				}
				c, err := g.clients()
				if err != nil {
					return err
				}
				res, err := c.orgs.JoinOrganization(cmd.Context(), connect.NewRequest(&gitpodv1.JoinOrganizationRequest{InviteId: args[0]}))
				if err != nil {
					return err
				}
				if g.output == "json" {
					return g.printJSON(res.Msg.GetMember())
				}
				fmt.Fprintf(g.stdout, "Joined the organization as %s.\n", res.Msg.GetMember().GetEmail())
				return nil
			}
			password, err := pw.read(cmd)
			if err != nil {
				return err
			}
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.userAdmin.AcceptInvite(cmd.Context(), connect.NewRequest(&runyardv1.AcceptInviteRequest{InviteId: args[0], Email: email, Name: name, Password: password}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg.GetMember())
			}
			m := res.Msg.GetMember()
			fmt.Fprintf(g.stdout, "Created %s, %s of organization %s.\n", m.GetUser().GetEmail(), m.GetRole(), m.GetOrganizationId())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "create a new account with this email address")
	f.StringVar(&name, "name", "", "the new account's full name")
	pw.add(cmd, "the new account's password")
	return cmd
}
