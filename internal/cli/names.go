package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// This file says, for every command, which of its arguments and flags name
// one of runyard's objects; resolveNames (run before each command) turns what
// was typed into IDs through resolve.go, and addCompletions gives the same
// arguments and flags shell completion from the server. A command added
// with such an argument adds its line here; TestNames_EveryIDArgument fails
// until it does.

// nameSpec is what a command's arguments and flags name.
type nameSpec struct {
	// arg is the kind of the first positional argument (nil: none).
	arg *kind
	// flags maps flag names to the kind they name.
	flags map[string]*kind
}

// scopeFlag is the flag that narrows services, tasks and executions to one
// environment; it is resolved before the others.
const scopeFlag = "environment"

var nameArgs = map[string]nameSpec{
	"runners get":    {arg: kindRunner},
	"runners update": {arg: kindRunner},
	"runners delete": {arg: kindRunner},
	"runners token":  {arg: kindRunner},

	"environments create": {flags: map[string]*kind{"runner": kindRunner}},
	"environments list":   {flags: map[string]*kind{"runner": kindRunner}},
	"environments get":    {arg: kindEnvironment},
	"environments start":  {arg: kindEnvironment},
	"environments stop":   {arg: kindEnvironment},
	"environments delete": {arg: kindEnvironment},

	"automations update": {flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"automations reload": {arg: kindEnvironment},

	"services list":  {flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"services start": {arg: kindService, flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"services stop":  {arg: kindService, flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"services logs":  {arg: kindService, flags: map[string]*kind{scopeFlag: kindEnvironment}},

	"tasks list":  {flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"tasks start": {arg: kindTask, flags: map[string]*kind{scopeFlag: kindEnvironment}},
	"tasks logs":  {arg: kindExecution},

	"executions list": {flags: map[string]*kind{scopeFlag: kindEnvironment, "task": kindTask}},
	"executions get":  {arg: kindExecution},
	"executions stop": {arg: kindExecution},

	"pods create":    {flags: map[string]*kind{"runner": kindRunnerNumber}},
	"pods list":      {flags: map[string]*kind{"runner": kindRunnerNumber}},
	"pods get":       {arg: kindPod},
	"pods terminate": {arg: kindPod},
	"pods logs":      {arg: kindPod},
	"pods attach":    {arg: kindPod},

	"agents get":    {arg: kindAgent},
	"agents update": {arg: kindAgent},
	"agents delete": {arg: kindAgent},

	"secrets create":             {flags: map[string]*kind{"service-account": kindToken}},
	"prebuilds create":           {flags: map[string]*kind{"runner": kindRunner}},
	"prebuilds schedules create": {flags: map[string]*kind{"runner": kindRunner}},
	"secrets list":               {flags: map[string]*kind{"service-account": kindToken}},
	"secrets update":             {arg: kindSecret},
	"secrets delete":             {arg: kindSecret},

	"tokens revoke": {arg: kindToken},

	"keys revoke":     {arg: kindOwnKey},
	"invites revoke":  {arg: kindInvite},
	"ssh-keys delete": {arg: kindSSHKey},
}

// specFor returns the name spec of cmd.
func specFor(cmd *cobra.Command) (nameSpec, bool) {
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	s, ok := nameArgs[path]
	return s, ok
}

// scopeOf is the scope cmd's flags give: --org of the REST commands, the
// environment of --environment (resolved by then).
func scopeOf(cmd *cobra.Command, k *kind) nameScope {
	sc := nameScope{org: flagString(cmd, "org"), numbers: k == kindRunnerNumber}
	if k == kindService || k == kindTask || k == kindExecution {
		sc.environment = flagString(cmd, scopeFlag)
	}
	return sc
}

// resolveNames rewrites the arguments and flags of cmd that name objects
// to their IDs (a runner's numeric id for the REST commands' --runner).
func (g *globals) resolveNames(cmd *cobra.Command, args []string) error {
	spec, ok := specFor(cmd)
	if !ok {
		return nil
	}
	ctx := cmd.Context()
	order := make([]string, 0, len(spec.flags))
	if _, ok := spec.flags[scopeFlag]; ok {
		order = append(order, scopeFlag)
	}
	for name := range spec.flags {
		if name != scopeFlag {
			order = append(order, name)
		}
	}
	for _, name := range order {
		f := cmd.Flags().Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		k := spec.flags[name]
		vals := flagValues(f)
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			c, err := g.resolve(ctx, k, scopeOf(cmd, k), "--"+name, v)
			if err != nil {
				return err
			}
			out = append(out, resolvedValue(k, c))
		}
		if len(out) > 0 {
			if err := setFlagValues(f, out); err != nil {
				return err
			}
		}
	}
	if spec.arg != nil && len(args) > 0 {
		c, err := g.resolve(ctx, spec.arg, scopeOf(cmd, spec.arg), "", args[0])
		if err != nil {
			return err
		}
		args[0] = resolvedValue(spec.arg, c)
	}
	return nil
}

func resolvedValue(k *kind, c *candidate) string {
	if k == kindRunnerNumber {
		return c.number
	}
	return c.id
}

// completionTimeout bounds the calls one completion makes: a shell waits
// for them.
const completionTimeout = 10 * time.Second

// addCompletions gives every argument and flag of nameArgs completion from
// the server.
func (g *globals) addCompletions(root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		spec, ok := specFor(c)
		if !ok {
			return
		}
		if spec.arg != nil && c.ValidArgsFunction == nil {
			k := spec.arg
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return g.complete(cmd, k, toComplete)
			}
		}
		for name, k := range spec.flags {
			k := k
			_ = c.RegisterFlagCompletionFunc(name, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				// A slice flag completes the value after the last comma.
				done, last := "", toComplete
				if i := strings.LastIndex(toComplete, ","); i >= 0 {
					done, last = toComplete[:i+1], toComplete[i+1:]
				}
				comps, dir := g.complete(cmd, k, last)
				for i := range comps {
					comps[i] = done + comps[i]
				}
				return comps, dir
			})
		}
	})
}

// complete lists the names and IDs of kind k that start with toComplete,
// each with what it is.
func (g *globals) complete(cmd *cobra.Command, k *kind, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	// Completion runs without the root's pre-run: note here which
	// server and key the command line gave.
	g.serverSet = cmd.Flags().Changed("server")
	g.tokenSet = cmd.Flags().Changed("token")
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, completionTimeout)
	defer cancel()
	sc := scopeOf(cmd, k)
	if sc.environment != "" {
		// The environment may be named too; one that names none (or
		// several) narrows nothing.
		if c, err := g.resolve(ctx, kindEnvironment, nameScope{}, "--"+scopeFlag, sc.environment); err == nil {
			sc.environment = c.id
		} else {
			sc.environment = ""
		}
	}
	cands, err := k.list(ctx, g, sc)
	if err != nil {
		cobra.CompDebugln("runyard: "+oneLine(errorMessage(err)), true)
		return nil, cobra.ShellCompDirectiveError | cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	seen := map[string]bool{}
	add := func(v, desc string) {
		if v == "" || seen[v] || !strings.HasPrefix(v, toComplete) {
			return
		}
		seen[v] = true
		out = append(out, cobra.CompletionWithDesc(v, desc))
	}
	for _, c := range cands {
		for _, n := range c.names {
			add(n, k.noun+" "+c.id)
		}
		if k == kindRunnerNumber {
			add(c.number, k.noun+" "+c.desc)
		} else {
			add(c.id, c.desc)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
