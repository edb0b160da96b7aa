package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
	"github.com/runyard/runyard/gen/runyard/v1/runyardv1connect"
	"github.com/runyard/runyard/internal/apperr"
)

func newLoginCmd(g *globals) *cobra.Command {
	var withToken, web bool
	var name string
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Store an API key for a server, checked against it, as a context",
		Long: `Store an API key for SERVER (default: --server, RUNYARD_SERVER or the current
context's server) in the configuration file ($XDG_CONFIG_HOME/runyard/config.yaml,
or ~/.config/runyard/config.yaml; mode 0600), as a context that becomes the
current one. On a terminal, and when the server offers it, the login happens
in the browser (--web): the CLI prints (and, where a browser is at hand, opens)
the server's approval page (with the command line of RUNYARD_BROWSER or
BROWSER, e.g. BROWSER="chromium --new-window", else the desktop's opener); once you approve as your signed-in user, the CLI
receives a new API key of yours, with your role's scopes, through a one-time
code on a loopback port that only this process can redeem. Otherwise (or with
--web=false) the key is asked for without echo, or read from stdin with
--with-token. The key is checked with the server before it is saved, and it is
only ever sent to that server.`,
		Example: `  runyard login https://runyard.example.com             # in the browser
  runyard login https://runyard.example.com --web=false # paste a key
  echo "$KEY" | runyard login https://runyard.example.com --with-token --name prod`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv := g.daemonServer()
			if len(args) == 1 {
				srv = args[0]
			} else if !g.serverSet && os.Getenv("RUNYARD_SERVER") == "" {
				if cfg, _, err := loadConfig(); err == nil && cfg.CurrentContext != "" {
					if c := cfg.find(cfg.CurrentContext); c != nil {
						srv = c.Server
					}
				}
			}
			srv = strings.TrimRight(srv, "/")
			if err := checkServerURL("SERVER", srv); err != nil {
				return err
			}
			caFile, insecure := g.caFile, g.insecure
			if _, err := tlsConfig(caFile, insecure); err != nil {
				return usagef("%v", err)
			}
			if caFile != "" {
				// The context keeps the path: make it absolute so it
				// works from every directory.
				if abs, err := filepath.Abs(caFile); err == nil {
					caFile = abs
				}
			}
			// The TLS settings the key will be used with apply to the
			// login's own calls too.
			g.ep = &resolved{server: srv, context: &cliContext{CAFile: caFile, Insecure: insecure}}
			if web && withToken {
				return usagef("--web and --with-token exclude each other: the browser login needs no key on stdin")
			}
			// The browser is the default where it can work: a person at a
			// terminal, a server that offers it.
			if web {
				// Asked for: a server that cannot do it says why now, not
				// after the user has signed in.
				if _, refusal := g.serverHasWebLogin(cmd.Context(), srv); refusal != "" {
					return apperr.FailedPrecondition("--web: %s", refusal)
				}
			} else if !cmd.Flags().Changed("web") && !withToken && term.IsTerminal(int(os.Stdin.Fd())) {
				web, _ = g.serverHasWebLogin(cmd.Context(), srv)
			}
			var token string
			var err error
			if web {
				token, err = g.webLogin(cmd.Context(), srv)
			} else {
				token, err = readKey(cmd, g, srv, withToken)
			}
			if err != nil {
				return err
			}
			// Check the key with the server it is for.
			g.ep.token = token
			id, err := gitpodv1connect.NewIdentityServiceClient(g.httpClient(30*time.Second), srv,
				connect.WithInterceptors(bearer(token), fieldErrors())).GetAuthenticatedIdentity(cmd.Context(),
				connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
			if err != nil {
				return &apperr.Error{Code: apperr.Code(connect.CodeOf(err).String()),
					Message: fmt.Sprintf("the key was not saved: %s answered: %s", srv, errorMessage(err))}
			}
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if name == "" {
				if c := cfg.forServer(srv); c != nil {
					name = c.Name
				} else {
					name = contextName(srv)
				}
			}
			nc := cliContext{Name: name, Server: srv, Token: token, CAFile: caFile, Insecure: insecure}
			if old := cfg.find(name); old != nil {
				deleteContextKey(old)
			}
			where := storeContextKey(&nc, path)
			cfg.upsert(nc)
			cfg.CurrentContext = name
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Logged in to %s as %s %s of organization %s. Context %q is now current (%s); the key is in %s.\n",
				srv, enumShort("PRINCIPAL_", id.Msg.GetSubject().GetPrincipal().String()), id.Msg.GetSubject().GetId(),
				id.Msg.GetOrganizationId(), name, path, where)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&withToken, "with-token", false, "read the key from stdin")
	f.BoolVar(&web, "web", false, "log in in the browser: approve the CLI as your user, which gives it a key of yours capped by your role (default on a terminal when the server offers it; --web=false to paste a key)")
	f.StringVar(&name, "name", "", "name of the context (default: the server's host and port, or the existing context of this server)")
	return cmd
}

// readKey reads the key to log in with: stdin with --with-token, otherwise
// a prompt without echo on the terminal. It never blocks on a stdin that is
// not a terminal without --with-token.
func readKey(cmd *cobra.Command, g *globals, srv string, withToken bool) (string, error) {
	var key string
	if withToken {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
		if err != nil {
			return "", fmt.Errorf("read the key from stdin: %w", err)
		}
		key = strings.TrimSpace(string(b))
	} else {
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return "", usagef("stdin is not a terminal: pass the key on stdin with --with-token")
		}
		fmt.Fprintf(g.stderr, "Paste an API key for %s (create one with `runyard tokens create`): ", srv)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", fmt.Errorf("read the key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return "", usagef("the key is empty")
	}
	if strings.ContainsAny(key, " \t\r\n") {
		return "", usagef("the key must be one word without spaces")
	}
	return key, nil
}

// contextName is the default name of a server's context: its host and port.
func contextName(srv string) string {
	u, err := url.Parse(srv)
	if err != nil || u.Host == "" {
		return srv
	}
	return u.Host
}

// contextJSON is a context as `context list -o json` prints it: never the
// key itself.
type contextJSON struct {
	Name     string `json:"name"`
	Server   string `json:"server"`
	Current  bool   `json:"current"`
	HasToken bool   `json:"hasToken"`
	CAFile   string `json:"caFile,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

func newContextCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "context",
		Aliases: []string{"contexts", "ctx"},
		Short:   "List, switch and delete the stored servers and keys (contexts)",
		Example: `  runyard context list
  runyard context use prod`,
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the contexts; * marks the current one",
		Example: "  runyard context list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			items := make([]contextJSON, 0, len(cfg.Contexts))
			for _, c := range cfg.Contexts {
				items = append(items, contextJSON{Name: c.Name, Server: c.Server, Current: c.Name == cfg.CurrentContext,
					HasToken: c.hasKey(), CAFile: c.CAFile, Insecure: c.Insecure})
			}
			if g.structured() {
				return g.printValue(map[string]any{"contexts": items})
			}
			w := g.table()
			header := "CURRENT\tNAME\tSERVER\tKEY"
			if g.wide() {
				header += "\tCA FILE\tTLS VERIFY"
			}
			fmt.Fprintln(w, header)
			for _, c := range items {
				cur, key := "", "-"
				if c.Current {
					cur = "*"
				}
				if c.HasToken {
					key = "stored"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s", dash(cur), c.Name, c.Server, key)
				if g.wide() {
					verify := "yes"
					if c.Insecure {
						verify = "no (--insecure-skip-verify)"
					}
					fmt.Fprintf(w, "\t%s\t%s", dash(c.CAFile), verify)
				}
				fmt.Fprintln(w)
			}
			return w.Flush()
		},
	}
	use := &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a context the current one",
		Example: "  runyard context use local",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return &usageError{fmt.Sprintf("no context %q (see `runyard context list`)", args[0])}
			}
			cfg.CurrentContext = args[0]
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Context %q is now current.\n", args[0])
			return nil
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a context and the key stored with it (the key itself stays valid on the server)",
		Example: "  runyard context delete old-staging --yes",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if c := cfg.find(args[0]); c != nil {
				deleteContextKey(c)
			}
			if !cfg.remove(args[0]) {
				return &usageError{fmt.Sprintf("no context %q (see `runyard context list`)", args[0])}
			}
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Context %q deleted.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, use, del)
	return cmd
}

// authStatus is what `auth status -o json` prints.
type authStatus struct {
	Server      string `json:"server"`
	Context     string `json:"context,omitempty"`
	TokenSource string `json:"tokenSource"`
	// KeyStore says where a context's key is kept: the OS keyring, or the
	// configuration file and why no keyring.
	KeyStore       string   `json:"keyStore,omitempty"`
	Principal      string   `json:"principal"`
	SubjectID      string   `json:"subjectId"`
	OrganizationID string   `json:"organizationId"`
	KeyID          string   `json:"keyId,omitempty"`
	KeyName        string   `json:"keyName,omitempty"`
	Scopes         []string `json:"scopes,omitempty"`
	ExpiresAt      string   `json:"expiresAt,omitempty"`
	CreatedAt      string   `json:"createdAt,omitempty"`
	// OwnerUserID is the user a user's key belongs to.
	OwnerUserID string `json:"ownerUserId,omitempty"`
	// KeyRecord says why the key's own record (name, scopes, expiry) is
	// missing, when it is, or what else to know of it.
	KeyRecord string `json:"keyRecord,omitempty"`
}

func newAuthCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "auth",
		Short:   "Show which server and key the CLI uses",
		Example: "  runyard auth status",
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the server, the principal, organization, scopes, name and expiry of the key in use",
		Example: `  runyard auth status
  runyard auth status --context prod -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			id, err := c.identity.GetAuthenticatedIdentity(cmd.Context(), connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
			if err != nil {
				return err
			}
			st := authStatus{
				Server: g.ep.server, TokenSource: g.ep.source,
				Principal:      enumShort("PRINCIPAL_", id.Msg.GetSubject().GetPrincipal().String()),
				SubjectID:      id.Msg.GetSubject().GetId(),
				OrganizationID: id.Msg.GetOrganizationId(),
			}
			if g.ep.context != nil {
				st.Context = g.ep.context.Name
				if g.ep.fromContext {
					if _, path, err := loadConfig(); err == nil {
						st.KeyStore = keyStoreOf(g.ep.context, path)
					}
				}
			}
			keyRecord(cmd.Context(), c.tokens, &st)
			if g.structured() {
				return g.printValue(st)
			}
			w := g.table()
			rows := [][2]string{
				{"Server", st.Server}, {"Context", dash(st.Context)}, {"Key from", st.TokenSource}, {"Key stored in", dash(st.KeyStore)},
				{"Principal", st.Principal + " " + st.SubjectID}, {"Organization", st.OrganizationID},
				{"Key", dash(strings.TrimSpace(st.KeyName + " " + st.KeyID))},
				{"Scopes", dash(strings.Join(st.Scopes, ","))}, {"Expires", expiry(st)},
			}
			if st.KeyRecord != "" {
				rows = append(rows, [2]string{"Note", st.KeyRecord})
			}
			for _, r := range rows {
				fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(status)
	return cmd
}

func expiry(st authStatus) string {
	switch {
	case st.ExpiresAt != "":
		return st.ExpiresAt
	case st.KeyName != "":
		return "never"
	}
	return "-"
}

// keyRecord fills in the record of the key in use: its name, scopes and
// expiry, which every API key may read of itself whatever its scopes
// (GetAuthenticatedToken). Where there is none (a runner's token, a server
// older than the method) the note says why instead.
func keyRecord(ctx context.Context, tokens runyardv1connect.TokenServiceClient, st *authStatus) {
	res, err := tokens.GetAuthenticatedToken(ctx, connect.NewRequest(&runyardv1.GetAuthenticatedTokenRequest{}))
	switch code := connect.CodeOf(err); {
	case err == nil:
	case code == connect.CodeFailedPrecondition:
		st.KeyRecord = errorMessage(err)
		return
	case code == connect.CodeUnimplemented:
		st.KeyRecord = "the server is older than this CLI and does not tell a key its own record: upgrade the server"
		return
	default:
		st.KeyRecord = "the key's record could not be read: " + errorMessage(err)
		return
	}
	t := res.Msg.GetToken()
	st.KeyID, st.KeyName, st.OwnerUserID = t.GetTokenId(), t.GetName(), t.GetOwnerUserId()
	st.Scopes = res.Msg.GetEffectiveScopes()
	if t.GetCreatedAt() != nil {
		st.CreatedAt = t.GetCreatedAt().AsTime().Format(time.RFC3339)
	}
	if t.GetExpiresAt() != nil {
		st.ExpiresAt = t.GetExpiresAt().AsTime().Format(time.RFC3339)
	}
	if !slices.Equal(t.GetScopes(), st.Scopes) {
		// A user's key holds no more than its owner's role grants now.
		st.KeyRecord = "the key was created with scopes " + strings.Join(t.GetScopes(), ",") +
			"; its owner's role grants it only those shown now"
	}
}
