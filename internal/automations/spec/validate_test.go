package spec_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/automations/spec"
)

// validFile is a small valid file that each case of TestValidate breaks in
// one way.
func validFile() *spec.File {
	return &spec.File{
		Services: map[string]spec.Service{
			"db": {Commands: spec.Commands{Start: "postgres"}},
		},
		Tasks: map[string]spec.Task{
			"build": {Command: "make"},
			"test":  {Command: "make test", DependsOn: []string{"build", "db"}},
		},
	}
}

func TestValidate(t *testing.T) {
	setService := func(ref string, edit func(*spec.Service)) func(*spec.File) {
		return func(f *spec.File) {
			s := f.Services[ref]
			edit(&s)
			f.Services[ref] = s
		}
	}
	setTask := func(ref string, edit func(*spec.Task)) func(*spec.File) {
		return func(f *spec.File) {
			tk := f.Tasks[ref]
			edit(&tk)
			f.Tasks[ref] = tk
		}
	}
	addTask := func(ref string, tk spec.Task) func(*spec.File) {
		return func(f *spec.File) { f.Tasks[ref] = tk }
	}
	long := func(n int) string { return strings.Repeat("a", n) }

	for _, tc := range []struct {
		name string
		edit func(*spec.File)
		want string // "" for valid
	}{
		{"OK", func(*spec.File) {}, ""},
		{"OKNil", nil, ""},
		{"OKReferenceCharacters", addTask("Build_1.x-y", spec.Task{Command: "x"}), ""},
		{"OKReferenceMaxLength", addTask(long(128), spec.Task{Command: "x"}), ""},
		{"OKAllRoles", setService("db", func(s *spec.Service) { s.Role = spec.RoleAIAgent }), ""},
		{"OKMultilineCommand", setTask("build", func(tk *spec.Task) { tk.Command = "set -e\n\tmake\r\n" }), ""},
		{"OKMachine", setTask("build", func(tk *spec.Task) { tk.RunsOn.Machine = &spec.Machine{} }), ""},
		{"OKEveryFileTrigger", setTask("build", func(tk *spec.Task) { tk.TriggeredBy = spec.FileTriggers }), ""},
		{
			"ErrReferenceSpace",
			addTask("my task", spec.Task{Command: "x"}),
			`tasks["my task"]: reference "my task" must be 1 to 128 letters, digits, '-', '_' or '.'`,
		},
		{
			"ErrReferenceEmpty",
			addTask("", spec.Task{Command: "x"}),
			`tasks[""]: reference "" must be 1 to 128 letters, digits, '-', '_' or '.'`,
		},
		{
			"ErrReferenceTooLong",
			addTask(long(129), spec.Task{Command: "x"}),
			"tasks." + long(129) + `: reference "` + long(129) + `" must be 1 to 128 letters, digits, '-', '_' or '.'`,
		},
		{
			"ErrReferenceNonASCII",
			addTask("über", spec.Task{Command: "x"}),
			`tasks["über"]: reference "über" must be 1 to 128 letters, digits, '-', '_' or '.'`,
		},
		{
			"ErrReferenceDots",
			addTask("..", spec.Task{Command: "x"}),
			`tasks[".."]: reference ".." must not be only dots`,
		},
		{
			"ErrServiceReference",
			func(f *spec.File) { f.Services["a/b"] = spec.Service{Commands: spec.Commands{Start: "x"}} },
			`services["a/b"]: reference "a/b" must be 1 to 128 letters, digits, '-', '_' or '.'`,
		},
		{
			"ErrSharedReference",
			addTask("db", spec.Task{Command: "x"}),
			`tasks.db: reference "db" is already used by services.db; services and tasks share references`,
		},
		{
			"ErrNameLineBreak",
			setTask("build", func(tk *spec.Task) { tk.Name = "Build\nall" }),
			"tasks.build.name: must not contain control characters",
		},
		{
			"ErrNameTooLong",
			setService("db", func(s *spec.Service) { s.Name = long(257) }),
			"services.db.name: must be at most 256 characters, got 257",
		},
		{
			"ErrDescriptionUTF8",
			setService("db", func(s *spec.Service) { s.Description = "caf\xe9" }),
			"services.db.description: must be valid UTF-8",
		},
		{
			"ErrRole",
			setService("db", func(s *spec.Service) { s.Role = "admin" }),
			`services.db.role: must be one of "", "default", "editor", "ai-agent", got "admin"`,
		},
		{
			"ErrRoleAPIOnly",
			setService("db", func(s *spec.Service) { s.Role = "security-agent" }),
			`services.db.role: must be one of "", "default", "editor", "ai-agent", got "security-agent"`,
		},
		{
			"ErrStartRequired",
			setService("db", func(s *spec.Service) { s.Commands.Start = "" }),
			"services.db.commands.start: is required",
		},
		{
			"ErrStartBlank",
			setService("db", func(s *spec.Service) { s.Commands.Start = " \n " }),
			"services.db.commands.start: is required",
		},
		{
			"ErrReadyBlank",
			setService("db", func(s *spec.Service) { s.Commands.Ready = "  " }),
			"services.db.commands.ready: must not be blank; leave it out to unset it",
		},
		{
			"ErrStopNUL",
			setService("db", func(s *spec.Service) { s.Commands.Stop = "kill\x00" }),
			"services.db.commands.stop: must not contain control characters",
		},
		{
			"ErrCommandTooLong",
			setTask("build", func(tk *spec.Task) { tk.Command = long(64<<10 + 1) }),
			"tasks.build.command: must be at most 65536 characters, got 65537",
		},
		{
			"ErrTaskCommandRequired",
			setTask("build", func(tk *spec.Task) { tk.Command = "" }),
			"tasks.build.command: is required",
		},
		{
			"ErrDependsOnUnknown",
			setTask("test", func(tk *spec.Task) { tk.DependsOn = []string{"build", "lint"} }),
			`tasks.test.dependsOn[1]: "lint" is not a task or service in this file`,
		},
		{
			"ErrDependsOnDuplicate",
			setTask("test", func(tk *spec.Task) { tk.DependsOn = []string{"build", "db", "build"} }),
			`tasks.test.dependsOn[2]: "build" is listed twice (also dependsOn[0])`,
		},
		{
			"ErrTriggerUnknown",
			setTask("build", func(tk *spec.Task) { tk.TriggeredBy = []spec.Trigger{"onSave"} }),
			`tasks.build.triggeredBy[0]: must be one of "manual", "postEnvironmentStart", "postDevcontainerStart", "prebuild", got "onSave"`,
		},
		{
			// The seed's AutomationsFile lists four triggers; the other two
			// exist only in the API.
			"ErrTriggerAPIOnly",
			setService("db", func(s *spec.Service) {
				s.TriggeredBy = []spec.Trigger{spec.TriggerManual, spec.TriggerBeforeSnapshot}
			}),
			`services.db.triggeredBy[1]: must be one of "manual", "postEnvironmentStart", "postDevcontainerStart", "prebuild", got "beforeSnapshot"`,
		},
		{
			"ErrTriggerDuplicate",
			setTask("build", func(tk *spec.Task) { tk.TriggeredBy = []spec.Trigger{"manual", "prebuild", "manual"} }),
			`tasks.build.triggeredBy[2]: "manual" is listed twice (also [0])`,
		},
		{
			"ErrRunsOnBoth",
			setTask("build", func(tk *spec.Task) {
				tk.RunsOn = spec.RunsOn{Docker: &spec.Docker{Image: "alpine"}, Machine: &spec.Machine{}}
			}),
			"tasks.build.runsOn: must set docker or machine, not both",
		},
		{
			"ErrDockerImageRequired",
			setService("db", func(s *spec.Service) { s.RunsOn.Docker = &spec.Docker{} }),
			"services.db.runsOn.docker.image: is required",
		},
		{
			"ErrDockerImageSpace",
			setService("db", func(s *spec.Service) { s.RunsOn.Docker = &spec.Docker{Image: "postgres 17"} }),
			`services.db.runsOn.docker.image: must be an image reference without spaces, got "postgres 17"`,
		},
		{
			"ErrDockerEnvNoValue",
			setTask("build", func(tk *spec.Task) {
				tk.RunsOn.Docker = &spec.Docker{Image: "alpine", Environment: []string{"A=1", "HOME"}}
			}),
			"tasks.build.runsOn.docker.environment[1]: must be NAME=value",
		},
		{
			"ErrDockerEnvNoName",
			setTask("build", func(tk *spec.Task) {
				tk.RunsOn.Docker = &spec.Docker{Image: "alpine", Environment: []string{"=1"}}
			}),
			"tasks.build.runsOn.docker.environment[0]: must be NAME=value",
		},
		{
			"ErrDockerEnvNameSpace",
			setTask("build", func(tk *spec.Task) {
				tk.RunsOn.Docker = &spec.Docker{Image: "alpine", Environment: []string{"MY VAR=1"}}
			}),
			`tasks.build.runsOn.docker.environment[0]: variable name "MY VAR" must not contain spaces or control characters`,
		},
		{
			"ErrSelfCycle",
			setTask("build", func(tk *spec.Task) { tk.DependsOn = []string{"build"} }),
			"tasks: dependency cycle build -> build",
		},
		{
			"ErrCycle",
			func(f *spec.File) {
				f.Tasks["a"] = spec.Task{Command: "x", DependsOn: []string{"b"}}
				f.Tasks["b"] = spec.Task{Command: "x", DependsOn: []string{"c"}}
				f.Tasks["c"] = spec.Task{Command: "x", DependsOn: []string{"a", "build"}}
			},
			"tasks: dependency cycle a -> b -> c -> a",
		},
		{
			// The walk enters the cycle at build but the message starts at
			// its smallest member, whichever member is entered first.
			"ErrCycleRotated",
			func(f *spec.File) {
				f.Tasks["build"] = spec.Task{Command: "x", DependsOn: []string{"z"}}
				f.Tasks["z"] = spec.Task{Command: "x", DependsOn: []string{"test"}}
				f.Tasks["test"] = spec.Task{Command: "x", DependsOn: []string{"build"}}
			},
			"tasks: dependency cycle build -> z -> test -> build",
		},
		{
			"ErrTwoCycles",
			func(f *spec.File) {
				f.Tasks["y"] = spec.Task{Command: "x", DependsOn: []string{"x"}}
				f.Tasks["x"] = spec.Task{Command: "x", DependsOn: []string{"y"}}
				f.Tasks["q"] = spec.Task{Command: "x", DependsOn: []string{"p"}}
				f.Tasks["p"] = spec.Task{Command: "x", DependsOn: []string{"q"}}
			},
			"tasks: dependency cycle p -> q -> p",
		},
		{
			// Reference order decides which of two bad tasks is reported.
			"ErrFirstInReferenceOrder",
			func(f *spec.File) {
				f.Tasks["b"] = spec.Task{}
				f.Tasks["a"] = spec.Task{}
			},
			"tasks.a.command: is required",
		},
		{
			"ErrServicesBeforeTasks",
			func(f *spec.File) {
				f.Tasks["a"] = spec.Task{}
				f.Services["z"] = spec.Service{}
			},
			"services.z.commands.start: is required",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *spec.File
			if tc.edit != nil {
				f = validFile()
				tc.edit(f)
			}
			// Run twice: map order must not change the answer.
			for range 2 {
				err := spec.Validate(f)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					continue
				}
				checkInvalid(t, err, tc.want)
			}
		})
	}
}

func TestValidate_LongCycle(t *testing.T) {
	// t00 -> t01 -> ... -> t49 -> t00, declared in reverse.
	f := &spec.File{Tasks: map[string]spec.Task{}}
	var names []string
	for i := range 50 {
		names = append(names, fmt.Sprintf("t%02d", i))
	}
	for i := len(names) - 1; i >= 0; i-- {
		f.Tasks[names[i]] = spec.Task{Command: "x", DependsOn: []string{names[(i+1)%len(names)]}}
	}
	want := "tasks: dependency cycle " + strings.Join(names, " -> ") + " -> t00"
	checkInvalid(t, spec.Validate(f), want)
}

func TestValidate_FromYAML(t *testing.T) {
	f := MustParse(t, `
tasks:
  deploy:
    command: ./deploy
    dependsOn: [test]
  test:
    command: go test ./...
    dependsOn: [build]
  build:
    command: go build ./...
    dependsOn: [deploy]
`)
	checkInvalid(t, spec.Validate(f), "tasks: dependency cycle build -> deploy -> test -> build")
}

func TestFile_SetDefaults(t *testing.T) {
	f := validFile()
	f.Tasks["build"] = spec.Task{Name: "Build it", Command: "make"}
	f.SetDefaults()
	if got, want := f.Services["db"].Name, "db"; got != want {
		t.Errorf("services.db.name = %q, want %q", got, want)
	}
	if got, want := f.Tasks["test"].Name, "test"; got != want {
		t.Errorf("tasks.test.name = %q, want %q", got, want)
	}
	if got, want := f.Tasks["build"].Name, "Build it"; got != want {
		t.Errorf("tasks.build.name = %q, want %q", got, want)
	}
	(*spec.File)(nil).SetDefaults()
}

func TestFile_TriggeredBy(t *testing.T) {
	f, err := spec.Parse(MustReadFile(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		trigger spec.Trigger
		want    []string
	}{
		{spec.TriggerPostEnvironmentStart, []string{"db", "install"}},
		{spec.TriggerManual, []string{"db", "migrate", "test"}},
		{spec.TriggerPostDevcontainerStart, []string{"editor"}},
		{spec.TriggerPrebuild, []string{"install"}},
		{spec.TriggerBeforeSnapshot, nil},
	} {
		if got := f.TriggeredBy(tc.trigger); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TriggeredBy(%s) = %q, want %q", tc.trigger, got, tc.want)
		}
	}
}

func TestTrigger(t *testing.T) {
	for _, tc := range []struct {
		trigger       spec.Trigger
		valid, inFile bool
	}{
		{spec.TriggerManual, true, true},
		{spec.TriggerPostEnvironmentStart, true, true},
		{spec.TriggerPostDevcontainerStart, true, true},
		{spec.TriggerPrebuild, true, true},
		{spec.TriggerBeforeSnapshot, true, false},
		{spec.TriggerPostMachineStart, true, false},
		{"", false, false},
		{"Manual", false, false},
	} {
		if got := tc.trigger.Valid(); got != tc.valid {
			t.Errorf("%q.Valid() = %v, want %v", tc.trigger, got, tc.valid)
		}
		if got := tc.trigger.InFile(); got != tc.inFile {
			t.Errorf("%q.InFile() = %v, want %v", tc.trigger, got, tc.inFile)
		}
	}
}
