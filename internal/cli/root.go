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
	"github.com/runyard/runyard/internal/buildinfo"
)

// globals are the flags every client command shares.
type globals struct {
	server string
	token  string
	output string
	// jq is --jq: a jq expression applied to the JSON output.
	jq string
	// contextName is --context: the context to use instead of the current
	// one.
	contextName string
	// caFile and insecure are --ca-file and --insecure-skip-verify: they
	// win over the TLS settings of the server's context.
	caFile   string
	insecure bool
	// serverSet and tokenSet tell a flag typed on the command line from
	// the default the environment gave it.
	serverSet, tokenSet bool
	// rawTables makes tables unaligned, tab-separated (--watch reads them).
	rawTables bool
	// ep is where the command's calls go, once endpoint has resolved it.
	ep     *resolved
	stdout io.Writer
	stderr io.Writer
}

// Execute runs the command line and returns the process exit code. A
// command interrupted by a signal (see Interrupted) exits 128 plus the
// signal's number, as shells report it.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root, ran := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// A command run in an environment exited: its status is ours.
	if es := (*exitStatus)(nil); errors.As(err, &es) {
		return es.code
	}
	if sig := interruptedBy(ctx); sig != 0 && *ran {
		if msg := interruptMessage(err); msg != "" {
			fmt.Fprintln(stderr, "runyard: "+oneLine(msg))
		}
		return 128 + sig
	}
	msg := errorMessage(err)
	code := exitCode(err)
	if !*ran {
		code = apperr.ExitCode(apperr.CodeInvalid)
	}
	if code == apperr.ExitCode(apperr.CodeUnauthenticated) && g.ep != nil && g.ep.hint != "" {
		msg += "; " + g.ep.hint
	}
	if code == apperr.ExitCode(apperr.CodeUnavailable) && strings.Contains(msg, "x509:") {
		msg += "; to trust the server's certificate, pass --ca-file FILE with its CA (or, for testing only, --insecure-skip-verify)"
	}
	fmt.Fprintln(stderr, "runyard: "+oneLine(msg))
	return code
}

// NewRootCommand returns the whole command tree, for the generated
// reference and the tests that walk it. Its commands write to io.Discard.
func NewRootCommand() *cobra.Command {
	root, _ := newRootCmd(&globals{stdout: io.Discard, stderr: io.Discard})
	return root
}

// newRootCmd builds the tree. ran reports whether a command's own code was
// reached: cobra reports flag and command mistakes before, and those exit as
// usage errors.
func newRootCmd(g *globals) (*cobra.Command, *bool) {
	root := &cobra.Command{
		Use:   "runyard",
		Short: "A self-hosted runner platform: control plane, runners, environments and agent pods",
		Example: `  runyard up                                  # control plane and a runner on this host
  runyard login https://runyard.example.com   # paste an API key
  runyard runners list -o wide
  runyard environments create --git https://github.com/me/app --wait`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	// Required flags are checked here because cobra checks them only after
	// this hook; a destructive command confirms here, after its arguments
	// are known to be right and before anything runs.
	ran := false
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := cmd.ValidateRequiredFlags(); err != nil {
			return &usageError{err.Error()}
		}
		if err := cmd.ValidateFlagGroups(); err != nil {
			return &usageError{err.Error()}
		}
		// An -o or --jq nothing can print is refused before any command
		// runs, whether or not it calls the API.
		if err := g.checkOutput(); err != nil {
			return err
		}
		g.serverSet = cmd.Flags().Changed("server")
		g.tokenSet = cmd.Flags().Changed("token")
		ran = true
		// Names become IDs before a destructive command confirms, so
		// that it asks about the very object it will change.
		if err := g.resolveNames(cmd, args); err != nil {
			return err
		}
		return g.confirm(cmd, args)
	}
	pf := root.PersistentFlags()
	// The defaults are constants, not the environment's values: help and
	// the generated reference must never show a key from RUNYARD_TOKEN.
	pf.StringVar(&g.server, "server", defaultServer, "control plane URL (env RUNYARD_SERVER); client commands without it use the current context's server")
	pf.StringVar(&g.token, "token", "", "API key (env RUNYARD_TOKEN; default: the key stored for the server, see 'runyard login')")
	pf.StringVar(&g.contextName, "context", "", "use this context instead of the current one (see 'runyard context list')")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, wide, json, yaml, jsonpath=EXPR or go-template=TEMPLATE")
	pf.StringVar(&g.jq, "jq", "", "print the JSON output filtered by this jq expression")
	pf.StringVar(&g.caFile, "ca-file", "", "trust the CA certificates in this PEM file for the server (default: its context's; 'runyard login --ca-file' stores it there)")
	pf.BoolVar(&g.insecure, "insecure-skip-verify", false, "do not verify the server's TLS certificate (testing only; 'runyard login' stores it in the context)")

	root.AddCommand(newLoginCmd(g), newContextCmd(g), newAuthCmd(g), newVersionCmd(g))
	root.AddCommand(
		newServerCmd(g),
		newRunnerCmd(g),
		newUpCmd(g),
		newRunnersCmd(g),
		newTokensCmd(g), newKeysCmd(g),
		newOrgsCmd(g),
		newUsersCmd(g), newMembersCmd(g), newInvitesCmd(g), newJoinCmd(g),
		newAuditCmd(g),
		newWhoamiCmd(g),
		newPodsCmd(g), newAgentsCmd(g),
		newSecretsCmd(g),
		newEnvironmentsCmd(g), newAutomationsCmd(g), newServicesCmd(g), newTasksCmd(g), newExecutionsCmd(g),
		newStatusCmd(g),
		newReleasesCmd(g),
		newSSHKeysCmd(g),
		newPrebuildsCmd(g),
	)
	harden(root)
	g.addCompletions(root)
	addWatch(g, root)
	return root, &ran
}

// daemonServer is the server of the runner commands: --server, else
// RUNYARD_SERVER, else the default. Contexts are the CLI user's, not the
// daemon's.
func (g *globals) daemonServer() string {
	if g.serverSet {
		return g.server
	}
	return envOr("RUNYARD_SERVER", defaultServer)
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
