package cli

import (
	"github.com/spf13/cobra"
)

// newKeysCmd is `runyard keys`: the calling user's own API keys, whatever
// their role. An admin's `runyard tokens` shows the whole organization's;
// `keys` never does, so a person sees and revokes only what is theirs.
func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Manage your own API keys (as a user: a key from `runyard login --web`, or one you created)",
		Example: "  runyard keys list\n  runyard keys create --name laptop --scopes pods:read\n  runyard keys revoke laptop --yes",
	}
	var all bool
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your own API keys (never their secrets)",
		Example: "  runyard keys list --all -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.listTokens(cmd, all, true)
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include revoked keys")
	cmd.AddCommand(newTokensCreateCmd(g, true), list, newTokensRevokeCmd(g, true))
	return cmd
}
