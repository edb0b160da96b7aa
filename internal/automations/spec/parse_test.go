package spec_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
)

func MustReadFile(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func MustParse(tb testing.TB, yaml string) *spec.File {
	tb.Helper()
	f, err := spec.Parse([]byte(yaml))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return f
}

// checkInvalid fails unless err is an invalid_argument *apperr.Error whose
// text is want.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *apperr.Error %q", err, err, want)
	}
	if got, wantCode := ae.Code, apperr.CodeInvalid; got != wantCode {
		t.Errorf("code = %q, want %q", got, wantCode)
	}
	if got := ae.Public(); got != want {
		t.Errorf("error =\n\t%s\nwant\n\t%s", got, want)
	}
}

func TestParse_SeedExample(t *testing.T) {
	f, err := spec.Parse(MustReadFile(t, "seed-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.File{
		Services: map[string]spec.Service{
			"web-server": {
				Name:        "Web Server",
				Description: "Development web server",
				Commands:    spec.Commands{Start: "npm run dev", Ready: "curl -s http://localhost:3000"},
				TriggeredBy: []spec.Trigger{spec.TriggerPostDevcontainerStart},
			},
		},
		Tasks: map[string]spec.Task{
			"build": {
				Name:        "Build Project",
				Description: "Builds the project artifacts",
				Command:     "npm run build",
				TriggeredBy: []spec.Trigger{spec.TriggerPostEnvironmentStart},
			},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", f, want)
	}
	if err := spec.Validate(f); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParse_Full(t *testing.T) {
	f, err := spec.Parse(MustReadFile(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	node := spec.RunsOn{Docker: &spec.Docker{Image: "node:22", Environment: []string{"NODE_ENV=development", "EMPTY="}}}
	want := &spec.File{
		Services: map[string]spec.Service{
			"db": {
				Name:        "Postgres",
				Description: "The development database.\nData lives in a volume.\n",
				Role:        spec.RoleDefault,
				Commands: spec.Commands{
					Start: "docker run --rm -p 5432:5432 postgres:17",
					Ready: "pg_isready -h localhost",
					Stop:  "docker stop db",
				},
				RunsOn:      spec.RunsOn{Machine: &spec.Machine{}},
				TriggeredBy: []spec.Trigger{spec.TriggerPostEnvironmentStart, spec.TriggerManual},
			},
			"editor": {
				Role:        spec.RoleEditor,
				Commands:    spec.Commands{Start: "code-server --bind-addr 0.0.0.0:8080"},
				TriggeredBy: []spec.Trigger{spec.TriggerPostDevcontainerStart},
			},
		},
		Tasks: map[string]spec.Task{
			"install": {
				Name:        "Install",
				Command:     "npm ci",
				RunsOn:      node,
				TriggeredBy: []spec.Trigger{spec.TriggerPrebuild, spec.TriggerPostEnvironmentStart},
			},
			"migrate": {
				Command:     "npm run migrate\nnpm run seed\n",
				DependsOn:   []string{"install", "db"},
				RunsOn:      node,
				TriggeredBy: []spec.Trigger{spec.TriggerManual},
			},
			// test merges migrate and overrides command and dependsOn.
			"test": {
				Command:     "npm test",
				DependsOn:   []string{"migrate", "install"},
				RunsOn:      node,
				TriggeredBy: []spec.Trigger{spec.TriggerManual},
			},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", f, want)
	}
	if err := spec.Validate(f); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParse_Empty(t *testing.T) {
	for name, in := range map[string]string{
		"Nothing":       "",
		"Blank":         "\n  \n",
		"Comment":       "# no automations yet\n",
		"EmptyDocument": "---\n",
		"Null":          "~",
		"EmptyMapping":  "{}",
		"NullSections":  "services:\ntasks: ~\n",
	} {
		t.Run(name, func(t *testing.T) {
			f := MustParse(t, in)
			if len(f.Services) != 0 || len(f.Tasks) != 0 {
				t.Fatalf("Parse(%q) = %+v, want an empty file", in, f)
			}
			if err := spec.Validate(f); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestParse_JSON(t *testing.T) {
	f := MustParse(t, `{"tasks": {"build": {"command": "make", "dependsOn": []}}}`)
	if got, want := f.Tasks["build"].Command, "make"; got != want {
		t.Fatalf("command = %q, want %q", got, want)
	}
}

func TestParse_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{
			"ErrUnknownTopLevel",
			"services: {}\nworkflows: {}\n",
			"workflows: unknown field (line 2)",
		},
		{
			"ErrUnknownServiceField",
			"services:\n  db:\n    commands: {start: x}\n    restart: always\n",
			"services.db.restart: unknown field (line 4)",
		},
		{
			"ErrUnknownCommand",
			"services:\n  db:\n    commands:\n      strat: postgres\n",
			`services.db.commands.strat: unknown field (line 4); did you mean "start"?`,
		},
		{
			"ErrUnknownTaskField",
			"tasks:\n  build:\n    command: make\n    depends_on: [x]\n",
			`tasks.build.depends_on: unknown field (line 4); did you mean "dependsOn"?`,
		},
		{
			"ErrUnknownDockerField",
			"tasks:\n  build:\n    runsOn:\n      docker:\n        image: x\n        volumes: [a]\n",
			"tasks.build.runsOn.docker.volumes: unknown field (line 6)",
		},
		{
			"ErrMachineField",
			"tasks:\n  build:\n    runsOn:\n      machine:\n        class: large\n",
			"tasks.build.runsOn.machine.class: unknown field (line 5)",
		},
		{
			"ErrUnknownFieldInMergedMapping",
			"tasks:\n  a: &a\n    command: x\n  b:\n    <<: *a\n    colour: red\n",
			"tasks.b.colour: unknown field (line 6)",
		},
		{
			"ErrQuotedPath",
			"tasks:\n  web.server:\n    command: x\n    nmae: y\n",
			`tasks["web.server"].nmae: unknown field (line 4); did you mean "name"?`,
		},
		{
			"ErrNameNotString",
			"tasks:\n  build:\n    name: 42\n",
			"tasks.build.name: must be a string, found an integer (line 3); quote it to use it as text",
		},
		{
			"ErrCommandBoolean",
			"tasks:\n  build:\n    command: true\n",
			"tasks.build.command: must be a string, found a boolean (line 3); quote it to use it as text",
		},
		{
			"ErrCommandsNotMapping",
			"services:\n  db:\n    commands: postgres\n",
			"services.db.commands: must be a mapping, found a string (line 3)",
		},
		{
			"ErrTriggeredByString",
			"tasks:\n  build:\n    triggeredBy: manual\n",
			"tasks.build.triggeredBy: must be a list of strings, found a string (line 3)",
		},
		{
			"ErrDependsOnItemMapping",
			"tasks:\n  build:\n    dependsOn:\n      - a\n      - {b: c}\n",
			"tasks.build.dependsOn[1]: must be a string, found a mapping (line 5)",
		},
		{
			"ErrNullListItem",
			"tasks:\n  build:\n    triggeredBy:\n      -\n",
			"tasks.build.triggeredBy[0]: must be a string, found null (line 4)",
		},
		{
			"ErrServicesList",
			"services:\n  - db\n",
			"services: must be a mapping of references, found a list (line 2)",
		},
		{
			"ErrTaskString",
			"tasks:\n  build: make\n",
			"tasks.build: must be a mapping, found a string (line 2)",
		},
		{
			"ErrTopLevelList",
			"- a\n- b\n",
			"must be a mapping, found a list (line 1)",
		},
		{
			"ErrTopLevelScalar",
			"hello",
			"must be a mapping, found a string (line 1)",
		},
		{
			"ErrDuplicateKey",
			"tasks:\n  build:\n    command: a\n    command: b\n",
			"tasks.build.command: duplicate key (lines 3 and 4)",
		},
		{
			"ErrDuplicateReference",
			"tasks:\n  build: {command: a}\n  build: {command: b}\n",
			"tasks.build: duplicate key (lines 2 and 3)",
		},
		{
			"ErrNonScalarKey",
			"tasks:\n  [a, b]: {command: x}\n",
			"tasks: keys must be strings, found a list (line 2)",
		},
		{
			"ErrMergeScalar",
			"tasks:\n  build:\n    <<: oops\n",
			"tasks.build: a merge (<<) takes a mapping or a list of mappings, found a string (line 3)",
		},
		{
			"ErrCustomTag",
			"tasks:\n  build:\n    command: !shell make\n",
			"tasks.build.command: must be a string, found a value tagged !shell (line 3); quote it to use it as text",
		},
		{
			"ErrTwoDocuments",
			"tasks: {}\n---\nservices: {}\n",
			"must be a single YAML document, found another at line 2",
		},
		{
			"ErrSyntax",
			"tasks:\n  build:\n    command: [unclosed\n",
			"invalid YAML: line 2: did not find expected ',' or ']'",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := spec.Parse([]byte(tc.in))
			if f != nil {
				t.Errorf("Parse returned a file with an error: %+v", f)
			}
			checkInvalid(t, err, tc.want)
		})
	}
}

func TestParse_AliasBomb(t *testing.T) {
	// Each level merges the previous one twice, so walking t40 without a
	// budget would visit 2^40 mappings.
	var b strings.Builder
	b.WriteString("tasks:\n  t0: &l0 {command: x}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  t%d: &l%d {<<: [*l%d, *l%d]}\n", i, i, i-1, i-1)
	}
	_, err := spec.Parse([]byte(b.String()))
	checkInvalid(t, err, "too many nodes once aliases are expanded (more than 1048576)")
}

func TestParse_NullIsUnset(t *testing.T) {
	// protobuf's JSON mapping, which the vendor reads files with, treats
	// null as unset; so does Parse.
	f := MustParse(t, "tasks:\n  a:\n    name: ~\n    command: x\n    dependsOn:\n    runsOn: {docker: null, machine: ~}\n")
	want := spec.Task{Command: "x"}
	if got := f.Tasks["a"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("tasks.a = %+v, want %+v", got, want)
	}
}

func TestParse_MergeList(t *testing.T) {
	// Keys written in the mapping win over merged ones, and an earlier
	// merged mapping wins over a later one.
	f := MustParse(t, `
tasks:
  base: &base {name: Base, command: base, description: from base}
  other: &other {name: Other, command: other, dependsOn: [base]}
  mixed:
    <<: [*other, *base]
    command: own
`)
	want := spec.Task{Name: "Other", Command: "own", Description: "from base", DependsOn: []string{"base"}}
	if got := f.Tasks["mixed"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("tasks.mixed = %+v, want %+v", got, want)
	}
}
