package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADME_Install follows the README's install section: its go install
// names this module's command, its Go version is go.mod's, and after the
// install and its PATH line a plain `runyard` runs the installed binary.
// The install is of this checkout (go install ., what @latest fetches once
// published), into a GOPATH of its own.
func TestREADME_Install(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary again")
	}
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(gomod)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if module == nil || goVersion == nil {
		t.Fatalf("go.mod without module or go line")
	}
	install := regexp.MustCompile("(?s)## Install\n(.*?)\n## ").FindSubmatch(readme)
	if install == nil {
		t.Fatal("README has no Install section")
	}
	section := string(install[1])
	for _, want := range []string{"go install " + string(module[1]) + "/cmd/runyard@latest", "Go " + string(goVersion[1]), "git"} {
		if !strings.Contains(section, want) {
			t.Errorf("README's install section lacks %q", want)
		}
	}
	pathLine := regexp.MustCompile(`(?m)^export PATH=.*?(?:\s+#.*)?$`).FindString(section)
	pathLine = regexp.MustCompile(`\s+#.*$`).ReplaceAllString(pathLine, "")
	if pathLine == "" {
		t.Fatal("README's install section does not put the installed runyard on PATH")
	}

	gopath := t.TempDir()
	env := []string{"GOPATH=" + gopath, "GOBIN="}
	for _, k := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+strings.TrimSpace(string(out)))
	}
	env = append(os.Environ(), env...)
	build := exec.Command("go", "install", ".")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	run := exec.Command("sh", "-c", pathLine+"\ncommand -v runyard\nrunyard version")
	run.Dir, run.Env = emptyDir, env
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("README's PATH line, then runyard version: %v\n%s", err, out)
	}
	lines := strings.SplitN(string(out), "\n", 2)
	if got, want := lines[0], filepath.Join(gopath, "bin", "runyard"); got != want {
		t.Errorf("runyard on PATH is %q, want the installed %q", got, want)
	}
	if len(lines) < 2 || !strings.Contains(lines[1], "runyard") {
		t.Errorf("runyard version printed %q", out)
	}
}
