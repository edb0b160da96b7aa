package release_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/runyard/runyard/internal/buildinfo"
)

// TestDockerfile checks the Dockerfile with BuildKit's own parser (no
// container engine runs here to build it) and the rules the image must
// keep: several stages, a final stage from a small base with git and a
// shell, a non-root user, the binary stamped like a release.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("BuildKit's parser refuses the Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	type stage struct {
		from, name string
		lines      []string // the stage's instructions, lower-cased keyword first
	}
	var stages []*stage
	for _, n := range res.AST.Children {
		kw := strings.ToLower(n.Value)
		var args []string
		for a := n.Next; a != nil; a = a.Next {
			args = append(args, a.Value)
		}
		if kw == "from" {
			s := &stage{from: args[0]}
			if len(args) == 3 && strings.EqualFold(args[1], "as") {
				s.name = args[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if kw != "arg" {
				t.Fatalf("line %d: %s before the first FROM", n.StartLine, n.Value)
			}
			continue
		}
		cur := stages[len(stages)-1]
		cur.lines = append(cur.lines, kw+" "+strings.Join(n.Flags, " ")+" "+strings.Join(args, " "))
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	has := func(s *stage, prefix string, contains ...string) bool {
		return slices.ContainsFunc(s.lines, func(l string) bool {
			if !strings.HasPrefix(l, prefix) {
				return false
			}
			for _, c := range contains {
				if !strings.Contains(l, c) {
					return false
				}
			}
			return true
		})
	}
	if !strings.HasPrefix(final.from, "alpine:") && !strings.HasPrefix(final.from, "debian:") {
		t.Errorf("final stage FROM %s: want a small distribution base", final.from)
	}
	if !has(final, "run ", "git", "bash") {
		t.Errorf("final stage installs no git and shell: %q", final.lines)
	}
	var user string
	for _, l := range final.lines {
		if strings.HasPrefix(l, "user ") {
			user = strings.TrimSpace(strings.TrimPrefix(l, "user "))
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if !has(final, "copy --from="+stages[0].name, "/usr/local/bin/runyard") {
		t.Errorf("final stage does not copy the binary from the build stage %q: %q", stages[0].name, final.lines)
	}
	// The stamp must name the package's variables: a renamed one would
	// leave every image saying "dev".
	want := strings.Fields(buildinfo.LDFlags("${VERSION}", "${COMMIT}", "${DATE}"))
	for _, w := range want {
		if w != "-X" && !has(stages[0], "run ", w) {
			t.Errorf("build stage does not stamp %s", w)
		}
	}
	if !has(final, "entrypoint ", "/usr/local/bin/runyard") {
		t.Errorf("no ENTRYPOINT running runyard: %q", final.lines)
	}
}
