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
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

func newTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokens",
		Aliases: []string{"token"},
		Short:   "Manage the organization's API keys (an admin: all of them; a user: their own)",
	}
	cmd.AddCommand(newTokensCreateCmd(g, false), newTokensListCmd(g), newTokensRevokeCmd(g, false))
	return cmd
}

// newTokensCreateCmd is `tokens create`, or with own `keys create`, which
// has no --org: a user's key is in the organization they are signed in to.
func newTokensCreateCmd(g *globals, own bool) *cobra.Command {
	var name string
	var scopes []string
	var expiresIn time.Duration
	var org string
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create an API key and print its secret once",
		Example: `  runyard tokens create --name ci --scopes runners:read,runners:write --expires-in 720h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if expiresIn < 0 {
				return usagef("--expires-in must not be negative")
			}
			req := &runyardv1.CreateTokenRequest{Name: name, Scopes: scopes}
			if expiresIn > 0 {
				req.ExpiresAt = timestamppb.New(time.Now().Add(expiresIn))
			}
			c, err := g.clients()
			if err != nil {
				return err
			}
			if org != "" {
				if req.OrganizationId, err = organizationID(cmd.Context(), c, org); err != nil {
					return err
				}
			}
			res, err := c.tokens.CreateToken(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Created API key %s (%s) with scopes %s.\nIts secret is shown only now:\n\n  %s\n",
				res.Msg.GetToken().GetTokenId(), name, strings.Join(res.Msg.GetToken().GetScopes(), ","), res.Msg.GetSecret())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "what the key is for (required)")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes, e.g. runners:read,runners:write or admin (required)")
	f.DurationVar(&expiresIn, "expires-in", 0, "expire after this long, e.g. 720h (default: never)")
	if own {
		cmd.Short = "Create an API key of your own, within your role, and print its secret once"
		cmd.Example = "  runyard keys create --name laptop --scopes pods:read,pods:write --expires-in 720h"
	} else {
		f.StringVar(&org, "org", "", "create the key in this organization (ID or name; installation admin only; default: your own)")
	}
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("scopes")
	return cmd
}

func newTokensListCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API keys and runner tokens (never their secrets)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.listTokens(cmd, all, false)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include revoked tokens")
	return cmd
}

// listTokens prints the tokens of the key's organization that ListTokens
// shows the caller, or, with own, only the API keys the calling user owns.
func (g *globals) listTokens(cmd *cobra.Command, all, own bool) error {
	c, err := g.clients()
	if err != nil {
		return err
	}
	var items []*runyardv1.Token
	token := ""
	for {
		res, err := c.tokens.ListTokens(cmd.Context(), connect.NewRequest(&runyardv1.ListTokensRequest{
			IncludeRevoked: all,
			Own:            own,
			Pagination:     &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
		}))
		if err != nil {
			return err
		}
		items = append(items, res.Msg.GetTokens()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	if g.structured() {
		msgs := make([]proto.Message, len(items))
		for i, t := range items {
			msgs[i] = t
		}
		return g.printJSONList("tokens", msgs)
	}
	w := g.table()
	header := "ID\tNAME\tPRINCIPAL\tSCOPES\tCREATED\tEXPIRES\tREVOKED"
	if g.wide() {
		header += "\tRUNNER\tCREATOR"
	}
	fmt.Fprintln(w, header)
	for _, t := range items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", t.GetTokenId(), t.GetName(),
			enumShort("PRINCIPAL_", t.GetPrincipal().String()), dash(strings.Join(t.GetScopes(), ",")),
			ago(t.GetCreatedAt().AsTime()), stamp(t.GetExpiresAt()), stamp(t.GetRevokedAt()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", dash(t.GetRunnerId()), dash(t.GetCreator().GetId()))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Format(time.RFC3339)
}

// newTokensRevokeCmd is `tokens revoke`, or with own `keys revoke`, which
// names only the caller's own keys.
func newTokensRevokeCmd(g *globals, own bool) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "revoke TOKEN",
		Short: "Revoke a token at once",
		Long: "Revoke a token at once. The key making the call and the organization's last active admin key\n" +
			"are refused unless --force: either would lock you out. Restarting the control plane with\n" +
			"RUNYARD_BOOTSTRAP_TOKEN always restores a working admin key.",
		Args: exactArgs("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.tokens.RevokeToken(cmd.Context(), connect.NewRequest(&runyardv1.RevokeTokenRequest{TokenId: args[0], Force: force, Own: own}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Token %s revoked.\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "also revoke the key making the call or the last admin key")
	if own {
		cmd.Use, cmd.Short = "revoke KEY", "Revoke an API key of your own at once"
		cmd.Long = "Revoke an API key of your own at once (by name, ID or a unique ID prefix). The key making\n" +
			"the call is refused unless --force: revoking it ends this CLI's access."
		cmd.Args = exactArgs("KEY")
	}
	return cmd
}
