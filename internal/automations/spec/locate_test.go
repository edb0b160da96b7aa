package spec_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
)

// TestLine checks that every kind of error Parse and Validate return is
// placed at the line an editor should show it on.
func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"Syntax", "services:\n  web:\n    commands:\n      start: [unclosed\n", 4},
		{"SyntaxIndent", "tasks:\n  a:\n    command: x\n   name: y\n", 4},
		{"SecondDocument", "tasks: {}\n---\ntasks: {}\n", 2},
		{"UnknownField", "services:\n  db:\n    commands:\n      strat: postgres\n", 4},
		{"WrongType", "tasks:\n  build:\n    name: x\n    command: 42\n", 4},
		{"DuplicateKey", "tasks:\n  a:\n    command: x\n  b:\n    command: y\n  a:\n    command: z\n", 6},
		{"ListItemType", "tasks:\n  a:\n    command: x\n    dependsOn:\n      - b\n      - [c]\n  b:\n    command: y\n", 6},
		// Validate: the path's key or list item.
		{"MissingCommand", "tasks:\n  ok:\n    command: x\n  build:\n    name: Build\n", 4},
		{"MissingStart", "services:\n  web:\n    commands:\n      ready: curl -f localhost\n", 3},
		{"UnknownDependency", "tasks:\n  a:\n    command: x\n    dependsOn: [b, nope]\n  b:\n    command: y\n", 4},
		{"BadTrigger", "tasks:\n  a:\n    command: x\n    triggeredBy:\n      - manual\n      - onSave\n", 6},
		{"BadRole", "services:\n  web:\n    role: boss\n    commands: {start: x}\n", 3},
		{"QuotedReference", "tasks:\n  ok:\n    command: x\n  \"a b\":\n    command: y\n", 4},
		{"Cycle", "# comment\ntasks:\n  a:\n    command: x\n    dependsOn: [b]\n  b:\n    command: y\n    dependsOn: [a]\n", 2},
		{"Merged", "tasks:\n  base: &base\n    command: x\n    triggeredBy: [nope]\n  a:\n    <<: *base\n", 4},
		{"SyntaxAfterFlow", "tasks:\n  a: {command: x,\n      name: y}\n  b:\n    command: y\n     name: z\n", 6},
		{"SyntaxTab", "tasks:\n  a:\n\tcommand: x\n", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			f, err := spec.Parse(data)
			if err == nil {
				err = spec.Validate(f)
			}
			if err == nil {
				t.Fatalf("%q is valid", tc.in)
			}
			if got := spec.Line(data, err); got != tc.line {
				t.Errorf("Line(%v) = %d, want %d", err, got, tc.line)
			}
		})
	}
	t.Run("NoPlace", func(t *testing.T) {
		for _, err := range []error{
			errors.New("not an apperr"),
			apperr.Invalid("", "too many nodes"),
			apperr.Invalid("tasks.nope", "not in the file"),
		} {
			if got := spec.Line([]byte("services: {}\n"), err); got > 1 {
				t.Errorf("Line(%v) = %d, want 0 or 1", err, got)
			}
		}
	})
}

// TestFormat checks that a formatted file parses back to what was
// formatted, including text YAML would read as another type.
func TestFormat(t *testing.T) {
	files := map[string]*spec.File{
		"Full": MustParse(t, string(MustReadFile(t, "full.yaml"))),
		"Seed": MustParse(t, string(MustReadFile(t, "seed-example.yaml"))),
		"Tricky": {
			Services: map[string]spec.Service{"web": {Name: "true", Description: "a: b # c",
				Commands: spec.Commands{Start: "echo one\necho two\n", Stop: "  leading"}, TriggeredBy: []spec.Trigger{spec.TriggerManual}}},
			Tasks: map[string]spec.Task{"a.b": {Name: "42", Command: "- x", DependsOn: []string{"web"},
				RunsOn: spec.RunsOn{Docker: &spec.Docker{Image: "alpine:3", Environment: []string{"A=1"}}}}},
		},
	}
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			out, err := spec.Format(f)
			if err != nil {
				t.Fatalf("Format: %v", err)
			}
			back, err := spec.Parse(out)
			if err != nil {
				t.Fatalf("Parse(Format) = %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, f) {
				t.Errorf("Parse(Format(f)) differs:\n%s\ngot  %+v\nwant %+v", out, back, f)
			}
		})
	}
	if out, err := spec.Format(&spec.File{}); err != nil || len(out) != 0 {
		t.Errorf("Format(empty) = %q, %v; want empty", out, err)
	}
}
