package cli

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/internal/apperr"
)

func newOrgsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "orgs",
		Aliases: []string{"org", "organizations"},
		Short:   "Manage organizations (the installation admin: the bootstrap admin key)",
	}
	cmd.AddCommand(newOrgsCreateCmd(g), newOrgsListCmd(g), newOrgsRenameCmd(g), newOrgsDeleteCmd(g))
	return cmd
}

func (g *globals) printOrganizations(items []*gitpodv1.Organization) error {
	if g.structured() {
		msgs := make([]proto.Message, len(items))
		for i, o := range items {
			msgs[i] = o
		}
		return g.printJSONList("organizations", msgs)
	}
	w := g.table()
	header := "ID\tNAME\tCREATED"
	if g.wide() {
		header += "\tUPDATED\tINVITE DOMAINS"
	}
	fmt.Fprintln(w, header)
	for _, o := range items {
		fmt.Fprintf(w, "%s\t%s\t%s", o.GetId(), o.GetName(), ago(o.GetCreatedAt().AsTime()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", stamp(o.GetUpdatedAt()), dash(strings.Join(o.GetInviteDomains().GetDomains(), ",")))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// organizationID resolves ORG, an organization's ID or name; a name is
// looked up in the installation admin's list.
func organizationID(ctx context.Context, c *clients, org string) (string, error) {
	if uuid.Validate(org) == nil {
		return org, nil
	}
	res, err := c.installation.ListOrganizations(ctx, connect.NewRequest(&runyardv1.ListOrganizationsRequest{}))
	if err != nil {
		return "", err
	}
	for _, o := range res.Msg.GetOrganizations() {
		if o.GetName() == org {
			return o.GetId(), nil
		}
	}
	return "", apperr.NotFound("organization %q not found", org)
}

func newOrgsCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "create NAME",
		Short:   "Create an organization",
		Long:    "Create an organization. It starts empty: give it its first admin key with\n`runyard tokens create --org ORG --name admin --scopes admin`.",
		Example: `  runyard orgs create acme`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.orgs.CreateOrganization(cmd.Context(), connect.NewRequest(&gitpodv1.CreateOrganizationRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			o := res.Msg.GetOrganization()
			fmt.Fprintf(g.stdout, "Created organization %s (%s).\n", o.GetName(), o.GetId())
			return nil
		},
	}
}

func newOrgsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every organization",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.installation.ListOrganizations(cmd.Context(), connect.NewRequest(&runyardv1.ListOrganizationsRequest{}))
			if err != nil {
				return err
			}
			return g.printOrganizations(res.Msg.GetOrganizations())
		},
	}
}

func newOrgsRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rename ORG NEW_NAME",
		Short:   "Rename an organization (ORG: its ID or name)",
		Example: `  runyard orgs rename acme "Acme Corp"`,
		Args:    exactArgs("ORG", "NEW_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			id, err := organizationID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			res, err := c.orgs.UpdateOrganization(cmd.Context(), connect.NewRequest(&gitpodv1.UpdateOrganizationRequest{OrganizationId: id, Name: args[1]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Organization %s is now %s.\n", id, res.Msg.GetOrganization().GetName())
			return nil
		},
	}
}

func newOrgsDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ORG",
		Short: "Delete an organization (ORG: its ID or name); refused while it has runners or environments",
		Args:  exactArgs("ORG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			id, err := organizationID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			res, err := c.orgs.DeleteOrganization(cmd.Context(), connect.NewRequest(&gitpodv1.DeleteOrganizationRequest{OrganizationId: id}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Organization %s deleted.\n", args[0])
			return nil
		},
	}
}
