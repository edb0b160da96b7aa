package pods

import (
	"slices"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

func TestAgentType_Resolve(t *testing.T) {
	p := &Pod{Key: "pod-abc", InitialPrompt: `Fix "the" bug; rm -rf /`, Workdir: "src",
		Env: map[string]string{"SHARED": "pod", "TOKEN": "t"}}
	t.Run("Builtins", func(t *testing.T) {
		want := map[string][]string{
			"claude-code": {"claude", p.InitialPrompt},
			"codex":       {"codex", p.InitialPrompt},
			"gemini-cli":  {"gemini", "-i", p.InitialPrompt},
			"aider":       {"aider"},
			"opencode":    {"opencode", "--prompt", p.InitialPrompt},
		}
		for _, a := range BuiltinAgentTypes() {
			s := a.Resolve(p)
			if !slices.Equal(s.Argv, want[a.ID]) {
				t.Errorf("%s argv = %q, want %q", a.ID, s.Argv, want[a.ID])
			}
			if s.Env[EnvInitialPrompt] != p.InitialPrompt || s.Env[EnvPodKey] != p.Key || s.Workdir != "src" {
				t.Errorf("%s spec = %+v", a.ID, s)
			}
		}
		if s := builtinAgentType("aider").Resolve(p); s.Input != "{\n"+p.InitialPrompt+"\n}\n" {
			t.Errorf("aider input = %q", s.Input)
		}
	})
	t.Run("Custom", func(t *testing.T) {
		a := &AgentType{ID: "x", Command: []string{"/bin/agent", "--task={{prompt}}", "{{prompt}}"},
			Env: map[string]string{"SHARED": "agent", "MODE": "m", EnvPodKey: "spoofed"}}
		s := a.Resolve(p)
		if want := []string{"/bin/agent", "--task=" + p.InitialPrompt, p.InitialPrompt}; !slices.Equal(s.Argv, want) {
			t.Errorf("argv = %q, want %q", s.Argv, want)
		}
		want := []string{"MODE=m", EnvInitialPrompt + "=" + p.InitialPrompt, EnvPodKey + "=pod-abc", "SHARED=pod", "TOKEN=t"}
		if got := s.Environ(); !slices.Equal(got, want) {
			t.Errorf("environ = %q, want %q (the pod's env over the type's, runyard's over both)", got, want)
		}
		if s.Input != "" {
			t.Errorf("input = %q, want none", s.Input)
		}
	})
}

func TestAgentTypeInput_Validate(t *testing.T) {
	ok := func() AgentTypeInput {
		return AgentTypeInput{ID: "my-agent", Name: " Mine ", Command: []string{"/bin/sh", "-c", "echo {{prompt}}"}, Env: map[string]string{"A_1": "x"}}
	}
	tests := []struct {
		name   string
		change func(*AgentTypeInput)
		field  string
	}{
		{"OK", func(*AgentTypeInput) {}, ""},
		{"OKShortest", func(in *AgentTypeInput) { in.ID = "a1" }, ""},
		{"ErrIDDash", func(in *AgentTypeInput) { in.ID = "-agent" }, "id"},
		{"ErrIDBuiltin", func(in *AgentTypeInput) { in.ID = "aider" }, "id"},
		{"ErrName", func(in *AgentTypeInput) { in.Name = "a\nb" }, "name"},
		{"ErrNoCommand", func(in *AgentTypeInput) { in.Command = nil }, "command"},
		{"ErrPromptAsProgram", func(in *AgentTypeInput) { in.Command = []string{"{{prompt}}"} }, "command[0]"},
		{"ErrNUL", func(in *AgentTypeInput) { in.Command = []string{"a", "b\x00"} }, "command[1]"},
		{"ErrEnvName", func(in *AgentTypeInput) { in.Env = map[string]string{"A=B": "x"} }, "env"},
		{"ErrEnvReserved", func(in *AgentTypeInput) { in.Env = map[string]string{"RUNYARD_X": "x"} }, "env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.change(&in)
			err := in.validate()
			if tt.field == "" {
				if err != nil || in.Name != "Mine" {
					t.Fatalf("validate = %v, name %q", err, in.Name)
				}
				return
			}
			if e := apperr.As(err); err == nil || e.Code != apperr.CodeInvalid || e.Field != tt.field {
				t.Fatalf("validate = %v, want invalid %s", err, tt.field)
			}
		})
	}
}

func TestCleanWorkdir(t *testing.T) {
	for in, want := range map[string]string{"": "", "/srv/../tmp/x/": "/tmp/x", "a/./b/": "a/b", "./a": "a"} {
		if got, err := cleanWorkdir(in); err != nil || got != want {
			t.Errorf("cleanWorkdir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "a/../../b", "../x"} {
		if _, err := cleanWorkdir(in); apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("cleanWorkdir(%q) = %v, want invalid", in, err)
		}
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := newKey()
		if err != nil || len(k) != 16 || k[:4] != "pod-" || seen[k] {
			t.Fatalf("newKey = %q, %v", k, err)
		}
		seen[k] = true
	}
}
