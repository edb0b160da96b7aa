package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runyardv1 "github.com/runyard/runyard/gen/runyard/v1"
)

func newUsersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "Manage user accounts (the installation admin: every user; an organization's admin: its members)",
	}
	cmd.AddCommand(newUsersCreateCmd(g), newUsersListCmd(g), newUsersSetDisabledCmd(g, true), newUsersSetDisabledCmd(g, false),
		newUsersSetPasswordCmd(g))
	return cmd
}

// passwordFlags are --password and --password-stdin: a password comes from
// exactly one, and is never printed.
type passwordFlags struct {
	value string
	stdin bool
}

func (p *passwordFlags) add(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringVar(&p.value, "password", "", what+" (visible in the process list and shell history: prefer --password-stdin)")
	f.BoolVar(&p.stdin, "password-stdin", false, "read "+what+" from the first line of stdin")
}

func (p *passwordFlags) read(cmd *cobra.Command) (string, error) {
	switch {
	case p.value != "" && p.stdin:
		return "", usagef("give --password or --password-stdin, not both")
	case p.stdin:
		// A reader set up by the command (two passwords on two lines) is
		// read from, not wrapped: a second buffer would swallow line two.
		r, ok := cmd.InOrStdin().(*bufio.Reader)
		if !ok {
			r = bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096))
		}
		line, err := r.ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", usagef("--password-stdin: stdin has no password")
		}
		return line, nil
	case p.value != "":
		return p.value, nil
	}
	return "", usagef("a password is required: give --password-stdin (or --password)")
}

func userStatus(u *gitpodv1.User) string {
	if u.GetStatus() == gitpodv1.UserStatus_USER_STATUS_SUSPENDED {
		return "disabled"
	}
	return "active"
}

func (g *globals) printUsers(items []*gitpodv1.User) error {
	if g.output == "json" {
		msgs := make([]proto.Message, len(items))
		for i, u := range items {
			msgs[i] = u
		}
		return g.printJSONList("users", msgs)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	header := "ID\tEMAIL\tNAME\tSTATUS\tCREATED"
	if g.wide() {
		header += "\tORGANIZATION\tCREATED AT"
	}
	fmt.Fprintln(w, header)
	for _, u := range items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", u.GetId(), u.GetEmail(), dash(u.GetName()), userStatus(u), ago(u.GetCreatedAt().AsTime()))
		if g.wide() {
			fmt.Fprintf(w, "\t%s\t%s", dash(u.GetOrganizationId()), stamp(u.GetCreatedAt()))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func newUsersCreateCmd(g *globals) *cobra.Command {
	var email, name, org, role string
	var installationAdmin bool
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   "create --email E --password-stdin [--org O --role R]",
		Short: "Create a user with a password, and their membership",
		Long: "Create a local account. With --org and --role it becomes a member of that organization\n" +
			"(an organization's admin creates users into their own organization: --org may be left out).",
		Example: `  echo 'a long passphrase' | runyard users create --email ada@example.com --password-stdin --org acme --role member`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := pw.read(cmd)
			if err != nil {
				return err
			}
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
			res, err := c.userAdmin.CreateUser(cmd.Context(), connect.NewRequest(&runyardv1.CreateUserRequest{Email: email, Name: name,
				Password: password, OrganizationId: orgID, Role: role, InstallationAdmin: installationAdmin}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			u := res.Msg.GetUser()
			if m := res.Msg.GetMember(); m != nil {
				fmt.Fprintf(g.stdout, "Created user %s (%s), %s of organization %s.\n", u.GetEmail(), u.GetId(), m.GetRole(), m.GetOrganizationId())
			} else {
				fmt.Fprintf(g.stdout, "Created user %s (%s).\n", u.GetEmail(), u.GetId())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "the user's email address (their sign-in name)")
	f.StringVar(&name, "name", "", "the user's full name")
	f.StringVar(&org, "org", "", "organization (ID or name) to make them a member of")
	f.StringVar(&role, "role", "", "their role there: admin, member, runners-admin, automations-admin, audit-reader")
	f.BoolVar(&installationAdmin, "installation-admin", false, "make them an installation admin (only the installation admin may)")
	pw.add(cmd, "the password")
	return cmd
}

func newUsersListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users (an organization's admin: its members)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			var all []*gitpodv1.User
			token := ""
			for range 10_000 {
				res, err := c.userAdmin.ListUsers(cmd.Context(), connect.NewRequest(&runyardv1.ListUsersRequest{
					Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100}}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetUsers()...)
				if token = res.Msg.GetPagination().GetNextToken(); token == "" {
					break
				}
			}
			return g.printUsers(all)
		},
	}
}

func newUsersSetDisabledCmd(g *globals, disable bool) *cobra.Command {
	use, short := "enable USER", "Enable a disabled user (USER: id or email)"
	if disable {
		use, short = "disable USER", "Disable a user (USER: id or email): they cannot sign in, their API keys are revoked"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			res, err := c.users.SetSuspended(cmd.Context(), connect.NewRequest(&gitpodv1.SetSuspendedRequest{UserId: args[0], Suspended: disable}))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res.Msg)
			}
			if disable {
				fmt.Fprintf(g.stdout, "User %s disabled; their API keys are revoked.\n", args[0])
			} else {
				fmt.Fprintf(g.stdout, "User %s enabled.\n", args[0])
			}
			return nil
		},
	}
	if disable {
		// Enabling the user later does not bring the keys back.
		cmd.Annotations = map[string]string{confirmAnnotation: "revokes the user's API keys and ends their sessions for good"}
	}
	return cmd
}

func newUsersSetPasswordCmd(g *globals) *cobra.Command {
	var pw passwordFlags
	var current passwordFlags
	cmd := &cobra.Command{
		Use:   "set-password [USER]",
		Short: "Reset a user's password (an admin), or change your own (no USER; needs --current-password-stdin)",
		Example: `  echo 'a new long passphrase' | runyard users set-password ada@example.com --password-stdin
  printf '%s\n%s\n' "$OLD" "$NEW" | runyard users set-password --current-password-stdin --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cur string
			var err error
			if len(args) == 0 {
				if !current.stdin && current.value == "" {
					return usagef("give USER to reset their password, or --current-password-stdin to change your own")
				}
				// Both passwords may come from stdin: the current one on
				// the first line, the new one on the second.
				r := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 8192))
				cmd.SetIn(r)
				if cur, err = current.read(cmd); err != nil {
					return err
				}
			}
			password, err := pw.read(cmd)
			if err != nil {
				return err
			}
			c, err := g.clients()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				_, err = c.userAdmin.ChangePassword(cmd.Context(), connect.NewRequest(&runyardv1.ChangePasswordRequest{CurrentPassword: cur, NewPassword: password}))
			} else {
				_, err = c.userAdmin.SetPassword(cmd.Context(), connect.NewRequest(&runyardv1.SetPasswordRequest{UserId: args[0], Password: password}))
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Password set.")
			return nil
		},
	}
	pw.add(cmd, "the new password")
	f := cmd.Flags()
	f.StringVar(&current.value, "current-password", "", "your current password, to change your own")
	f.BoolVar(&current.stdin, "current-password-stdin", false, "read your current password from the first line of stdin")
	return cmd
}
