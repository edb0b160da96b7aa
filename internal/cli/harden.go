package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// This file makes the whole command tree refuse mistakes instead of doing
// something else silently. It works on the tree, not on single commands, so
// a command added later gets the same behaviour without doing anything.

// destructiveVerbs are the command names that remove or end something
// without a way back. Such a command confirms on a terminal and, when stdin
// is not one, refuses without --yes.
var destructiveVerbs = map[string]bool{
	"delete": true, "rm": true, "remove": true, "revoke": true, "terminate": true,
	"disable": true, "purge": true, "destroy": true,
}

// annotationDestructive marks a command confirm must ask about; a command
// may set it itself when its name is not one of destructiveVerbs.
const annotationDestructive = "runyard/destructive"

// annotationGroup marks a command that only groups others: run alone it
// shows its help.
const annotationGroup = "runyard/group"

// harden walks the tree:
//   - a command with subcommands refuses an unknown one (exit 2, with a
//     suggestion) and prints its help, exit 0, only when given nothing;
//   - a command without subcommands that declares no arguments refuses any;
//   - flag mistakes say where to look;
//   - destructive commands get --yes/-y;
//   - help of an unknown topic is an error too.
func harden(root *cobra.Command) {
	root.SetHelpCommand(newHelpCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	addExamples(root)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see '%s --help')", err, c.CommandPath())
	})
	walk(root, func(c *cobra.Command) {
		if c.Hidden || strings.HasPrefix(c.Name(), "__") {
			return
		}
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		switch {
		case c.HasSubCommands():
			c.Args = unknownSubcommand
			if !c.Runnable() {
				c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
				if c.Annotations == nil {
					c.Annotations = map[string]string{}
				}
				c.Annotations[annotationGroup] = "true"
			}
		case c.Args == nil && c.Runnable():
			c.Args = unknownSubcommand
		}
		if isDestructive(c) && c.Flags().Lookup("yes") == nil {
			if c.Flags().ShorthandLookup("y") == nil {
				c.Flags().BoolP("yes", "y", false, "do not ask for confirmation (needed when stdin is not a terminal)")
			} else {
				c.Flags().Bool("yes", false, "do not ask for confirmation (needed when stdin is not a terminal)")
			}
		}
	})
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// unknownSubcommand accepts no arguments: the first is an unknown command,
// reported with cobra's suggestions.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += ". Did you mean this? " + strings.Join(s, ", ")
	}
	if cmd.HasSubCommands() {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	return &usageError{msg}
}

func isDestructive(c *cobra.Command) bool {
	return destructiveVerbs[c.Name()] || c.Annotations[annotationDestructive] == "true"
}

// newHelpCmd is `runyard help [command]`, which, unlike cobra's, refuses a
// topic that names no command.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "Help about any command",
		Example: "  runyard help runners list",
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return &usageError{err.Error()}
			}
			if len(rest) > 0 {
				return unknownSubcommand(cmd, rest)
			}
			return cmd.Help()
		},
	}
}

// confirm asks before a destructive command runs, unless --yes. It never
// waits for an answer that cannot come: when stdin is not a terminal it
// refuses, so a script that forgot --yes fails instead of hanging or
// guessing.
func (g *globals) confirm(cmd *cobra.Command, args []string) error {
	if !isDestructive(cmd) {
		return nil
	}
	if yes, err := cmd.Flags().GetBool("yes"); err == nil && yes {
		return nil
	}
	what := strings.TrimSpace(cmd.CommandPath() + " " + strings.Join(args, " "))
	// A command whose effect is more than "gone" says what it is.
	effect := "cannot be undone"
	if e := cmd.Annotations[confirmAnnotation]; e != "" {
		effect = e
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return usagef("%s %s: pass --yes to confirm (stdin is not a terminal, so runyard does not ask)", what, effect)
	}
	fmt.Fprintf(g.stderr, "%s %s. Continue? [y/N] ", what, effect)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &abortedError{}
}

// abortedError is a confirmation answered no.
type abortedError struct{}

func (*abortedError) Error() string { return "aborted: nothing was changed" }

// confirmAnnotation, on a destructive command, replaces "cannot be undone"
// in its confirmation with what it does for good.
const confirmAnnotation = "runyard/confirm"
