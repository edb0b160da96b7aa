package automations

import (
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

// TestCheckFile checks that CheckFile names what is wrong under
// automationsFile, as UpsertFile does, and that FileLine places it, for a
// parse error, a validation error and an apply's conflict alike.
func TestCheckFile(t *testing.T) {
	const good = "services:\n  web:\n    commands:\n      start: sleep 600\ntasks:\n  build:\n    command: make\n    dependsOn: [web]\n"
	f, err := CheckFile([]byte(good))
	if err != nil {
		t.Fatalf("CheckFile(good) = %v", err)
	}
	if len(f.Services) != 1 || len(f.Tasks) != 1 || f.Tasks["build"].DependsOn[0] != "web" {
		t.Errorf("CheckFile(good) = %+v", f)
	}
	for _, tc := range []struct {
		name, in, field string
		line            int
	}{
		{"Syntax", "tasks:\n  a:\n    command: x\n   name: y\n", "automationsFile", 4},
		{"UnknownField", "services:\n  web:\n    commands:\n      strat: x\n", "automationsFile.services.web.commands.strat", 4},
		{"Invalid", "tasks:\n  a:\n    command: x\n  b:\n    command: y\n    dependsOn: [nope]\n", "automationsFile.tasks.b.dependsOn[0]", 6},
		{"UnknownTopLevel", "tasks: {}\n\"a b\": 1\n", `automationsFile.["a b"]`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckFile([]byte(tc.in))
			ae := apperr.As(err)
			if err == nil || ae.Code != apperr.CodeInvalid || ae.Field != tc.field {
				t.Fatalf("CheckFile = %v (field %q), want invalid_argument at %q", err, ae.Field, tc.field)
			}
			if got := FileLine([]byte(tc.in), err); got != tc.line {
				t.Errorf("FileLine = %d, want %d", got, tc.line)
			}
		})
	}
	t.Run("Conflict", func(t *testing.T) {
		err := apiTaken("automationsFile.tasks.build", "build", "task")
		if got := FileLine([]byte(good), err); got != 6 {
			t.Errorf("FileLine(conflict on tasks.build) = %d, want 6", got)
		}
	})
	t.Run("NotTheFile", func(t *testing.T) {
		if got := FileLine([]byte(good), apperr.Invalid("environmentId", "bad")); got != 0 {
			t.Errorf("FileLine(environmentId) = %d, want 0", got)
		}
	})
}
