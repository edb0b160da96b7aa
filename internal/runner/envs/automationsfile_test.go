package envs

import (
	"os"
	"path/filepath"
	"testing"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// TestAutomationsFile_SearchPaths: without a path of its own the spec's
// default is .runyard/automations.yaml, then .gitpod/, then .ona/; the
// first that exists is read. A path of the spec's own is the only one read.
func TestAutomationsFile_SearchPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		spec  string
		want  string
	}{
		{"Runyard", []string{".runyard/automations.yaml", ".gitpod/automations.yaml", ".ona/automations.yaml"}, "", ".runyard/automations.yaml"},
		{"Gitpod", []string{".gitpod/automations.yaml", ".ona/automations.yaml"}, ".runyard/automations.yaml", ".gitpod/automations.yaml"},
		{"Ona", []string{".ona/automations.yaml"}, "", ".ona/automations.yaml"},
		{"None", nil, "", ""},
		{"OwnPathOnly", []string{".ona/automations.yaml"}, "ci/automations.yaml", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, f), []byte("# "+f+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e := &env{rec: record{ContentDir: dir}}
			got, b, err := e.automationsFile(&runnerv1.EnvironmentSpec{AutomationsFilePath: tc.spec})
			if err != nil || got != tc.want || (got != "" && string(b) != "# "+got+"\n") {
				t.Errorf("automationsFile = %q, %q, %v; want %q", got, b, err, tc.want)
			}
		})
	}
}
