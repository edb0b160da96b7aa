package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
)

func (g *globals) sshKeysClient() (runyardv1connect.SSHKeyServiceClient, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	opts := []connect.ClientOption{connect.WithInterceptors(bearer(token), fieldErrors())}
	return runyardv1connect.NewSSHKeyServiceClient(g.httpClient(60*time.Second), strings.TrimRight(g.server, "/"), opts...), nil
}

func newSSHKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ssh-keys",
		Aliases: []string{"ssh-key"},
		Short:   "Your own SSH public keys: they log in to the environments you may enter",
		Long: "Your own SSH public keys. Such a key logs in to the SSH server (runyard server --ssh-listen)\n" +
			"as any environment you may enter: your own, or every environment of an organization you are\n" +
			"an admin of (ssh ENV_ID@host -p PORT; runyard environments ssh-config prints the config).\n" +
			"A key of an environment's spec.sshPublicKeys logs in to that environment alone.",
	}
	cmd.AddCommand(newSSHKeysAddCmd(g), newSSHKeysListCmd(g), newSSHKeysDeleteCmd(g))
	return cmd
}

func newSSHKeysAddCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "add FILE|-",
		Short: "Register a public key (a .pub file, or - for stdin)",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b []byte
			var err error
			if args[0] == "-" {
				b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
			} else {
				b, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usagef("read the public key %s: %v", args[0], err)
			}
			c, err := g.sshKeysClient()
			if err != nil {
				return err
			}
			res, err := c.AddSSHKey(cmd.Context(), connect.NewRequest(&runyardv1.AddSSHKeyRequest{PublicKey: string(b), Name: name}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg.GetSshKey())
			}
			k := res.Msg.GetSshKey()
			fmt.Fprintf(g.stdout, "Added SSH key %s (%s) %s.\n", k.GetId(), k.GetFingerprint(), k.GetName())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "a name for the key (default: its comment)")
	return cmd
}

func newSSHKeysListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your SSH keys",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.sshKeysClient()
			if err != nil {
				return err
			}
			res, err := c.ListSSHKeys(cmd.Context(), connect.NewRequest(&runyardv1.ListSSHKeysRequest{}))
			if err != nil {
				return err
			}
			keys := res.Msg.GetSshKeys()
			if g.structured() {
				msgs := make([]proto.Message, len(keys))
				for i, k := range keys {
					msgs[i] = k
				}
				return g.printJSONList("ssh_keys", msgs)
			}
			w := g.table()
			header := "ID\tNAME\tFINGERPRINT\tCREATED"
			if g.wide() {
				header += "\tPUBLIC KEY"
			}
			fmt.Fprintln(w, header)
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s", k.GetId(), dash(k.GetName()), k.GetFingerprint(), ago(k.GetCreatedAt().AsTime()))
				if g.wide() {
					fmt.Fprintf(w, "\t%s", k.GetPublicKey())
				}
				fmt.Fprintln(w)
			}
			return w.Flush()
		},
	}
}

func newSSHKeysDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete one of your SSH keys (by ID, fingerprint or name)",
		Args:  exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.sshKeysClient()
			if err != nil {
				return err
			}
			// The resolver (nameArgs) has made a name, fingerprint or ID
			// prefix the key's ID.
			id := args[0]
			res, err := c.DeleteSSHKey(cmd.Context(), connect.NewRequest(&runyardv1.DeleteSSHKeyRequest{SshKeyId: id}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "SSH key %s deleted.\n", id)
			return nil
		},
	}
}
