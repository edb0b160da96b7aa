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

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
)

func newSecretsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "secrets",
		Aliases: []string{"secret"},
		Short:   "Create, list, update and delete secrets (values go in and never come out)",
	}
	cmd.AddCommand(newSecretsCreateCmd(g), newSecretsListCmd(g), newSecretsUpdateCmd(g), newSecretsDeleteCmd(g))
	return cmd
}

// secretClients are the clients of the secrets commands.
type secretClients struct {
	secrets  gitpodv1connect.SecretServiceClient
	identity gitpodv1connect.IdentityServiceClient
}

// secretsClient returns the clients with the command's server and token.
func (g *globals) secretsClient() (*secretClients, error) {
	token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	hc := g.httpClient(60 * time.Second)
	base := strings.TrimRight(g.server, "/")
	opt := connect.WithInterceptors(bearer(token), fieldErrors())
	return &secretClients{
		secrets:  gitpodv1connect.NewSecretServiceClient(hc, base, opt),
		identity: gitpodv1connect.NewIdentityServiceClient(hc, base, opt),
	}, nil
}

// valueFlags are --value and --value-file, which every command that sets a
// value takes.
type valueFlags struct {
	value, file string
}

func (v *valueFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&v.value, "value", "", "the value (visible in your shell history and to ps: prefer --value-file)")
	f.StringVar(&v.file, "value-file", "", "read the value from this file, or from stdin with -; one trailing newline is dropped for --env-var secrets")
	cmd.MarkFlagsMutuallyExclusive("value", "value-file")
	cmd.MarkFlagsOneRequired("value", "value-file")
}

// read returns the value. A file's bytes are kept as they are, except that a
// variable loses the one newline that `echo x > file` adds: a variable with a
// trailing newline is almost never what was meant, a key file without its
// final newline may not parse.
func (v *valueFlags) read(cmd *cobra.Command, envVar bool) (string, error) {
	if v.file == "" {
		return v.value, nil
	}
	var b []byte
	var err error
	if v.file == "-" {
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	} else {
		b, err = os.ReadFile(v.file)
	}
	if err != nil {
		return "", usagef("--value-file: %v", err)
	}
	s := string(b)
	if envVar {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	return s, nil
}

// scopeFlags select a secret's scope: the organization unless --user or
// --service-account names a subject.
type scopeFlags struct {
	user, serviceAccount string
}

// add adds the flags; what is e.g. "create a secret of" or "list only the
// secrets of".
func (s *scopeFlags) add(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringVar(&s.user, "user", "", what+" this user ID")
	f.StringVar(&s.serviceAccount, "service-account", "", what+" this service account (an API key's name, ID or ID prefix)")
	cmd.MarkFlagsMutuallyExclusive("user", "service-account")
}

// scope returns the requested scope, nil for the default.
func (s *scopeFlags) scope() *gitpodv1.SecretScope {
	switch {
	case s.user != "":
		return &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_UserId{UserId: s.user}}
	case s.serviceAccount != "":
		return &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_ServiceAccountId{ServiceAccountId: s.serviceAccount}}
	}
	return nil
}

func newSecretsCreateCmd(g *globals) *cobra.Command {
	var name, filePath string
	var envVar bool
	var value valueFlags
	var scope scopeFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a secret; its value is encrypted and never shown again",
		Example: `  runyard secrets create --name NPM_TOKEN --env-var --value-file token.txt
  printf %s "$TOKEN" | runyard secrets create --name NPM_TOKEN --env-var --value-file -
  runyard secrets create --name deploy-key --file-path /home/me/.ssh/id_ed25519 --value-file id_ed25519`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := value.read(cmd, envVar)
			if err != nil {
				return err
			}
			req := &gitpodv1.CreateSecretRequest{Name: name, Value: v, Scope: scope.scope()}
			switch {
			case filePath != "":
				req.Mount = &gitpodv1.CreateSecretRequest_FilePath{FilePath: filePath}
			case envVar:
				req.Mount = &gitpodv1.CreateSecretRequest_EnvironmentVariable{EnvironmentVariable: true}
			}
			c, err := g.secretsClient()
			if err != nil {
				return err
			}
			res, err := c.secrets.CreateSecret(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			g.printSecrets([]*gitpodv1.Secret{res.Msg.GetSecret()})
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "secret name; with --env-var also the variable's name (required)")
	f.BoolVar(&envVar, "env-var", false, "inject the secret into environments as the variable named --name")
	f.StringVar(&filePath, "file-path", "", "write the secret into environments as the file at this absolute path")
	value.add(cmd)
	scope.add(cmd, "instead of an organization secret, create one of")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagsMutuallyExclusive("env-var", "file-path")
	return cmd
}

func newSecretsListCmd(g *globals) *cobra.Command {
	var scope scopeFlags
	var org bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List secrets, without their values",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.secretsClient()
			if err != nil {
				return err
			}
			filter := &gitpodv1.ListSecretsRequest_Filter{Scope: scope.scope()}
			if org {
				// The organization scope names the organization by ID.
				res, err := c.identity.GetAuthenticatedIdentity(cmd.Context(), connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
				if err != nil {
					return err
				}
				filter.Scope = &gitpodv1.SecretScope{Scope: &gitpodv1.SecretScope_OrganizationId{OrganizationId: res.Msg.GetOrganizationId()}}
			}
			var all []*gitpodv1.Secret
			token := ""
			for {
				res, err := c.secrets.ListSecrets(cmd.Context(), connect.NewRequest(&gitpodv1.ListSecretsRequest{
					Filter: filter, Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetSecrets()...)
				if token = res.Msg.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			if g.structured() {
				items := make([]proto.Message, len(all))
				for i, s := range all {
					items[i] = s
				}
				return g.printJSONList("secrets", items)
			}
			g.printSecrets(all)
			return nil
		},
	}
	scope.add(cmd, "list only the secrets of")
	cmd.Flags().BoolVar(&org, "organization", false, "list only the organization's secrets")
	cmd.MarkFlagsMutuallyExclusive("organization", "user", "service-account")
	return cmd
}

func newSecretsUpdateCmd(g *globals) *cobra.Command {
	var value valueFlags
	var envVar bool
	cmd := &cobra.Command{
		Use:   "update SECRET",
		Short: "Replace a secret's value",
		Example: `  runyard secrets update $ID --value-file token.txt
  printf %s "$TOKEN" | runyard secrets update $ID --value-file -`,
		Args: exactArgs("SECRET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := value.read(cmd, envVar)
			if err != nil {
				return err
			}
			c, err := g.secretsClient()
			if err != nil {
				return err
			}
			res, err := c.secrets.UpdateSecretValue(cmd.Context(), connect.NewRequest(&gitpodv1.UpdateSecretValueRequest{SecretId: args[0], Value: v}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Secret %s updated.\n", args[0])
			return nil
		},
	}
	value.add(cmd)
	cmd.Flags().BoolVar(&envVar, "env-var", false, "the secret is a variable: drop one trailing newline from --value-file")
	return cmd
}

func newSecretsDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete SECRET",
		Short: "Delete a secret (automations that reference it fail until it is replaced)",
		Args:  exactArgs("SECRET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.secretsClient()
			if err != nil {
				return err
			}
			res, err := c.secrets.DeleteSecret(cmd.Context(), connect.NewRequest(&gitpodv1.DeleteSecretRequest{SecretId: args[0]}))
			if err != nil {
				return err
			}
			if g.structured() {
				return g.printJSON(res.Msg)
			}
			fmt.Fprintf(g.stdout, "Secret %s deleted.\n", args[0])
			return nil
		},
	}
}

func (g *globals) printSecrets(ss []*gitpodv1.Secret) {
	w := g.table()
	header := "ID\tNAME\tSCOPE\tMOUNT\tUPDATED"
	if g.wide() {
		header += "\tCREATED\tCREATOR"
	}
	fmt.Fprintln(w, header)
	for _, s := range ss {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", s.GetId(), s.GetName(), secretScope(s.GetScope()), secretMount(s),
			ago(s.GetUpdatedAt().AsTime()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", stamp(s.GetCreatedAt()), dash(s.GetCreator().GetId()))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

func secretScope(sc *gitpodv1.SecretScope) string {
	switch v := sc.GetScope().(type) {
	case *gitpodv1.SecretScope_OrganizationId:
		return "organization"
	case *gitpodv1.SecretScope_UserId:
		return "user:" + v.UserId
	case *gitpodv1.SecretScope_ServiceAccountId:
		return "service-account:" + v.ServiceAccountId
	case *gitpodv1.SecretScope_ProjectId:
		return "project:" + v.ProjectId
	}
	return "-"
}

func secretMount(s *gitpodv1.Secret) string {
	switch {
	case s.GetFilePath() != "":
		return "file:" + s.GetFilePath()
	case s.GetEnvironmentVariable():
		return "env:" + s.GetName()
	}
	return "-"
}
