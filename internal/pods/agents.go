package pods

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
)

// This file holds agent types: which command a pod runs and how the initial
// prompt reaches it. Built-in types are fixed here; an organization adds its
// own (stored, immutable once created).

// PromptArg, anywhere in a command's argument or in an agent type's Input,
// stands for the pod's initial prompt. The prompt is substituted into one
// argv element and never passes through a shell, so it needs no quoting.
const PromptArg = "{{prompt}}"

// The environment every pod process gets, whatever its agent type.
const (
	EnvInitialPrompt = "RUNYARD_INITIAL_PROMPT"
	EnvPodKey        = "RUNYARD_POD_KEY"
	// envReserved is the prefix of names only runyard sets.
	envReserved = "RUNYARD_"
)

// AgentType is a command a pod can run.
type AgentType struct {
	// ID is a slug such as "claude-code".
	ID string
	// OrgID is the owning organization; empty for a built-in type.
	OrgID string
	Name  string
	// Command is the argv; argv[0] is the binary a runner looks up on its
	// PATH to tell whether it can run the type. Elements may hold PromptArg.
	Command []string
	// Env is added to the pod process's environment.
	Env map[string]string
	// Input, when set, is typed into the pod's terminal once, right after
	// the process starts, with PromptArg replaced by the prompt: for tools
	// that take no initial prompt on their command line.
	Input     string
	Builtin   bool
	CreatedAt time.Time
}

// Binary is the program a runner needs on its PATH to run the type.
func (a *AgentType) Binary() string { return a.Command[0] }

// builtins are the agent types every organization has. Each passes the
// prompt the way that tool documents for an interactive session that starts
// with a prompt. Sources, read in 2026:
//
//   - claude-code: `claude "query"` starts the REPL with an initial prompt
//     (docs.anthropic.com/en/docs/claude-code/cli-reference).
//   - codex: `codex "..."` is the initial prompt of the interactive TUI;
//     `codex exec` would be the non-interactive mode
//     (developers.openai.com/codex/cli/features, openai/codex
//     docs/getting-started.md).
//   - gemini-cli: `gemini -i "query"` (--prompt-interactive) executes the
//     prompt and continues interactively; -p would be headless
//     (geminicli.com/docs/cli/cli-reference).
//   - aider: `--message` sends one message, then exits ("disables chat
//     mode", aider.chat/docs/scripting.html), so it does not suit a session
//     one attaches to. aider gets no prompt on its command line; instead
//     the prompt is typed into its terminal wrapped in aider's multi-line
//     markers, "{" and "}" on lines of their own, so that a prompt with
//     newlines is one message. Uncertain: this relies on aider's documented
//     multi-line input and on the runner typing Input after start; a prompt
//     holding a line "}" ends the message early.
//   - opencode: `opencode --prompt "..."` starts the TUI with the prompt.
//     Uncertain: sst/opencode issue 4700 reports that since 1.0 the flag
//     only pre-fills the input box, so the user must press Enter once
//     attached.
//
// A prompt that starts with "-" may be read as an option by claude, codex
// and gemini's argument parsers; runyard passes it unchanged.
var builtins = []*AgentType{
	{ID: "claude-code", Name: "Claude Code", Command: []string{"claude", PromptArg}},
	{ID: "codex", Name: "Codex CLI", Command: []string{"codex", PromptArg}},
	{ID: "gemini-cli", Name: "Gemini CLI", Command: []string{"gemini", "-i", PromptArg}},
	{ID: "aider", Name: "Aider", Command: []string{"aider"}, Input: "{\n" + PromptArg + "\n}\n"},
	{ID: "opencode", Name: "opencode", Command: []string{"opencode", "--prompt", PromptArg}},
}

// BuiltinAgentTypes returns copies of the built-in agent types, in a fixed
// order.
func BuiltinAgentTypes() []*AgentType {
	out := make([]*AgentType, len(builtins))
	for i, a := range builtins {
		c := *a
		c.Builtin = true
		c.Command = slices.Clone(a.Command)
		c.Env = maps.Clone(a.Env)
		out[i] = &c
	}
	return out
}

// builtinAgentType returns the built-in type id, or nil.
func builtinAgentType(id string) *AgentType {
	for _, a := range BuiltinAgentTypes() {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// RunSpec is what a runner needs to start a pod's process. It is resolved
// once, when the pod is created, and stored with the pod: the runner runs
// exactly what was validated, whatever happens to the agent type later.
type RunSpec struct {
	// Argv is the command, argv[0] looked up on the runner's PATH; no shell
	// is involved.
	Argv []string `json:"argv"`
	// Env is added to the runner's environment for the process; it always
	// holds EnvInitialPrompt and EnvPodKey.
	Env map[string]string `json:"env"`
	// Workdir is the pod's working directory: empty for the runner's
	// default, relative to the runner's pod directory, or absolute.
	Workdir string `json:"workdir,omitempty"`
	// Input is typed into the terminal once, right after the start.
	Input string `json:"input,omitempty"`
}

// Environ returns Env as sorted KEY=value strings, the form exec.Cmd takes.
func (s *RunSpec) Environ() []string {
	out := make([]string, 0, len(s.Env))
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		out = append(out, k+"="+s.Env[k])
	}
	return out
}

// Resolve returns the run spec of pod p with this agent type: the prompt
// substituted into the command and Input, the type's environment, then the
// pod's own (which wins), then RUNYARD_INITIAL_PROMPT and RUNYARD_POD_KEY.
func (a *AgentType) Resolve(p *Pod) RunSpec {
	argv := make([]string, len(a.Command))
	for i, arg := range a.Command {
		argv[i] = strings.ReplaceAll(arg, PromptArg, p.InitialPrompt)
	}
	env := make(map[string]string, len(a.Env)+len(p.Env)+2)
	maps.Copy(env, a.Env)
	maps.Copy(env, p.Env)
	env[EnvInitialPrompt] = p.InitialPrompt
	env[EnvPodKey] = p.Key
	return RunSpec{
		Argv:    argv,
		Env:     env,
		Workdir: p.Workdir,
		Input:   strings.ReplaceAll(a.Input, PromptArg, p.InitialPrompt),
	}
}

// Limits on agent types and on what a pod adds to them.
const (
	maxAgentNameLength = 100
	maxCommandArgs     = 64
	maxArgBytes        = 4096
	maxEnvVars         = 64
	maxEnvNameLength   = 256
	maxEnvValueBytes   = 32 << 10
)

var (
	slugRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// AgentTypeInput is a custom agent type to create.
type AgentTypeInput struct {
	ID      string
	Name    string
	Command []string
	Env     map[string]string
}

// validate checks a new custom agent type.
func (in *AgentTypeInput) validate() error {
	switch {
	case !slugRE.MatchString(in.ID):
		return apperr.Invalid("id", "must be 2 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit; got %q", in.ID)
	case builtinAgentType(in.ID) != nil:
		return apperr.Invalid("id", "%q is a built-in agent type", in.ID)
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > maxAgentNameLength || strings.ContainsFunc(name, isControl) {
		return apperr.Invalid("name", "must be 1 to %d characters without control characters", maxAgentNameLength)
	}
	in.Name = name
	if len(in.Command) == 0 || len(in.Command) > maxCommandArgs {
		return apperr.Invalid("command", "must have 1 to %d arguments, got %d", maxCommandArgs, len(in.Command))
	}
	if in.Command[0] == "" || strings.Contains(in.Command[0], PromptArg) {
		return apperr.Invalid("command[0]", "must name the program and must not hold %s", PromptArg)
	}
	for i, arg := range in.Command {
		if len(arg) > maxArgBytes || strings.ContainsRune(arg, 0) || !utf8.ValidString(arg) {
			return apperr.Invalid(fmt.Sprintf("command[%d]", i), "must be valid UTF-8 of at most %d bytes without NUL", maxArgBytes)
		}
	}
	return validateEnv("env", in.Env)
}

// validateEnv checks environment variables a user sets.
func validateEnv(field string, env map[string]string) error {
	if len(env) > maxEnvVars {
		return apperr.Invalid(field, "at most %d variables, got %d", maxEnvVars, len(env))
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > maxEnvNameLength || !envNameRE.MatchString(k) {
			return apperr.Invalid(field, "%q is not a valid variable name (letters, digits and _, not starting with a digit)", k)
		}
		if strings.HasPrefix(k, envReserved) {
			return apperr.Invalid(field, "%q: names starting with %s are set by runyard", k, envReserved)
		}
		if v := env[k]; len(v) > maxEnvValueBytes || strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return apperr.Invalid(field+"."+k, "must be valid UTF-8 of at most %d bytes without NUL", maxEnvValueBytes)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
