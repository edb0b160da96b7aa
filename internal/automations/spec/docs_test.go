package spec_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/runyard/runyard/internal/automations/spec"
)

// TestDocsExamples: every example file in docs/automations.md (each yaml
// block after the format's outline) is valid, so the documentation cannot
// drift from the rules.
func TestDocsExamples(t *testing.T) {
	b, err := os.ReadFile("../../../docs/automations.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/automations.md has %d yaml blocks, want the outline and examples", len(blocks))
	}
	for i, m := range blocks[1:] {
		f, err := spec.Parse([]byte(m[1]))
		if err == nil {
			err = spec.Validate(f)
		}
		if err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, m[1])
		}
	}
}
