package cli

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

func newWhoamiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the identity of the token in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.identity.GetAuthenticatedIdentity(cmd.Context(), connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "organization: %s\nsubject:      %s (%s)\n", res.Msg.GetOrganizationId(),
				res.Msg.GetSubject().GetId(), enumShort("PRINCIPAL_", res.Msg.GetSubject().GetPrincipal().String()))
			return nil
		},
	}
}
