package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runyard/runyard/internal/apperr"
)

// idWords are the words of a Use line that stand for an object the resolver
// knows; idFlags, the flags that name one.
var (
	idWords = map[string]bool{"RUNNER": true, "ENVIRONMENT": true, "SERVICE": true, "TASK": true, "EXECUTION": true,
		"POD": true, "AGENT": true, "SECRET": true, "TOKEN": true, "KEY": true, "INVITE": true}
	idFlags = map[string]bool{"runner": true, "environment": true, "task": true, "service-account": true}
)

// notObjects are arguments named like objects that are something else: an
// invite's one-time token.
var notObjects = map[string]bool{"join": true}

// TestNames_EveryIDArgument: every command whose first argument or a flag
// names an object is in nameArgs, so a new command cannot forget to resolve
// names (or to complete them); and every line of nameArgs names a real
// command and flag.
func TestNames_EveryIDArgument(t *testing.T) {
	root := NewRootCommand()
	seen := map[string]bool{}
	walk(root, func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), "runyard ")
		spec, listed := nameArgs[path]
		seen[path] = listed
		if fields := strings.Fields(c.Use); len(fields) > 1 && idWords[fields[1]] && !notObjects[path] {
			if !listed || spec.arg == nil {
				t.Errorf("runyard %s takes %s: nameArgs has no kind for it", path, fields[1])
			}
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if idFlags[f.Name] && (!listed || spec.flags[f.Name] == nil) {
				t.Errorf("runyard %s --%s names an object: nameArgs has no kind for it", path, f.Name)
			}
		})
		if listed {
			for name := range spec.flags {
				if c.Flags().Lookup(name) == nil {
					t.Errorf("nameArgs[%q] names flag --%s, which the command lacks", path, name)
				}
			}
			if spec.arg != nil && c.ValidArgsFunction == nil {
				t.Errorf("runyard %s: no completion for its argument", path)
			}
		}
	})
	for path := range nameArgs {
		if !seen[path] {
			t.Errorf("nameArgs[%q]: no such command", path)
		}
	}
}

func TestMatchName(t *testing.T) {
	cands := []candidate{
		{id: "3f2a1111-0000-4000-8000-000000000001", number: "1", names: []string{"build"}, desc: "build"},
		{id: "3f2a2222-0000-4000-8000-000000000002", number: "2", names: []string{"3f2a1111"}, desc: "odd name"},
		{id: "7c000000-0000-4000-8000-000000000003", number: "3", names: []string{"web"}, desc: "web"},
		{id: "7d000000-0000-4000-8000-000000000004", number: "4", names: []string{"web"}, desc: "web"},
	}
	for _, tc := range []struct {
		name, arg string
		want      string
		code      apperr.Code
		msg       []string
	}{
		{"ID", "7C000000-0000-4000-8000-000000000003", "7c000000-0000-4000-8000-000000000003", "", nil},
		{"Number", "4", "7d000000-0000-4000-8000-000000000004", "", nil},
		{"Name", "build", "3f2a1111-0000-4000-8000-000000000001", "", nil},
		// A name wins over an ID prefix it also is.
		{"NameBeforePrefix", "3f2a1111", "3f2a2222-0000-4000-8000-000000000002", "", nil},
		{"Prefix", "7d00", "7d000000-0000-4000-8000-000000000004", "", nil},
		{"ErrAmbiguousName", "web", "", apperr.CodeInvalid, []string{`runner "web" is ambiguous`, "name of 2 runners", "7c000000-", "7d000000-"}},
		{"ErrAmbiguousPrefix", "3f2a", "", apperr.CodeInvalid, []string{`"3f2a" is ambiguous`, "ID prefix of 2 runners", "(build)", "(odd name)"}},
		{"ErrShortPrefix", "7d0", "", apperr.CodeNotFound, []string{"at least 4 characters"}},
		{"ErrNotFound", "db", "", apperr.CodeNotFound, []string{`--runner: runner "db" not found`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := matchName(kindRunner, nameScope{}, cands, "--runner", tc.arg)
			if tc.code == "" {
				if err != nil || got.id != tc.want {
					t.Fatalf("matchName(%q) = %v, %v; want %s", tc.arg, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("matchName(%q) = %s, want an error", tc.arg, got.id)
			}
			if code := exitCode(err); code != apperr.ExitCode(tc.code) {
				t.Errorf("matchName(%q): exit code %d, want %d (%v)", tc.arg, code, apperr.ExitCode(tc.code), err)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("matchName(%q): %q, want it to contain %q", tc.arg, err, m)
				}
			}
		})
	}
}

func TestStepHeaders(t *testing.T) {
	in := "=== step s1 ===\nbuilding\npartial=== step s1 ===\n=== step s2 ===\n=== step unknown ===\n=== stepper\nprompt> "
	want := "=== task build ===\nbuilding\npartial=== step s1 ===\n=== task test ===\n=== step unknown ===\n=== stepper\nprompt> "
	// Every split of the input gives the same output.
	for cut := 0; cut <= len(in); cut++ {
		var out strings.Builder
		h := &stepHeaders{w: &out, names: map[string]string{"s1": "task build", "s2": "task test"}}
		h.Write([]byte(in[:cut]))
		h.Write([]byte(in[cut:]))
		h.Flush()
		if out.String() != want {
			t.Fatalf("cut at %d: %q, want %q", cut, out.String(), want)
		}
	}
	// A prompt without a newline is not held back.
	var out strings.Builder
	h := &stepHeaders{w: &out}
	h.Write([]byte("password: "))
	if out.String() != "password: " {
		t.Errorf("held back %q", "password: ")
	}
}
