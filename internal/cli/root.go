// Package cli is the runyard command line: the server and the client
// commands, in the style of gh and kubectl (runyard <noun> <verb>).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/apperr"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// globals are the flags every client command shares.
type globals struct {
	server string
	token  string
	output string
	stdout io.Writer
	stderr io.Writer
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "runyard",
		Short:         "A self-hosted runner platform: control plane, runners, environments and agent pods",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	// Cobra reports flag and command mistakes itself, before any of our code
	// runs; ran tells those apart so they exit as usage errors too. Required
	// flags are checked here because cobra checks them only after this hook.
	ran := false
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := cmd.ValidateRequiredFlags(); err != nil {
			return &usageError{err.Error()}
		}
		if err := cmd.ValidateFlagGroups(); err != nil {
			return &usageError{err.Error()}
		}
		ran = true
		return nil
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("RUNYARD_SERVER", "http://127.0.0.1:8080"), "control plane URL (env RUNYARD_SERVER)")
	pf.StringVar(&g.token, "token", os.Getenv("RUNYARD_TOKEN"), "API token (env RUNYARD_TOKEN; default: .runyard/admin-token if present)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")

	root.AddCommand(
		newServerCmd(g),
		newRunnerCmd(g),
		newUpCmd(g),
		newRunnersCmd(g),
		newTokensCmd(g),
		newOrgsCmd(g),
		newUsersCmd(g), newMembersCmd(g), newInvitesCmd(g), newJoinCmd(g),
		newAuditCmd(g),
		newWhoamiCmd(g),
		newPodsCmd(g), newAgentsCmd(g),
		newSecretsCmd(g),
		newEnvironmentsCmd(g), newAutomationsCmd(g), newServicesCmd(g), newTasksCmd(g), newExecutionsCmd(g),
	)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "runyard: "+oneLine(errorMessage(err)))
	if !ran {
		return apperr.ExitCode(apperr.CodeInvalid)
	}
	return exitCode(err)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// usageError marks a mistake on the command line itself.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errorMessage is what the user reads: the server's message for API errors,
// without connect-go's "code: " prefix repeated.
func errorMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		if ce.Code() == connect.CodeUnavailable {
			return "cannot reach the control plane: " + ce.Message()
		}
		return ce.Message() + " (" + ce.Code().String() + ")"
	}
	return err.Error()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// exitCode maps an error to the exit code of its apperr code, through the one
// table in apperr.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return apperr.ExitCode(apperr.CodeInvalid)
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return apperr.ExitCode(apperr.Code(ce.Code().String()))
	}
	if e := (*apperr.Error)(nil); errors.As(err, &e) {
		return apperr.ExitCode(e.Code)
	}
	return 1
}
